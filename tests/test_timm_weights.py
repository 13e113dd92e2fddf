"""State dicts with timm's key names load into our models and give timm's
logits.

timm needs torchvision, which does not install beside the pinned CPU torch
here, so timm ran once in a throwaway venv (tests/data/timm/make_fixture.py,
its command in the docstring): it filled each timm model with reproducible
weights and recorded the key list and timm's logits. Here the same weights
are rebuilt from the key list, written with ``torch.save`` as a timm
checkpoint would be, read back by our reader (no torch involved) and run by
our model. Measured: 9e-7 to 9e-6 of the largest logit for the six timm
models (B0, B3, Lite0, MobileNetV2, MobileNetV3 Large and Small).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

import zoo
from zoo.weights.files import load_weight_file
from zoo.weights.mapping import WeightMismatchError

DATA = Path(__file__).parent / "data" / "timm"
_spec = importlib.util.spec_from_file_location("timm_fixture", DATA / "make_fixture.py")
fixture = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fixture)
FIXTURE = json.loads((DATA / "timm_logits.json").read_text())


def _write_checkpoint(keys, path):
    torch = pytest.importorskip("torch")
    state = {k: torch.from_numpy(v) for k, v in fixture.fill(keys).items()}
    for k, _ in keys:  # BatchNorm counters, as in timm's own files
        state.setdefault(k, torch.tensor(0))
    torch.save(state, path)
    return path


def test_fixture_covers_the_timm_sources():
    """Every family with timm weight sources is checked here."""
    checked = {m["zoo"] for m in FIXTURE["models"].values()}
    families = {zoo.get_spec(n).family for n in checked}
    with_timm = {zoo.get_spec(n).family for n in zoo.list_models()
                 if any(w.origin.startswith("timm") for w in zoo.get_spec(n).weights)}
    assert with_timm <= families, with_timm - families


@pytest.mark.parametrize("timm_name", sorted(FIXTURE["models"]))
def test_timm_state_dict_gives_timm_logits(timm_name, tmp_path):
    entry = FIXTURE["models"][timm_name]
    path = _write_checkpoint(entry["keys"], tmp_path / f"{timm_name}.pth")
    variables = load_weight_file(path, entry["zoo"])
    model = zoo.build(entry["zoo"], implementation="reference")
    got = np.asarray(model.apply(variables, fixture.image(entry["resolution"])))[0]
    want = np.asarray(entry["logits"], np.float32)
    assert got.shape == want.shape
    rel = np.abs(got - want).max() / np.abs(want).max()
    assert rel <= 1e-4, f"{timm_name} -> {entry['zoo']}: {rel:.2e} of max |logit|"
    assert got.argmax() == want.argmax()


def test_timm_file_for_another_model_is_refused(tmp_path):
    """B0's timm checkpoint lacks the blocks B1 adds (its first stage has two)."""
    entry = FIXTURE["models"]["tf_efficientnet_b0"]
    path = _write_checkpoint(entry["keys"], tmp_path / "b0.pth")
    with pytest.raises(WeightMismatchError, match=r"(?s)missing .*blocks\.0\.1\.conv_dw\.weight"):
        load_weight_file(path, "efficientnet_b1")
