"""Errors of the export and deploy path; all are `LotteryError`s (one paragraph, exit code 2 in the CLI)."""

from __future__ import annotations

from compress.errors import LotteryError


class ExportError(LotteryError):
    """A model the exporter cannot write (an op it cannot handle, an opset too old for the graph)."""


class VerificationError(LotteryError):
    """An exported artifact whose outputs disagree with PyTorch (or with its dense twin): not written."""


class ArtifactError(LotteryError):
    """An artifact file (`.onnx`, `.plan`, ...) that is corrupt, foreign or missing its metadata."""


class ProviderError(LotteryError):
    """An execution provider (CUDA, TensorRT EP) that was requested but is not active."""
