"""torch.fx call targets that the graph walkers (binary-activation placement, LCE export) understand:
a residual add and a relu, as functions or as tensor methods."""

from __future__ import annotations

import operator

import torch
import torch.nn.functional as F

ADD_CALLS = (operator.add, operator.iadd, torch.add, "add", "add_")
RELU_CALLS = (F.relu, torch.relu, "relu", "relu_")
