"""``load_pretrained(name)``: the spec's weight source -> verified cached file
-> reader for its format -> our variables."""

from __future__ import annotations

from zoo.registry import get_spec, list_models


def load_pretrained(name: str) -> dict:
    """Real pretrained variables for ``name`` (downloaded once, verified by
    the spec's pinned hash, cached under ``$ZOO_CACHE``; ``ZOO_OFFLINE=1``
    never downloads)."""
    from zoo.weights.fetch import fetch
    from zoo.weights.files import load_weight_file

    spec = get_spec(name)
    if not spec.weights:
        have = [n for n in list_models() if get_spec(n).weights]
        raise ValueError(f"no pretrained weights are registered for {name!r}; "
                         f"models with weights: {', '.join(have)}")
    path = fetch(spec.weights[0], name=name)
    if spec.weights[0].format == "tflite":  # MediaPipe's Blaze models: mapping from the graph
        from zoo.models.blazeface import variables_from_tflite
        return variables_from_tflite(path, name)
    return load_weight_file(path, name)
