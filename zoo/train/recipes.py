"""Training recipes that state their result, big_vision style: the
command, what it should reach, how long it takes and on what machine.

``zoo train --recipe NAME --workdir DIR`` runs one (any other option given
on the command line overrides the recipe's); ``zoo train --list-recipes``
lists them. The stated results were measured by running exactly the
recipe; the test suite runs each one shortened and checks that the loss
falls.
"""

from __future__ import annotations

import dataclasses
from typing import Optional


# Measured by running exactly the recipe: the digits ones with nothing else
# computing on the machine (twice; the second run reproduced the first's
# figures exactly), the lfw_subset ones while other work shared it (upper
# bounds). "best" is the best epoch on the test split
# (there is no separate validation split), so the final figure is the
# unbiased one.
HW = "2-core x86-64 CPU, jax 0.10.2 (2026-11-29)"


# TALNet on action_features, sized for the 2-core CPU: a hidden width of 64
# and a 256-wide classifier (0.81 M parameters) train at about 0.6-1.5 s per
# batch of 8 videos of 512 steps (measured under load: 1.47 s), so 1,000
# steps (8 epochs) take about 10-25 minutes. The ablation (python -m
# zoo.actions.ablation) runs the full model and four variants that each
# remove one of the paper's ideas, with everything else equal.
TALNET_NET = {"hidden": 64, "fc_width": 256, "pooled": 8}
TALNET_ABLATIONS = {
    "": ("the full model: a dilated tower per scale, context, late fusion", {}),
    "_single_tower": ("one shared tower, no dilation (Faster R-CNN's head)",
                      {"towers": "single", "dilation": False}),
    "_no_context": ("no context around proposals and anchors", {"context": False}),
    "_early_fusion": ("RGB and flow concatenated into one network", {"fusion": "early"}),
    "_rgb_only": ("the RGB stream alone", {"streams": ["rgb"]}),
}


# Measured by running exactly the recipe, with nothing else computing; mAP in %.
TALNET_RESULTS = {
    "": ("THUMOS'14 mAP@tIoU 0.1-0.7: 85.3 / 85.3 / 85.3 / 85.2 / 85.2 / 84.7 / 76.9 "
         "(average 84.0); ActivityNet mAP@0.5 84.2, average over 0.5:0.95 55.9; "
         "proposal recall@0.5 99.2 %", "9.4 min (0.7 of it building action_features)"),
    # The four variants: python -m zoo.actions.ablation (dataset already built).
    "_single_tower": ("THUMOS'14 mAP@tIoU 0.1-0.7: 79.2 / 79.1 / 78.9 / 78.7 / 78.3 / 76.9 / "
                      "70.3 (average 77.3)", "2.7 min"),
    "_no_context": ("THUMOS'14 mAP@tIoU 0.1-0.7: 45.7 / 45.7 / 45.7 / 45.7 / 45.6 / 45.0 / "
                    "42.9 (average 45.2)", "8.4 min"),
    "_early_fusion": ("THUMOS'14 mAP@tIoU 0.1-0.7: 55.4 / 55.4 / 55.4 / 55.4 / 54.8 / 53.5 / "
                      "42.3 (average 53.2)", "6.7 min"),
    "_rgb_only": ("THUMOS'14 mAP@tIoU 0.1-0.7: 48.6 / 48.1 / 47.4 / 46.8 / 44.9 / 41.2 / "
                  "28.9 (average 43.7)", "4.6 min"),
}


# A small TALNet for action_videos' four classes: with the widths of
# action_features' recipe the proposal towers overfit the 1,280 values per
# stream of its few videos (training proposal loss 0.01 against 2.3 held out),
# hence also the strong weight decay.
ACTION_VIDEOS_NET = ('{"hidden": 16, "fc_width": 64, "scales": [4, 8, 16], "num_proposals": 16, '
                     '"pooled": 4}')


def _talnet_recipes():
    import json

    for suffix, (what, options) in TALNET_ABLATIONS.items():
        result, time = TALNET_RESULTS.get(suffix, (None, None))
        yield Recipe(f"action_features_talnet{suffix}",
                     f"TALNet on action_features, {what}; THUMOS'14 mAP at tIoU 0.1-0.7 on "
                     "the 200 test videos (zoo.actions.evaluate_split)",
                     dict(model="talnet", data="action_features", batch_size=8, steps=1000,
                          optimizer="adamw", lr=1e-3, weight_decay=1e-4, eval_every=250,
                          save_every=250, log_every=10,
                          model_options=json.dumps(dict(TALNET_NET, **options))),
                     result=result, time=time, hardware=HW if result else None)


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A named training run with its measured outcome.

    Attributes:
        name: what ``zoo train --recipe`` takes.
        description: one sentence on what it trains and how it is measured.
        settings: ``TrainConfig`` fields (all but ``workdir``).
        result: what the run reached on the test split, as measured; None
            when not measured.
        time: wall time of the whole run; None when not measured.
        hardware: the machine and software it was measured on; None when
            not measured.
    """

    name: str
    description: str
    settings: dict  # TrainConfig fields
    result: Optional[str] = None  # what the run reached (test split), as measured
    time: Optional[str] = None  # wall time of the whole run
    hardware: Optional[str] = None


RECIPES = {r.name: r for r in (
    Recipe("digits_mobilenet_v2_pretrained",
           "ImageNet-pretrained MobileNetV2 fine-tuned on scikit-learn's digits (96 px); "
           "the defaults of `zoo train --model mobilenet_v2 --pretrained --data digits`",
           dict(model="mobilenet_v2", pretrained=True, data="digits", image_size=96,
                batch_size=64, epochs=10, optimizer="sgd", lr=0.05),
           result="top-1 98.33 % after 10 epochs (best 98.33 %, epoch 7)", time="6.6 min",
           hardware=HW),
    Recipe("digits_mobilenet_v2_scratch",
           "The same network and schedule from random initialisation: what pretraining buys",
           dict(model="mobilenet_v2", pretrained=False, data="digits", image_size=96,
                batch_size=64, epochs=10, optimizer="sgd", lr=0.05),
           result="top-1 46.94 % after 10 epochs (best: the last)", time="6.5 min",
           hardware=HW),
    Recipe("lfw_lite0_probe",
           "EfficientNet-Lite0 linear probe on scikit-image's lfw_subset (face / not face)",
           dict(model="efficientnet_lite0", pretrained=True, data="lfw_subset", image_size=128,
                batch_size=32, epochs=10, freeze="backbone", optimizer="sgd", lr=0.1),
           result="top-1 97.5 % (39/40) after 10 epochs (best 100 %, epoch 1)", time="0.7 min",
           hardware=HW),
    Recipe("lfw_lite0_finetune",
           "EfficientNet-Lite0 full fine-tune on lfw_subset",
           dict(model="efficientnet_lite0", pretrained=True, data="lfw_subset", image_size=128,
                batch_size=32, epochs=10, freeze="none", optimizer="sgd", lr=0.02),
           result="top-1 97.5 % (39/40) after 10 epochs (best 100 %, epoch 9)", time="2.6 min",
           hardware=HW),
    # The encoder keeps its ImageNet weights (--freeze backbone): trained with the
    # decoder on rendered scenes, it forgot what real photos look like, and the model
    # predicted little more than a floor ramp on Middlebury (AbsRel 0.27 after 600
    # steps at 192 px); frozen, it gave 0.124 after 250 steps. Freezing also makes a
    # step 2.3x cheaper (batch 16: 0.9 s at 128 px, 1.9 s at 192 px, on the 2-core
    # CPU). Longer runs drift towards the rendered scenes' look (docs/depth.md,
    # "Results of training"). log_every=1 keeps one step in flight: with two,
    # XLA:CPU held 13 GB instead of 7.6 GB, for no speed.
    Recipe("depth_scenes_midas_small_lite0",
           "midas_small_lite0 (MiDaS v2.1 small's decoder on an ImageNet-pretrained "
           "EfficientNet-Lite0, kept frozen) on depth_scenes at 128 px with MiDaS's scale- and "
           "shift-invariant loss; AbsRel and bad pixels (depth off by more than 1.25x) after "
           "least-squares alignment, on the 300 test scenes at 192x256",
           dict(model="midas_small_lite0", pretrained=True, data="depth_scenes", image_size=128,
                batch_size=16, steps=500, freeze="backbone", optimizer="adamw", lr=5e-4,
                weight_decay=5e-5, min_scale=0.5, photometric=1.0, ema=0.99, eval_every=250,
                save_every=250, log_every=1),
           # Longer runs keep improving on the rendered scenes and get worse on
           # real photos (Middlebury AbsRel 0.123 at step 250 of a 1,500-step
           # run, 0.145 at 500), so the schedule is short.
           result="test scenes: AbsRel 0.464, 47.5 % of pixels off by more than 1.25x (best "
                  "checkpoint: the last, step 500). Middlebury Motorcycle (python -m "
                  "zoo.depth.middlebury): AbsRel 0.118, 0.109 averaged with the mirrored image "
                  "(flip=True); the 'lower is nearer' ramp gives 0.141. These weights ship as "
                  "zoo/data/weights/midas_small_lite0.safetensors (float16)",
           time="10.4 min of training with other jobs on the machine, plus 2.4 min to render "
                "depth_scenes (3,300 scenes) the first time",
           hardware=HW),
    *_talnet_recipes(),
    Recipe("action_videos_talnet",
           "TALNet on action_videos: two-stream EfficientNet-Lite0 features of rendered video "
           "files (2 steps/s); THUMOS'14 mAP at tIoU 0.1-0.7 on the 40 test videos "
           "(zoo.actions.evaluate_split). The run records how its features were made, so "
           "`zoo actions VIDEO --checkpoint RUN` reads new files alike",
           dict(model="talnet", data="action_videos", batch_size=8, steps=1000,
                optimizer="adamw", lr=2e-3, weight_decay=0.1, eval_every=250, save_every=250,
                log_every=10, model_options=ACTION_VIDEOS_NET),
           result="THUMOS'14 mAP@0.5 99.4 % (99.4 at tIoU 0.1-0.6, 96.9 at 0.7; average "
                  "99.0) on the 40 test videos, best checkpoint step 500 of 1,000; proposal "
                  "recall at tIoU 0.5: 100 %",
           time="6.1 min (about 4 of them building action_videos: 240 videos featurised)",
           hardware=HW),
)}


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name`` (see ``RECIPES``).

    Args:
        name: a key of ``RECIPES``, e.g. ``"digits_mobilenet_v2_pretrained"``.

    Returns:
        Recipe: the recipe.

    Raises:
        ValueError: if there is no such recipe (suggesting close names and
            listing all).
    """
    try:
        return RECIPES[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, list(RECIPES), n=2, cutoff=0.4)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown recipe {name!r}.{hint} Recipes: {', '.join(RECIPES)}") \
            from None
