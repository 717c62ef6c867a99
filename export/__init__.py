"""Writers of deployable artifacts (ONNX, TensorRT engines, LCE .tflite) and their parity checks."""
