"""Settings shared by every ticket finder: model, data, training, pruning, sanity-check controls."""

from __future__ import annotations

from dataclasses import dataclass

from compress.errors import UsageError
from compress.hparams import NO_DIGEST, Hparams, field
from compress.settings import ControlHparams, PruneHparams, TrainHparams


@dataclass(frozen=True)
class ModelHparams(Hparams):
    model: str = "lenet_300_100"
    width: float = 1.0
    init: str = "default"

    def validate(self) -> None:
        if self.width <= 0:
            raise UsageError(f"width must be > 0, got {self.width}.")


@dataclass(frozen=True)
class DataHparams(Hparams):
    dataset: str = "mnist5k"
    data_root: str | None = field(default=None, metadata=NO_DIGEST)
    download: bool = field(default=False, metadata=NO_DIGEST)


@dataclass(frozen=True)
class FindHparams(Hparams):
    """Base of every finder's settings; finders add their own fields."""

    model: ModelHparams = field(default_factory=ModelHparams)
    data: DataHparams = field(default_factory=DataHparams)
    train: TrainHparams = field(default_factory=TrainHparams)
    prune: PruneHparams = field(default_factory=PruneHparams)
    controls: ControlHparams = field(default_factory=ControlHparams)
