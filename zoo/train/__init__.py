"""The one training stack: optax, Orbax checkpoints, grain data and data
parallelism, generic over the task.

    from zoo.train import TrainConfig, fit
    result = fit(TrainConfig(model="mobilenet_v2", pretrained=True, data="digits",
                             workdir="runs/digits", epochs=3))
    model, variables, meta = load_run("runs/digits")      # the best checkpoint

``zoo train --help`` lists every option; ``zoo train plot RUN`` draws the
curves.
"""

from zoo.train.config import TrainConfig
from zoo.train.loop import FitResult, TrainingDiverged, fit, load_run
from zoo.train.tasks import Classification, Task, TaskData

__all__ = ["Classification", "FitResult", "Task", "TaskData", "TrainConfig", "TrainingDiverged",
           "fit", "load_run"]
