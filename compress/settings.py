"""Setting groups shared by methods: training, pruning, sanity-check controls (torch-free).

Each group is a frozen `Hparams` whose fields carry their defaults, help text and rules (`setting`); a
method nests the groups it uses. Nothing here imports torch: the `lottery` command builds its flags from
these classes before any model exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from compress.errors import UsageError
from compress.hparams import Hparams, check_range, setting

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "step")
CONTROLS = ("reinit", "random")
NM_POLICIES = ("fail", "dense")


@dataclass(frozen=True)
class TrainHparams(Hparams):
    """How a network is trained (defaults: the LTH paper's LeNet-300-100 recipe, sized for 4,000 digits)."""

    optimizer: str = setting("adam", choices=OPTIMIZERS, help="Optimizer.")
    lr: float = setting(1.2e-3, lo=0.0, lo_open=True,
                        help="Learning rate (conv2-8 default to the LTH paper's 2e-4/3e-4 unless set).")
    momentum: float = setting(0.9, lo=0.0, hi=1.0, help="SGD momentum.")
    nesterov: bool = setting(False, help="SGD with Nesterov momentum.")
    weight_decay: float = setting(0.0, lo=0.0, hi=1.0, help="Weight decay (L2 for sgd/adam, decoupled for adamw).")
    batch_size: int = setting(60, lo=1, help="Training batch size.")
    epochs: float = setting(20.0, lo=0.0, help="Training epochs (ignored when iterations > 0).")
    iterations: int = setting(0, lo=0, help="Training iterations; > 0 overrides epochs.")
    schedule: str = setting("constant", choices=SCHEDULES, help="Learning-rate schedule.")
    milestones: tuple[float, ...] = setting((0.5, 0.75), help="Step schedule: fractions of training where lr drops.")
    gamma: float = setting(0.1, lo=0.0, lo_open=True, help="Step schedule: lr factor at each milestone.")
    warmup_iterations: int = setting(0, lo=0, help="Linear learning-rate warm-up iterations.")
    eval_every: int = setting(25, lo=1, digest=False, help="Iterations between validation passes.")

    def validate(self) -> None:
        if self.iterations == 0 and self.epochs <= 0:
            raise UsageError(f"train for a positive number of epochs or iterations (epochs={self.epochs}, "
                             f"iterations={self.iterations}).")
        for m in self.milestones:
            check_range("milestones entries", m, 0.0, 1.0, lo_open=True, hi_open=True)

    def total_iterations(self, n_train: int) -> int:
        if self.iterations > 0:
            return self.iterations
        steps_per_epoch = -(-n_train // self.batch_size)
        return max(1, round(self.epochs * steps_per_epoch))


@dataclass(frozen=True)
class PruneHparams(Hparams):
    """Which weights a pruning step removes and how scores become a mask."""

    rate: float = setting(0.2, help="Fraction of the remaining weights removed per round.")
    selection: str = setting("layerwise", help="How scores become a mask: layerwise, global, erk, or an N:M "
                                              "pattern such as 2:4 (finetune: empty keeps the ticket's mask).")
    output_rate_factor: float = setting(0.5, help="The output layer is pruned at rate x this (LTH paper: 0.5).")
    layer_rates: tuple[str, ...] = setting((), flag="layer-rate", help="Per-layer rate NAME=RATE (NAME may be a glob).")
    exclude: tuple[str, ...] = setting((), help="Layers never pruned: NAME, glob, first or last.")
    allow_collapse: bool = setting(False, help="Keep a mask that empties or disconnects a layer.")
    nm_policy: str = setting("fail", choices=NM_POLICIES,
                             help="N:M on a layer whose input size is not a multiple of M: fail, or leave it dense.")

    def options(self) -> dict[str, object]:
        """Keyword options `prune` passes on to the selection and the collapse guard."""
        return {"allow_collapse": self.allow_collapse, "nm_policy": self.nm_policy}

    def validate(self) -> None:
        check_range("rate", self.rate, 0.0, 1.0, lo_open=True, hi_open=True)
        check_range("output_rate_factor", self.output_rate_factor, 0.0, 1.0 / self.rate)
        for item in self.layer_rates:
            name, sep, value = item.partition("=")
            if not sep or not name:
                raise UsageError(f"layer rate '{item}' must look like NAME=RATE, e.g. fc1.weight=0.3.")
            try:
                check_range(f"rate of {name}", float(value), 0.0, 1.0, hi_open=True)
            except ValueError as e:
                raise UsageError(f"layer rate '{item}': '{value}' is not a number.") from e
        valid = ("layerwise", "global", "erk", "")
        if ":" in self.selection:
            from compress.sparsity import nm

            nm.parse(self.selection)
        elif self.selection not in valid:
            raise UsageError(f"selection must be one of layerwise, global, erk or an N:M pattern such as 2:4; "
                             f"got '{self.selection}'.")


@dataclass(frozen=True)
class ControlHparams(Hparams):
    """Sanity checks (Ma et al., NeurIPS 2021): a ticket is `winning` only if it beats every control."""

    controls: tuple[str, ...] = setting(CONTROLS, help="Controls trained beside each ticket: reinit (same mask, "
                                                       "new init), random (random mask, same layer densities).")
    tolerance: float = setting(0.005, lo=0.0, hi=1.0, digest=False,
                               help="Allowed drop below dense accuracy for a 'winning' ticket.")
    margin: float = setting(0.005, lo=-1.0, hi=1.0, digest=False,
                            help="Lead over each control needed for a 'winning' ticket.")
    stacked: bool = setting(True, digest=False,
                            help="Train the controls (in IMP: with the tickets of every seed of a level) together "
                                 "as one stacked model: the same results within float tolerance, faster for small "
                                 "models. Used only where it is faster and fits in memory; false: one after another.")

    def validate(self) -> None:
        bad = [c for c in self.controls if c not in CONTROLS]
        if bad:
            raise UsageError(f"unknown control(s) {', '.join(bad)}; valid: {', '.join(CONTROLS)} (or none).")


__all__ = ["CONTROLS", "OPTIMIZERS", "SCHEDULES", "ControlHparams", "PruneHparams", "TrainHparams"]
