"""Exception types raised on bad input. Each message names the file, key or layout at fault."""


class VireidError(Exception):
    """Base class of the errors vireid raises for bad input."""


class DatasetError(VireidError, ValueError):
    """A dataset is missing, has the wrong layout, or disagrees with its official tables."""


class ConfigError(VireidError, ValueError):
    """A configuration key is unknown, or a value has the wrong type or range."""


class FeaturesError(VireidError, ValueError):
    """A features file is malformed: missing keys, NaN/inf values, unknown or duplicate paths."""
