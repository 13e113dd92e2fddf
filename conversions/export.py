"""What every export starts from: a registry name or a flax model, its
variables, a fixed input shape, and a pure function of one image batch.

Exports use the reference kernel forms (``implementation="reference"``):
TFLite cannot run Pallas custom calls, and XLA's grouped convolution is what
the TFLite converter turns into ``DEPTHWISE_CONV_2D`` (the shifted
multiply-add form of ``xla_fast`` would become k*k MUL/ADD ops).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional, Sequence, Union

import jax
import numpy as np


class ConversionError(RuntimeError):
    """A model could not be converted; the message names the layer and why."""


@dataclasses.dataclass
class Exportable:
    """A model ready to export: ``fn(x) -> {output name: array}``.

    Attributes:
        name: the model's name, used in default file names and the metadata.
        fn: a pure function of one float32 batch of ``input_shape`` to a
            dict of named outputs, with the variables closed over.
        input_shape: the fixed input shape, (N, H, W, 3), or (N, steps,
            features) for a feature-sequence model.
        spec: the model's ``ModelSpec``, or None for a bare model.
        pretrained: whether the variables are the published weights.
        labels: class names for the metadata when they are not ImageNet's
            (a fine-tuned run); None otherwise.
    """

    name: str
    fn: Callable[[Any], dict]
    input_shape: tuple[int, ...]
    spec: Any  # zoo.ModelSpec, or None for a bare model
    pretrained: bool
    labels: Optional[list] = None  # class names, when not ImageNet's (a fine-tuned run)

    @property
    def output_names(self) -> list[str]:
        """The names of ``fn``'s outputs, in order (found by shape
        evaluation, without computing anything)."""
        x = jax.ShapeDtypeStruct(self.input_shape, np.float32)
        return list(jax.eval_shape(self.fn, x))


def _output_dict(out) -> dict:
    """Name a model's outputs: one array -> ``output``, a dict keeps its
    keys, a tuple/list becomes ``output_0``, ``output_1``..."""
    if isinstance(out, dict):
        return {str(k): v for k, v in out.items()}
    if isinstance(out, (tuple, list)):
        return {f"output_{i}": v for i, v in enumerate(out)}
    return {"output": out}


def prepare(name_or_model: Union[str, Any], variables: Optional[dict] = None, *,
            pretrained: bool = False, input_shape: Optional[Sequence[int]] = None,
            spec: Any = None, allow_unpinned: bool = False) -> Exportable:
    """Resolve what to export. A name builds the registry model with the
    reference kernels; its variables are the pretrained ones if
    ``pretrained``, given ``variables`` if any, random (seed 0) otherwise.
    ``allow_unpinned`` accepts pretrained weights whose publisher gives no
    hash (see ``zoo.load_pretrained``).

    A model object whose settings choose another kernel implementation is
    cloned with the reference one (same variables). Outputs are named: one
    array is ``output``, a dict keeps its keys, a tuple or list gives
    ``output_0``, ``output_1``...

    Args:
        name_or_model: a registry name, a flax model, or an ``Exportable``
            (returned as it is).
        variables: the model's variables; required with a model object,
            optional with a name (instead of the random ones).
        pretrained: with a name: export the published weights.
        input_shape: the fixed input shape; None means (1, H, W, 3) at the
            spec's resolution (a sequence model: (1, steps, features)).
        spec: the ``ModelSpec``; None means the registry's for the name (or
            for the model's ``model_name``).
        allow_unpinned: accept pretrained weights with no published hash.

    Returns:
        The ``Exportable``.

    Raises:
        ValueError: if a name gets both ``pretrained=True`` and
            ``variables``, a model object comes without variables, there is
            no ``input_shape`` and no spec to take it from, or
            ``input_shape`` is not a fixed (batch, height, width, 3) shape
            (for a sequence model: (batch, steps, features)).
    """
    import zoo

    if isinstance(name_or_model, Exportable):
        return name_or_model
    if isinstance(name_or_model, str):
        name = name_or_model
        spec = spec or zoo.get_spec(name)
        model = zoo.build(name, implementation="reference")
        if variables is None:
            if pretrained:
                variables = zoo.load_pretrained(name, allow_unpinned=allow_unpinned)
            else:
                from zoo.registry import init_variables
                variables = init_variables(model, seed=0)
        elif pretrained:
            raise ValueError(f"{name}: give either pretrained=True or variables, not both")
    else:
        model = name_or_model
        if variables is None:
            raise ValueError("a model object needs its variables: "
                             "to_tflite(model, variables, input_shape=...)")
        name = getattr(model, "model_name", None) or type(model).__name__
        if spec is None and isinstance(getattr(model, "model_name", None), str):
            try:
                spec = zoo.get_spec(model.model_name)
            except KeyError:
                spec = None
        settings = getattr(model, "settings", None)
        if settings is not None and getattr(settings, "implementation", "reference") != "reference":
            # Same network, same variables; only the depthwise form changes.
            model = model.clone(settings=dataclasses.replace(settings,
                                                             implementation="reference"))
    sequence = getattr(model, "trace_input", None)  # a sequence model (TALNet)
    if input_shape is None:
        if spec is None:
            raise ValueError(f"{name}: give input_shape=(1, H, W, 3) for a model without a spec")
        input_shape = ((1, spec.input_size) + tuple(sequence.shape[2:]) if sequence is not None
                       else (1, *spec.input_hw, 3))
    input_shape = tuple(int(d) for d in input_shape)
    if sequence is not None:
        if (len(input_shape) != 3 or input_shape[-1] != sequence.shape[-1]
                or min(input_shape) < 1):
            raise ValueError(f"input_shape={input_shape}: expected a fixed (batch, steps, "
                             f"{sequence.shape[-1]}) feature sequence")
    elif len(input_shape) != 4 or input_shape[-1] != 3 or min(input_shape) < 1:
        raise ValueError(f"input_shape={input_shape}: expected a fixed NHWC shape "
                         "(batch, height, width, 3); exports have no dynamic dimensions")
    variables = jax.tree_util.tree_map(np.asarray, variables)

    def fn(x):
        return _output_dict(model.apply(variables, x))

    return Exportable(name=name, fn=fn, input_shape=input_shape, spec=spec,
                      pretrained=bool(pretrained))
