"""Training settings: defined once in compress.settings (torch-free); re-exported here for the training code."""

from compress.settings import OPTIMIZERS, SCHEDULES, TrainHparams

__all__ = ["OPTIMIZERS", "SCHEDULES", "TrainHparams"]
