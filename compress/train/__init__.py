"""Training: `train(model, data, hp, mask)`, `evaluate`, `predict`."""

from compress.train.hparams import TrainHparams
from compress.train.loop import TrainResult, evaluate, predict, train

__all__ = ["TrainHparams", "TrainResult", "evaluate", "predict", "train"]
