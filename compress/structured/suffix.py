"""Evaluate many gatings of one unit group in a single pass, re-running only the network after the group.

Greedy forward selection scores ~50 candidate units per step, each a full forward of a minibatch. The part
of the network before the group's consumers does not depend on the candidate, so it runs once: the model
is traced with torch.fx, every node's value on the minibatch is kept, and only the nodes downstream of the
consumers run again, with the candidates stacked along the batch (candidate-major). Values from outside
that part (a residual shortcut, say) are repeated per candidate. The gate multiplies what each consumer
reads of each unit, i.e. the unit's output after its BatchNorm and activation (the reference code's mask
layer sits right after the activation).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from compress.errors import UsageError
from compress.structured.units import UnitGroup

Env = dict[fx.Node, Any]


class SuffixRunner:
    """Run `model` once on a minibatch (`prefix`), then the nodes after `group`'s consumers for K gate
    vectors at once (`logits`). Use in eval mode under no_grad; the model must not change in between."""

    def __init__(self, model: nn.Module, group: UnitGroup) -> None:
        try:
            self.gm = fx.symbolic_trace(model)
        except Exception as e:  # noqa: BLE001 - fx raises many types for forwards it cannot trace
            raise UsageError(f"greedy forward selection traces the forward with torch.fx to re-run only the layers "
                             f"after '{group.name}', and {type(model).__name__}'s forward cannot be traced "
                             f"({type(e).__name__}: {str(e).splitlines()[0]}).") from e
        self.group = group
        self.modules = dict(self.gm.named_modules())
        nodes = list(self.gm.graph.nodes)
        by_name = {c.name: c for c in group.consumers}
        self.consumers = {n: by_name[str(n.target)] for n in nodes
                          if n.op == "call_module" and str(n.target) in by_name}
        called = [str(n.target) for n in self.consumers]
        if sorted(called) != sorted(by_name):
            raise UsageError(f"the units of '{group.name}' are read by {', '.join(sorted(by_name))}, but the traced "
                             f"forward calls {', '.join(sorted(called)) or 'none of them'} (each exactly once is "
                             "needed to gate them).")
        self.down: list[fx.Node] = []
        downstream: set[fx.Node] = set()
        batch_dep: set[fx.Node] = {n for n in nodes if n.op == "placeholder"}
        for n in nodes:
            if n in self.consumers or any(a in downstream for a in n.all_input_nodes):
                downstream.add(n)
                self.down.append(n)
            if any(a in batch_dep for a in n.all_input_nodes):
                batch_dep.add(n)
        self.downstream, self.batch_dep = downstream, batch_dep
        self.index = {n: (torch.tensor(c.positions), torch.tensor(c.units)) for n, c in self.consumers.items()}

    def _call(self, node: fx.Node, args: tuple, kwargs: dict) -> Any:
        if node.op == "call_module":
            return self.modules[str(node.target)](*args, **kwargs)
        if node.op == "call_function":
            return node.target(*args, **kwargs)
        if node.op == "call_method":
            obj, *rest = args
            return getattr(obj, str(node.target))(*rest, **kwargs)
        if node.op == "get_attr":
            out: Any = self.gm
            for part in str(node.target).split("."):
                out = getattr(out, part)
            return out
        raise AssertionError(node.op)

    def prefix(self, x: torch.Tensor) -> Env:
        """Every node's value for the minibatch `x` (the ungated network)."""
        env: Env = {}
        for node in self.gm.graph.nodes:
            if node.op == "placeholder":
                env[node] = x
            elif node.op != "output":
                args = fx.node.map_arg(node.args, lambda n: env[n])
                kwargs = fx.node.map_arg(node.kwargs, lambda n: env[n])
                env[node] = self._call(node, args, kwargs)
        return env

    def _repeat(self, env: Env, node: fx.Node, k: int) -> Any:
        value = env[node]
        if node not in self.batch_dep:
            return value
        if not isinstance(value, torch.Tensor):
            raise UsageError(f"the forward computes {node.name} = {value!r} from the input batch and uses it after the "
                             f"layers of '{self.group.name}'; candidate units are scored as a stacked batch, which "
                             "such a value cannot follow. Use x.flatten(1) / nn.Flatten instead of sizes taken from "
                             "the input.")
        return value.repeat(k, *([1] * (value.ndim - 1)))

    def logits(self, env: Env, gates: torch.Tensor) -> torch.Tensor:
        """Logits (K, B, classes) of the network with the group's units scaled by each row of `gates` (K, size)."""

        def gated(node: fx.Node, x: torch.Tensor) -> torch.Tensor:
            k = gates.shape[0]
            pos, units = self.index[node]
            g = torch.ones(k, x.shape[1], dtype=x.dtype)
            g[:, pos] = gates[:, units].to(x.dtype)
            xs = x.unsqueeze(0) * g.view(k, 1, x.shape[1], *([1] * (x.ndim - 2)))
            return self._call(node, (xs.reshape(k * x.shape[0], *x.shape[1:]),), {})

        return self.run(env, gates.shape[0], gated)

    def run(self, env: Env, k: int, consumer: Callable[[fx.Node, torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """Logits (K, B, classes): each consumer's output for the K stacked variants is `consumer(node, its
        input on the minibatch)`, shape (K * B, ...); everything after it runs on the stacked batch."""
        new: Env = {}

        def fetch(n: fx.Node) -> Any:
            return new[n] if n in self.downstream else self._repeat(env, n, k)

        for node in self.down:
            if node.op == "output":
                out = fx.node.map_arg(node.args[0], fetch)
                return out.view(k, -1, *out.shape[1:])
            if node in self.consumers:
                new[node] = consumer(node, env[node.args[0]])
            else:
                args = fx.node.map_arg(node.args, fetch)
                kwargs = fx.node.map_arg(node.kwargs, fetch)
                new[node] = self._call(node, args, kwargs)
        raise AssertionError("the traced graph has no output node")

    def scores(self, env: Env, gates: torch.Tensor, y: torch.Tensor,
               max_chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean cross-entropy, top-1 accuracy) on the minibatch, one per row of `gates`."""
        per = max(1, max_chunk // max(1, len(y)))
        return _loss_acc([self.logits(env, gates[i:i + per]) for i in range(0, gates.shape[0], per)], y)


def _loss_acc(chunks: list[torch.Tensor], y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    losses, accs = [], []
    for z in chunks:
        kk = z.shape[0]
        ce = F.cross_entropy(z.reshape(-1, z.shape[-1]), y.repeat(kk), reduction="none").view(kk, -1)
        losses.append(ce.mean(1))
        accs.append((z.argmax(-1) == y.view(1, -1)).float().mean(1))
    return torch.cat(losses), torch.cat(accs)


__all__ = ["SuffixRunner"]
