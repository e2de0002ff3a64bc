"""Model conversion: sources (built-in aliases, GGUF, HF folders, hub ids) to ONNX store entries.

Needs the ``convert`` extra (torch, transformers, optimum, onnx); the runtime never imports it.
"""
