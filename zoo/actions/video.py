"""From a video file to detected actions: two-stream features
(``zoo.video.features``), a trained TALNet run, detections in seconds, and a
timeline picture of them."""

from __future__ import annotations

import os
from typing import Optional, Sequence, Union


def detect_video(path: Union[str, os.PathLike], run: Union[str, os.PathLike], *,
                 backbone: Optional[str] = None, fps: Optional[float] = None,
                 stride: Optional[int] = None, resolution: Optional[int] = None,
                 score_threshold: float = 0.1, progress: bool = True):
    """Actions in the video at ``path``, found by the best checkpoint of a TALNet run.

    The features must be the ones the run was trained on: a run records them
    in its ``run.json`` (``video``: backbone, fps, stride, resolution) when
    its data came from videos; the arguments override that. A run trained on
    other features (e.g. ``action_features``) is refused by the feature
    width, in one line. The flow stream is computed only when the model
    uses it.

    Args:
        path: a video file (anything FFmpeg reads).
        run: the ``zoo train`` work directory of a TALNet trained on video
            features.
        backbone: registered feature backbone (default: the run's, else
            ``"efficientnet_lite0"``).
        fps: frames sampled per second (default: the run's, else
            ``zoo.video.DEFAULT_FPS``).
        stride: sampled frames per feature step (default: the run's, else
            ``zoo.video.DEFAULT_STRIDE``).
        resolution: backbone input size in pixels (default: the run's, else
            the backbone spec's).
        score_threshold: lowest class probability kept, in [0, 1].
        progress: show a progress bar over the sampled frames.

    Returns:
        tuple: ``(features, detections)``: the ``zoo.video.VideoFeatures``
        of the video and a list of ``(start_s, end_s, class, score)``
        tuples by descending score (``class`` a name when the run recorded
        class names).

    Raises:
        ValueError: when ``run`` is not a training run with a checkpoint,
            trained a model of another task, or was trained on features of
            another width than ``backbone`` gives; ``zoo.video.VideoError``
            (a ValueError) for a video or sampling arguments that cannot be
            used.

    Example:
        ::

            from zoo.actions.video import detect_video
            feats, found = detect_video("match.mp4", "runs/talnet_video")
            for start, end, label, score in found: print(start, end, label, score)
    """
    import numpy as np

    from zoo.actions.localise import detect
    from zoo.train.loop import load_run
    from zoo.video import DEFAULT_FPS, DEFAULT_STRIDE, features

    model, variables, meta = load_run(run)
    if meta.get("task") != "actions":
        raise ValueError(f"{run} trained a {meta.get('task')} model; give a TALNet run")
    made = meta.get("video", {})
    backbone = backbone or made.get("backbone", "efficientnet_lite0")
    feats = features(path, backbone, fps=fps or made.get("fps", DEFAULT_FPS),
                     stride=stride or made.get("stride", DEFAULT_STRIDE),
                     resolution=resolution or made.get("resolution"),
                     flow="flow" in model.streams, progress=progress)
    width = feats.rgb.shape[1]
    if width != model.feature_dim:
        raise ValueError(f"{run} was trained on features of {model.feature_dim} values per "
                         f"stream ({meta.get('data')}); {backbone} gives {width}: use a run "
                         "trained on video features of this backbone")
    streams = {"rgb": feats.rgb, "flow": feats.flow}
    x = np.concatenate([streams[s] for s in model.streams], axis=-1)[None]
    found = detect(x, model, variables, feats.feature_rate, meta.get("class_names"),
                   batch_size=1, score_threshold=score_threshold)[0]
    return feats, found


def plot_timeline(detections: Sequence[tuple], duration: float, out: Union[str, os.PathLike],
                  title: str = "") -> str:
    """Draws ``detections`` on a time axis as a PNG: one row per class.

    Each segment's opacity is its score (at least 0.15). The file is
    written atomically.

    Args:
        detections: ``(start_s, end_s, class, score)`` tuples, as
            ``detect_video`` returns.
        duration: length of the time axis in seconds.
        out: path of the PNG to write.
        title: the picture's title (default: the number of detections).

    Returns:
        str: the path written.
    """
    import io

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from zoo.atomic import write_atomic

    classes = sorted({str(c) for _, _, c, _ in detections})
    fig, ax = plt.subplots(figsize=(10, 1 + 0.4 * max(1, len(classes))))
    for s, e, c, p in detections:
        ax.barh(classes.index(str(c)), e - s, left=s, height=0.6, color="tab:blue",
                alpha=max(0.15, min(1.0, p)))
    ax.set(xlim=(0, duration), yticks=range(len(classes)), yticklabels=classes,
           xlabel="seconds", title=title or f"{len(detections)} detections")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return str(write_atomic(out, buf.getvalue()))
