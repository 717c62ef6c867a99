"""Training: `train(model, data, hp, mask, callbacks=, checkpoint_dir=)`, `evaluate`, `predict`, `Callback`.

`TrainHparams` is torch-free (compress.settings); the loop is imported on first use, so settings code can
import this package without paying for torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from compress.settings import TrainHparams

if TYPE_CHECKING:
    from compress.train.callbacks import Callback, LoopState
    from compress.train.loop import TrainResult, evaluate, predict, train

_LAZY = {"TrainResult": "loop", "evaluate": "loop", "predict": "loop", "train": "loop", "Callback": "callbacks",
         "LoopState": "callbacks"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"compress.train.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'compress.train' has no attribute {name!r}")


__all__ = ["Callback", "LoopState", "TrainHparams", "TrainResult", "evaluate", "predict", "train"]
