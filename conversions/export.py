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
    """A model ready to export: ``fn(x) -> {output name: array}``."""

    name: str
    fn: Callable[[Any], dict]
    input_shape: tuple[int, ...]
    spec: Any  # zoo.ModelSpec, or None for a bare model
    pretrained: bool
    labels: Optional[list] = None  # class names, when not ImageNet's (a fine-tuned run)

    @property
    def output_names(self) -> list[str]:
        x = jax.ShapeDtypeStruct(self.input_shape, np.float32)
        return list(jax.eval_shape(self.fn, x))


def _output_dict(out) -> dict:
    """Name a model's outputs: one array -> ``logits`` (or ``output``), a dict
    keeps its keys, a tuple/list becomes ``output_0``, ``output_1``..."""
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
    hash (see ``zoo.load_pretrained``)."""
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
