"""Settings of the structured methods (torch-free): greedy forward selection, its baselines, the verdict.

GFS follows Ye, Gong, Nie, Zhou, Klivans, Liu, "Good Subnetworks Provably Exist: Pruning via Greedy Forward
Selection" (ICML 2020) and its public code (lushleaf/Network-Pruning-Greedy-Forward-Selection). Where a
default differs from the reference code, the help text says so and why (a CPU budget, 4,000 digits).
"""

from __future__ import annotations

from dataclasses import dataclass

from compress.errors import UsageError
from compress.hparams import Hparams, setting
from compress.settings import TrainHparams

KEEP_HELP = ("Fraction of each layer's units (conv channels, linear neurons) kept: max(1, round(n x keep)), the "
             "rounding of the models' width multiplier, so keep 0.25 gives the shape of the model at width 0.25.")
LAYERS_HELP = ("Layers (module names) whose units are removed; empty = every hidden layer whose units are not "
               "added to other layers' outputs (residual streams stay whole, as in Li et al. 2017 for ResNets).")


def _finetune() -> TrainHparams:
    return TrainHparams(epochs=10.0)


def _layer_train() -> TrainHparams:
    return TrainHparams(epochs=1.0)


@dataclass(frozen=True)
class GfsSettings(Hparams):
    """Greedy forward selection (Ye et al., ICML 2020), layer by layer from the input on a trained network."""

    keep: float = setting(0.5, lo=0.0, hi=1.0, lo_open=True, help=KEEP_HELP + " GFS stops a layer at this width.")
    candidates: int = setting(50, lo=1, help="Units whose loss is evaluated per greedy step, drawn at random from "
                                             "those not selected yet (paper and reference code: 50).")
    batch_size: int = setting(64, lo=1, flag="select-batch-size",
                              help="Training samples in the minibatch of each greedy step (a fresh one per step). "
                                   "Reference code: 128; 64 here to fit a 2-core CPU budget.")
    top1_tol: float = setting(0.0, lo=0.0, hi=1.0,
                              help="Also stop a layer once its training accuracy recovers to (1 - top1_tol) x the "
                                   "accuracy before it was emptied (reference code: 0.02, with no width target); "
                                   "0 = stop at the target width only.")
    skip_eval: float = setting(0.05, lo=0.0, hi=1.0,
                               help="With top1_tol > 0: the recovery check on eval_samples runs only once the "
                                    "step's minibatch accuracy is within this fraction of the start (reference "
                                    "code: 0.05).")
    eval_samples: int = setting(1000, lo=1, help="Training samples of the recovery check and of the accuracies "
                                                 "logged per layer (reference code: every 200th training image).")
    layers: tuple[str, ...] = setting((), help=LAYERS_HELP)
    rescale: bool = setting(True, help="Hand each layer on as the selection scored it, its kept units multiplied by "
                                       "n/|S| (paper and reference code); off = the kept units at their trained "
                                       "scale (the selection still scores the rescaled average). Measured at 25% "
                                       "kept: Conv-4 0.960 on, 0.945 off (random 0.939); LeNet 0.933 on, 0.938 off "
                                       "(random 0.937) (benchmarks/structured_gfs_rescale.py).")
    train_multiplier: bool = setting(True, help="Finetune with the n/|S| rescaling as a fixed multiplier before the "
                                                "next layer, as the reference code's mask layer does; off = folded "
                                                "into that layer's weights first (the same function; without "
                                                "BatchNorm, Adam then trains the rescaled net worse: Conv-4 at 25% "
                                                "kept 0.922 against 0.960, benchmarks/structured_gfs_rescale.py).")
    max_chunk: int = setting(256, lo=1, digest=False,
                             help="Samples evaluated at once (candidates x batch): bounds memory, not the result.")
    layer_train: TrainHparams = setting(factory=_layer_train, model_defaults=True,
                                        help="Short finetune of the whole network after each layer (reference code: "
                                             "0.1 epoch of ImageNet; 1 epoch of the 3,500 training digits here).")
    finetune: TrainHparams = setting(factory=_finetune, model_defaults=True,
                                     help="Finetune of the shrunk network at the end.")

    def validate(self) -> None:
        if self.top1_tol == 0.0 and self.keep == 1.0:
            raise UsageError("GFS with keep 1 and top1_tol 0 would keep every unit; lower keep (a target width) "
                             "or set top1_tol > 0 (stop when training accuracy recovers).")


@dataclass(frozen=True)
class OneShotSettings(Hparams):
    """One-shot structured pruning of a trained network, then finetuning: L1-norm filters (Li et al., ICLR 2017)
    or random units (the control every structured method must beat)."""

    keep: float = setting(0.5, lo=0.0, hi=1.0, lo_open=True, help=KEEP_HELP)
    layers: tuple[str, ...] = setting((), help=LAYERS_HELP)
    finetune: TrainHparams = setting(factory=_finetune, help="Finetune of the shrunk network.")


@dataclass(frozen=True)
class SmallDenseSettings(Hparams):
    """The paper's control: the small architecture (the model at width `keep`) trained from scratch."""

    keep: float = setting(0.5, lo=0.0, hi=1.0, lo_open=True, help=KEEP_HELP)
    train: TrainHparams = setting(factory=TrainHparams, help="Training from scratch (default: the dense budget).")


@dataclass(frozen=True)
class VerdictSettings(Hparams):
    """When a structured method 'wins': it must beat every control by `margin` (mean over seeds)."""

    controls: tuple[str, ...] = setting(("random", "small_dense", "l1"),
                                        help="Controls the method must beat: random, small_dense, l1.")
    margin: float = setting(0.0, lo=-1.0, hi=1.0, digest=False,
                            help="Lead in test accuracy (fraction) over each control's mean needed to win.")

    def validate(self) -> None:
        bad = [c for c in self.controls if c not in ("random", "small_dense", "l1")]
        if bad:
            raise UsageError(f"unknown control(s) {', '.join(bad)}; valid: random, small_dense, l1.")


__all__ = ["GfsSettings", "OneShotSettings", "SmallDenseSettings", "VerdictSettings"]
