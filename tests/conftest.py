"""Shared fixtures: real (tiny) data, tiny models, fast training settings."""

from __future__ import annotations

import logging

import pytest
import torch

from compress import data as datasets
from compress.finders import ImpHparams, make_hparams
from compress.train import TrainHparams

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's real 8x8 digits: tiny, offline, trains in well under a second."""
    return datasets.get("digits")


@pytest.fixture
def fast_train() -> TrainHparams:
    return TrainHparams(epochs=1, batch_size=64, eval_every=5)


@pytest.fixture
def tiny_imp() -> ImpHparams:
    """LeNet-300-100 at width 0.25 on digits, 2 rounds, 1 epoch per training."""
    return make_hparams("imp", {"model.width": 0.25, "data.dataset": "digits", "train.epochs": 1,
                                "train.batch_size": 64, "train.eval_every": 5, "rounds": 2})


@pytest.fixture(autouse=True)
def _quiet_logs():
    logging.getLogger("lottery").setLevel(logging.WARNING)
