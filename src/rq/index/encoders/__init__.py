"""Sentence encoders: sentence-transformers on torch (exact) and ONNX Runtime (fast start),
the export between them, and the one factory that picks which a command uses.
"""
