"""Procedural synthetic visible-infrared ReID dataset in the SYSU-MM01 layout.

``generate_dataset(out_dir, SyntheticConfig(num_ids=..., seed=...))`` writes it; ``vireid synth``
is the command line. See :mod:`vireid.data.synthetic.generator` for the layout and guarantees.
"""

from vireid.data.synthetic.contact_sheet import make_contact_sheet
from vireid.data.synthetic.generator import (
    GENERATOR_NAME,
    GENERATOR_VERSION,
    DatasetPlan,
    SyntheticConfig,
    generate_dataset,
    identity_spec,
    plan_dataset,
    render_dataset_image,
)
from vireid.data.synthetic.identity import IdentitySpec

__all__ = [
    "GENERATOR_NAME", "GENERATOR_VERSION", "DatasetPlan", "IdentitySpec", "SyntheticConfig",
    "generate_dataset", "identity_spec", "make_contact_sheet", "plan_dataset", "render_dataset_image",
]
