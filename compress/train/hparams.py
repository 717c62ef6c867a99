"""Training hyperparameters (defaults: the LTH paper's LeNet-300-100 recipe, sized for 4,000 digits)."""

from __future__ import annotations

from dataclasses import dataclass

from compress.errors import UsageError
from compress.hparams import NO_DIGEST, Hparams, check_range, field

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "step")


@dataclass(frozen=True)
class TrainHparams(Hparams):
    optimizer: str = "adam"
    lr: float = 1.2e-3
    momentum: float = 0.9          # SGD only
    nesterov: bool = False         # SGD only
    weight_decay: float = 0.0
    batch_size: int = 60
    epochs: float = 20.0
    iterations: int = 0            # > 0 overrides epochs
    schedule: str = "constant"
    milestones: tuple[float, ...] = (0.5, 0.75)  # step schedule: fractions of training
    gamma: float = 0.1
    warmup_iterations: int = 0
    eval_every: int = field(default=25, metadata=NO_DIGEST)  # iterations between validation passes

    def validate(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise UsageError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got '{self.optimizer}'.")
        if self.schedule not in SCHEDULES:
            raise UsageError(f"schedule must be one of {', '.join(SCHEDULES)}, got '{self.schedule}'.")
        if self.lr <= 0:
            raise UsageError(f"lr must be > 0, got {self.lr}.")
        if self.batch_size < 1:
            raise UsageError(f"batch_size must be >= 1, got {self.batch_size}.")
        if self.iterations < 0 or (self.iterations == 0 and self.epochs <= 0):
            raise UsageError(f"train for a positive number of epochs or iterations (epochs={self.epochs}, "
                             f"iterations={self.iterations}).")
        check_range("weight_decay", self.weight_decay, 0.0, 1.0)
        for m in self.milestones:
            check_range("milestones entries", m, 0.0, 1.0, lo_open=True, hi_open=True)

    def total_iterations(self, n_train: int) -> int:
        if self.iterations > 0:
            return self.iterations
        steps_per_epoch = -(-n_train // self.batch_size)
        return max(1, round(self.epochs * steps_per_epoch))
