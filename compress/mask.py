"""`Mask`: state_dict name -> bool tensor over a model's prunable weights (True = kept)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from compress.errors import RunDirError, ShapeMismatchError
from compress.io import read_tensors, write_tensors
from compress.models import prunable


class Mask(dict[str, torch.Tensor]):
    """Validated on construction: bool tensors only. Pruning returns a new mask; masks only shrink."""

    def __init__(self, data: dict[str, torch.Tensor] | None = None) -> None:
        super().__init__()
        for name, t in (data or {}).items():
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"mask entry '{name}' is {type(t).__name__}, not a tensor")
            self[name] = t.detach().to(torch.bool).cpu()

    @classmethod
    def ones_like(cls, model: nn.Module) -> Mask:
        return cls({n: torch.ones_like(w, dtype=torch.bool) for n, w in prunable(model).items()})

    @property
    def kept(self) -> int:
        return int(sum(int(m.sum()) for m in self.values()))

    @property
    def total(self) -> int:
        return int(sum(m.numel() for m in self.values()))

    @property
    def density(self) -> float:
        return self.kept / max(1, self.total)

    def layer_density(self) -> dict[str, float]:
        return {n: float(m.float().mean()) for n, m in self.items()}

    def check(self, model: nn.Module) -> None:
        """Raise `ShapeMismatchError` unless every entry names a prunable weight of the same shape."""
        weights = prunable(model)
        for name, m in self.items():
            if name not in weights:
                raise ShapeMismatchError(f"mask entry '{name}' is not a prunable weight of the model; "
                                         f"prunable weights: {', '.join(weights)}.")
            if tuple(m.shape) != tuple(weights[name].shape):
                raise ShapeMismatchError(f"mask entry '{name}' has shape {tuple(m.shape)}, the weight "
                                         f"{tuple(weights[name].shape)}.")

    @torch.no_grad()
    def apply(self, model: nn.Module) -> nn.Module:
        """Zero the pruned weights of `model` in place and return it."""
        self.check(model)
        weights = prunable(model)
        for name, m in self.items():
            weights[name].mul_(m.to(weights[name].dtype))
        return model

    def is_subset_of(self, other: Mask) -> bool:
        return self.keys() == other.keys() and all(bool((self[k] <= other[k]).all()) for k in self)

    def save(self, path: str | Path) -> Path:
        return self.write(path)[0]

    def write(self, path: str | Path) -> tuple[Path, str]:
        """Save as uint8 safetensors; returns the path and the sha256 of the bytes written."""
        return write_tensors(path, {k: v.to(torch.uint8) for k, v in self.items()}, {"kind": "lottery.mask"})

    @classmethod
    def load(cls, path: str | Path) -> Mask:
        return cls.read(path)[0]

    @classmethod
    def read(cls, path: str | Path) -> tuple[Mask, str]:
        """The mask in `path` and the sha256 of the bytes it was parsed from."""
        tensors, digest = read_tensors(path)
        bad = [k for k, v in tensors.items() if v.dtype != torch.uint8 or bool((v > 1).any())]
        if bad:
            raise RunDirError(f"{path} is not a lottery mask: entries {', '.join(bad[:5])} are not 0/1. "
                              "It was left untouched.")
        return cls(tensors), digest
