"""Run exported files in their own runtimes: the LiteRT interpreter (with its
default XNNPACK delegate) for ``.tflite`` and onnxruntime (CPU provider) for
``.onnx``. Both take and return numpy arrays; outputs come back as a dict by
name, in the order of the file's signature."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Union

import numpy as np

from zoo.timing import time_calls


def litert_interpreter():
    """LiteRT's ``Interpreter`` class, or an ImportError naming the extra.

    Returns:
        ``ai_edge_litert.interpreter.Interpreter``.

    Raises:
        ImportError: if LiteRT (the ``litert`` extra) is not installed.
    """
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise ImportError("running .tflite files needs LiteRT: pip install -e '.[litert]'") from None
    return Interpreter


def litert_runner(path: Union[str, Path], num_threads: int = 2) -> Callable[[np.ndarray], dict]:
    """A function that runs a ``.tflite`` file in LiteRT (default XNNPACK
    delegate).

    Args:
        path: the ``.tflite`` file.
        num_threads: the interpreter's threads.

    Returns:
        ``run(x) -> {output name: array}``: ``x`` is cast to float32; the
        names and their order are the file's first signature's, or the
        output tensors' when it has none.

    Raises:
        ImportError: if LiteRT is not installed.
    """
    interp = litert_interpreter()(model_path=str(path), num_threads=num_threads)
    sigs = interp.get_signature_list()
    if sigs:
        key = next(iter(sigs))
        runner = interp.get_signature_runner(key)
        in_name = sigs[key]["inputs"][0]
        out_names = sigs[key]["outputs"]

        def run(x):
            res = runner(**{in_name: np.asarray(x, np.float32)})
            return {k: np.asarray(res[k]) for k in out_names}
        return run
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]["index"]
    outs = [(d["name"], d["index"]) for d in interp.get_output_details()]

    def run(x):
        interp.set_tensor(inp, np.asarray(x, np.float32))
        interp.invoke()
        return {n: interp.get_tensor(i) for n, i in outs}
    return run


def onnx_runner(path: Union[str, Path], num_threads: int = 2) -> Callable[[np.ndarray], dict]:
    """A function that runs an ``.onnx`` file in onnxruntime (CPU provider).

    Args:
        path: the ``.onnx`` file.
        num_threads: intra-op threads (inter-op: 1).

    Returns:
        ``run(x) -> {output name: array}``: ``x`` is cast to float32 and fed
        to the first input; outputs in the session's order.

    Raises:
        ImportError: if onnxruntime is not installed.
    """
    try:
        import onnxruntime as ort
    except ImportError:
        raise ImportError("running .onnx files needs onnxruntime: "
                          "pip install -e '.[convert]'") from None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = num_threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    in_name = sess.get_inputs()[0].name
    out_names = [o.name for o in sess.get_outputs()]

    def run(x):
        return dict(zip(out_names, sess.run(None, {in_name: np.asarray(x, np.float32)})))
    return run


def runner(path: Union[str, Path], num_threads: int = 2) -> Callable[[np.ndarray], dict]:
    """A runner for ``path`` chosen by its suffix.

    Args:
        path: a ``.tflite`` file (run by ``litert_runner``) or an ``.onnx``
            file (``onnx_runner``).
        num_threads: the runtime's threads.

    Returns:
        ``run(x) -> {output name: array}`` taking a float32 batch of the
        file's input shape.

    Raises:
        ValueError: if the suffix is neither ``.tflite`` nor ``.onnx``.

    Example:
        ::

            run = runner("mobilenet_v2_224_float32.tflite")
            logits = run(x)["output"]          # x: (1, 224, 224, 3) float32
            print(latency_ms(run, x))
    """
    suffix = Path(path).suffix
    if suffix == ".tflite":
        return litert_runner(path, num_threads)
    if suffix == ".onnx":
        return onnx_runner(path, num_threads)
    raise ValueError(f"{path}: expected a .tflite or .onnx file")


def latency_ms(run: Callable[[np.ndarray], dict], x: np.ndarray, runs: int = 20,
               warmup: int = 3) -> float:
    """Median wall time (ms) of ``runs`` calls, timed by the benchmark suite's
    loop (``zoo.timing``); both runtimes return host arrays, so a call has
    finished when it returns.

    Args:
        run: a runner from ``runner``.
        x: the input of every call.
        runs: timed calls.
        warmup: untimed calls first.

    Returns:
        The median of the timed calls, in milliseconds.
    """
    return time_calls(lambda: run(x), runs, warmup)["p50_ms"]
