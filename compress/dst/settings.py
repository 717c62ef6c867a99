"""Settings of dynamic sparse training (RigL, SET, static sparse), torch-free: the CLI builds flags from them.

Defaults follow RigL (Evci et al., ICML 2020) and its public code (google-research/rigl): drop fraction
alpha 0.3 annealed with a cosine to 0 at 75% of training, ERK layer densities, mask updates every 100
steps, SGD with Nesterov momentum 0.9, lr 0.2 divided by 3 twice, L2 1e-4, batch 100 (its MNIST recipe).
The reference trains 200 epochs of 60,000 MNIST digits (120,000 steps, lr drops at epochs 75 and 95);
on this CPU the default budget is 100 epochs of the 3,500 training digits of mnist5k (3,500 steps), with
the lr drops at the same fractions of training and `delta_t` scaled down with it (see `delta_t`).
"""

from __future__ import annotations

from dataclasses import dataclass

from compress.hparams import Hparams, setting
from compress.settings import TrainHparams

METHODS = ("rigl", "set", "static")
DISTRIBUTIONS = ("erk", "uniform")


def paper_train() -> TrainHparams:
    """RigL's MNIST recipe (rigl/mnist/mnist_train_eval.py) sized for this CPU: lr drops at 75/200 and 95/200."""
    return TrainHparams(optimizer="sgd", lr=0.2, momentum=0.9, nesterov=True, weight_decay=1e-4, batch_size=100,
                        epochs=100.0, schedule="step", milestones=(0.375, 0.475), gamma=1 / 3, eval_every=100)


@dataclass(frozen=True)
class DstHparams(Hparams):
    """One sparse training whose mask changes (RigL, SET) or not (static) at a fixed parameter count."""

    method: str = setting("rigl", choices=METHODS,
                          help="rigl: drop smallest |w|, grow largest dense-gradient |g|; set: grow at random; "
                               "static: keep the random starting mask.")
    distribution: str = setting("erk", choices=DISTRIBUTIONS,
                                help="Per-layer densities: erk (Erdős–Rényi-Kernel, layers that would exceed "
                                     "density 1 stay dense) or uniform.")
    sparsity: float = setting(0.9, lo=0.0, hi=1.0, hi_open=True,
                              help="Fraction of the prunable weights removed (kept fixed during training).")
    delta_t: int = setting(100, lo=1, help="Iterations between mask updates (RigL's ΔT).")
    t_end: float = setting(0.75, lo=0.0, hi=1.0, help="Fraction of training after which the mask stops changing.")
    alpha: float = setting(0.3, lo=0.0, hi=1.0, help="Initial drop fraction, annealed with a cosine to 0 at t_end.")
    dense_output: bool = setting(False, help="Keep the output layer dense; the sparsity then applies to the others "
                                             "(the reference MNIST setup).")
    train: TrainHparams = setting(factory=paper_train, help="How the sparse network is trained.")


__all__ = ["DISTRIBUTIONS", "METHODS", "DstHparams", "paper_train"]
