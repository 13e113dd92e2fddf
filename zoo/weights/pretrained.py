"""``load_pretrained(name)``: the spec's weight source -> verified cached file
-> reader for its format -> our variables."""

from __future__ import annotations

from typing import Optional

from zoo.registry import WeightSource, get_spec, list_models
from zoo.weights.conventions import Weights


def weight_source(name: str, origin: Optional[str] = None) -> WeightSource:
    """The spec's first weight source, or the first whose ``origin`` starts
    with ``origin`` (case-insensitive: "timm", "keras").

    Args:
        name: a registered model name.
        origin: a prefix of the wanted source's ``origin``; None takes the
            first source.

    Returns:
        The chosen ``WeightSource``.

    Raises:
        ValueError: the model has no weight sources (the message lists the
            models that have), or none from ``origin``.
        KeyError: ``name`` is not registered.
    """
    spec = get_spec(name)
    if not spec.weights:
        have = [n for n in list_models() if get_spec(n).weights]
        raise ValueError(f"no pretrained weights are registered for {name!r}; "
                         f"models with weights: {', '.join(have)}")
    if origin is None:
        return spec.weights[0]
    for source in spec.weights:
        if source.origin.lower().startswith(origin.lower()):
            return source
    raise ValueError(f"{name}: no weight source from {origin!r}; its sources: "
                     + ", ".join(repr(w.origin) for w in spec.weights))


def load_pretrained(name: str, origin: Optional[str] = None, *,
                    allow_unpinned: bool = False) -> Weights:
    """Real pretrained variables for ``name`` (downloaded once, verified by
    the spec's pinned hash, cached under ``$ZOO_CACHE``; ``ZOO_OFFLINE=1``
    never downloads). ``origin`` picks another of the spec's sources than
    the first, by who publishes it ("timm", "keras"). A source whose
    publisher gives no hash (``zoo info NAME`` shows ``unpinned``) is
    refused unless ``allow_unpinned=True`` (or ``ZOO_ALLOW_UNPINNED=1``);
    with it, the file is used as downloaded. The result is ``Weights``
    carrying the conventions the file needs: ``zoo.create(name,
    weights=...)`` builds the matching model.

    Args:
        name: a registered model name with weight sources (``zoo info NAME``).
        origin: pick the source whose origin starts with this, e.g.
            "timm" or "keras"; None takes the first.
        allow_unpinned: accept a source whose publisher gives no hash.

    Returns:
        ``Weights`` (``{"params": ..., "batch_stats": ...}``) whose
        conventions say "converted from" the source's origin (or, without
        one, where the file comes from).

    Raises:
        ValueError: no such weight source (from ``weight_source``).
        WeightError: the file cannot be fetched, verified or read, or does
            not fit the model (see ``zoo.weights.fetch.fetch`` and the
            readers).

    Example:
        ::

            variables = zoo.load_pretrained("efficientnet_lite0")
            model, variables = zoo.create("efficientnet_lite0", weights=variables)
    """
    from zoo.weights.fetch import fetch
    from zoo.weights.files import load_weight_file

    source = weight_source(name, origin)
    path = fetch(source, name=name, allow_unpinned=allow_unpinned)
    label = f"converted from {source.origin or source.where}"
    if source.format == "tflite":  # MediaPipe's models: each family maps its own graphs
        if get_spec(name).family == "selfie_segmentation":
            from zoo.models.selfie_segmentation import variables_from_tflite
        else:
            from zoo.models.blazeface import variables_from_tflite
        # The spec's conventions are those of the graph the mapping reads.
        return Weights(variables_from_tflite(path, name), get_spec(name).conventions.labelled(label))
    weights = load_weight_file(path, name)
    return Weights(weights, weights.conventions.labelled(label))
