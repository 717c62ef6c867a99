"""SynFlow: iterative synaptic flow (Tanaka, Kunin, Yamins & Ganguli, NeurIPS 2020). Data-free.

One scoring pass: on a copy with every parameter replaced by its absolute value (BatchNorm in eval),
R = sum(net(ones)) in float64, score = |theta * dR/dtheta|. The paper's point is iteration: prune a
little, rescore, repeat (100 times by default) with an exponential density schedule; that loop lives
in `compress.finders.pai.score_and_select` so it works with any selection.
"""

from __future__ import annotations

import torch
from torch import nn

from compress.errors import UsageError
from compress.scoring.batches import working_copy

iterations_default = 100


def synflow(model: nn.Module, input_shape: tuple[int, ...] | None = None, **_: object) -> dict[str, torch.Tensor]:
    if not input_shape:
        raise UsageError("scorer 'synflow' needs the shape of one input sample (input_shape), e.g. (1, 28, 28).")
    net, weights = working_copy(model, torch.float64)
    net.eval()
    with torch.no_grad():
        for t in net.state_dict().values():
            if t.is_floating_point():
                t.abs_()
    net(torch.ones(1, *input_shape, dtype=torch.float64)).sum().backward()
    return {n: (w.detach() * w.grad).abs().float() if w.grad is not None else torch.zeros_like(w, dtype=torch.float32)
            for n, w in weights.items()}
