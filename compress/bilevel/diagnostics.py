"""How good the stochastic estimates of a bilevel optimizer are, measured against full-batch quantities.

MRBO and VRBO (Yang, Ji & Liang, NeurIPS 2021) pay extra oracle calls for recursive estimates (STORM,
SPIDER) whose point is a smaller error than a fresh minibatch estimate of the same size. Whether they get
it depends on the mean-squared smoothness of the minibatch gradients: a recursive correction is a
difference of one batch's gradients at two points, and its variance relative to the full-batch difference
is what the paper's bounds carry as L^2. These functions measure both, for the benchmark's explanation.
"""

from __future__ import annotations

import torch

from compress.bilevel.hypergrad import neumann_with_lower
from compress.bilevel.problem import Batch, BilevelProblem, Tensors, lin, norm


def _relative(estimate: Tensors, exact: Tensors) -> float:
    return norm(lin((1.0, estimate), (-1.0, exact))) / max(norm(exact), 1e-30)


def estimate_errors(problem: BilevelProblem, x: Tensors, y: Tensors, u: Tensors, v: Tensors, full: tuple[Batch, Batch],
                    batches: tuple[int, ...], gen: torch.Generator, eta: float, q: int) -> dict[str, float]:
    """Relative errors |est - exact| / |exact| at (x, y) of an optimizer's lower-gradient estimate `u` and
    hypergradient estimate `v`, and of a fresh minibatch estimate of each size in `batches` at the same point.
    `full` = (upper, lower) batches holding every sample: the exact (Neumann, same eta and q) reference."""
    exact_u, exact_v = neumann_with_lower(problem, x, y, *full, eta, q)
    out = {"u_error": _relative(u, exact_u), "v_error": _relative(v, exact_v)}
    for b in batches:
        fresh_u, fresh_v = neumann_with_lower(problem, x, y, problem.sample_upper(b, gen),
                                              problem.sample_lower(b, gen), eta, q)
        out[f"fresh{b}_u_error"], out[f"fresh{b}_v_error"] = _relative(fresh_u, exact_u), _relative(fresh_v, exact_v)
    return out


def difference_noise(problem: BilevelProblem, start: tuple[Tensors, Tensors], end: tuple[Tensors, Tensors],
                     full: tuple[Batch, Batch], batch: int, draws: int, gen: torch.Generator, eta: float,
                     q: int) -> dict[str, float]:
    """E_B |D_B - D|^2 / |D|^2 for D = (gradient at `end`) - (gradient at `start`), for the lower gradient
    and the Neumann hypergradient, over `draws` minibatches of `batch` samples: the noise of one recursive
    correction relative to the change it tracks (0 for full batches). Beside it (`fresh_*`), E_B |G_B - G|^2
    / |G|^2 at `start`: the relative variance of a fresh minibatch estimate, what the correction replaces;
    and (`*_correction_to_fresh`) E_B |D_B - D|^2 / E_B |G_B - G|^2: the noise one correction adds as a
    fraction of the noise of a fresh estimate (a recursion adds one correction per step until a refresh)."""
    def diff(upper: Batch, lower: Batch) -> tuple[Tensors, Tensors]:
        (u1, v1), (u0, v0) = (neumann_with_lower(problem, *end, upper, lower, eta, q),
                              neumann_with_lower(problem, *start, upper, lower, eta, q))
        return lin((1.0, u1), (-1.0, u0)), lin((1.0, v1), (-1.0, v0))

    exact_u, exact_v = diff(*full)
    grad_u, grad_v = neumann_with_lower(problem, *start, *full, eta, q)
    sums = dict.fromkeys(("lower_grad", "hypergrad", "fresh_lower_grad", "fresh_hypergrad"), 0.0)
    for _ in range(draws):
        upper, lower = problem.sample_upper(batch, gen), problem.sample_lower(batch, gen)
        du, dv = diff(upper, lower)
        gu, gv = neumann_with_lower(problem, *start, upper, lower, eta, q)
        for key, est, exact in (("lower_grad", du, exact_u), ("hypergrad", dv, exact_v),
                                ("fresh_lower_grad", gu, grad_u), ("fresh_hypergrad", gv, grad_v)):
            sums[key] += _relative(est, exact) ** 2 / draws
    for level in ("lower_grad", "hypergrad"):
        exact_d, exact_g = (exact_u, grad_u) if level == "lower_grad" else (exact_v, grad_v)
        sums[f"{level}_correction_to_fresh"] = sums[level] * norm(exact_d) ** 2 / max(
            sums[f"fresh_{level}"] * norm(exact_g) ** 2, 1e-300)
    return sums


def top_hessian_eigenvalue(problem: BilevelProblem, x: Tensors, y: Tensors, lower: Batch, iters: int = 50,
                           seed: int = 0) -> float:
    """The largest eigenvalue of grad_yy g(x, y; lower) by power iteration on Hessian-vector products. The
    Neumann series with step eta converges only while eta times it stays below 2 (the paper assumes
    eta < 1/L); past that, each term grows by |1 - eta * lambda_max| along the top eigenvector."""
    yd = [t.detach().requires_grad_(True) for t in y]
    gy = torch.autograd.grad(problem.lower_loss([t.detach() for t in x], yd, lower), yd, create_graph=True)
    gen = torch.Generator().manual_seed(seed)
    p = [torch.randn(t.shape, generator=gen, dtype=t.dtype) for t in yd]
    value = 0.0
    for _ in range(iters):
        p = [t / norm(p) for t in p]
        hp = torch.autograd.grad(gy, yd, grad_outputs=p, retain_graph=True)
        value = float(sum((a * b).sum() for a, b in zip(hp, p, strict=True)))
        p = [h.detach() for h in hp]
    return value
