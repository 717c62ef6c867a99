"""Training: `train(model, data, hp, mask)`, `evaluate`, `predict`.

`TrainHparams` is torch-free (compress.settings); the loop is imported on first use, so settings code can
import this package without paying for torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from compress.settings import TrainHparams

if TYPE_CHECKING:
    from compress.train.loop import TrainResult, evaluate, predict, train

_LAZY = {"TrainResult", "evaluate", "predict", "train"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from compress.train import loop

        return getattr(loop, name)
    raise AttributeError(f"module 'compress.train' has no attribute {name!r}")


__all__ = ["TrainHparams", "TrainResult", "evaluate", "predict", "train"]
