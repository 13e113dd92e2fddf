"""Depth metrics (zoo.depth.metrics) and the MiDaS loss (zoo.depth.loss) on
cases small enough to check by hand."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from zoo.depth.loss import gradient_matching as _gradient_matching
from zoo.depth.loss import masked_median, normalise, trimmed_mae
from zoo.depth.loss import ssi_loss as _ssi_loss
from zoo.depth.metrics import align, evaluate, evaluate_batch

ssi_loss = jax.jit(_ssi_loss)  # one compile per shape instead of op-by-op dispatch


def one_line(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message, message
    return message


# -- metrics

def test_perfect_and_affine_predictions_score_zero():
    gt = np.random.default_rng(0).uniform(0.1, 2.0, (6, 8))
    perfect = evaluate(gt, gt)
    assert perfect["abs_rel"] == pytest.approx(0, abs=1e-12) and perfect["bad_1_25"] == 0
    assert (perfect["scale"], perfect["shift"]) == pytest.approx((1, 0))
    assert perfect["valid_pixels"] == 48 and perfect["clipped_pixels"] == 0
    # Any positive affine function of the disparity aligns back exactly.
    affine = evaluate((gt - 0.3) / 2, gt)
    assert affine["abs_rel"] == pytest.approx(0, abs=1e-9) and affine["bad_1_25"] == 0
    assert (affine["scale"], affine["shift"]) == pytest.approx((2, 0.3))
    # Middlebury's disparity -> depth map, also after alignment.
    middlebury = evaluate(3 * gt + 1, gt * 30,
                          to_depth=lambda d: 193.001 * 994.978 / (d + 31.086))
    assert middlebury["abs_rel"] == pytest.approx(0, abs=1e-9)
    assert align(np.array([[1.0, 2], [3, 4]]), np.array([[3.0, 5], [7, 9]]),
                 np.ones((2, 2), bool)) == pytest.approx((2, 1))


def test_hand_computed_2x2():
    # Pixels (p, d*): (0, 1), (1, 2), (1, 2), (1, 1). Means 0.75 and 1.5;
    # var(p) = 0.75, cov = 0.5 -> scale 2/3, shift 1.5 - 0.5 = 1. Aligned
    # disparity 1, 5/3, 5/3, 5/3 -> depth 1, 0.6, 0.6, 0.6 against 1, 0.5,
    # 0.5, 1: relative errors 0, 0.2, 0.2, 0.4 (AbsRel 0.2); ratios 1, 1.2,
    # 1.2, 1.67 (one bad pixel of four: 25 %).
    m = evaluate(np.array([[0.0, 1], [1, 1]]), np.array([[1.0, 2], [2, 1]]))
    assert m["scale"] == pytest.approx(2 / 3) and m["shift"] == pytest.approx(1)
    assert m["abs_rel"] == pytest.approx(0.2) and m["bad_1_25"] == pytest.approx(25)


def test_non_positive_aligned_disparity_is_clipped_to_a_tenth_of_the_smallest():
    # p = (0, 0, 0, -1, 1) against d* = (1, 1, 1, 1, 10): mean p 0, mean d*
    # 2.8, var 2, cov 9 -> scale 4.5, shift 2.8; the pixel p = -1 aligns to
    # -1.7 and is raised to 0.1 * 1 (depth 10 against 1: error 9).
    m = evaluate(np.array([[0.0, 0, 0, -1, 1]]), np.array([[1.0, 1, 1, 1, 10]]))
    assert (m["scale"], m["shift"]) == pytest.approx((4.5, 2.8))
    assert m["clipped_pixels"] == 1
    errors = [1 - 1 / 2.8] * 3 + [9, abs(1 / 7.3 - 0.1) / 0.1]
    assert m["abs_rel"] == pytest.approx(np.mean(errors))
    assert m["bad_1_25"] == pytest.approx(100)  # 2.8x, 10x, 1.37x off


def test_invalid_ground_truth_is_ignored():
    gt = np.array([[1.0, np.inf, 0.0], [2.0, np.nan, 4.0], [-1.0, 0.5, 3.0]])
    pred = np.array([[2.0, np.nan, 5.0], [4.0, 7.0, 8.0], [9.0, 1.0, 6.0]])  # 2 * gt where valid
    m = evaluate(pred, gt)
    assert m["valid_pixels"] == 5 and m["abs_rel"] == pytest.approx(0, abs=1e-12)
    mask = np.ones((3, 3), bool)
    mask[0, 0] = False
    assert evaluate(pred, gt, valid=mask)["valid_pixels"] == 4


def test_errors_are_one_line():
    with pytest.raises(ValueError, match=r"prediction \(2, 3\) and ground truth \(3, 2\) "
                                         r"differ in shape") as e:
        evaluate(np.ones((2, 3)), np.ones((3, 2)))
    one_line(e)
    with pytest.raises(ValueError, match=r"ground truth has no valid pixels") as e:
        evaluate(np.ones((2, 2)), np.full((2, 2), np.inf))
    one_line(e)
    with pytest.raises(ValueError, match=r"prediction: expected one \(H, W\) map, got shape "
                                         r"\(1, 2, 2\)") as e:
        evaluate(np.ones((1, 2, 2)), np.ones((2, 2)))
    one_line(e)
    with pytest.raises(ValueError, match=r"ground truth: expected one \(H, W\) map") as e:
        evaluate(np.ones((2, 2)), np.ones(4))
    one_line(e)
    with pytest.raises(ValueError, match=r"prediction has 1 non-finite values") as e:
        evaluate(np.array([[1.0, np.nan]]), np.array([[1.0, 2.0]]))
    one_line(e)


def test_batched_form_matches_and_jits():
    rng = np.random.default_rng(1)
    gt = rng.uniform(0.05, 1.0, (3, 8, 12)).astype(np.float32)
    valid = rng.random((3, 8, 12)) > 0.2
    valid[2] = False  # an image without ground truth
    pred = (gt * rng.uniform(0.5, 1.5, gt.shape) + 0.2).astype(np.float32)
    out = jax.jit(evaluate_batch)(pred, np.where(valid, gt, 0), valid)
    for i in range(2):
        ref = evaluate(pred[i], gt[i], valid=valid[i])
        for key in ("abs_rel", "bad_1_25", "scale", "shift", "valid_pixels"):
            assert float(out[key][i]) == pytest.approx(ref[key], rel=1e-4, abs=1e-5), key
    assert float(out["valid_pixels"][2]) == 0 and float(out["abs_rel"][2]) == 0


# -- loss

def test_median_and_normalisation_by_hand():
    x = jnp.array([[[1.0, 2.0], [3.0, 10.0]]])
    every = jnp.ones((1, 2, 2), bool)
    assert float(masked_median(x, every)[0]) == 2.5
    assert float(masked_median(x, jnp.array([[[True, True], [True, False]]]))[0]) == 2.0
    # median 2.5, mean |x - 2.5| = (1.5 + 0.5 + 0.5 + 7.5) / 4 = 2.5
    np.testing.assert_allclose(normalise(x, every)[0], [[-0.6, -0.2], [0.2, 3.0]], rtol=1e-6)


def test_trimming_drops_the_largest_fifth():
    residual = jnp.arange(1.0, 11.0).reshape(1, 2, 5)
    every = jnp.ones((1, 2, 5), bool)
    # M = 10: the 8 smallest, (1 + ... + 8) / (2 * 10)
    assert float(trimmed_mae(residual, every)[0]) == pytest.approx(36 / 20)
    outlier = residual.at[0, 1, 4].set(1000.0)
    assert float(trimmed_mae(outlier, every)[0]) == pytest.approx(36 / 20)
    # M = 8 valid (9 and 10 masked): floor(6.4) = 6 kept, (1 + ... + 6) / 16
    valid = every.at[0, 1, 3:].set(False)
    assert float(trimmed_mae(outlier, valid)[0]) == pytest.approx(21 / 16)


def test_gradient_matching_by_hand():
    gradient_matching = jax.jit(_gradient_matching, static_argnames="scales")
    r = jnp.array([[[0.0, 1.0], [0.0, 1.0]]])
    every = jnp.ones((1, 2, 2), bool)
    # scale 1: |1 - 0| twice along x, nothing along y, over 4 pixels; scale 2
    # keeps one pixel, no differences.
    assert float(gradient_matching(r, every, scales=1)) == pytest.approx(0.5)
    assert float(gradient_matching(r, every, scales=2)) == pytest.approx(0.5)
    # a difference needs both pixels valid: (0,1) masked leaves the lower pair
    assert float(gradient_matching(r, every.at[0, 0, 1].set(False), scales=1)) == \
        pytest.approx(1 / 3)
    assert float(gradient_matching(jnp.full((1, 4, 4), 3.0), jnp.ones((1, 4, 4), bool))) == 0


def test_ssi_loss_invariances():
    rng = np.random.default_rng(2)
    target = jnp.asarray(rng.uniform(0.1, 1.0, (2, 16, 16)), jnp.float32)
    valid = jnp.asarray(rng.random((2, 16, 16)) > 0.1)
    loss, parts = ssi_loss(target, target, valid)
    assert float(loss) == pytest.approx(0, abs=1e-6)
    loss, parts = ssi_loss(3.7 * target + 2.0, target, valid)  # scale and shift
    assert float(parts["ssi"]) == pytest.approx(0, abs=1e-5)
    assert float(parts["gradient"]) == pytest.approx(0, abs=1e-5)
    pred = jnp.asarray(rng.uniform(0.1, 1.0, (2, 16, 16)), jnp.float32)
    base, _ = ssi_loss(pred, target, valid)
    moved, _ = ssi_loss(0.25 * pred - 5.0, target, valid)
    assert float(base) > 0.3 and float(moved) == pytest.approx(float(base), rel=1e-4)
    # Inverted disparity (depth instead of inverse depth) is wrong.
    assert float(ssi_loss(-target, target, valid)[0]) > 0.5
    # Values at invalid pixels play no part.
    noisy = jnp.where(valid, pred, 1e6)
    assert float(ssi_loss(noisy, target, valid)[0]) == pytest.approx(float(base), rel=1e-6)
    # A non-affine change of the target is seen by both terms.
    _, parts = ssi_loss(target ** 3, target, valid)
    assert float(parts["ssi"]) > 1e-2 and float(parts["gradient"]) > 1e-2


def test_ssi_loss_gradients_are_finite():
    target = jnp.asarray(np.random.default_rng(3).uniform(0.1, 1.0, (2, 8, 8)), jnp.float32)
    valid = jnp.ones((2, 8, 8), bool).at[1].set(False)  # one image without ground truth
    grad_fn = jax.jit(jax.grad(lambda p: _ssi_loss(p, target, valid)[0]))
    for pred in (jnp.zeros((2, 8, 8)), target * 2):
        assert bool(jnp.isfinite(grad_fn(pred)).all())
