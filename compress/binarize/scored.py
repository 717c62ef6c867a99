"""Scored binary layers for the Multi-Prize Ticket search (Diffenderfer & Kailkhura, ICLR 2021; biprop).

The random weights are frozen (requires_grad=False). Each weight has a learned score; the forward pass
uses the top-k scored weights, binarized as alpha * sign(w) with alpha = mean |w| over the kept weights
of the layer. The top-k mask is a step function: its gradient is passed straight through to the scores
(edge-popup, Ramanujan et al., CVPR 2020). Scored layers subclass the binary layers of
compress.binarize.layers, so with `keep` = the top-k mask and scale "layer" a plain BinaryConv2d/BinaryLinear
computes exactly the same outputs: that is the form an MPT ticket is saved in.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from compress.binarize.layers import BinaryConv2d, BinaryLinear, BinaryMixin, sign
from compress.binarize.transform import all_layers, check_supported, prepare_binary_act
from compress.errors import UsageError
from compress.hparams import check_range
from compress.models.transforms import register

SCORE_INITS = ("kaiming_uniform", "kaiming_normal", "uniform")


class ScoredMixin(BinaryMixin):
    scores: nn.Parameter

    def _init_scores(self, score_init: str) -> None:
        self.weight.requires_grad_(False)
        if getattr(self, "bias", None) is not None:
            self.bias.requires_grad_(False)  # type: ignore[union-attr]
        self.scores = nn.Parameter(torch.empty_like(self.weight))
        init_scores(self.scores, score_init)

    def binary_weight(self) -> torch.Tensor:
        """alpha * sign(w) * topk-mask; the mask carries the straight-through gradient to the scores."""
        m = self.keep.to(self.weight.dtype)
        s = self.scores.abs()  # the top-k ranks |score|; the gradient flows through abs() as in edge-popup
        m_ste = m + (s - s.detach())  # value exactly = mask, gradient straight through to the scores
        alpha = (self.weight.abs() * m_ste).sum() / m.sum().clamp_min(1)
        return alpha * sign(self.weight) * m_ste


class ScoredConv2d(ScoredMixin, BinaryConv2d):
    def __init__(self, *args, score_init: str = "kaiming_uniform", **kwargs) -> None:
        super().__init__(*args, scale="layer", **kwargs)
        self._init_scores(score_init)


class ScoredLinear(ScoredMixin, BinaryLinear):
    def __init__(self, *args, score_init: str = "kaiming_uniform", **kwargs) -> None:
        super().__init__(*args, scale="layer", **kwargs)
        self._init_scores(score_init)


def init_scores(scores: torch.Tensor, how: str) -> None:
    """edge-popup's default is kaiming_uniform(a=sqrt(5)); the sign of a score does not matter (|s| ranks)."""
    with torch.no_grad():
        if how == "kaiming_uniform":
            nn.init.kaiming_uniform_(scores, a=math.sqrt(5))
        elif how == "kaiming_normal":
            nn.init.kaiming_normal_(scores)
        elif how == "uniform":
            nn.init.uniform_(scores, 0.0, 1.0)
        else:
            raise UsageError(f"score init must be one of {', '.join(SCORE_INITS)}, got '{how}'.")


def scored_layers(model: nn.Module) -> dict[str, ScoredMixin]:
    return {n: m for n, m in model.named_modules() if isinstance(m, ScoredMixin)}


@torch.no_grad()
def topk_masks(scores: dict[str, torch.Tensor], keep: float, selection: str = "layerwise",
               **options: object) -> dict[str, torch.Tensor]:
    """The kept weights by |score| through compress.selection (deterministic ties; layerwise, global, erk or an
    N:M pattern, whose pattern fixes the density), `keep` = fraction of weights kept."""
    from compress.mask import Mask
    from compress.selection import get

    check_range("keep", keep, 0.0, 1.0, lo_open=True)
    magnitudes = {n: s.detach().abs() for n, s in scores.items()}
    full = Mask({n: torch.ones_like(s, dtype=torch.bool) for n, s in scores.items()})
    return dict(get(selection)(magnitudes, full, {n: 1.0 - keep for n in scores}, **options))


def update_masks(model: nn.Module, keep: float, selection: str) -> None:
    """Recompute every scored layer's `keep` buffer from its scores."""
    layers = scored_layers(model)
    masks = topk_masks({n: m.scores for n, m in layers.items()}, keep, selection)
    for n, m in layers.items():
        m.keep.copy_(masks[n])


def scored_model(model: nn.Module, keep: float, act: str = "float", selection: str = "layerwise",
                 score_init: str = "kaiming_uniform", layers: list[str] | None = None) -> nn.Module:
    """Swap `layers` (default: all conv/linear) for scored layers, frozen weights; masks refresh each forward."""
    names = all_layers(model) if layers is None else list(layers)
    check_supported(model, names)
    binary_act = set(prepare_binary_act(model, names)) if act == "binary" else set()
    modules = dict(model.named_modules())
    for name in names:
        old = modules[name]
        kw = {"binary_act": name in binary_act, "score_init": score_init, "bias": old.bias is not None}
        if isinstance(old, nn.Conv2d):
            new: nn.Module = ScoredConv2d(old.in_channels, old.out_channels, old.kernel_size, old.stride, old.padding,
                                          old.dilation, old.groups, **kw)
        else:
            new = ScoredLinear(old.in_features, old.out_features, **kw)
        with torch.no_grad():
            new.weight.copy_(old.weight)
            if old.bias is not None:
                new.bias.copy_(old.bias)
        parent_name, _, child = name.rpartition(".")
        setattr(modules[parent_name] if parent_name else model, child, new)
    model.register_forward_pre_hook(lambda mod, _inp: update_masks(mod, keep, selection))
    update_masks(model, keep, selection)
    return model


@register("scored")
def _transform(model: nn.Module, cfg: dict) -> nn.Module:
    return scored_model(model, cfg["keep"], cfg.get("act", "float"), cfg.get("selection", "layerwise"),
                        cfg.get("score_init", "kaiming_uniform"), cfg.get("layers"))
