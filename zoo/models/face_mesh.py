"""Face mesh: 468 3-D face landmarks from a 192x192 face crop (Kartynnik et
al., "Real-time Facial Surface Geometry from Monocular Video on Mobile GPUs",
2019), as shipped by MediaPipe (``face_landmark.tflite``).

Input 192x192 RGB in [0, 1] (MediaPipe's face_landmark_cpu graph:
``output_tensor_float_range {min: 0 max: 1}``), a crop rotated so the eyes
are level (``zoo.face`` makes it). Blaze blocks as in ``zoo.models.blazeface``
(depthwise 3x3 + bias -> 1x1 conv + bias, skip path with 2x2 max-pool and
zero channels) but with PReLU, and two heads that share the trunk.

    stage      block        repeats  kernel  stride  channels  act    map
    stem       conv3x3         1       3       2        16     prelu  96x96
    1          blaze           2       3       1        16     prelu  96x96
    2          blaze           1+2     3       2,1      32     prelu  48x48
    3          blaze           1+2     3       2,1      64     prelu  24x24
    4          blaze           1+2     3       2,1     128     prelu  12x12
    5          blaze           1+2     3       2,1     128     prelu  6x6
    landmarks  blaze           1+2     3       2,1     128     prelu  3x3
               conv1x1         1       1       1        32     prelu  3x3
               blaze           1       3       1        32     prelu  3x3
               conv3x3 valid   1       3       3      1404     -      1x1
    face flag  blaze           1       3       2       128     prelu  3x3
               conv1x1         1       1       1        32     prelu  3x3
               blaze           1       3       1        32     prelu  3x3
               conv3x3 valid   1       3       3         1     -      1x1

Outputs ``(landmarks (N, 1404), face_flag (N, 1))``: x, y, z of 468 points
in pixels of the 192x192 crop (z in the same units, relative to the face's
centre depth), and a face-presence logit (MediaPipe keeps the landmarks when
``sigmoid(flag) > 0.5``). The weight mapping is derived from the graph
(``zoo.models.blazeface.map_tflite``).
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from zoo.layers import Conv
from zoo.models.blazeface import BlazeBlock, PReLU, _BlazeBase, block_layers, check_input

INPUT_SIZE = 192
NUM_LANDMARKS = 468
STEM = (16, 3)  # channels, kernel (stride 2)
# stage: (channels, stride, repeats); the first repeat carries the stride.
TRUNK = ((16, 1, 2), (32, 2, 3), (64, 2, 3), (128, 2, 3), (128, 2, 3))
# head: (blaze stages, reduced channels, outputs)
HEADS = (("landmarks", ((128, 2, 3),), 32, 3 * NUM_LANDMARKS),
         ("face_flag", ((128, 2, 1),), 32, 1))


def _blocks(stages):
    return [(c, s if j == 0 else 1) for c, s, n in stages for j in range(n)]


class FaceMesh(_BlazeBase):
    """``__call__(x)``: (N, 192, 192, 3) float in [0, 1] ->
    ``(landmarks (N, 1404), face_flag (N, 1))``, float32.

    The landmarks are x, y, z of 468 points in pixels of the crop
    (``.reshape(N, 468, 3)``); the flag is a face-presence logit. Calling it
    raises ValueError for other input sizes and for the options it does not
    offer (``include_top=False``, ``features_only=True``, ``num_classes``
    other than 1).

    Attributes:
        num_classes: must be 1 (the face flag).
        include_top: must be True (the heads are fixed).
        features_only: must be False.
        settings: padding, implementation and compute dtype.
        model_name: the registry name, used in error messages.
    """

    fixed_input_size = INPUT_SIZE  # read by zoo.registry to trace the variables

    @nn.compact
    def __call__(self, x, train: bool = False):
        self._check_options()
        check_input(x, self.model_name, INPUT_SIZE)
        s = self.settings
        x = jnp.asarray(x).astype(s.dtype)
        x = PReLU(name="stem_act")(Conv(STEM[0], STEM[1], 2, use_bias=True, settings=s,
                                        name="stem")(x))
        for i, (c, stride) in enumerate(_blocks(TRUNK)):
            x = BlazeBlock(c, stride, act="prelu", pool_padding="VALID", settings=s,
                           name=f"blocks_{i}")(x)
        outs = []
        for head, stages, reduced, n_out in HEADS:
            h = x
            for i, (c, stride) in enumerate(_blocks(stages)):
                h = BlazeBlock(c, stride, act="prelu", pool_padding="VALID", settings=s,
                               name=f"{head}_blocks_{i}")(h)
            h = Conv(reduced, 1, use_bias=True, settings=s, name=f"{head}_reduce")(h)
            h = PReLU(name=f"{head}_reduce_act")(h)
            h = BlazeBlock(reduced, 1, act="prelu", pool_padding="VALID", settings=s,
                           name=f"{head}_block")(h)
            # 3x3 map, 3x3 kernel, stride 3: one output pixel (TFLite VALID; SAME pads nothing).
            h = Conv(n_out, 3, 3, use_bias=True, settings=s, name=f"{head}_out")(h)
            outs.append(h.reshape(h.shape[0], n_out).astype(jnp.float32))
        return tuple(outs)

    def tflite_chains(self):
        """For each output, the parametric layers from the input, in order.

        Returns:
            ``[[landmark chain], [face flag chain]]`` (one chain per output,
            for ``zoo.models.blazeface.map_tflite``), each a list of layer
            paths from ``("stem",)`` to the head's ``_out`` conv.
        """
        trunk = [("stem",), ("stem_act",)]
        for i, _ in enumerate(_blocks(TRUNK)):
            trunk += block_layers(f"blocks_{i}", "prelu")
        chains = []
        for head, stages, _, _ in HEADS:
            c = list(trunk)
            for i, _ in enumerate(_blocks(stages)):
                c += block_layers(f"{head}_blocks_{i}", "prelu")
            c += [(f"{head}_reduce",), (f"{head}_reduce_act",)]
            c += block_layers(f"{head}_block", "prelu") + [(f"{head}_out",)]
            chains.append([c])
        return chains


def _register():
    from zoo.registry import ModelSpec, WeightSource, register

    register(ModelSpec(
        name="face_mesh", family="face_mesh", task="face_landmarks",
        input_size=INPUT_SIZE, mean=(0.0, 0.0, 0.0), std=(255.0, 255.0, 255.0),  # [0, 1]
        crop_fraction=1.0, interpolation="bilinear",
        num_classes=1,  # one face-presence logit beside the 1404 landmark values
        padding="same", bn_eps=0.0,  # no BatchNorm
        published=None,  # the paper gives no parameter or multiply-add count for this file
        weights=(WeightSource(
            format="tflite", package="mediapipe==0.10.21",
            path="mediapipe/modules/face_landmark/face_landmark.tflite",
            sha256="1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
            license="Apache-2.0", origin="MediaPipe (PyPI)"),),
        license="Apache-2.0"), FaceMesh)


_register()
