"""Model families; importing this package registers every name."""

from zoo.models import efficientnet, mobilenet_v1, mobilenet_v2, mobilenet_v3  # noqa: F401
