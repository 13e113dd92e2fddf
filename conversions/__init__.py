"""TFLite and ONNX export with parity checks (issue 5)."""
