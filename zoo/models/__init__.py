"""Model families; importing this package registers every name."""

from zoo.models import efficientnet, mobilenet_v1, mobilenet_v2, mobilenet_v3  # noqa: F401
from zoo.models import blazeface, face_mesh  # noqa: F401,E402
from zoo.models import midas  # noqa: F401,E402
from zoo.models import talnet  # noqa: F401,E402
from zoo.models import selfie_segmentation  # noqa: F401,E402
