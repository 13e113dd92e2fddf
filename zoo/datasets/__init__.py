"""Datasets for training: TFDS builders written as array_record files (no
TensorFlow needed) and grain pipelines over them.

    from zoo.datasets import prepare, train_batches, eval_batches, steps_per_epoch
    data = prepare("digits")            # or "lfw_subset", "folder:PATH", "tfds:NAME"
    it = iter(train_batches(data, batch_size=32, image_size=224,
                            mean=spec.mean, std=spec.std, seed=0))
    batch = next(it); state = it.get_state()       # JSON-serialisable dict
    for batch in eval_batches(data, "test", batch_size=64, spec=spec): ...

    depth = prepare("depth_scenes")     # rendered scenes with exact depth
    it = iter(depth_train_batches(depth, 16, 192, mean=spec.mean, std=spec.std))
    for batch in depth_eval_batches(depth, "test", 16, mean=spec.mean, std=spec.std): ...

tensorflow-datasets, array-record, grain and scikit-learn are imported only
when a function needs them.
"""

from zoo.datasets.errors import DatasetError
from zoo.datasets.pipeline import (depth_eval_batches, depth_train_batches, eval_batches,
                                   steps_per_epoch, train_batches)
from zoo.datasets.registry import DATASETS, Data, dataset_task, prepare, resolve_data_dir

__all__ = ["DATASETS", "Data", "DatasetError", "dataset_task", "depth_eval_batches",
           "depth_train_batches", "eval_batches", "prepare", "resolve_data_dir",
           "steps_per_epoch", "train_batches"]
