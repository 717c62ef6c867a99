"""Data hyper-cleaning (Franceschi et al., 2017), the experiment of the MRBO/VRBO paper (Yang, Ji & Liang,
NeurIPS 2021) and of stocBiO (Ji, Yang & Liang, ICML 2021).

A fraction of the training labels is flipped. The upper variable is one weight logit lambda_i per
training sample; the lower variable is a linear classifier W (classes x (features + 1), bias last):

    g(lambda, W; B) = mean_{i in B} sigmoid(lambda_i) * CE(W x_i, noisy y_i) + reg * |W|^2
    f(lambda, W; V) = mean_{j in V} CE(W x_j, y_j)          (validation samples, clean labels)

Defaults as in the public code (JunjieYang97/MRVRBO mnist_exp.py): reg = 0.001, lambda_0 = 0, W_0
Kaiming-normal (fan_out). Departures: labels are flipped once per run (the code flips that fraction of a batch's
labels in place every time the batch is used, so the flips accumulate and the stored labels drift towards
uniformly random ones); each lambda_i weighs its own sample (the code updates a slice of lambda unrelated
to the batch it was computed on). The full list, with the experiment's other differences (data, metric,
clock), is `compress.bilevel.hypercleaning_reference.DIFFERENCES`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from compress.bilevel.problem import Tensors
from compress.data import Dataset
from compress.errors import UsageError


def flip_labels(y: torch.Tensor, fraction: float, num_classes: int, gen: torch.Generator) -> torch.Tensor:
    """A copy of `y` with exactly round(fraction * n) labels moved to another class, uniformly."""
    if not 0.0 <= fraction < 1.0:
        raise UsageError(f"label-noise fraction must be in [0, 1), got {fraction}.")
    out = y.clone()
    idx = torch.randperm(len(y), generator=gen)[: round(fraction * len(y))]
    out[idx] = (out[idx] + torch.randint(1, num_classes, (len(idx),), generator=gen)) % num_classes
    return out


def _with_bias(x: torch.Tensor) -> torch.Tensor:
    flat = x.reshape(len(x), -1)
    return torch.cat([flat, torch.ones(len(flat), 1, dtype=flat.dtype)], 1)


@dataclass
class HyperCleaning:
    """The hyper-cleaning problem on an in-memory data set (x: (lambda,), y: (W,))."""

    x_train: torch.Tensor
    y_noisy: torch.Tensor
    flipped: torch.Tensor  # bool per training sample
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    reg: float = 1e-3

    @classmethod
    def from_dataset(cls, data: Dataset, noise: float, seed: int = 0, reg: float = 1e-3) -> HyperCleaning:
        """Flip `noise` of the training labels (validation and test stay clean)."""
        gen = torch.Generator().manual_seed(seed)
        noisy = flip_labels(data.y_train, noise, data.num_classes, gen)
        return cls(_with_bias(data.x_train), noisy, noisy != data.y_train, _with_bias(data.x_val), data.y_val,
                   _with_bias(data.x_test), data.y_test, data.num_classes, reg)

    def init(self, seed: int = 0) -> tuple[Tensors, Tensors]:
        """(x0, y0): lambda = 0 (every weight 0.5) and a Kaiming-normal (fan_out) linear model."""
        gen = torch.Generator().manual_seed(seed)
        w = torch.randn(self.num_classes, self.x_train.shape[1], generator=gen) * (2.0 / self.num_classes) ** 0.5
        return [torch.zeros(len(self.y_noisy))], [w]

    def lower_loss(self, x: Tensors, y: Tensors, batch: torch.Tensor) -> torch.Tensor:
        ce = F.cross_entropy(self.x_train[batch] @ y[0].T, self.y_noisy[batch], reduction="none")
        return (torch.sigmoid(x[0][batch]) * ce).mean() + self.reg * (y[0] ** 2).sum()

    def upper_loss(self, x: Tensors, y: Tensors, batch: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.x_val[batch] @ y[0].T, self.y_val[batch])

    def sample_lower(self, size: int, gen: torch.Generator) -> torch.Tensor:
        return torch.randperm(len(self.y_noisy), generator=gen)[:size]

    def sample_upper(self, size: int, gen: torch.Generator) -> torch.Tensor:
        return torch.randperm(len(self.y_val), generator=gen)[:size]

    @torch.no_grad()
    def evaluate(self, x: Tensors, y: Tensors) -> dict[str, float]:
        """Full validation loss, test loss and accuracy, and how well the weights separate flipped samples
        (mean sigmoid(lambda) on clean minus on flipped training samples)."""
        w = y[0]
        test_logits = self.x_test @ w.T
        weights = torch.sigmoid(x[0])
        gap = float(weights[~self.flipped].mean() - weights[self.flipped].mean()) if self.flipped.any() else 0.0
        return {"val_loss": float(F.cross_entropy(self.x_val @ w.T, self.y_val)),
                "test_loss": float(F.cross_entropy(test_logits, self.y_test)),
                "test_acc": float((test_logits.argmax(1) == self.y_test).float().mean()), "weight_gap": gap}
