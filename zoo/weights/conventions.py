"""The conventions a set of weights needs, carried with the weights.

Weights mean what they meant where they were trained only if the model
computes as it was computed there. Two things differ between the sources
this zoo reads, and both change every output while leaving every shape
alone, so nothing else would notice:

- ``padding``: TensorFlow's "same" (Keras, TF checkpoints and their ports)
  pads a stride-2 convolution more on the bottom/right than on the top/left;
  PyTorch models written with ``padding=k//2`` ("symmetric") pad both sides
  alike.
- ``bn_eps``: the epsilon added to BatchNorm's variance, 1e-3 in Keras and
  TF, 1e-5 in PyTorch's ``BatchNorm2d`` default.

Readers return ``Weights``: the plain variables dict (it *is* a dict, so
code that used the old return value still works) with ``.conventions``.
``zoo.create(name, weights=w)`` builds the model those conventions need, a
model built otherwise refuses them in ``apply``, and ``zoo.save`` records
them in the checkpoint for ``zoo.restore``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, Mapping, Optional

import jax
from jax import export as jax_export

from zoo.weights.errors import ConventionsMismatchError

PADDINGS = ("same", "symmetric")


def _eps(value: float) -> str:
    """1e-3 rather than 0.001 or 1e-03: how papers and code write epsilons."""
    if value == 0:
        return "0"
    mantissa, exponent = f"{value:.6e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


@dataclasses.dataclass(frozen=True)
class Conventions:
    """What a model must compute for a set of weights: ``padding`` ("same",
    TensorFlow's, or "symmetric", PyTorch's k//2 each side) and BatchNorm's
    ``bn_eps``. ``source`` says where the weights came from, for messages
    ("converted from Keras"); it takes no part in comparisons.

    Attributes:
        padding: "same" or "symmetric".
        bn_eps: BatchNorm epsilon, a finite number >= 0 (stored as float).
        source: where the weights came from, for messages.

    Raises:
        ValueError: ``padding`` is neither "same" nor "symmetric", or
            ``bn_eps`` is not a finite number >= 0.
    """

    padding: str
    bn_eps: float
    source: str = dataclasses.field(default="", compare=False)

    def __post_init__(self):
        if self.padding not in PADDINGS:
            raise ValueError(f"padding={self.padding!r}: use 'same' (TensorFlow, Keras) or "
                             "'symmetric' (PyTorch)")
        try:
            eps = float(self.bn_eps)
        except (TypeError, ValueError):
            eps = math.nan
        if not (math.isfinite(eps) and eps >= 0):
            raise ValueError(f"bn_eps={self.bn_eps!r}: expected a finite number >= 0, e.g. 1e-3 "
                             "(Keras) or 1e-5 (PyTorch)")
        object.__setattr__(self, "bn_eps", eps)

    def __str__(self) -> str:
        return f"padding={self.padding!r}, bn_eps={_eps(self.bn_eps)}"

    def code(self) -> str:
        """How to write these conventions in Python, for messages.

        Returns:
            E.g. ``"zoo.Conventions('same', 1e-3)"``.
        """
        return f"zoo.Conventions({self.padding!r}, {_eps(self.bn_eps)})"

    def labelled(self, source: str) -> "Conventions":
        """The same conventions with another ``source`` label.

        Args:
            source: the new label.

        Returns:
            A new ``Conventions``, equal to this one.
        """
        return dataclasses.replace(self, source=source)

    def options(self) -> dict:
        """As ``zoo.build``/``zoo.create`` options: ``padding``, ``bn_eps``.

        Returns:
            ``{"padding": ..., "bn_eps": ...}``.
        """
        return {"padding": self.padding, "bn_eps": self.bn_eps}

    def to_json(self) -> dict:
        """A JSON-able dict, as checkpoints record it.

        Returns:
            ``{"padding": ..., "bn_eps": ..., "source": ...}``.
        """
        return {"padding": self.padding, "bn_eps": self.bn_eps, "source": self.source}

    @classmethod
    def from_json(cls, data: Any, where: str = "recorded conventions") -> "Conventions":
        """The inverse of ``to_json``.

        Args:
            data: a mapping with ``"padding"`` and ``"bn_eps"`` (and
                optionally ``"source"``).
            where: what ``data`` came from, starting the error message.

        Returns:
            The ``Conventions`` it records.

        Raises:
            ValueError: ``data`` is not such a mapping or its values are
                invalid (one line naming ``where``).
        """
        if not isinstance(data, Mapping) or "padding" not in data or "bn_eps" not in data:
            raise ValueError(f"{where}: expected {{'padding': ..., 'bn_eps': ...}}, got "
                             f"{str(data)[:100]}")
        try:
            return cls(data["padding"], data["bn_eps"], str(data.get("source", "")))
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None


# Keras Applications build every stride-2 convolution with TF "same" padding
# (ZeroPadding2D(correct_pad) + "valid" is the same thing) and leave
# BatchNormalization at its default epsilon, 1e-3.
KERAS = Conventions("same", 1e-3, "converted from Keras")
# torch.nn.BatchNorm2d's default epsilon; torchvision pads k//2 on each side.
TORCHVISION = Conventions("symmetric", 1e-5, "converted from torchvision")


# The safetensors ``__metadata__`` key under which the zoo records conventions
# (metadata values are strings: the ``to_json`` dict, as JSON).
SAFETENSORS_KEY = "zoo_conventions"


def to_metadata(conventions: Conventions) -> dict[str, str]:
    """Safetensors ``__metadata__`` entries that record ``conventions``.

    Args:
        conventions: what the weights written beside them need.

    Returns:
        ``{"zoo_conventions": "<the to_json dict as JSON>"}``.
    """
    return {SAFETENSORS_KEY: json.dumps(conventions.to_json())}


def from_metadata(metadata: Mapping[str, str], where: str) -> Optional[Conventions]:
    """The conventions recorded by ``to_metadata`` in a safetensors file's
    ``__metadata__``, or None when it records none (a file not written by
    the zoo).

    Args:
        metadata: the file's ``__metadata__`` (string to string).
        where: the file, for messages.

    Returns:
        The recorded ``Conventions``, or None.

    Raises:
        ValueError: the entry is there but is not the JSON ``to_metadata``
            writes (the message names ``where`` and the key).
    """
    text = metadata.get(SAFETENSORS_KEY)
    if text is None:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        data = text
    return Conventions.from_json(data, f"{where}: __metadata__ {SAFETENSORS_KEY}")


def conventions_of(model, source: str = "") -> Conventions:
    """The conventions ``model`` (a zoo flax Module) was built with.

    Args:
        model: a zoo Flax Module with ``settings`` (e.g. from ``zoo.build``).
        source: the label of the result.

    Returns:
        ``Conventions(model.settings.padding, model.settings.bn_eps, source)``.
    """
    settings = model.settings
    return Conventions(settings.padding, settings.bn_eps, source)


def declared(default: Conventions, conventions: Optional[Conventions] = None,
             padding: Optional[str] = None, bn_eps: Optional[float] = None) -> Conventions:
    """What a reader records: ``conventions`` if given, else ``default``
    with ``padding``/``bn_eps`` replaced where given (the readers' options
    always meant "the conventions of these weights").

    Args:
        default: the reader's conventions, e.g. ``KERAS``.
        conventions: the caller's explicit conventions, or None.
        padding: replaces ``default.padding`` when given.
        bn_eps: replaces ``default.bn_eps`` when given.

    Returns:
        The conventions to record on the weights.

    Raises:
        ValueError: ``conventions`` given together with ``padding`` or ``bn_eps``.
    """
    if conventions is not None:
        if padding is not None or bn_eps is not None:
            raise ValueError("give conventions=... or padding=/bn_eps=, not both")
        return conventions
    changed = {k: v for k, v in (("padding", padding), ("bn_eps", bn_eps)) if v is not None}
    return dataclasses.replace(default, **changed) if changed else default


class Weights(dict):
    """A model's variables (``{"params": ..., "batch_stats": ...}``) and the
    ``Conventions`` they need, as ``.conventions``.

    It is a dict, so everything that takes variables takes it; it is a JAX
    pytree whose structure includes the conventions, so ``tree_map``,
    ``device_put`` and ``jit`` keep them. ``.variables`` is the plain dict,
    without conventions: applying that to a model built otherwise is the
    explicit way to run the weights under other conventions.

    Args:
        variables: the variables dict, or anything ``dict()`` accepts
            (pairs, another mapping).
        conventions: the ``Conventions`` they need; None records none.
    """

    def __init__(self, variables: Any = (), conventions: Optional[Conventions] = None):
        super().__init__(variables)
        self.conventions = conventions

    @property
    def variables(self) -> dict:
        """The variables as a plain dict, without conventions."""
        return dict(self)

    def __repr__(self) -> str:
        return f"Weights({sorted(self)}, {self.conventions})"


def _flatten_with_keys(w: Weights):
    keys = tuple(sorted(w))
    return [(jax.tree_util.DictKey(k), w[k]) for k in keys], (keys, w.conventions)


def _flatten(w: Weights):
    keys = tuple(sorted(w))
    return [w[k] for k in keys], (keys, w.conventions)


def _unflatten(aux, children) -> Weights:
    keys, conventions = aux
    return Weights(zip(keys, children), conventions)


jax.tree_util.register_pytree_with_keys(Weights, _flatten_with_keys, _unflatten, _flatten)


def _serialize_aux(aux) -> bytes:
    keys, conventions = aux
    return json.dumps({"keys": list(keys),
                       "conventions": conventions and conventions.to_json()}).encode()


def _deserialize_aux(data: bytes):
    d = json.loads(data)
    c = d["conventions"]
    return tuple(d["keys"]), None if c is None else Conventions.from_json(c)


# So a function exported with jax.export that takes Weights serialises.
jax_export.register_pytree_node_serialization(
    Weights, serialized_name="zoo.weights.Weights", serialize_auxdata=_serialize_aux,
    deserialize_auxdata=_deserialize_aux)


def tag(variables: Mapping, conventions: Optional[Conventions]) -> Any:
    """``variables`` as ``Weights`` carrying ``conventions`` (a plain dict
    when they are None).

    Args:
        variables: the variables mapping.
        conventions: the conventions to attach, or None.

    Returns:
        ``Weights``, or a plain ``dict`` copy when ``conventions`` is None.
    """
    if conventions is None:
        return dict(variables)
    return Weights(variables, conventions)


def check_apply(model, variables) -> None:
    """Refuse ``variables`` whose recorded conventions are not the ones
    ``model`` was built with (one line naming both and the fix). Plain
    dicts record none and pass.

    Args:
        model: a zoo Flax Module with ``settings``.
        variables: the variables about to be applied.

    Raises:
        ConventionsMismatchError: ``variables.conventions`` differ from the
            model's padding or BatchNorm epsilon.
    """
    need = getattr(variables, "conventions", None)
    if need is None:
        return
    have = conventions_of(model)
    if need != have:
        name = getattr(model, "model_name", "NAME")
        raise ConventionsMismatchError(
            f"weights {need.source or 'given'} need {need}; the model was built with {have}: "
            f"build it with zoo.create({name!r}, weights=...), or apply weights.variables to "
            "run them under the model's conventions anyway")
