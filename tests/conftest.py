import os

# Keras Applications, the parity reference, runs on the JAX backend: no
# TensorFlow needed. Must be set before keras is imported anywhere.
os.environ.setdefault("KERAS_BACKEND", "jax")
