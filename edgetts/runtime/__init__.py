"""The on-device runtime: ONNX Runtime sessions over model-store entries."""
