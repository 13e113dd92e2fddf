"""TAL-Net: temporal action localisation on feature sequences (Chao et al.,
"Rethinking the Faster R-CNN Architecture for Temporal Action Localization",
CVPR 2018, arXiv 1804.07667).

Faster R-CNN in one dimension, on precomputed per-step video features (e.g.
I3D, 1024 per stream): a proposal network scores an anchor segment of every
scale at every time step and regresses its centre and length; the top
proposals after NMS are pooled (SoI pooling, a 1D RoI pooling) and
classified into ``num_classes`` actions + background with a class-agnostic
refinement of their boundaries. The paper's three changes to Faster R-CNN:

1. receptive-field alignment: one tower per anchor scale s, a max-pool and
   two kernel-3 convolutions dilated by r1 = s/6 and r2 = 2 s/6, so the
   tower sees about as far as its anchor is long;
2. context: the proposal towers double their dilations (about s/2 more on
   each side) and the classifier pools the proposal extended by half its
   length on each side;
3. late fusion: one whole network per stream (RGB, optical flow) whose
   proposal logits and class logits are averaged (``fusion="early"``
   concatenates the streams' features and runs one network instead).

Proposal network (per stream). Input (B, T, F); anchors at every step t,
one per scale s, centred at t + 0.5 with length s (feature steps).

    part            layer                                           width   notes
    tower (per s)   max-pool, kernel k_p, stride 1                  F       k_p = r1, made odd (chosen here)
                    conv k3, dilation r1, ReLU                      H       r1 = round(m s / 6), m = 2 with context
                    conv k3, dilation r2 = 2 r1, ReLU               H
                    conv k1 -> score logit, (dc, dl)                3       one anchor per tower
    towers=single   conv k3, conv k3 (dilation 1, ReLU), conv k1    H, 3A   Faster R-CNN's shared head
    selection       sigmoid score, decode, clip to [0, T];                  fixed K: static shapes
                    NMS at tIoU 0.7 over all T x A anchors, first K = 100

Tower geometry at the default scales (receptive field = k_p + 2 r1 + 2 r2,
in feature steps; ``tower_geometry`` computes it):

    scale s            2    4    8   16   32   64  128  256
    context:  r1       1    1    3    5   11   21   43   85
              RF       7    7   21   35   77  147  301  595
    no context: r1     1    1    1    3    5   11   21   43
              RF       7    7    7   21   35   77  147  301

Two kernel-3 convolutions dilated r1 and 2 r1 see 6 r1 + 1 steps (s + 1,
or 2 s + 1 with context); the pool before them (its kernel made odd so the
window is centred) adds k_p - 1. The smallest tower (r1 = 1, r2 = 2, no
pool) sees 7 steps, so the scales below 7 see more than their length.
``dilation=False`` keeps the multi-tower layout with r1 = r2 = 1 and no pool.

Classifier (per stream), on the proposals (B, K, 2):

    part            layer                                           width   notes
    base            conv k1, ReLU                                   H
    SoI pooling     P bins over the window, each the mean of the    P x H   window = proposal extended by
                    features over its span                                  l/2 each side (context), else
                                                                            the proposal
    fc1, fc2        dense, ReLU, dropout 0.5 in training            1024
    cls             dense -> C + 1 logits                           C + 1   index 0 = background
    refine          dense -> (dc, dl) of the proposal               2       class-agnostic

Box coding (Faster R-CNN's, in 1D): deltas ((c - c_a) / l_a, log(l / l_a))
of a segment of centre c and length l against an anchor (or proposal)
c_a, l_a. SoI pooling treats step i's feature as constant over [i, i + 1)
and zero outside the sequence; a bin's value is the exact mean over its
span, computed from a prefix sum with a gather per bin edge (no K x T
masks). Anchor labels for the proposal loss: ``match`` (tIoU >= 0.7
positive, < 0.3 negative, as Faster R-CNN's RPN, plus each ground truth's
best anchor).

Hyper-parameters the paper's text does not fix were chosen here for
features at a few steps per second (I3D features at 25 fps with a
16-frame stride are 1.56 per second): scales 2..256 steps (about 1.3 s
to 2.7 min at 1.56/s), H = 256, fc width 1024, P = 16 bins, K = 100
proposals. All are options of the ``talnet`` builder. Faster R-CNN keeps
only the best-scoring anchors before its NMS; here the NMS runs over all of
them (K passes over T x A candidates, cheap at these sizes), which avoids
``lax.top_k``: the TFLite converter cannot read its StableHLO op.

Apply: ``model.apply(variables, features)`` with features (B, T, F x
streams), each stream's F channels in ``streams`` order (RGB first, then
flow) -> dict of arrays: ``proposal_logits`` (B, T, A), ``proposal_deltas``
(B, T, A, 2), ``proposals`` (B, K, 2) in feature steps, ``proposal_scores``
(B, K) (0 where padded), ``proposal_valid`` (B, K), ``class_logits`` (B, K,
C + 1), ``refine_deltas`` (B, K, 2). In training pass the sampled
``proposals=`` (B, K', 2): the classifier runs on them instead, and the
proposal outputs are returned as well for the proposal loss.
``detections`` turns the outputs into (start s, end s, class, score) lists.
"""

from __future__ import annotations

import functools
import math
from typing import Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from zoo.layers import ChecksConventions, ConvSettings, Dense, conv_init, dense_init

SCALES = (2, 4, 8, 16, 32, 64, 128, 256)  # anchor lengths in feature steps
DEFAULT_LENGTH = 512  # the spec's input_size: feature steps per sequence
FEATURE_DIM = 1024  # per stream: I3D's pooled Mixed_5c features
TRACE_LENGTH = 32  # parameter shapes do not depend on T: trace short sequences
# Faster R-CNN's cap on a decoded log length ratio (Detectron's
# bbox_xform_clip = log(1000 / 16)), so exp() cannot overflow early in training.
MAX_LOG_SCALE = math.log(1000.0 / 16.0)

# Published results (Chao et al., CVPR 2018, arXiv 1804.07667): TAL-Net
# with I3D features, late fusion. (name, value) pairs as in
# zoo.registry.Published.metrics; mAP in %, higher is better.
PUBLISHED_SOURCE = ("Chao et al., Rethinking the Faster R-CNN Architecture for Temporal Action "
                    "Localization, CVPR 2018 (arXiv 1804.07667), THUMOS'14 and ActivityNet "
                    "v1.3 result tables")
PUBLISHED_METRICS = (
    ("THUMOS'14 mAP@tIoU0.1 % (higher is better)", 59.8),
    ("THUMOS'14 mAP@tIoU0.2 % (higher is better)", 57.1),
    ("THUMOS'14 mAP@tIoU0.3 % (higher is better)", 53.2),
    ("THUMOS'14 mAP@tIoU0.4 % (higher is better)", 48.5),
    ("THUMOS'14 mAP@tIoU0.5 % (higher is better)", 42.8),
    ("THUMOS'14 mAP@tIoU0.6 % (higher is better)", 33.8),
    ("THUMOS'14 mAP@tIoU0.7 % (higher is better)", 20.8),
    ("ActivityNet v1.3 mAP@tIoU0.5 % (higher is better)", 38.23),
    ("ActivityNet v1.3 average mAP@tIoU0.5:0.95 % (higher is better)", 20.22),
)


# ----------------------------------------------------------- segment coding


def anchors(length: int, scales: Sequence[float] = SCALES) -> np.ndarray:
    """Anchor segments (length, A, 2) as (start, end) in feature steps: at
    every step t one per scale s, centred at t + 0.5 (step t covers
    [t, t + 1)). ``.reshape(-1, 2)`` orders them as the model's
    ``proposal_logits.reshape(B, -1)``.

    Args:
        length: the sequence length T in feature steps.
        scales: anchor lengths in feature steps, A of them.

    Returns:
        A float32 NumPy array (T, A, 2); segments may reach outside [0, T].
    """
    centres = np.arange(length, dtype=np.float32)[:, None] + 0.5
    half = np.asarray(scales, np.float32)[None, :] / 2
    return np.stack(np.broadcast_arrays(centres - half, centres + half), axis=-1)


def encode(segments, anchors):
    """Regression targets of ``segments`` against ``anchors`` (both (..., 2)
    as start, end; broadcast): ((c - c_a) / l_a, log(l / l_a)). Lengths
    must be positive (a zero length is taken as 1e-6).

    Args:
        segments: (..., 2) (start, end) in feature steps.
        anchors: (..., 2) (start, end), broadcastable against ``segments``.

    Returns:
        (..., 2) float32 deltas (centre offset in anchor lengths, log
        length ratio).
    """
    segments = jnp.asarray(segments, jnp.float32)
    anchors = jnp.asarray(anchors, jnp.float32)
    c, l = _centre_length(segments)
    ca, la = _centre_length(anchors)
    return jnp.stack([(c - ca) / la, jnp.log(l / la)], axis=-1)


def decode(deltas, anchors):
    """The segments (..., 2) that ``deltas`` (..., 2) encode against
    ``anchors`` (..., 2); the inverse of ``encode`` (log length ratios
    above log(1000/16) are capped, as in Faster R-CNN).

    Args:
        deltas: (..., 2) (centre offset in anchor lengths, log length ratio).
        anchors: (..., 2) (start, end) in feature steps, broadcastable.

    Returns:
        (..., 2) float32 segments (start, end), not clipped.
    """
    deltas = jnp.asarray(deltas, jnp.float32)
    ca, la = _centre_length(jnp.asarray(anchors, jnp.float32))
    c = ca + deltas[..., 0] * la
    l = la * jnp.exp(jnp.minimum(deltas[..., 1], MAX_LOG_SCALE))
    return jnp.stack([c - l / 2, c + l / 2], axis=-1)


def _centre_length(segments):
    length = jnp.maximum(segments[..., 1] - segments[..., 0], 1e-6)
    return (segments[..., 0] + segments[..., 1]) / 2, length


def tiou_matrix(a, b):
    """Temporal IoU of every segment of ``a`` (..., N, 2) with every segment
    of ``b`` (..., M, 2): (..., N, M). Segments with no length have IoU 0.

    Args:
        a: (..., N, 2) segments (start, end).
        b: (..., M, 2) segments (start, end), leading axes broadcastable.

    Returns:
        (..., N, M) float32 intersection over union, in [0, 1].
    """
    a = jnp.asarray(a, jnp.float32)
    b = jnp.asarray(b, jnp.float32)
    start = jnp.maximum(a[..., :, None, 0], b[..., None, :, 0])
    end = jnp.minimum(a[..., :, None, 1], b[..., None, :, 1])
    inter = jnp.maximum(end - start, 0.0)
    la = jnp.maximum(a[..., 1] - a[..., 0], 0.0)
    lb = jnp.maximum(b[..., 1] - b[..., 0], 0.0)
    union = la[..., :, None] + lb[..., None, :] - inter
    return jnp.where(union > 0, inter / jnp.where(union > 0, union, 1.0), 0.0)


def _tiou_one(segment, segments):
    return tiou_matrix(segment[None], segments)[0]


# ------------------------------------------------------------------- NMS


def nms(segments, scores, iou_threshold: float, max_output: int):
    """Greedy non-maximum suppression with a fixed output size (jit-able).

    ``segments`` (N, 2), ``scores`` (N,); a candidate with score -inf or NaN
    takes no part. Repeatedly keeps the highest remaining score (the lowest
    index among equal scores) and drops every remaining segment whose tIoU
    with it exceeds ``iou_threshold``. Returns ``(indices, kept_scores)``,
    both (max_output,): indices into the input and their scores, in the
    order kept, padded with index 0 and score -inf (``jnp.isfinite`` gives
    the valid mask). Costs max_output passes over N, no N x N matrix.

    Args:
        segments: (N, 2) candidate segments (start, end).
        scores: (N,) their scores.
        iou_threshold: tIoU above which a segment is suppressed by a kept one.
        max_output: how many to keep (static: the output size).

    Returns:
        ``(indices, kept_scores)``: int32 (max_output,) and float32
        (max_output,).
    """
    segments = jnp.asarray(segments, jnp.float32)
    scores = jnp.asarray(scores, jnp.float32)
    live = jnp.where(jnp.isnan(scores), -jnp.inf, scores)

    def body(i, state):
        live, indices, kept = state
        j = jnp.argmax(live)
        best = live[j]
        ok = best > -jnp.inf
        drop = _tiou_one(segments[j], segments) > iou_threshold
        live = jnp.where(ok & drop, -jnp.inf, live).at[j].set(-jnp.inf)
        return live, indices.at[i].set(jnp.where(ok, j, 0)), kept.at[i].set(best)

    init = (live, jnp.zeros((max_output,), jnp.int32),
            jnp.full((max_output,), -jnp.inf, jnp.float32))
    _, indices, kept = lax.fori_loop(0, max_output, body, init)
    return indices, kept


def soft_nms(segments, scores, max_output: int, sigma: float = 0.5,
             score_threshold: float = 1e-3):
    """Gaussian soft-NMS (Bodla et al., ICCV 2017) with a fixed output size.

    Repeatedly keeps the highest remaining score and multiplies every other
    remaining score by exp(-tIoU^2 / sigma); scores that fall below
    ``score_threshold`` drop out. Scores must be non-negative (probabilities).
    Returns ``(indices, kept_scores)`` as ``nms`` does, the scores being
    the decayed ones at the time each segment was kept.

    Args:
        segments: (N, 2) candidate segments (start, end).
        scores: (N,) non-negative scores; NaN takes no part.
        max_output: how many to keep (static: the output size).
        sigma: the Gaussian decay's width (Bodla et al.'s default 0.5).
        score_threshold: scores below it are dropped.

    Returns:
        ``(indices, kept_scores)``: int32 (max_output,) and float32
        (max_output,), padded with index 0 and score -inf.
    """
    segments = jnp.asarray(segments, jnp.float32)
    scores = jnp.asarray(scores, jnp.float32)
    live = jnp.where(jnp.isnan(scores) | (scores < score_threshold), -jnp.inf, scores)

    def body(i, state):
        live, indices, kept = state
        j = jnp.argmax(live)
        best = live[j]
        ok = best > -jnp.inf
        decayed = live * jnp.exp(-jnp.square(_tiou_one(segments[j], segments)) / sigma)
        decayed = jnp.where(decayed < score_threshold, -jnp.inf, decayed)
        live = jnp.where(ok, decayed, live).at[j].set(-jnp.inf)
        return live, indices.at[i].set(jnp.where(ok, j, 0)), kept.at[i].set(best)

    init = (live, jnp.zeros((max_output,), jnp.int32),
            jnp.full((max_output,), -jnp.inf, jnp.float32))
    _, indices, kept = lax.fori_loop(0, max_output, body, init)
    return indices, kept


# ------------------------------------------------------------- matching


def match(anchors, gt_segments, gt_valid, pos_iou: float = 0.7, neg_iou: float = 0.3):
    """Labels and regression targets of anchors for the proposal loss
    (Faster R-CNN's RPN rule, jit-able; ``jax.vmap`` it over a batch).

    ``anchors`` (..., 2), e.g. ``anchors(T, scales)``; ``gt_segments``
    (G, 2) and ``gt_valid`` (G,) bool, padded to a fixed G >= 1. An anchor
    whose best tIoU with a valid ground truth is >= ``pos_iou`` is positive
    (label 1), below ``neg_iou`` negative (0), in between ignored (-1); each
    valid ground truth's best anchor (the first on ties, if it overlaps at
    all) is positive too, matched to it. Returns ``(labels, targets,
    matched)`` shaped like the anchors' leading axes: int32 labels,
    ``encode`` targets (zero unless positive), int32 index of the matched
    ground truth.

    Args:
        anchors: (..., 2) anchor segments in feature steps.
        gt_segments: (G, 2) ground-truth segments (start, end).
        gt_valid: (G,) bool, False for padding rows.
        pos_iou: tIoU at or above which an anchor is positive.
        neg_iou: tIoU below which an anchor is negative.

    Returns:
        ``(labels, targets, matched)``: labels (...) int32 in {1, 0, -1},
        targets (..., 2) float32, matched (...) int32 indices into
        ``gt_segments``.

    Raises:
        ValueError: if ``gt_segments`` is not (G, 2) with G >= 1, or
            ``gt_valid`` is not (G,).
    """
    gt_segments = jnp.asarray(gt_segments, jnp.float32)
    gt_valid = jnp.asarray(gt_valid, bool)
    if gt_segments.ndim != 2 or gt_segments.shape[-1] != 2 or gt_segments.shape[0] < 1:
        raise ValueError(f"match: gt_segments must be (G, 2) with G >= 1, got shape "
                         f"{tuple(gt_segments.shape)}; pad with rows whose gt_valid is False")
    if gt_valid.shape != gt_segments.shape[:1]:
        raise ValueError(f"match: gt_valid has shape {tuple(gt_valid.shape)}, expected "
                         f"({gt_segments.shape[0]},), one flag per ground-truth segment")
    anchors = jnp.asarray(anchors, jnp.float32)
    lead = anchors.shape[:-1]
    flat = anchors.reshape(-1, 2)
    iou = jnp.where(gt_valid[None, :], tiou_matrix(flat, gt_segments), -1.0)  # (N, G)
    best_gt = jnp.argmax(iou, axis=1)
    best_iou = jnp.max(iou, axis=1)
    labels = jnp.where(best_iou >= pos_iou, 1, jnp.where(best_iou < neg_iou, 0, -1))
    # Each ground truth's best anchor, so that no action is left without one.
    best_anchor = jnp.argmax(iou, axis=0)  # (G,)
    overlaps = gt_valid & (jnp.max(iou, axis=0) > 0)
    is_best = (jnp.arange(flat.shape[0])[:, None] == best_anchor[None, :]) & overlaps[None, :]
    forced = jnp.any(is_best, axis=1)
    forced_gt = jnp.argmax(jnp.where(is_best, iou, -2.0), axis=1)
    matched = jnp.where(forced, forced_gt, best_gt).astype(jnp.int32)
    labels = jnp.where(forced, 1, labels).astype(jnp.int32)
    targets = encode(gt_segments[matched], flat) * (labels == 1)[:, None]
    return labels.reshape(lead), targets.reshape(lead + (2,)), matched.reshape(lead)


# ---------------------------------------------------------- SoI pooling


def soi_pool(features, segments, bins: int):
    """SoI pooling: ``features`` (B, T, H) over ``segments`` (B, K, 2) in
    feature steps -> (B, K, bins, H), float32.

    Each segment is cut into ``bins`` equal bins; a bin's value is the mean
    of the features over its span, step i's feature counting as constant
    over [i, i + 1) and zero outside [0, T) (context windows may reach past
    the ends). Exact for any span, from a prefix sum and one gather per bin
    edge: memory (B, K, bins, H), no (K, T) masks. A segment with no length
    gives the feature at its start.

    Args:
        features: (B, T, H) per-step features.
        segments: (B, K, 2) (start, end) in feature steps.
        bins: the number of equal bins P per segment.

    Returns:
        (B, K, bins, H) float32 bin means.
    """
    features = jnp.asarray(features, jnp.float32)
    segments = jnp.asarray(segments, jnp.float32)
    b, t, h = features.shape
    k = segments.shape[1]
    zero = jnp.zeros((b, 1, h), jnp.float32)
    padded = jnp.concatenate([zero, features, zero], axis=1)  # padded[j] = step j - 1
    prefix = jnp.concatenate([zero, jnp.cumsum(padded, axis=1)], axis=1)  # sum of padded[:j]
    start, end = segments[..., 0], segments[..., 1]
    steps = jnp.arange(bins + 1, dtype=jnp.float32) / bins
    edges = start[..., None] + (end - start)[..., None] * steps  # (B, K, bins + 1)
    x = jnp.clip(edges + 1.0, 0.0, t + 1.0)  # padded coordinates; outside is zero anyway
    i = jnp.floor(x).astype(jnp.int32)  # 0 .. T + 1

    def take(table, index):
        got = jnp.take_along_axis(table, index.reshape(b, -1, 1), axis=1)
        return got.reshape(b, k, bins + 1, h)

    f_i, c_i, c_next = take(padded, i), take(prefix, i), take(prefix, i + 1)
    ia, ib = i[..., :-1], i[..., 1:]
    xa, xb = x[..., :-1, None], x[..., 1:, None]
    # A bin across step boundaries: the whole steps strictly inside it from
    # the prefix sum, the partial steps at its two ends directly. Both terms
    # avoid differencing large prefix sums over a span shorter than a step.
    across = (c_i[:, :, 1:] - c_next[:, :, :-1]
              + (ia[..., None] + 1 - xa) * f_i[:, :, :-1] + (xb - ib[..., None]) * f_i[:, :, 1:])
    within = (xb - xa) * f_i[:, :, :-1]
    total = jnp.where((ib > ia)[..., None], across, within)
    width = ((end - start) / bins)[..., None, None]
    return jnp.where(width > 0, total / jnp.where(width > 0, width, 1.0), f_i[:, :, :-1])


def context_window(segments):
    """``segments`` (..., 2) extended by half their length on each side (the
    classifier's context window).

    Args:
        segments: (..., 2) (start, end).

    Returns:
        (..., 2) float32 windows twice as long, same centres.
    """
    segments = jnp.asarray(segments, jnp.float32)
    half = (segments[..., 1] - segments[..., 0]) / 2
    return jnp.stack([segments[..., 0] - half, segments[..., 1] + half], axis=-1)


# --------------------------------------------------------------- layers


def tower_geometry(scale: float, *, dilation: bool = True,
                   context: bool = True) -> tuple[int, int, int]:
    """(max-pool kernel, r1, r2) of the proposal tower for anchor ``scale``:
    r1 = round(m * scale / 6) (at least 1), m = 2 with context, r2 = 2 r1,
    the pool kernel r1 made odd; ``dilation=False`` gives (1, 1, 1). The
    tower's receptive field is pool + 2 r1 + 2 r2 steps.

    Args:
        scale: the anchor length in feature steps.
        dilation: dilate the tower to its scale.
        context: double the dilations (m = 2).

    Returns:
        ``(pool, r1, r2)``, e.g. ``tower_geometry(32) == (11, 11, 22)``.
    """
    if not dilation:
        return 1, 1, 1
    r1 = max(1, int((2 if context else 1) * scale / 6 + 0.5))
    return (r1 if r1 % 2 else r1 + 1), r1, 2 * r1


class TemporalConv(nn.Module):
    """Kernel-k convolution over time with bias, on (B, T, 1, C): the time
    axis is NHWC's H, so TFLite gets a plain (dilated) CONV_2D.

    ``__call__(x)``: ``x`` (B, T, 1, C) -> (B, T, 1, ``features``), zero
    padding keeping T (odd kernels).

    Attributes:
        features: output channels.
        kernel: taps over time.
        dilation: spacing of the taps in steps.
        init: the kernel's initialiser (``conv_init``; ``dense_init`` for
            the towers' output heads).
    """

    features: int
    kernel: int = 3
    dilation: int = 1
    init: object = conv_init

    @nn.compact
    def __call__(self, x):
        w = self.param("kernel", self.init, (self.kernel, 1, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        pad = self.dilation * (self.kernel - 1) // 2
        y = lax.conv_general_dilated(x, w.astype(x.dtype), (1, 1), ((pad, pad), (0, 0)),
                                     rhs_dilation=(self.dilation, 1),
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return y + bias.astype(y.dtype)

    def macs(self, x, out) -> int:
        """Multiply-adds, read by zoo.counting.

        Args:
            x: the layer's input (B, T, 1, C).
            out: the layer's output (B, T, 1, features).

        Returns:
            T x kernel x C x features (per sequence).
        """
        return out.shape[1] * out.shape[2] * self.kernel * x.shape[-1] * self.features


def _max_pool(x, kernel: int):
    """Stride-1 max over ``kernel`` (odd) time steps of (B, T, 1, C), the
    window centred, edges padded with -inf."""
    if kernel == 1:
        return x
    pad = kernel // 2
    return lax.reduce_window(x, jnp.array(-jnp.inf, x.dtype), lax.max, (1, kernel, 1, 1),
                             (1, 1, 1, 1), ((0, 0), (pad, pad), (0, 0), (0, 0)))


class Tower(nn.Module):
    """Max-pool, two kernel-3 convolutions (ReLU), kernel-1 head.

    ``__call__(x)``: ``x`` (B, T, 1, F) -> (B, T, 1, ``outputs``). Layers
    ``conv1``, ``conv2``, ``head``.

    Attributes:
        hidden: width of the two convolutions.
        outputs: head outputs (3 per anchor: score logit, dc, dl).
        pool: max-pool kernel (odd; 1 for none), stride 1.
        r1: dilation of the first convolution.
        r2: dilation of the second.
    """

    hidden: int
    outputs: int
    pool: int = 1
    r1: int = 1
    r2: int = 1

    @nn.compact
    def __call__(self, x):
        y = _max_pool(x, self.pool)
        y = jax.nn.relu(TemporalConv(self.hidden, 3, self.r1, name="conv1")(y))
        y = jax.nn.relu(TemporalConv(self.hidden, 3, self.r2, name="conv2")(y))
        return TemporalConv(self.outputs, 1, init=dense_init, name="head")(y)


class ProposalNet(nn.Module):
    """Anchor scores and deltas of one stream: (B, T, 1, F) -> logits
    (B, T, A) and deltas (B, T, A, 2), float32.

    Attributes:
        scales: anchor lengths in feature steps (A of them).
        towers: "multi" (one ``Tower`` per scale) or "single" (one shared).
        dilation: dilate the multi towers to their scales.
        context: double the towers' dilations.
        hidden: tower width.
    """

    scales: tuple[int, ...]
    towers: str = "multi"
    dilation: bool = True
    context: bool = True
    hidden: int = 256

    @nn.compact
    def __call__(self, x):
        a = len(self.scales)
        if self.towers == "single":
            out = Tower(self.hidden, 3 * a, name="tower")(x)[:, :, 0, :]
            out = out.reshape(out.shape[:2] + (a, 3))
        else:
            outs = []
            for i, s in enumerate(self.scales):
                pool, r1, r2 = tower_geometry(s, dilation=self.dilation, context=self.context)
                outs.append(Tower(self.hidden, 3, pool, r1, r2, name=f"tower_{i}")(x)[:, :, 0, :])
            out = jnp.stack(outs, axis=2)  # (B, T, A, 3)
        out = out.astype(jnp.float32)
        return out[..., 0], out[..., 1:]


class Classifier(nn.Module):
    """SoI pooling and the classifier of one stream: (B, T, 1, F) and
    proposals (B, K, 2) -> class logits (B, K, C + 1), refinement deltas
    (B, K, 2), float32.

    ``__call__(x, proposals, train=False)``; ``train=True`` applies dropout
    (pass ``rngs={"dropout": key}``).

    Attributes:
        num_classes: action classes C (background comes on top).
        hidden: width of the base conv.
        fc_width: width of fc1 and fc2.
        pooled: SoI pooling bins P.
        context: pool the proposal's context window, not the proposal.
        dropout: dropout rate after fc1 and fc2, in training.
    """

    num_classes: int
    hidden: int = 256
    fc_width: int = 1024
    pooled: int = 16
    context: bool = True
    dropout: float = 0.5

    @nn.compact
    def __call__(self, x, proposals, train: bool = False):
        base = jax.nn.relu(TemporalConv(self.hidden, 1, name="base")(x))[:, :, 0, :]
        window = context_window(proposals) if self.context else proposals
        pooled = soi_pool(base, window, self.pooled).astype(x.dtype)
        h = pooled.reshape(pooled.shape[:2] + (-1,))
        for name in ("fc1", "fc2"):
            h = jax.nn.relu(Dense(self.fc_width, name=name)(h))
            h = nn.Dropout(self.dropout, deterministic=not train)(h)
        logits = Dense(self.num_classes + 1, name="cls")(h)
        refine = Dense(2, name="refine")(h)
        return logits.astype(jnp.float32), refine.astype(jnp.float32)


class StreamNet(nn.Module):
    """One whole TAL-Net (proposal network and classifier) on one input.

    Attributes:
        num_classes: action classes C.
        scales: anchor lengths in feature steps.
        towers: "multi" or "single".
        dilation: dilate the multi towers to their scales.
        context: context in the towers and the classifier's pooling.
        hidden: tower and classifier-base width.
        fc_width: classifier FC width.
        pooled: SoI pooling bins.
        dropout: classifier dropout, in training.
    """

    num_classes: int
    scales: tuple[int, ...]
    towers: str
    dilation: bool
    context: bool
    hidden: int
    fc_width: int
    pooled: int
    dropout: float

    def setup(self):
        """Declare the submodules ``proposal`` and ``classifier`` (Flax calls it)."""
        self.proposal = ProposalNet(self.scales, self.towers, self.dilation, self.context,
                                    self.hidden)
        self.classifier = Classifier(self.num_classes, self.hidden, self.fc_width, self.pooled,
                                     self.context, self.dropout)

    def propose(self, x):
        """Run the proposal network.

        Args:
            x: (B, T, 1, F) features of this stream.

        Returns:
            ``(logits (B, T, A), deltas (B, T, A, 2))``, float32.
        """
        return self.proposal(x)

    def classify(self, x, proposals, train: bool = False):
        """Run the classifier on given proposals.

        Args:
            x: (B, T, 1, F) features of this stream.
            proposals: (B, K, 2) segments in feature steps.
            train: apply dropout.

        Returns:
            ``(class_logits (B, K, C + 1), refine_deltas (B, K, 2))``, float32.
        """
        return self.classifier(x, proposals, train)


# ---------------------------------------------------------------- model


class TALNet(ChecksConventions):
    """TAL-Net (see the module docstring for the architecture).

    ``__call__(features, proposals=None, train=False)``: ``features`` (B, T,
    feature_dim x len(streams)) float, T >= the smallest anchor scale ->
    dict of float32 arrays (``proposal_logits``, ``proposal_deltas``,
    ``proposals``, ``proposal_scores``, ``proposal_valid``,
    ``class_logits``, ``refine_deltas``). Without ``proposals`` the
    classifier runs on the top ``num_proposals`` after NMS (K fixed, padded
    entries have ``proposal_valid`` False, score 0 and segment (0, 0));
    with ``proposals`` (B, K', 2) it runs on those (``proposal_valid`` True,
    scores 1). ``train=True`` applies dropout in the classifier (pass
    ``rngs={"dropout": key}``).

    Variables: one subtree per stream (``rgb``, ``flow``; ``fused`` for
    early fusion), each ``proposal/tower_<i>/{conv1,conv2,head}`` (or
    ``proposal/tower`` for a single tower) and
    ``classifier/{base,fc1,fc2,cls,refine}``. A single-stream model's
    variables are the matching subtree of a late-fusion model's.

    Attributes:
        feature_dim: channels per stream F.
        streams: stream names in the order of the feature axis, e.g.
            ``("rgb", "flow")``; a single string is taken as one stream.
        fusion: "late" (one network per stream, outputs averaged) or
            "early" (one network on the concatenated features).
        towers: "multi" (one proposal tower per scale) or "single".
        dilation: dilate the multi towers to their scales (else r1 = r2 =
            1, no pool).
        context: doubled tower dilations, and the classifier pools the
            proposal extended by half its length on each side.
        scales: increasing anchor lengths in feature steps.
        hidden: tower and classifier-base width H.
        fc_width: classifier FC width.
        pooled: SoI pooling bins P.
        num_proposals: K, proposals classified per sequence.
        proposal_nms_iou: tIoU threshold of the proposal NMS.
        dropout: classifier dropout rate, in training.
        num_classes: action classes C (background excluded).
        include_top: must be True.
        features_only: must be False.
        settings: compute dtype (the other settings do not apply).
        model_name: the registry name, used in error messages.

    Raises:
        ValueError: on construction, for an option outside its range
            (unknown ``fusion``/``towers``, repeated or empty ``streams``,
            scales not increasing positive, non-positive sizes,
            ``proposal_nms_iou`` outside [0, 1], ``dropout`` outside [0, 1),
            ``features_only=True`` or ``include_top=False``); when called,
            for features that are not (B, T, feature_dim x streams) float
            with T at least the smallest scale, or proposals not (B, K, 2).

    Example:
        ::

            model, variables = zoo.create("talnet")
            outputs = model.apply(variables, features)   # (B, T, 2048): RGB, flow
            found = detections(outputs, feature_rate=25 / 16)
    """

    feature_dim: int = FEATURE_DIM  # channels per stream
    streams: tuple[str, ...] = ("rgb", "flow")  # their order in the feature axis
    fusion: str = "late"  # "late": one network per stream, outputs averaged; "early": one on all
    towers: str = "multi"  # "multi": one tower per anchor scale; "single": one shared tower
    dilation: bool = True  # multi towers dilated to their scale (else r1 = r2 = 1, no pool)
    context: bool = True  # doubled tower dilations; classifier pools the extended proposal
    scales: tuple[int, ...] = SCALES  # anchor lengths in feature steps
    hidden: int = 256  # tower and classifier-base width
    fc_width: int = 1024  # classifier fully connected width
    pooled: int = 16  # SoI pooling bins
    num_proposals: int = 100  # K, proposals classified per sequence
    proposal_nms_iou: float = 0.7
    dropout: float = 0.5  # classifier, training only
    num_classes: int = 20
    include_top: bool = True
    features_only: bool = False
    settings: ConvSettings = ConvSettings()
    model_name: str = "talnet"

    def __post_init__(self):
        name = self.model_name
        if self.features_only or not self.include_top:
            what = "features_only=True" if self.features_only else "include_top=False"
            raise ValueError(f"{name}: {what} does not apply to an action localiser; it "
                             "takes features already (pass them as they are)")
        streams = (self.streams,) if isinstance(self.streams, str) else tuple(self.streams)
        object.__setattr__(self, "streams", streams)
        if not streams or len(set(streams)) != len(streams) or not all(
                isinstance(s, str) and s for s in streams):
            raise ValueError(f"{name}: streams={streams!r}; give distinct names in the order of "
                             "the feature channels, e.g. ('rgb', 'flow') or ('rgb',)")
        choices = {"fusion": ("late", "early"), "towers": ("multi", "single")}
        for option, allowed in choices.items():
            if getattr(self, option) not in allowed:
                raise ValueError(f"{name}: {option}={getattr(self, option)!r}; use one of "
                                 f"{', '.join(map(repr, allowed))}")
        try:
            scales = tuple(int(s) for s in self.scales)
        except (TypeError, ValueError):
            scales = ()
        if not scales or any(s < 1 for s in scales) or list(scales) != sorted(set(scales)):
            raise ValueError(f"{name}: scales={self.scales!r}; give increasing positive anchor "
                             "lengths in feature steps, e.g. (2, 4, 8, 16)")
        object.__setattr__(self, "scales", scales)
        for option in ("feature_dim", "hidden", "fc_width", "pooled", "num_proposals",
                       "num_classes"):
            value = getattr(self, option)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name}: {option}={value!r}; expected a positive integer")
        if not 0 <= self.proposal_nms_iou <= 1:
            raise ValueError(f"{name}: proposal_nms_iou={self.proposal_nms_iou}; expected a "
                             "tIoU in [0, 1]")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"{name}: dropout={self.dropout}; expected a rate in [0, 1)")
        super().__post_init__()

    @property
    def trace_input(self) -> jax.ShapeDtypeStruct:
        """The input ``zoo.create`` traces the variables on (parameter shapes
        do not depend on the sequence length)."""
        length = max(TRACE_LENGTH, self.scales[0])
        return jax.ShapeDtypeStruct((1, length, self.feature_dim * len(self.streams)),
                                    jnp.float32)

    @property
    def num_anchors(self) -> int:
        """A, the anchors per time step: one per scale."""
        return len(self.scales)

    def _check(self, features, proposals):
        name = self.model_name
        shape = getattr(features, "shape", None)
        if shape is None or len(shape) != 3:
            hint = " (add a batch axis: features[None])" if shape and len(shape) == 2 else ""
            raise ValueError(f"{name}: expected features (B, T, F), got "
                             f"{'shape ' + str(tuple(shape)) if shape else type(features).__name__}"
                             f"{hint}")
        if not jnp.issubdtype(features.dtype, jnp.floating):
            raise ValueError(f"{name}: expected floating-point features, got {features.dtype}")
        want = self.feature_dim * len(self.streams)
        if shape[-1] != want:
            raise ValueError(
                f"{name}: features have {shape[-1]} channels, expected {want} = feature_dim "
                f"{self.feature_dim} x {len(self.streams)} stream(s) {self.streams}; set "
                "feature_dim= (channels per stream) and streams= to match the features")
        if shape[1] < self.scales[0]:
            raise ValueError(f"{name}: the sequence has {shape[1]} steps, shorter than the "
                             f"smallest anchor scale {self.scales[0]}; pad the features or "
                             "pass smaller scales=")
        if proposals is not None:
            pshape = getattr(proposals, "shape", None)
            if pshape is None or len(pshape) != 3 or pshape[0] != shape[0] or pshape[2] != 2:
                raise ValueError(f"{name}: proposals must be (B, K, 2) = ({shape[0]}, K, 2) "
                                 f"(start, end in feature steps), got shape {pshape}")

    @nn.compact
    def __call__(self, features, proposals=None, train: bool = False):
        self._check(features, proposals)
        x = jnp.asarray(features).astype(self.settings.dtype)[:, :, None, :]
        if self.fusion == "late":
            f = self.feature_dim
            inputs = [(s, x[..., i * f:(i + 1) * f]) for i, s in enumerate(self.streams)]
        else:
            inputs = [("fused", x)]
        nets = [(StreamNet(self.num_classes, self.scales, self.towers, self.dilation,
                           self.context, self.hidden, self.fc_width, self.pooled, self.dropout,
                           name=s), xi) for s, xi in inputs]
        proposed = [net.propose(xi) for net, xi in nets]
        logits = _mean([p[0] for p in proposed])
        deltas = _mean([p[1] for p in proposed])
        if proposals is None and self.is_initializing():
            # Parameters do not depend on which proposals are classified:
            # init skips the NMS (it only costs compile time there).
            segments = jnp.zeros((x.shape[0], self.num_proposals, 2), jnp.float32)
            scores = jnp.zeros(segments.shape[:2], jnp.float32)
            valid = jnp.zeros(segments.shape[:2], bool)
        elif proposals is None:
            segments, scores, valid = self.select(logits, deltas)
        else:
            segments = jnp.asarray(proposals, jnp.float32)
            scores = jnp.ones(segments.shape[:2], jnp.float32)
            valid = jnp.ones(segments.shape[:2], bool)
        segments = lax.stop_gradient(segments)  # proposals are inputs to the classifier
        classified = [net.classify(xi, segments, train) for net, xi in nets]
        return {"proposal_logits": logits, "proposal_deltas": deltas, "proposals": segments,
                "proposal_scores": scores, "proposal_valid": valid,
                "class_logits": _mean([c[0] for c in classified]),
                "refine_deltas": _mean([c[1] for c in classified])}

    def select(self, logits, deltas):
        """Top ``num_proposals`` proposals after NMS, from proposal logits
        (B, T, A) and deltas (B, T, A, 2): (segments (B, K, 2) clipped to
        [0, T], sigmoid scores (B, K), valid (B, K)).

        Args:
            logits: (B, T, A) proposal logits.
            deltas: (B, T, A, 2) proposal deltas against ``anchors(T, scales)``.

        Returns:
            ``(segments, scores, valid)``: float32 (B, K, 2) in order kept,
            float32 (B, K) (0 where padded), bool (B, K); padded segments
            are (0, 0).
        """
        b, t, a = logits.shape
        grid = jnp.asarray(anchors(t, self.scales)).reshape(-1, 2)
        segments = jnp.clip(decode(deltas.reshape(b, -1, 2), grid), 0.0, float(t))
        scores = jax.nn.sigmoid(logits.reshape(b, -1))
        keep, kept = jax.vmap(functools.partial(nms, iou_threshold=self.proposal_nms_iou,
                                                max_output=self.num_proposals))(segments, scores)
        valid = jnp.isfinite(kept)
        segments = jnp.take_along_axis(segments, keep[..., None], axis=1) * valid[..., None]
        return segments, jnp.where(valid, kept, 0.0), valid


def _mean(arrays):
    return arrays[0] if len(arrays) == 1 else sum(arrays[1:], arrays[0]) / len(arrays)


# ----------------------------------------------------------- detections


@functools.partial(jax.jit, static_argnames=("max_output",))
def _refine_and_suppress(proposals, refine, scores, length, iou_threshold, max_output):
    """Refined segments (B, K, 2) clipped to [0, length], and per batch item
    and class the NMS of ``scores`` (B, C, K): indices and kept scores."""
    segments = jnp.clip(decode(refine, proposals), 0.0, length)
    per_class = jax.vmap(nms, in_axes=(None, 0, None, None))
    keep, kept = jax.vmap(per_class, in_axes=(0, 0, None, None))(segments, scores,
                                                                  iou_threshold, max_output)
    return segments, keep, kept


def detections(outputs: dict, feature_rate: float, class_names: Optional[Sequence[str]] = None,
               score_threshold: float = 1e-3, nms_iou: float = 0.5,
               max_detections: int = 100) -> list[list[tuple]]:
    """Actions found in each sequence of a batch, from the model's outputs.

    The refined segments (``refine_deltas`` decoded against the valid
    ``proposals``, clipped to the sequence) are scored by the softmax
    probability of each action class (background excluded); scores below
    ``score_threshold`` are dropped, NMS at tIoU ``nms_iou`` runs per class,
    and the best ``max_detections`` remain. ``feature_rate`` is feature
    steps per second: step i covers [i / rate, (i + 1) / rate) seconds.
    Returns, per batch item, ``(start_s, end_s, class, score)`` tuples by
    descending score; ``class`` is ``class_names[c]`` or the class index c
    (0-based, background excluded).

    Args:
        outputs: the dict ``TALNet`` returns (``class_logits``,
            ``proposal_logits``, ``proposals``, ``refine_deltas`` and, if
            present, ``proposal_valid``), for a batch.
        feature_rate: feature steps per second.
        class_names: one name per action class, or None for indices.
        score_threshold: the smallest class probability kept.
        nms_iou: per-class NMS tIoU threshold.
        max_detections: the most detections per sequence.

    Returns:
        One list per batch item of ``(start_s, end_s, class, score)``,
        times in seconds and score a class probability.

    Raises:
        ValueError: if ``feature_rate`` is not positive, or
            ``class_names`` does not have one name per action class.

    Example:
        ::

            outputs = model.apply(variables, features)
            for start, end, action, score in detections(outputs, 25 / 16, names)[0]:
                print(f"{start:.1f}-{end:.1f} s {action} {score:.2f}")
    """
    if not feature_rate > 0:
        raise ValueError(f"detections: feature_rate={feature_rate}; give feature steps per "
                         "second, > 0")
    logits = np.asarray(outputs["class_logits"], np.float32)
    batch, k, c1 = logits.shape
    if class_names is not None and len(class_names) != c1 - 1:
        raise ValueError(f"detections: {len(class_names)} class_names for {c1 - 1} classes; "
                         "give one name per action class, background excluded")
    length = np.shape(outputs["proposal_logits"])[1]
    valid = np.asarray(outputs.get("proposal_valid", np.ones((batch, k), bool)), bool)
    logits = logits - logits.max(axis=-1, keepdims=True)
    probs = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
    probs = probs[..., 1:]
    scores = np.where(valid[..., None] & (probs >= score_threshold), probs, -np.inf)
    segments, keep, kept = map(np.asarray, _refine_and_suppress(
        np.asarray(outputs["proposals"], np.float32),
        np.asarray(outputs["refine_deltas"], np.float32),
        scores.transpose(0, 2, 1).astype(np.float32), float(length), float(nms_iou), k))
    found = []
    for i in range(batch):
        cls, slot = np.nonzero(np.isfinite(kept[i]))  # kept[i]: (C, K)
        order = np.argsort(-kept[i, cls, slot], kind="stable")[:max_detections]
        items = []
        for j in order:
            c, seg = int(cls[j]), segments[i, keep[i, cls[j], slot[j]]]
            items.append((float(seg[0]) / feature_rate, float(seg[1]) / feature_rate,
                          class_names[c] if class_names is not None else c,
                          float(kept[i, cls[j], slot[j]])))
        found.append(items)
    return found


# ------------------------------------------------------------- registry


def _register():
    from zoo.registry import ModelSpec, Published, register

    register(ModelSpec(
        name="talnet", family="talnet", task="action_localisation",
        input_size=DEFAULT_LENGTH,  # feature steps; the network takes any length >= 2
        # Image fields do not apply to feature sequences: neutral values.
        mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), crop_fraction=1.0,
        interpolation="bilinear", num_classes=20, padding="same", bn_eps=1e-3,
        published=Published(None, None, None, PUBLISHED_SOURCE, metrics=PUBLISHED_METRICS,
                            note="with I3D features (1,024 per stream); the paper publishes "
                                 "no parameter or multiply-add count"),
        config=(("feature_dim", FEATURE_DIM), ("streams", ("rgb", "flow")), ("fusion", "late"),
                ("towers", "multi"), ("dilation", True), ("context", True), ("scales", SCALES),
                ("hidden", 256), ("fc_width", 1024), ("pooled", 16), ("num_proposals", 100),
                ("proposal_nms_iou", 0.7), ("dropout", 0.5)),
    ), TALNet)


_register()
