"""Fused MBConv (expand 1x1 -> depthwise kxk -> [SE] -> project 1x1 -> +
residual) as ONE GPU kernel: not written, and why, with numbers.

What the zoo runs instead, with ``implementation="pallas"``: three or four
fused kernels per block (``pointwise_conv`` expand with BN+act,
``depthwise_conv_bn_act``, ``squeeze_excite``, ``pointwise_conv`` project
with BN and the residual in its epilogue). Every BatchNorm, activation, gate
and residual is fused; what still goes through memory is the expanded
tensor, twice (expand -> depthwise, depthwise -> project), plus SE's read.

Why not one kernel on GPU (Triton, the GPU backend chosen in
``kernels.depthwise_conv``):

1. **Squeeze-excite is a grid-wide barrier.** The gate needs the mean of the
   depthwise output over the whole image before the project conv may start;
   Pallas grid programs are independent (no grid-wide sync on Triton), so an
   MBConv with SE (EfficientNet-B*, MobileNetV3) is at least two kernels on
   any backend. Only SE-free blocks (MobileNetV2, MobileNetV1,
   EfficientNet-Lite, MobileNetV3's SE-free blocks) could be one kernel.
2. **The depthwise taps need shifted views of an on-chip tensor, and Pallas
   Triton has neither.** The expanded activations would be produced inside
   the kernel; the k*k taps are shifted windows of them. Pallas's Triton
   lowering implements no ``lax.slice`` of a value ("Unimplemented primitive
   in Pallas Triton lowering: slice", checked on jax 0.10.2) and no scratch
   memory ("scratch memory not implemented in the Triton backend"), so the
   only way to shift is a store to global memory and shifted re-loads: the
   round trip fusion was meant to remove.
3. **The halo tile does not fit even if it could be shifted.** Triton tiles
   are powers of two. An 8x8 output tile needs a (8*s + k - s)-wide input
   window, 10/12 px at stride 1 (k = 3/5) and 17/19 px at stride 2, i.e. a
   16x16 or 32x32 power-of-two tile of the expanded tensor, E channels
   (E = 6 x input channels, padded to a power of two). ``halo_tile_bytes``
   computes it. Over the 291 depthwise shapes of the zoo's 25 models
   (``python -m benchmarks.kernels --mbconv-budget``) it runs from
   16x16x8x4 B = 8 KiB (8 channels, 3x3, stride 1) to 32x32x2048x4 B =
   8 MiB (1056-1344 channels padded to 2048, 5x5, stride 2); only 53 of the
   291 fit the ~127 KiB of registers a 4-warp program can hold (4 x 32 threads x
   255 registers x 4 B; the SM has 256 KiB). Streaming E in chunks of 32
   channels brings a chunk to 16-32 KiB at stride 1 and 64-128 KiB at
   stride 2, but the expand conv is then recomputed on the power-of-two halo
   window: (16x16)/(8x8) = 4x its FLOPs at stride 1 and (32x32)/(16x16) =
   4x at stride 2 (``expand_recompute_factor``) -- and point 2 still stands.

Mosaic GPU has shared memory and slicing but targets Hopper/Blackwell only;
Mosaic TPU has VMEM scratch and value slicing, so an SE-free fused block is
possible there (a row band of the image in VMEM: expand, taps, project) --
the natural next step, left for when a TPU can time it.
"""

from __future__ import annotations

REGISTER_FILE_BYTES = 64 * 1024 * 4      # per SM, all NVIDIA GPUs since Volta
PROGRAM_REGISTER_BYTES = 4 * 32 * 255 * 4  # one 4-warp program at 255 regs/thread


def _pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def halo_tile_bytes(expanded: int, k: int, stride: int, out_tile: int = 8,
                    chunk: int | None = None, itemsize: int = 4) -> int:
    """Bytes of the power-of-two expanded-activation tile a Triton program
    would hold to produce an ``out_tile`` x ``out_tile`` output tile of a
    fused MBConv (all channels, or ``chunk`` of them at a time).

    Args:
        expanded: channels of the expanded tensor E.
        k: the depthwise kernel's side.
        stride: the depthwise stride.
        out_tile: side of the square output tile, in pixels.
        chunk: channels held at a time when E is streamed in chunks; None
            holds all of them.
        itemsize: bytes per element (4 for float32).

    Returns:
        The tile's size in bytes: side * side * channels * itemsize, where
        side is the input window ``out_tile * stride + k - stride`` and
        channels is ``expanded`` (or ``chunk``, if fewer), each rounded up
        to a power of two.

    Example:
        ::

            halo_tile_bytes(16, 3, 1)                # 16 * 16 * 16 * 4 = 16 KiB
            halo_tile_bytes(1056, 5, 2, chunk=32)    # 32 * 32 * 32 * 4 = 128 KiB
    """
    window = out_tile * stride + k - stride
    side = _pow2(window)
    channels = _pow2(expanded if chunk is None else min(chunk, expanded))
    return side * side * channels * itemsize


def expand_recompute_factor(k: int, stride: int, out_tile: int = 8) -> float:
    """Expand-conv FLOPs of the fused tile over the unfused conv's, for the
    same output pixels (the power-of-two halo window is recomputed).

    Args:
        k: the depthwise kernel's side.
        stride: the depthwise stride.
        out_tile: side of the square output tile, in pixels.

    Returns:
        The ratio: the power-of-two window's pixels over the
        ``(out_tile * stride) ** 2`` input pixels the outputs need; 4.0 for
        3x3 at stride 1 and 5x5 at stride 2 with 8x8 tiles.
    """
    side = _pow2(out_tile * stride + k - stride)
    return side * side / (out_tile * out_tile * stride * stride)
