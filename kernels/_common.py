"""Pieces every kernel file shares: activations by name, the implementation
switch, the Pallas target (Mosaic TPU or Triton GPU, interpret mode on CPU),
the record of shapes that fall back to the reference, and a custom VJP whose
backward pass is the reference's.

Imports jax only; knows nothing of models.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from typing import Callable, Optional

import jax
import jax.numpy as jnp

IMPLEMENTATIONS = ("auto", "reference", "xla_fast", "pallas")
TARGETS = ("tpu", "triton")


# ------------------------------------------------------------- activations


def hard_sigmoid(x):
    return jnp.minimum(jnp.maximum(x + 3.0, 0.0), 6.0) * (1.0 / 6.0)


def hard_swish(x):
    return x * hard_sigmoid(x)


def _swish(x):
    # x * sigmoid(x) written with exp and a division only, so it lowers in
    # Triton and Mosaic alike and matches jax.nn.swish to float rounding.
    return x / (1.0 + jnp.exp(-x))


def _sigmoid(x):
    return 1.0 / (1.0 + jnp.exp(-x))


ACTIVATIONS: dict[Optional[str], Callable] = {
    None: lambda x: x,
    "relu": lambda x: jnp.maximum(x, 0.0),
    "relu6": lambda x: jnp.minimum(jnp.maximum(x, 0.0), 6.0),
    "swish": _swish,
    "hard_swish": hard_swish,
    "sigmoid": _sigmoid,
    "hard_sigmoid": hard_sigmoid,
}
TRANSCENDENTAL = {"swish", "sigmoid"}  # one exp per element


def act_fn(name: Optional[str]) -> Callable:
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; known: "
                         f"{sorted(k for k in ACTIVATIONS if k)} or None") from None


# ------------------------------------------------------ implementation switch


def resolve_implementation(implementation: str, backend: str | None = None) -> str:
    """The concrete form ``implementation`` stands for on ``backend``.

    ``auto``: ``xla_fast`` on CPU (XLA:CPU's grouped convolution is the slow
    path), ``reference`` on GPU/TPU, where cuDNN and the TPU compiler run the
    plain forms well and the Pallas kernels have not been timed on hardware
    yet (no accelerator is lent to this project); ask for ``pallas`` by name.

    Args:
        implementation: one of ``IMPLEMENTATIONS``: ``"auto"``,
            ``"reference"``, ``"xla_fast"`` or ``"pallas"``.
        backend: a JAX backend name (``"cpu"``, ``"gpu"``, ``"tpu"``...);
            None means ``jax.default_backend()``. Only read for ``"auto"``.

    Returns:
        ``"reference"``, ``"xla_fast"`` or ``"pallas"``: ``implementation``
        itself unless it is ``"auto"``.

    Raises:
        ValueError: if ``implementation`` is not one of ``IMPLEMENTATIONS``.
    """
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(
            f"implementation={implementation!r} is not one of {IMPLEMENTATIONS}")
    if implementation != "auto":
        return implementation
    backend = backend or jax.default_backend()
    return "xla_fast" if backend == "cpu" else "reference"


_override = threading.local()


@contextlib.contextmanager
def lowering_target(target: str):
    """Within this context ``pallas`` builds the compiled (not interpreted)
    kernel for ``target`` ("tpu" or "triton") whatever the local backend:
    for ``jax.export(..., platforms=["tpu"] / ["cuda"])`` from a CPU machine.

    The choice is made while tracing: trace inside the context, with a
    function jit has not traced before (jit caches traces per function).
    The setting is per thread and the previous one comes back on exit.

    Args:
        target: ``"tpu"`` (Mosaic) or ``"triton"`` (GPU).

    Yields:
        None; the override holds until the ``with`` block ends.

    Raises:
        ValueError: if ``target`` is not one of ``TARGETS``.

    Example:
        ::

            with kernels.lowering_target("tpu"):
                jax.export.export(jax.jit(f), platforms=["tpu"], disabled_checks=...)(x)
    """
    if target not in TARGETS:
        raise ValueError(f"target={target!r} is not one of {TARGETS}")
    old = getattr(_override, "target", None)
    _override.target = target
    try:
        yield
    finally:
        _override.target = old


def pallas_target(target: Optional[str] = None) -> tuple[str, bool]:
    """Which Pallas kernel variant to build and whether to run it in
    interpret mode.

    On TPU: Mosaic; on GPU: Triton; on CPU (no compiled Pallas backend) the
    TPU variant in interpret mode unless ``target`` says otherwise; a
    ``target`` foreign to the backend runs interpreted too. Inside
    ``lowering_target(t)``: ``(t, False)``, whatever ``target`` says.

    Args:
        target: ``"tpu"``, ``"triton"``, or None for the backend's own
            variant (``"tpu"`` on CPU).

    Returns:
        ``(target, interpret)``: the variant name and True when it must run
        in the Pallas interpreter.

    Raises:
        ValueError: if ``target`` is neither None nor one of ``TARGETS``
            (outside ``lowering_target``).
    """
    forced = getattr(_override, "target", None)
    if forced is not None:
        return forced, False
    if target is not None and target not in TARGETS:
        raise ValueError(f"target={target!r} is not one of {TARGETS}")
    backend = jax.default_backend()
    native = {"tpu": "tpu", "gpu": "triton", "cuda": "triton", "rocm": "triton"}.get(backend)
    target = target or native or "tpu"
    # A variant for another backend than this one (or any variant on CPU)
    # runs in interpret mode: testable everywhere.
    return target, target != native


# ------------------------------------------------------ fallback bookkeeping


@dataclasses.dataclass(frozen=True)
class Fallback:
    """One shape that ran the reference instead of a Pallas kernel.

    Attributes:
        op: the op's name, e.g. ``"depthwise_conv_bn_act"``.
        target: the Pallas variant that could not take it, ``"tpu"`` or
            ``"triton"``.
        shape: the problem's key: ``(input shape, (kh, kw), stride, dtype)``
            for ``depthwise_conv_bn_act``, ``(input shape, (K, N), has
            residual, dtype)`` for ``pointwise_conv``, ``(input shape, R,
            dtype)`` for ``squeeze_excite``; dtype as its name.
        reason: why no kernel plan fits, e.g. the VMEM working set over budget.
    """

    op: str
    target: str
    shape: tuple
    reason: str


_fallbacks: dict[tuple, Fallback] = {}
_lock = threading.Lock()


def record_fallback(op: str, target: str, shape: tuple, reason: str) -> None:
    with _lock:
        _fallbacks[(op, target, shape)] = Fallback(op, target, tuple(shape), reason)


def fallbacks() -> list[Fallback]:
    """Every (op, target, shape) that ran the reference instead of a Pallas
    kernel in this process, with the reason.

    Returns:
        The recorded ``Fallback`` entries, one per distinct (op, target,
        shape), sorted by op, target and shape.
    """
    with _lock:
        return sorted(_fallbacks.values(), key=lambda f: (f.op, f.target, f.shape))


# ------------------------------------------------------------ budgets

# Per-grid-step working set (inputs and outputs, double-buffered) we allow
# a Mosaic TPU kernel: the default scoped VMEM limit (16 MiB on v5e; 32 MiB
# on v4/v5p/v6e), so a kernel never needs a raised limit.
TPU_VMEM_BUDGET = 16 * 2**20
# Elements one Triton program holds in registers per live tensor: keeps the
# register file (64K 32-bit registers per SM, 255 per thread) from spilling.
TRITON_TILE_ELEMENTS = 4096


# ------------------------------------------------------------ gradients


def with_reference_vjp(forward: Callable, reference: Callable) -> Callable:
    """``forward`` in the forward pass, the reference's VJP in the backward
    pass (Pallas kernels have no automatic derivative)."""

    @jax.custom_vjp
    def f(*args):
        return forward(*args)

    def f_fwd(*args):
        return forward(*args), args

    def f_bwd(args, g):
        _, vjp = jax.vjp(reference, *args)
        return vjp(g)

    f.defvjp(f_fwd, f_bwd)
    return f


def round_up(n: int, m: int) -> int:
    return -(-n // m) * m


def next_pow2(n: int) -> int:
    """The smallest power of two at least ``n`` (1 for ``n <= 1``)."""
    return 1 << max(0, (n - 1).bit_length())


def pow2_divisor(n: int, cap: int) -> int:
    """Largest power of two dividing ``n``, at most ``cap``."""
    p = 1
    while n % (p * 2) == 0 and p * 2 <= cap:
        p *= 2
    return p


def itemsize(dtype) -> int:
    return jnp.dtype(dtype).itemsize
