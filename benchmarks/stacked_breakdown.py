"""Where a stacked training step's time goes, at 1 and at 2 threads (a section of imp_batched_mnist5k).

Six LeNet-300-100 trainings of one IMP level (2 seeds x ticket, reinit and random-mask control, 20% density)
for a few epochs, timed three ways in the same process at each thread count:
- one after another (`compress.train.train`), and stacked (`compress.train.stacked.train_stacked`);
- the stacked step's kernels alone, as many steps: the forward matmuls, the backward ones (input gradients of
  the hidden layers, every weight gradient) and the one fused Adam step over the members' parameters, with no
  loss, masking, evaluation, autograd or Python around them. Each matmul is the one the stacked layers run:
  batched over the members where that is bitwise what one member alone gets, else one per member
  (`compress.train.stack._exact`; at two threads the first layer's forward is one matmul per member). That time over the
  sequential time is the lowest stacked/sequential ratio this machine allows for the work, whatever the
  bookkeeping around the kernels costs.
And the float32 matmul limit at that thread count (`matmul_limit_flops`).
"""

from __future__ import annotations

import time
from typing import Any


def matmul_limit_flops(n: int = 4096, repeats: int = 5) -> float:
    """Best float32 FLOP/s of an n x n matmul on this process's threads."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = max(best, 2 * n**3 / (time.perf_counter() - t))
    return best


def _members(spec: Any, seeds: int = 2) -> list:
    import torch

    from compress import models
    from compress.mask import Mask
    from compress.train.stacked import Member

    out = []
    for seed in range(seeds):
        for kind in range(3):
            model = models.build(spec, seed=10 * seed + kind)
            g = torch.Generator().manual_seed(kind)
            mask = Mask({n: torch.rand(w.shape, generator=g) < 0.2 for n, w in models.prunable(model).items()})
            out.append(Member(model, mask, seed=seed))
    return out


def setup(threads: int, epochs: float, batch: int = 60) -> tuple[Any, Any, Any]:
    """Set the thread count; (mnist5k, the LeNet-300-100 spec, the level's training settings)."""
    import torch

    from compress import data as datasets
    from compress import models
    from compress.train import TrainHparams

    torch.set_num_threads(threads)
    ds = datasets.get("mnist5k")
    spec = models.ModelSpec("lenet_300_100", ds.input_shape, ds.num_classes)
    return ds, spec, TrainHparams(optimizer="adam", lr=1.2e-3, batch_size=batch, epochs=epochs)


def six_trainings(ds: Any, spec: Any, hp: Any, stacked: bool) -> tuple[float, list]:
    """(wall seconds, the trained members) of the level's six trainings, stacked or one after another."""
    from compress.train import train
    from compress.train.stacked import train_stacked

    group = _members(spec)
    t = time.perf_counter()
    if stacked:
        train_stacked(group, ds, hp)
    else:
        for m in group:
            train(m.model, ds, hp, mask=m.mask, seed=m.seed)
    return time.perf_counter() - t, group


def _kernels_s(spec: Any, members: int, batch: int, steps: int) -> float:
    """Seconds of `steps` stacked steps' matmuls and Adam alone (module docstring)."""
    import torch

    from compress import models
    from compress.train.stack import _exact, _fwd, _gw, _gx

    layers = [m for m in models.build(spec).modules() if isinstance(m, torch.nn.Linear)]
    g = torch.Generator().manual_seed(0)
    w = [torch.randn(members, lay.out_features, lay.in_features, generator=g) * 0.05 for lay in layers]
    b = [torch.zeros(members, lay.out_features) for lay in layers]
    params = [torch.nn.Parameter(t[i].clone()) for t in (*w, *b) for i in range(members)]
    for p in params:
        p.grad = torch.randn(p.shape, generator=g) * 1e-3
    opt = torch.optim.Adam(params, lr=1e-3, fused=True)
    x = torch.randn(members, batch, layers[0].in_features, generator=g)

    def step() -> None:  # each matmul batched where the stacked layers batch it, else one per member
        acts = [x]
        for wi, bi in zip(w, b, strict=True):
            acts.append(_fwd(acts[-1], wi, bi, batched=_exact(_fwd, acts[-1], wi, bi)).clamp_min_(0))
        grad = torch.randn_like(acts[-1])
        for i in reversed(range(len(w))):
            _gw(grad, acts[i], batched=_exact(_gw, grad, acts[i]))
            if i:
                grad = _gx(grad, w[i], batched=_exact(_gx, grad, w[i]))
        opt.step()

    step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return time.perf_counter() - t


def breakdown(threads: int, epochs: float = 3, batch: int = 60) -> dict[str, float]:
    """The three timings and the matmul limit at `threads` threads (module docstring)."""
    import torch

    from compress import models
    from compress.train import train
    from compress.train.stacked import train_stacked

    before = torch.get_num_threads()
    try:
        ds, spec, hp = setup(threads, epochs, batch)
        warm = _members(spec)
        train_stacked(warm, ds, hp.replace(epochs=0.5))
        train(warm[0].model, ds, hp.replace(epochs=0.5), mask=warm[0].mask)
        seq_s = six_trainings(ds, spec, hp, stacked=False)[0]
        stacked_s, group = six_trainings(ds, spec, hp, stacked=True)
        steps = hp.total_iterations(len(ds.y_train))
        kernels_s = _kernels_s(spec, len(group), batch, steps)
        weights = sum(w.numel() for w in models.prunable(group[0].model).values())
        limit = matmul_limit_flops() / (6 * weights)
        samples = len(group) * steps * batch
        return {"threads": threads, "members": len(group), "steps": steps, "sequential_s": round(seq_s, 3),
                "stacked_s": round(stacked_s, 3), "stacked_over_sequential": round(stacked_s / seq_s, 3),
                "kernels_s": round(kernels_s, 3), "kernels_over_sequential": round(kernels_s / seq_s, 3),
                "sequential_samples_per_s": round(samples / seq_s, 1),
                "stacked_samples_per_s": round(samples / stacked_s, 1),
                "matmul_limit_samples_per_s": round(limit, 1),
                "stacked_over_matmul_limit": round(samples / stacked_s / limit, 3)}
    finally:
        torch.set_num_threads(before)
