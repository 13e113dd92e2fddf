"""TAL-Net (``zoo.models.talnet``): registry and shapes, the towers'
receptive fields, box coding, NMS and soft-NMS against brute-force Python,
anchor matching and SoI pooling against hand-worked and direct numpy
computations, late fusion against the single-stream networks, detections in
seconds, errors, jit and jax.export.

Sizes are tiny and variables are drawn with numpy from ``jax.eval_shape``
(no compiled initialiser), so the file spends its time on a handful of
compiles.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import zoo
from zoo.models import talnet
from zoo.models.talnet import (TALNet, anchors, decode, detections, encode, match, nms,
                               soft_nms, soi_pool, tiou_matrix)

TINY = dict(feature_dim=4, hidden=8, fc_width=16, pooled=4, scales=(2, 4, 8), num_proposals=6,
            num_classes=3)
T = 24


def random_variables(model, length=T, seed=0, scale=0.3, positive=False):
    shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), model.trace_input)
    rng = np.random.default_rng(seed)

    def draw(s):
        a = rng.normal(size=s.shape).astype(np.float32) * scale
        return jnp.asarray(np.abs(a) if positive else a)

    return jax.tree_util.tree_map(draw, shapes)


def features(model, batch=2, length=T, seed=1):
    f = model.feature_dim * len(model.streams)
    return jnp.asarray(np.random.default_rng(seed).normal(size=(batch, length, f)), jnp.float32)


@pytest.fixture(scope="module")
def created():
    """The registered model, tiny, from zoo.create, exported with
    jax.export (static shapes), serialised, read back, and run: the
    outputs every test here checks come from that artefact."""
    model, variables = zoo.create("talnet", **TINY)
    x = features(model)
    exported = jax.export.export(jax.jit(model.apply))(variables, x)
    restored = jax.export.deserialize(exported.serialize())
    return model, variables, x, exported, restored.call(variables, x)


def test_create_and_shapes(created):
    model, variables, x, _, out = created
    spec = zoo.get_spec("talnet")
    assert (spec.task, spec.family, spec.num_classes) == ("action_localisation", "talnet", 20)
    assert isinstance(model, TALNet) and model.streams == ("rgb", "flow")
    assert set(variables["params"]) == {"rgb", "flow"}
    b, a, k, c = 2, 3, TINY["num_proposals"], TINY["num_classes"]
    want = {"proposal_logits": (b, T, a), "proposal_deltas": (b, T, a, 2),
            "proposals": (b, k, 2), "proposal_scores": (b, k), "proposal_valid": (b, k),
            "class_logits": (b, k, c + 1), "refine_deltas": (b, k, 2)}
    assert {n: v.shape for n, v in out.items()} == want
    valid = np.asarray(out["proposal_valid"])
    props = np.asarray(out["proposals"])
    assert valid[:, 0].all()
    assert (props[valid] >= 0).all() and (props[valid] <= T).all()
    assert (props[..., 1] >= props[..., 0]).all()
    scores = np.asarray(out["proposal_scores"])
    assert (np.diff(np.where(valid, scores, -1), axis=1) <= 1e-7).all()  # kept by score
    # The first proposal is the best-scoring anchor's decoded segment,
    # clipped to the sequence; its score is the logit's sigmoid. Anchors are
    # centred at t + 0.5 (scales 2, 4, 8), in (t, scale) order.
    for i in range(b):
        logits = np.asarray(out["proposal_logits"][i], np.float64)
        t, s = np.unravel_index(np.argmax(logits), logits.shape)
        dc, dl = np.asarray(out["proposal_deltas"][i, t, s], np.float64)
        length = TINY["scales"][s]
        centre, size = t + 0.5 + dc * length, length * np.exp(dl)
        seg = np.clip([centre - size / 2, centre + size / 2], 0, T)
        np.testing.assert_allclose(props[i, 0], seg, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(scores[i, 0], 1 / (1 + np.exp(-logits[t, s])), rtol=1e-5)


def _changed_span(model, t=32, length=64):
    """Per anchor scale, the input steps (relative to t, first, last, count)
    whose change moves proposal_logits[t, scale].

    Max-pool gradients reach only each window's maximum, so dependence is
    measured by perturbation: with positive weights and inputs every ReLU is
    active, and a large increase at an input step inside the receptive field
    changes the output while one outside leaves it bit-identical."""
    variables = random_variables(model, positive=True)
    rng = np.random.default_rng(2)
    channels = model.feature_dim * len(model.streams)
    base = rng.uniform(0.5, 1.0, size=(1, length, channels)).astype(np.float32)
    batch = np.repeat(base, length + 1, axis=0)
    batch[np.arange(length), np.arange(length)] += 50.0  # item j perturbs step j
    proposals = jnp.zeros((length + 1, 1, 2), jnp.float32)
    logits = np.asarray(jax.jit(model.apply)(variables, jnp.asarray(batch),
                                             proposals)["proposal_logits"])
    out = logits[:, t, :]
    moved = np.abs(out[:length] - out[length]) > 1e-3
    changed = [np.flatnonzero(moved[:, a]) for a in range(out.shape[1])]
    return [(int(c.min()) - t, int(c.max()) - t, len(c)) for c in changed]


RF_SMALL = dict(feature_dim=4, hidden=4, fc_width=4, pooled=2, streams=("rgb",),
                num_proposals=1, num_classes=1)


def test_receptive_field_multi_tower():
    # Paper rule: r1 = round(m s / 6), m = 2 with context, r2 = 2 r1, pool
    # kernel r1 made odd; half-width = pool // 2 + r1 + r2. With context:
    # s = 3: r1 1, pool 1 -> 0 + 1 + 2 = 3; s = 6: r1 2, pool 3 -> 1 + 2 + 4
    # = 7; s = 12: r1 4, pool 5 -> 2 + 4 + 8 = 14; s = 24: r1 8, pool 9 ->
    # 4 + 8 + 16 = 28 (the anchor plus about s/2 on each side). Without
    # context the towers of 6, 12, 24 are those of 3, 6, 12 here.
    got = _changed_span(TALNet(**RF_SMALL, scales=(3, 6, 12, 24)))
    assert got == [(-h, h, 2 * h + 1) for h in (3, 7, 14, 28)]
    assert [talnet.tower_geometry(s, context=False) for s in (6, 12, 24)] == [
        talnet.tower_geometry(s) for s in (3, 6, 12)]


def test_receptive_field_single_tower_early_fusion():
    # One shared tower of two undilated kernel-3 convolutions: 5 steps for
    # every anchor scale, whatever its length. The model fuses two streams
    # early (one network on the concatenated features), so this also runs
    # that variant.
    model = TALNet(**dict(RF_SMALL, streams=("rgb", "flow")), scales=(2, 8, 32),
                   towers="single", fusion="early")
    conv1 = jax.eval_shape(model.init, jax.random.PRNGKey(0), model.trace_input)
    conv1 = conv1["params"]["fused"]["proposal"]["tower"]["conv1"]["kernel"]
    assert conv1.shape == (3, 1, 2 * RF_SMALL["feature_dim"], RF_SMALL["hidden"])
    assert _changed_span(model) == [(-2, 2, 5)] * 3


def test_tower_geometry_table():
    # The module docstring's table at the default scales (context on/off).
    rows = {True: (7, 7, 21, 35, 77, 147, 301, 595), False: (7, 7, 7, 21, 35, 77, 147, 301)}
    for context, fields in rows.items():
        got = []
        for s in talnet.SCALES:
            pool, r1, r2 = talnet.tower_geometry(s, context=context)
            got.append(pool + 2 * r1 + 2 * r2)
        assert tuple(got) == fields


def test_anchors_encode_decode():
    a = anchors(3, (2, 4))
    assert a.shape == (3, 2, 2)
    np.testing.assert_allclose(a[1], [[0.5, 2.5], [-0.5, 3.5]])  # centre 1.5
    rng = np.random.default_rng(0)
    starts = rng.uniform(-10, 50, size=(100, 2))
    lengths = rng.uniform(1, 60, size=(100, 2))  # ratios under the 62.5 cap
    segs = np.stack([starts[:, 0], starts[:, 0] + lengths[:, 0]], -1).astype(np.float32)
    anc = np.stack([starts[:, 1], starts[:, 1] + lengths[:, 1]], -1).astype(np.float32)
    # Hand-worked rows: anchor [0, 4] (c 2, l 4), segment [1, 6] (c 3.5,
    # l 5); and a log length ratio of 10 against [0, 1], capped at 1000 / 16.
    segs[0], anc[0] = (1, 6), (0, 4)
    deltas = np.zeros((100, 2), np.float32)
    deltas[1], anc[1] = (0, 10), (0, 1)
    coded, decoded, round_trip = jax.jit(
        lambda s, a, d: (encode(s, a), decode(d, a), decode(encode(s, a), a)))(segs, anc, deltas)
    np.testing.assert_allclose(coded[0], [1.5 / 4, math.log(5 / 4)], rtol=1e-6)
    np.testing.assert_allclose(decoded[1], [0.5 - 31.25, 0.5 + 31.25], rtol=1e-5)
    np.testing.assert_allclose(np.delete(round_trip, 1, 0), np.delete(segs, 1, 0),
                               rtol=1e-5, atol=1e-4)


def _iou(a, b):
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = (a[1] - a[0]) + (b[1] - b[0]) - inter
    return inter / union if union > 0 else 0.0


def _brute_nms(segs, scores, thr):
    order = sorted((i for i in range(len(scores)) if np.isfinite(scores[i])),
                   key=lambda i: (-scores[i], i))
    keep, gone = [], set()
    for i in order:
        if i in gone:
            continue
        keep.append(i)
        gone.update(j for j in order if _iou(segs[i], segs[j]) > thr)
    return keep


def _random_segments(rng, n):
    start = rng.uniform(0, 40, n)
    return np.stack([start, start + rng.uniform(0.5, 12, n)], -1).astype(np.float32)


def test_tiou_matrix():
    a = np.array([[0, 4], [2, 6], [5, 5]], np.float32)
    b = np.array([[2, 6.5], [10, 12]], np.float32)
    want = [[2 / 6.5, 0], [4 / 4.5, 0], [0, 0]]
    np.testing.assert_allclose(jax.jit(tiou_matrix)(a, b), want, rtol=1e-6)


def test_nms_matches_brute_force():
    rng = np.random.default_rng(3)
    run = jax.jit(nms, static_argnames=("max_output",))
    m, cases = 16, set()
    for trial in range(6):
        n = 40
        segs = _random_segments(rng, n)
        scores = rng.uniform(0, 1, n).astype(np.float32)
        scores[rng.choice(n, 4, replace=False)] = -np.inf  # absent candidates
        thr = (0.3, 0.5, 0.7)[trial % 3]
        want = _brute_nms(segs.astype(np.float64), scores, thr)
        cases.add("padded" if len(want) < m else "truncated")
        want = want[:m]
        idx, kept = map(np.asarray, run(segs, scores, thr, max_output=m))
        valid = np.isfinite(kept)
        assert valid.sum() == len(want)
        assert list(idx[valid]) == want
        np.testing.assert_array_equal(kept[valid], scores[want])
        assert not valid[len(want):].any()
    assert cases == {"padded", "truncated"}  # both ends of the fixed size were met


def test_soft_nms_matches_brute_force():
    rng = np.random.default_rng(4)
    segs = _random_segments(rng, 25)
    scores = rng.uniform(0, 1, 25)
    sigma, threshold, m = 0.5, 0.05, 30
    live = {i: float(s) for i, s in enumerate(scores) if s >= threshold}
    want = []
    while live and len(want) < m:
        i = max(live, key=lambda j: (live[j], -j))
        want.append((i, live.pop(i)))
        for j in list(live):
            live[j] *= math.exp(-_iou(segs[i], segs[j]) ** 2 / sigma)
            if live[j] < threshold:
                del live[j]
    idx, kept = jax.jit(soft_nms, static_argnames=("max_output",))(
        segs, scores.astype(np.float32), max_output=m, sigma=sigma, score_threshold=threshold)
    valid = np.isfinite(np.asarray(kept))
    assert list(np.asarray(idx)[valid]) == [i for i, _ in want]
    np.testing.assert_allclose(np.asarray(kept)[valid], [s for _, s in want], rtol=1e-5)


def test_match_hand_worked():
    anc = np.array([[0, 4], [2, 6], [4, 8], [8, 12], [10, 14]], np.float32)
    gt = np.array([[2, 6.5], [11, 12.5], [0, 4]], np.float32)
    valid = np.array([True, True, False])  # the third would match anchor 0 exactly
    # tIoU with gt0: 2/6.5 = .31, 4/4.5 = .89, 2.5/6 = .42, 0, 0;
    # with gt1: 0, 0, 0, 1/4.5 = .22, 1.5/4 = .375.
    # Anchor 0: .31 -> ignored; 1: .89 -> positive (gt0); 2: .42 -> ignored;
    # 3: .22 -> negative; 4: .375 would be ignored but is gt1's best anchor.
    labels, targets, matched = jax.jit(match)(anc, gt, valid)
    assert list(np.asarray(labels)) == [-1, 1, -1, 0, 1]
    assert list(np.asarray(matched)[[1, 4]]) == [0, 1]
    # gt0 (c 4.25, l 4.5) on anchor [2, 6] (c 4, l 4); gt1 (c 11.75, l 1.5)
    # on anchor [10, 14] (c 12, l 4); zeros elsewhere.
    want = np.zeros((5, 2))
    want[1] = (0.25 / 4, math.log(4.5 / 4))
    want[4] = (-0.25 / 4, math.log(1.5 / 4))
    np.testing.assert_allclose(targets, want, rtol=1e-6, atol=1e-7)
    # No valid ground truth: every anchor is negative.
    labels, targets, _ = jax.jit(match)(anc, gt, np.zeros(3, bool))
    assert (np.asarray(labels) == 0).all() and (np.asarray(targets) == 0).all()
    # Leading anchor axes are kept (T, A).
    labels, targets, _ = jax.eval_shape(match, anchors(6, (2, 4)), gt[:1], valid[:1])
    assert labels.shape == (6, 2) and targets.shape == (6, 2, 2)
    with pytest.raises(ValueError, match="gt_segments"):
        match(anc, np.zeros((0, 2), np.float32), np.zeros(0, bool))


def _direct_pool(f, seg, bins):
    t = f.shape[0]
    a, b = seg
    w = (b - a) / bins
    out = []
    for j in range(bins):
        lo, hi = a + j * w, a + (j + 1) * w
        if hi - lo <= 0:
            step = int(np.floor(lo))
            out.append(f[step] if 0 <= step < t else np.zeros(f.shape[1]))
            continue
        total = np.zeros(f.shape[1])
        for i in range(t):
            total += max(0.0, min(hi, i + 1) - max(lo, i)) * f[i]
        out.append(total / (hi - lo))
    return np.stack(out)


def test_soi_pool_against_direct_sums():
    rng = np.random.default_rng(5)
    f = rng.normal(size=(2, 10, 3)).astype(np.float32) * 10 + 50  # large prefix sums
    segs = np.array([[[1.3, 7.9], [-3.0, 4.0], [6.5, 14.0], [4.2, 4.6]],
                     [[4.9, 5.1], [0.0, 10.0], [2.5, 2.5], [-6.0, -1.0]]], np.float32)
    got = np.asarray(jax.jit(soi_pool, static_argnames="bins")(f, segs, bins=4))
    want = np.stack([np.stack([_direct_pool(f[i], segs[i, k], 4) for k in range(4)])
                     for i in range(2)])
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-3)


SINGLE = dict(TINY, streams=("rgb",))


def test_late_fusion_is_the_mean_of_single_stream_networks(created):
    _, variables, x, _, out = created
    single = TALNet(**SINGLE)  # one network; the flow network is run under its name
    assert single.trace_input.shape == (1, talnet.TRACE_LENGTH, TINY["feature_dim"])
    f = TINY["feature_dim"]
    props = out["proposals"]  # the two-stream model's own selection (padding included)
    run = jax.jit(single.apply)
    rgb = run({"params": {"rgb": variables["params"]["rgb"]}}, x[..., :f], props)
    flow = run({"params": {"rgb": variables["params"]["flow"]}}, x[..., f:], props)
    for key in ("proposal_logits", "proposal_deltas", "class_logits", "refine_deltas"):
        np.testing.assert_allclose(out[key], (np.asarray(rgb[key]) + np.asarray(flow[key])) / 2,
                                   rtol=1e-5, atol=1e-6)
    # The two streams differ, so the mean is not either one.
    assert not np.allclose(rgb["class_logits"], flow["class_logits"], atol=1e-3)
    np.testing.assert_array_equal(rgb["proposals"], props)
    assert np.asarray(rgb["proposal_valid"]).all()


def test_detections_in_seconds():
    t = 14
    proposals = np.array([[[2, 6], [2.5, 6.5], [10, 14], [0, 0]]], np.float32)
    # p0 moves right by a quarter of its length: [3, 7]; p2 doubles: [8, 16],
    # clipped to the sequence's 14 steps.
    refine = np.array([[[0.25, 0], [0, 0], [0, math.log(2)], [0, 0]]], np.float32)
    # Softmax (background, jump, run): p0 .1 .6 .3; p1 .1 .5 .4; p2 .1 .1 .8;
    # p3 is padding (invalid) whatever its logits say.
    probs = np.array([[[1, 6, 3], [1, 5, 4], [1, 1, 8], [1, 100, 1]]], np.float64) / 10
    outputs = {"proposal_logits": np.zeros((1, t, 1), np.float32), "proposals": proposals,
               "refine_deltas": refine, "class_logits": np.log(probs).astype(np.float32),
               "proposal_valid": np.array([[True, True, True, False]])}
    # [3, 7] and [2.5, 6.5] overlap at tIoU 3.5 / 4.5 = .78 > .5: per class
    # the lower one goes (jump: p1; run: p0 under p1); p2's jump score .1 is
    # under the threshold. At 2 steps per second: step x is x / 2 seconds.
    found = detections(outputs, 2.0, class_names=("jump", "run"), score_threshold=0.2,
                       nms_iou=0.5)
    want = [(4.0, 7.0, "run", 0.8), (1.5, 3.5, "jump", 0.6), (1.25, 3.25, "run", 0.4)]
    assert len(found) == 1 and len(found[0]) == 3
    for got, exp in zip(found[0], want):
        assert got[2] == exp[2]
        np.testing.assert_allclose(got[:2] + got[3:], exp[:2] + exp[3:], rtol=1e-5)
    top = detections(outputs, 2.0, score_threshold=0.2, nms_iou=0.5, max_detections=2)[0]
    assert [d[2] for d in top] == [1, 0]
    with pytest.raises(ValueError, match="class_names"):
        detections(outputs, 2.0, class_names=("jump",))


def test_errors(created):
    model, variables, _, _, _ = created
    with pytest.raises(ValueError, match=r"expected 8 = feature_dim 4 x 2 stream.*feature_dim="):
        model.apply(variables, jnp.zeros((1, T, 6)))
    with pytest.raises(ValueError, match="shorter than the smallest anchor scale 2"):
        model.apply(variables, jnp.zeros((1, 1, 8)))
    with pytest.raises(ValueError, match=r"proposals must be \(B, K, 2\)"):
        model.apply(variables, jnp.zeros((1, T, 8)), jnp.zeros((1, 3)))
    with pytest.raises(ValueError, match="batch axis"):
        model.apply(variables, jnp.zeros((T, 8)))
    with pytest.raises(ValueError, match="fusion='mid'"):
        zoo.create("talnet", **TINY, fusion="mid")
    with pytest.raises(ValueError, match="scales"):
        TALNet(**dict(TINY, scales=(4, 2)))
    with pytest.raises(ValueError, match="towers='x'") as error:
        TALNet(towers="x")
    assert "\n" not in str(error.value)


def test_jit_and_export(created):
    # The fixture exported the jitted apply (NMS included) and ran the
    # deserialised artefact; here: its signature is fully static.
    model, variables, x, exported, out = created
    assert exported.platforms == ("cpu",)
    assert all(isinstance(d, int) for a in exported.in_avals + exported.out_avals
               for d in a.shape)
    assert [a.shape for a in exported.out_avals] == [
        v.shape for v in jax.tree_util.tree_leaves(out)]
