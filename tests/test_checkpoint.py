"""Orbax checkpoints: exact round trip; zoo convert-weights end to end."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import zoo
from helpers import zoo_cli


def leaves(tree):
    return jax.tree_util.tree_leaves_with_path(tree)


def test_round_trip_is_exact(tmp_path):
    _, variables = zoo.create("mobilenet_v3_small")
    variables["extra"] = {"bf16": jnp.arange(5, dtype=jnp.bfloat16), "i32": np.arange(3)}
    path = zoo.save(variables, tmp_path / "ckpt")
    restored = zoo.restore(path)
    assert jax.tree_util.tree_structure(restored) == jax.tree_util.tree_structure(variables)
    for (pa, a), (pb, b) in zip(leaves(variables), leaves(restored)):
        assert pa == pb and a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_save_refuses_to_overwrite_and_restore_names_the_path(tmp_path):
    path = zoo.save({"a": np.ones(2)}, tmp_path / "c")
    with pytest.raises(FileExistsError, match="overwrite"):
        zoo.save({"a": np.zeros(2)}, path)
    zoo.save({"a": np.zeros(2)}, path, overwrite=True)
    np.testing.assert_array_equal(zoo.restore(path)["a"], np.zeros(2))
    with pytest.raises(FileNotFoundError, match="no checkpoint directory"):
        zoo.restore(tmp_path / "missing")
    (tmp_path / "junk").mkdir()
    with pytest.raises(ValueError, match="not a readable Orbax checkpoint"):
        zoo.restore(tmp_path / "junk")


def test_convert_weights_cli(tmp_path):
    out = tmp_path / "mnv2"
    r = zoo_cli("convert-weights", "pretrained", "--model", "mobilenet_v2", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "3,504,872 parameters" in r.stdout
    restored = zoo.restore(out)
    expected = zoo.load_pretrained("mobilenet_v2")
    for (_, a), (_, b) in zip(leaves(expected), leaves(restored)):
        np.testing.assert_array_equal(a, b)
    r = zoo_cli("convert-weights", "pretrained", "--model", "mobilenet_v2", "--out", str(out))
    assert r.returncode == 2 and "--overwrite" in r.stderr


def test_convert_weights_from_a_file_for_another_model(tmp_path):
    from zoo.weights.fetch import fetch
    src = fetch(zoo.get_spec("efficientnet_lite1").weights[0], name="efficientnet_lite1")
    r = zoo_cli("convert-weights", str(src), "--model", "efficientnet_lite0",
                "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "_blocks.16._expand_conv.weight" in r.stderr
    assert not (tmp_path / "x").exists()  # nothing half-written
    r = zoo_cli("convert-weights", str(tmp_path / "nope.pth"), "--model", "mobilenet_v2",
                "--out", str(tmp_path / "y"))
    assert r.returncode == 2 and "no weight file" in r.stderr
