"""The `batchnorm` model transform: BatchNorm after every conv/linear layer but the output layer.

Multi-Prize Tickets / biprop (Diffenderfer & Kailkhura, ICLR 2021) put BatchNorm, with or without a
learned affine, after every layer of their conv nets; the conv nets of this package have none. Recorded
in `ModelSpec.extra["transforms"]` as {"name": "batchnorm", "affine": bool}, so tickets rebuild with it
and the default architectures (and their digests) stay unchanged. Plain nn.BatchNorm2d/1d, readable by
every exporter.
"""

from __future__ import annotations

from torch import nn

from compress.errors import UsageError
from compress.models.transforms import register


def add_batchnorm(model: nn.Module, affine: bool = True) -> nn.Module:
    """A copy of a sequential `model` with BatchNorm2d/1d after each Conv2d/Linear except the last layer."""
    if any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in model.modules()):
        raise UsageError(f"{type(model).__name__} already has BatchNorm layers; not adding a second set. Pass "
                         "--bn none (MPT) to use the model's own.")
    if not isinstance(model, nn.Sequential):
        raise UsageError(f"BatchNorm can only be inserted into sequential models (nn.Sequential); "
                         f"{type(model).__name__} is not one. Use a registered conv net (conv2..conv8) or lenet, "
                         "or a model with its own BatchNorm and --bn none.")
    layers = [i for i, m in enumerate(model) if isinstance(m, (nn.Conv2d, nn.Linear))]
    out: list[nn.Module] = []
    for i, m in enumerate(model):
        out.append(m)
        if layers and i == layers[-1]:
            continue
        if isinstance(m, nn.Conv2d):
            out.append(nn.BatchNorm2d(m.out_channels, affine=affine))
        elif isinstance(m, nn.Linear):
            out.append(nn.BatchNorm1d(m.out_features, affine=affine))
    return nn.Sequential(*out)


@register("batchnorm")
def _transform(model: nn.Module, cfg: dict) -> nn.Module:
    return add_batchnorm(model, bool(cfg.get("affine", True)))
