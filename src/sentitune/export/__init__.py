"""Export models for fast inference (ONNX, int8)."""
