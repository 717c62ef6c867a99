"""Driver of tests/compress/test_distributed.py: one RigL training (compress.dst, float64) with checkpoints, run in one
process (`main(out)`) or as a torchrun job (`python -m torch.distributed.run ... ddp_rigl.py OUT`), where rank 0
leads and the other ranks serve. Rank 0 writes the final weights, mask and mask-update history to OUT."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import torch


def main(out: Path) -> None:
    # float64: the ranks' shares are summed in another order than one process sums the batch; in float32 600
    # SGD steps amplify that to ~1e-4 relative, in float64 it stays ~1e-15, so the comparison can be exact.
    threads, dtype = torch.get_num_threads(), torch.get_default_dtype()
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    try:
        _train(out)
    finally:  # called in the test's own process too: leave the defaults as they were for the next tests
        torch.set_num_threads(threads)
        torch.set_default_dtype(dtype)


def _train(out: Path) -> None:
    from compress import data as datasets
    from compress.dst.settings import DstHparams, paper_train
    from compress.dst.trainer import run
    from compress.io import save_tensors
    from compress.models import ModelSpec

    ds = copy.copy(datasets.get("digits"))
    for split in ("x_train", "x_val", "x_test"):
        setattr(ds, split, getattr(ds, split).double())
    spec = ModelSpec("lenet_300_100", ds.input_shape, ds.num_classes, 0.25)
    hp = DstHparams(method="rigl", sparsity=0.8, delta_t=10,
                    train=paper_train().replace(iterations=600, batch_size=64, eval_every=50, lr=0.05))
    res = run(spec, ds, hp, seed=0, checkpoint_dir=out / "ckpt", checkpoint_every=25)
    save_tensors(out / "final.safetensors", {**{f"w.{k}": v for k, v in res.ticket.final.items()},
                                             **{f"m.{k}": v.to(torch.uint8) for k, v in res.ticket.mask.items()}})
    (out / "history.json").write_text(json.dumps([[h["iteration"], h["drop_count"]] for h in res.history["updates"]]))


if __name__ == "__main__":
    from compress.distributed.dispatch import run_rank

    sys.exit(run_rank(lambda: main(Path(sys.argv[1]))))
