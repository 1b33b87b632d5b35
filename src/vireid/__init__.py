"""vireid: visible-infrared cross-modality person re-identification."""

__version__ = "0.1.0"
