"""A stochastic quadratic bilevel problem whose solution is known in closed form (for tests and demos).

    g(x, y; xi) = 1/2 y'Ay - y'(Bx + xi_g)           =>  y*(x) = A^{-1} B x   (noise has mean zero)
    f(x, y; xi) = 1/2 |y - c - xi_f|^2 + mu/2 |x|^2  =>  Phi(x) = 1/2 |Mx - c|^2 + mu/2 |x|^2,  M = A^{-1}B
    x* = (M'M + mu I)^{-1} M'c

Samples are rows of a fixed noise pool whose mean is exactly zero, so the stochastic losses average to the
deterministic ones over the pool (a finite-sum problem like a data set).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from compress.bilevel.problem import Tensors


@dataclass
class QuadraticBilevel:
    a: torch.Tensor  # (dy, dy), symmetric positive definite
    b: torch.Tensor  # (dy, dx)
    c: torch.Tensor  # (dy,)
    mu: float
    noise_g: torch.Tensor  # (n, dy), zero mean
    noise_f: torch.Tensor  # (n, dy), zero mean

    @classmethod
    def random(cls, dx: int = 3, dy: int = 4, n: int = 64, noise: float = 0.3, mu: float = 0.1,
               seed: int = 0) -> QuadraticBilevel:
        """A well-conditioned instance (eigenvalues of A in [1, 2]) in float64."""
        g = torch.Generator().manual_seed(seed)
        q, _ = torch.linalg.qr(torch.randn(dy, dy, generator=g, dtype=torch.float64))
        a = q @ torch.diag(torch.linspace(1.0, 2.0, dy, dtype=torch.float64)) @ q.T
        b = torch.randn(dy, dx, generator=g, dtype=torch.float64)
        c = torch.randn(dy, generator=g, dtype=torch.float64)

        def pool() -> torch.Tensor:
            e = noise * torch.randn(n, dy, generator=g, dtype=torch.float64)
            return e - e.mean(0)

        return cls(a, b, c, mu, pool(), pool())

    def lower_loss(self, x: Tensors, y: Tensors, batch: torch.Tensor) -> torch.Tensor:
        xi = self.noise_g[batch].mean(0)
        return 0.5 * y[0] @ self.a @ y[0] - y[0] @ (self.b @ x[0] + xi)

    def upper_loss(self, x: Tensors, y: Tensors, batch: torch.Tensor) -> torch.Tensor:
        xi = self.noise_f[batch].mean(0)
        return 0.5 * ((y[0] - self.c - xi) ** 2).sum() + 0.5 * self.mu * (x[0] ** 2).sum()

    def sample_lower(self, size: int, gen: torch.Generator) -> torch.Tensor:
        return torch.randint(len(self.noise_g), (size,), generator=gen)

    def sample_upper(self, size: int, gen: torch.Generator) -> torch.Tensor:
        return torch.randint(len(self.noise_f), (size,), generator=gen)

    # Closed forms (what the tests compare against).
    def y_star(self, x: torch.Tensor) -> torch.Tensor:
        return torch.linalg.solve(self.a, self.b @ x)

    def x_star(self) -> torch.Tensor:
        m = torch.linalg.solve(self.a, self.b)
        return torch.linalg.solve(m.T @ m + self.mu * torch.eye(m.shape[1], dtype=m.dtype), m.T @ self.c)

    def lower_grad(self, x: torch.Tensor, y: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        return self.a @ y - self.b @ x - self.noise_g[batch].mean(0)

    def neumann(self, x: torch.Tensor, y: torch.Tensor, upper: torch.Tensor, eta: float, q: int) -> torch.Tensor:
        """The Neumann hypergradient in matrix form: mu x + B' eta sum_q (I - eta A)^q (y - c - xi_f)."""
        r = y - self.c - self.noise_f[upper].mean(0)
        step = torch.eye(len(r), dtype=r.dtype) - eta * self.a
        total, p = r.clone(), r
        for _ in range(q):
            p = step @ p
            total = total + p
        return self.mu * x + self.b.T @ (eta * total)
