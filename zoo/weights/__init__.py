"""Reading upstream weights into the zoo's variables.

``from_keras(keras_model, name)`` copies a live Keras Applications model.
Every reader reports missing, unexpected and mis-shaped keys by name.
"""

from zoo.weights.keras import from_keras
from zoo.weights.keras_files import from_keras_file
from zoo.weights.mapping import WeightMismatchError

__all__ = ["WeightMismatchError", "from_keras"]
