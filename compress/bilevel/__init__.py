"""Stochastic bilevel optimizers, usable beyond pruning.

min_x Phi(x) = f(x, y*(x)),  y*(x) = argmin_y g(x, y)

- `problem`: the tiny protocol a problem implements (upper loss f, lower loss g, batch samplers) and the
  gradient oracles the optimizers call (`Oracle`: lower gradient and hypergradient).
- `hypergrad`: the Neumann-series hypergradient (stocBiO/MRBO/VRBO's estimator), Hessian- and
  Jacobian-vector products by double backward, never an explicit Hessian.
- `stocbio`, `mrbo`, `vrbo`: one optimizer per file (Ji, Yang & Liang, ICML 2021; Yang, Ji & Liang,
  NeurIPS 2021).
- `quadratic`, `hypercleaning`: problems with a known solution (tests) and the seed paper's experiment.
"""

from __future__ import annotations

from compress.bilevel.hypergrad import NeumannOracle, neumann_hypergradient
from compress.bilevel.mrbo import MRBO, MrboSettings
from compress.bilevel.problem import BilevelProblem, Oracle, Tensors
from compress.bilevel.stocbio import StocBiO, StocBiOSettings
from compress.bilevel.vrbo import VRBO, VrboSettings

OPTIMIZERS = {"stocbio": StocBiO, "mrbo": MRBO, "vrbo": VRBO}

__all__ = ["MRBO", "OPTIMIZERS", "VRBO", "BilevelProblem", "MrboSettings", "NeumannOracle", "Oracle", "StocBiO",
           "StocBiOSettings", "Tensors", "VrboSettings", "neumann_hypergradient"]
