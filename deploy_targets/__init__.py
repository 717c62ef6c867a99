"""Where an artifact runs: ONNX Runtime, TensorRT, Larq Compute Engine (local or over SSH)."""
