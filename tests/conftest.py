"""Shared fixtures: real (tiny) data, tiny models, fast training settings."""

from __future__ import annotations

import logging

import pytest
import torch

from compress import data as datasets
from compress.train import TrainHparams

torch.set_num_threads(1)  # tiny models: one thread is faster, and steady when the machine is shared

TINY_SCOPE = {"dataset": "digits", "width": 0.25}
TINY_TRAIN = {"epochs": 1, "batch_size": 64, "eval_every": 5}


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's real 8x8 digits: tiny, offline, trains in well under a second."""
    return datasets.get("digits")


@pytest.fixture
def fast_train() -> TrainHparams:
    return TrainHparams(epochs=1, batch_size=64, eval_every=5)


@pytest.fixture
def tiny_imp() -> dict:
    """`api.run("imp", **tiny_imp)`: LeNet-300-100 at width 0.25 on digits, 2 rounds, 1 epoch per training."""
    return {"scope": dict(TINY_SCOPE), "train": dict(TINY_TRAIN), "rounds": 2}


@pytest.fixture(autouse=True)
def _quiet_logs():
    logging.getLogger("lottery").setLevel(logging.WARNING)
