"""The `LotteryError` family: bad input and broken state, shown by the CLI without a traceback.

Every message is one paragraph that names what was wrong and what is valid.
"""

from __future__ import annotations

from collections.abc import Iterable


class LotteryError(Exception):
    """Base of every error the user can act on. The CLI prints it and exits with code 2."""

    exit_code = 2


class UsageError(LotteryError):
    """A flag or argument outside its valid range."""


class UnknownNameError(LotteryError):
    """A registry lookup (model, dataset, finder, selection...) with a name that is not registered."""

    def __init__(self, kind: str, name: str, valid: Iterable[str], hint: str = "") -> None:
        self.kind, self.name, self.valid = kind, name, sorted(valid)
        msg = f"unknown {kind} '{name}'. Valid {kind}s: {', '.join(self.valid)}."
        super().__init__(msg + (f" {hint}" if hint else ""))


class DataError(LotteryError):
    """A dataset that cannot be loaded (missing files, bad arrays)."""


class ShapeMismatchError(LotteryError):
    """A model whose input does not fit the dataset's samples."""


class RunDirError(LotteryError):
    """A run directory holding a corrupt or foreign file, or missing a finished result."""


class BackendUnavailableError(LotteryError):
    """An optional backend (TensorRT, CUDA, LCE, ...) that is not installed or has no device here."""


class GateFailedError(LotteryError):
    """A pipeline gate whose measured value is worse than allowed."""

    exit_code = 1


class NonFiniteLossError(LotteryError):
    """Training produced a NaN or infinite loss; the message names the iteration and the usual fixes."""

    def __init__(self, iteration: int, total: int, loss: float, detail: str = "") -> None:
        self.iteration, self.total, self.loss = iteration, total, loss
        super().__init__(f"training stopped: the loss became {loss} at iteration {iteration} of {total}"
                         f"{f' ({detail})' if detail else ''}. Lower the learning rate, add warm-up, or check the "
                         "data for extreme values; nothing after this iteration was trained.")


class DistributedError(LotteryError):
    """A data-parallel job lost a rank (died, killed, unreachable) or could not start; the message says which."""

    exit_code = 3
