"""BiP's settings (torch-free): one frozen dataclass, the only home of its defaults and help text.

Defaults are sized for LeNet-300-100 on mnist5k; the public code's CIFAR values (OPTML-Group/BiP,
configs/CIFAR10/bip.yml) are named in the help where they differ.
"""

from __future__ import annotations

from dataclasses import dataclass

from compress.errors import UsageError
from compress.hparams import Hparams, setting
from compress.settings import ControlHparams, TrainHparams

BILEVEL_OPTIMIZERS = ("sgd", "mrbo", "vrbo")


@dataclass(frozen=True)
class BipHparams(Hparams):
    """Pretrain dense -> bilevel pruning (mask = global top-k of scores) -> optional finetune (Zhang et al., NeurIPS
    2022), with the bilevel optimizers of Yang, Ji & Liang (NeurIPS 2021)."""

    density: float = setting(0.05, lo=0.0, hi=1.0, lo_open=True,
                             help="Fraction of the prunable weights kept: exactly round(density * total).")
    bilevel_optimizer: str = setting("sgd", choices=BILEVEL_OPTIMIZERS,
                                     help="Bilevel updates: sgd (BiP's own: one SGD step on weights, one on "
                                          "scores), mrbo or vrbo (Yang, Ji & Liang, NeurIPS 2021).")
    lower_lr: float = setting(0.05, lo=0.0, lo_open=True,
                              help="Weights' learning rate during pruning (lower level; BiP CIFAR: 0.1).")
    upper_lr: float = setting(1.0, lo=0.0, lo_open=True,
                              help="Scores' learning rate (upper level; BiP CIFAR: 0.1). mrbo/vrbo take plain steps "
                                   "(no heavy-ball momentum): give them about 10x (benchmark: lower 0.3, upper 10).")
    momentum: float = setting(0.9, lo=0.0, hi=1.0, hi_open=True,
                              help="Heavy-ball momentum of the sgd optimizer (BiP: 0.9); mrbo/vrbo use their "
                                   "own recursive estimators instead.")
    gamma: float = setting(1e-4, lo=0.0, help="Lower-level L2 coefficient: theta*(m) = argmin loss(m*theta) "
                                              "+ gamma/2 |theta|^2 (BiP: weight decay 1e-4).")
    implicit_scale: float = setting(1e-4, lo=0.0,
                                    help="Coefficient of the implicit-gradient term -c * grad(theta)^2 in the "
                                         "scores' gradient. The paper's derivation gives 1/gamma; the public "
                                         "code decouples it (lr2 = 1e-4). 0 drops the term (first-order only).")
    batch_size: int = setting(128, lo=1, help="Minibatch of each bilevel step (BiP: 128).")
    prune_epochs: float = setting(6.0, lo=0.0, lo_open=True, help="Bilevel pruning epochs.")
    finetuned: bool = setting(True, help="Finetune the pruned net with `finetune` (BiP: optional except at "
                                         "extreme sparsity); false: the ticket's weights are the pruning phase's "
                                         "m * theta.")
    mrbo_m: float = setting(50.0, lo=0.0, lo_open=True, help="MRBO: eta_k = (m / (m + k))^(1/3).")
    mrbo_c: float = setting(0.9, lo=0.0, help="MRBO: momentum weights alpha_{k+1} = beta_{k+1} = c * eta_k^2.")
    vrbo_period: int = setting(10, lo=1, help="VRBO: large-batch refresh every q steps.")
    vrbo_inner_steps: int = setting(1, lo=0, help="VRBO: recursive lower steps per outer step.")
    vrbo_large_batch: int = setting(1000, lo=1, help="VRBO: refresh batch size.")
    pretrain: TrainHparams = setting(factory=TrainHparams, prefix="pretrain-", model_defaults=True,
                                     help="Dense pretraining (level 0). The dense baseline's defaults: in a pipeline "
                                          "whose dense stage trained the same way, that network is reused.")
    finetune: TrainHparams = setting(factory=TrainHparams, prefix="finetune-", model_defaults=True,
                                     help="Finetuning of the pruned net, and the training of the controls.")
    controls: ControlHparams = setting(factory=ControlHparams, prefix="", help="Sanity-check controls of the ticket.")

    def validate(self) -> None:
        if self.density >= 1.0:
            raise UsageError(f"density must be below 1 (it is the fraction of weights kept), got {self.density}.")

    def ticket_train(self) -> TrainHparams:
        """The recipe a ticket's controls train with: `finetune`, or without a finetune the `pretrain` recipe (so
        the controls still get a real budget)."""
        return self.finetune if self.finetuned else self.pretrain


__all__ = ["BILEVEL_OPTIMIZERS", "BipHparams"]
