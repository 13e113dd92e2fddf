"""Exports for phones and other runtimes: TFLite (float32, float16, dynamic
int8, int8) and ONNX, with the op audit and the runtimes that check them.

    from conversions import to_tflite, to_onnx
    path = to_tflite("efficientnet_lite0", pretrained=True, quantization="int8")
    path = to_onnx("mobilenet_v2", pretrained=True)

Needs the ``convert`` extra (TensorFlow, tf2onnx, onnxruntime) and, to run
``.tflite`` files, ``litert``.
"""

from conversions.audit import AuditReport, audit_tflite
from conversions.export import ConversionError
from conversions.onnx import to_onnx
from conversions.runtime import latency_ms, litert_runner, onnx_runner, runner
from conversions.tflite import QUANTIZATIONS, read_metadata, to_tflite

__all__ = ["AuditReport", "ConversionError", "QUANTIZATIONS", "audit_tflite", "latency_ms",
           "litert_runner", "onnx_runner", "read_metadata", "runner", "to_onnx", "to_tflite"]
