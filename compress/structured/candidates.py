"""Greedy-step scoring without recomputing the consumers: they are linear in each unit.

At a greedy step every candidate network reads the same selected units S plus one candidate j, all at the
factor c = n / (|S| + 1). A consumer conv/linear layer's output is then c * (W x_S) + c * (W x_j) + b: W x_S is
computed once, and each candidate adds only its own unit's term (a grouped conv with one input channel per
candidate, or a small matmul over the candidate's flattened features). Everything after the consumers runs
on the stacked candidates as in `SuffixRunner.logits`; the result is the same up to float rounding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import fx, nn

from compress.structured.suffix import Env, SuffixRunner, _loss_acc


def _plain(module: nn.Module) -> bool:
    return isinstance(module, nn.Linear) or (isinstance(module, nn.Conv2d) and module.groups == 1
                                             and module.padding_mode == "zeros")


def _consumer_out(runner: SuffixRunner, node: fx.Node, x: torch.Tensor, selected: torch.Tensor,
                  cands: torch.Tensor, factor: float) -> torch.Tensor:
    m = runner.modules[str(node.target)]
    pos, units = runner.index[node]
    in_group = torch.zeros(x.shape[1], dtype=torch.bool)
    in_group[pos] = True
    base_gate = torch.where(in_group, 0.0, 1.0).to(x.dtype)
    base_gate[pos] = selected[units].to(x.dtype) * factor
    shape = (1, -1, *([1] * (x.ndim - 2)))
    k, b = len(cands), x.shape[0]
    if isinstance(m, nn.Conv2d):
        base = F.conv2d(x * base_gate.view(shape), m.weight, None, m.stride, m.padding, m.dilation)
        cpos = pos[(units.unsqueeze(0) == cands.unsqueeze(1)).float().argmax(1)]  # one channel per unit
        w = m.weight[:, cpos].transpose(0, 1).reshape(k * m.out_channels, 1, *m.kernel_size)
        own = F.conv2d(x[:, cpos], w, None, m.stride, m.padding, m.dilation, groups=k)
        own = own.view(b, k, m.out_channels, *own.shape[2:]).transpose(0, 1)
        bias = 0.0 if m.bias is None else m.bias.view(1, 1, -1, 1, 1)
    else:
        base = F.linear(x * base_gate.view(shape), m.weight)
        cols = torch.stack([pos[units == c] for c in cands.tolist()])  # (K, features per unit)
        own = torch.einsum("bkp,okp->kbo", x[:, cols], m.weight[:, cols])
        bias = 0.0 if m.bias is None else m.bias.view(1, 1, -1)
    out = base.unsqueeze(0) + factor * own + bias
    return out.reshape(k * b, *out.shape[2:])


def supports(runner: SuffixRunner) -> bool:
    """True when every consumer is a plain conv/linear whose units map to one channel (conv) or to the same
    number of features each (linear after flatten)."""
    for node in runner.consumers:
        m = runner.modules[str(node.target)]
        _, units = runner.index[node]
        counts = torch.bincount(units, minlength=runner.group.size)
        one_each = int(counts.min()) == int(counts.max()) and (int(counts.max()) == 1 or isinstance(m, nn.Linear))
        if not (_plain(m) and one_each):
            return False
    return True


def candidate_scores(runner: SuffixRunner, env: Env, selected: list[int], cands: list[int], y: torch.Tensor,
                     max_chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, accuracy) on the minibatch of each network `selected + [c]`, units at n / (|S| + 1), c in `cands`."""
    mask = torch.zeros(runner.group.size, dtype=torch.bool)
    mask[selected] = True
    factor = runner.group.size / (len(selected) + 1)
    c = torch.tensor(cands)
    per = max(1, max_chunk // max(1, len(y)))
    chunks = []
    for i in range(0, len(cands), per):
        part = c[i:i + per]
        chunks.append(runner.run(env, len(part), lambda node, x, p=part: _consumer_out(runner, node, x, mask, p,
                                                                                        factor)))
    return _loss_acc(chunks, y)


__all__ = ["candidate_scores", "supports"]
