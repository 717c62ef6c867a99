"""Binary conv/linear layers whose conventions the LCE export matches bit for bit.

Conventions (pinned by tests/compress/test_binary_layers.py):
- SIGN: sign(x) = +1 for x >= 0 and -1 for x < 0, so sign(0) = +1 (larq's `ste_sign`, LCE bit-packing).
- STE: the backward pass of sign is the straight-through estimator clipped at |x| <= 1 (larq's default).
- PADDING: a layer with binary activations pads its *binarized* input with +1 ("one-padding", larq
  `pad_values=1.0`, LCE's fast path). A layer with float activations pads with 0 as usual.
- PRUNED: positions where the `keep` buffer is False are exactly 0, so a pruned binary layer is ternary
  {-a, 0, +a}. Pruned weights are never turned into +1.
- SCALE: the effective weight is scale * sign(w) * keep, with scale the mean |w| over kept weights,
  per output channel (`channel`, XNOR-Net style), per layer (`layer`, MPT's alpha) or 1 (`none`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SCALES = ("channel", "layer", "none")


class _SignSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, clip: float) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.clip = clip
        return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= ctx.clip).to(grad.dtype), None


def sign(x: torch.Tensor) -> torch.Tensor:
    """sign with sign(0) = +1 (no gradient)."""
    return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))


def ste_sign(x: torch.Tensor, clip: float = 1.0) -> torch.Tensor:
    """sign(x) forward (sign(0) = +1), straight-through gradient where |x| <= clip (Courbariaux et al., 2016)."""
    return _SignSTE.apply(x, clip)


class BinaryMixin:
    """Shared state of binary layers: weight scale mode, binary activations, `keep` buffer (the mask)."""

    weight: nn.Parameter
    keep: torch.Tensor
    scale_mode: str
    binary_act: bool

    def _init_binary(self, scale: str, binary_act: bool) -> None:
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {', '.join(SCALES)}, got '{scale}'")
        self.scale_mode, self.binary_act = scale, binary_act
        self.register_buffer("keep", torch.ones_like(self.weight, dtype=torch.bool))

    def scale(self) -> torch.Tensor:
        """Mean |w| over kept weights: shape (out, 1, ...) for `channel`, scalar for `layer`, 1 for `none`."""
        keep = self.keep.to(self.weight.dtype)
        mag = self.weight.abs() * keep
        if self.scale_mode == "channel":
            dims = tuple(range(1, self.weight.ndim))
            return mag.sum(dims, keepdim=True) / keep.sum(dims, keepdim=True).clamp_min(1)
        if self.scale_mode == "layer":
            return mag.sum() / keep.sum().clamp_min(1)
        return torch.ones((), dtype=self.weight.dtype)

    def binary_weight(self) -> torch.Tensor:
        """scale * sign(w) * keep: exactly ternary when some weights are pruned."""
        return self.scale() * ste_sign(self.weight) * self.keep.to(self.weight.dtype)

    def extra_repr(self) -> str:  # shown by print(model)
        base = super().extra_repr()  # type: ignore[misc]
        return f"{base}, scale={self.scale_mode}, binary_act={self.binary_act}"


class BinaryConv2d(BinaryMixin, nn.Conv2d):
    """Conv2d with binary (or ternary, when pruned) weights and optional binary activations."""

    def __init__(self, *args, scale: str = "channel", binary_act: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if isinstance(self.padding, str) or self.padding_mode != "zeros":
            raise ValueError("binary convs take integer padding with padding_mode='zeros'")
        self._init_binary(scale, binary_act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.binary_weight()
        padding = self.padding
        if self.binary_act:
            x = ste_sign(x)
            ph, pw = self.padding  # type: ignore[misc]
            if ph or pw:
                x = F.pad(x, (pw, pw, ph, ph), value=1.0)  # one-padding: LCE/larq pad_values=1.0
            padding = (0, 0)
        return F.conv2d(x, w, self.bias, self.stride, padding, self.dilation, self.groups)


class BinaryLinear(BinaryMixin, nn.Linear):
    """Linear with binary (or ternary, when pruned) weights and optional binary activations."""

    def __init__(self, *args, scale: str = "channel", binary_act: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._init_binary(scale, binary_act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.binary_act:
            x = ste_sign(x)
        return F.linear(x, self.binary_weight(), self.bias)


BINARY_TYPES = (BinaryConv2d, BinaryLinear)


def from_float(layer: nn.Conv2d | nn.Linear, scale: str = "channel", binary_act: bool = False) -> nn.Module:
    """A binary copy of a float conv/linear layer (same weights, bias, geometry; `keep` from its zeros=none)."""
    factory = {"dtype": layer.weight.dtype}
    if isinstance(layer, nn.Conv2d):
        new: nn.Module = BinaryConv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride,
                                      layer.padding, layer.dilation, layer.groups, layer.bias is not None,
                                      layer.padding_mode, scale=scale, binary_act=binary_act, **factory)
    elif isinstance(layer, nn.Linear):
        new = BinaryLinear(layer.in_features, layer.out_features, layer.bias is not None, scale=scale,
                           binary_act=binary_act, **factory)
    else:
        raise TypeError(f"cannot binarize {type(layer).__name__}")
    with torch.no_grad():
        new.weight.copy_(layer.weight)
        if layer.bias is not None:
            new.bias.copy_(layer.bias)
    return new
