"""Checkpoints: versioned, atomic, read with weights_only=True, clear errors."""

import pytest
import torch

from vireid.engine.checkpoint import CheckpointError, load_checkpoint, load_model_state, save_checkpoint


def test_checkpoint_roundtrip_and_errors(tmp_path):
    model = torch.nn.Linear(3, 2)
    save_checkpoint(tmp_path / "a.pt", model=model.state_dict(), epoch=3, config={"x": [1, 2]})
    data = load_checkpoint(tmp_path / "a.pt")
    assert data["epoch"] == 3 and data["version"] == 1 and data["config"] == {"x": [1, 2]}
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary left behind
    other = torch.nn.Linear(3, 2)
    load_model_state(other, data["model"])
    assert torch.equal(other.weight, model.weight)
    with pytest.raises(CheckpointError, match=r"missing keys: \['0.weight', '0.bias', '1.weight'"):
        load_model_state(torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 2)), {})
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="could not be read safely"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": 1}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="is not a vireid-checkpoint file"):
        load_checkpoint(tmp_path / "foreign.pt")
