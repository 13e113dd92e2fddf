"""Reading upstream weights into the zoo's variables.

``from_keras(keras_model, name)`` copies a live Keras Applications model;
``from_keras_file``, ``from_torch`` and ``load_weight_file`` read files
(Keras .h5/.keras, PyTorch .pth/.pt, safetensors) without the framework
that wrote them; ``read_tflite`` exposes a TFLite graph and its constants.
Every reader reports missing, unexpected and mis-shaped keys by name, and
returns ``Weights``: the variables dict with the ``Conventions`` (padding,
BatchNorm epsilon) they need, which ``zoo.create(name, weights=...)``
builds the model with.
"""

from zoo.weights.conventions import KERAS, TORCHVISION, Conventions, Weights
from zoo.weights.errors import ConventionsMismatchError
from zoo.weights.files import load_weight_file
from zoo.weights.keras import from_keras
from zoo.weights.keras_files import from_keras_file
from zoo.weights.mapping import WeightMismatchError
from zoo.weights.tflite import read_tflite
from zoo.weights.torch import from_torch

__all__ = ["KERAS", "TORCHVISION", "Conventions", "ConventionsMismatchError",
           "WeightMismatchError", "Weights", "from_keras", "from_keras_file", "from_torch", "load_weight_file",
           "read_tflite"]
