"""``load_pretrained(name)``: the spec's weight source -> verified cached file
-> reader for its format -> our variables."""

from __future__ import annotations

from zoo.registry import get_spec, list_models


def load_pretrained(name: str) -> dict:
    """Real pretrained variables for ``name`` (downloaded once, verified by
    SHA-256, cached under ``$ZOO_CACHE``; ``ZOO_OFFLINE=1`` never downloads)."""
    from zoo.weights.fetch import fetch
    from zoo.weights.torch import from_torch
    from zoo.weights.torch_pickle import load_safetensors, load_torch

    spec = get_spec(name)
    if not spec.weights:
        have = [n for n in list_models() if get_spec(n).weights]
        raise ValueError(f"no pretrained weights are registered for {name!r}; "
                         f"models with weights: {', '.join(have)}")
    source = spec.weights[0]
    path = fetch(source, name=name)
    readers = {"torch": load_torch, "safetensors": load_safetensors}
    if source.format not in readers:
        raise ValueError(f"{name}: weight format {source.format!r} has no reader yet")
    state = readers[source.format](path)
    return from_torch(state, name, source=str(path))
