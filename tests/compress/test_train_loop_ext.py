"""Training-loop extensions: gradient-only masking stays exact, callbacks, non-finite loss, checkpoints and resume."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from compress import models
from compress.errors import LotteryError, NonFiniteLossError, RunDirError
from compress.io import load_tensors
from compress.mask import Mask
from compress.train import TrainHparams, train
from compress.train.callbacks import Callback
from compress.train.masking import remask

REPO = Path(__file__).resolve().parents[2]
OPTIMIZERS = {
    "sgd_nesterov_wd": dict(optimizer="sgd", lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam_l2": dict(optimizer="adam", lr=1e-3, weight_decay=1e-3),
    "adamw": dict(optimizer="adamw", lr=1e-3, weight_decay=1e-2),
}


def _model(digits, seed=0):
    return models.build(models.ModelSpec("lenet_300_100", digits.input_shape, 10, 0.25), seed=seed)


def _mask(model, seed=0, density=0.3):
    g = torch.Generator().manual_seed(seed)
    return Mask({n: torch.rand(w.shape, generator=g) < density for n, w in models.prunable(model).items()})


class _Legacy(Callback):
    """The previous loop's extra per-step work: weights and all optimizer state multiplied by the mask."""

    def after_step(self, state):
        remask(state.optimizer, state.masked)


class _StateProbe(Callback):
    """Records, every step, the largest |value| at pruned positions over weights and optimizer state."""

    def __init__(self):
        self.worst = 0.0

    def after_step(self, state):
        for p, m in state.masked:
            tensors = [p, *(v for v in state.optimizer.state[p].values() if torch.is_tensor(v) and v.shape == p.shape)]
            for t in tensors:
                self.worst = max(self.worst, float(t.detach()[m == 0].abs().max()))


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_gradient_masking_keeps_pruned_weights_and_optimizer_state_exactly_zero(digits, name):
    model = _model(digits)
    mask = _mask(model)
    probe = _StateProbe()
    hp = TrainHparams(**OPTIMIZERS[name], iterations=40, batch_size=32, eval_every=40)
    train(model, digits, hp, mask=mask, callbacks=[probe])
    assert probe.worst == 0.0
    # The same training with the old full re-masking after every step gives bit-identical weights.
    legacy = _model(digits)
    train(legacy, digits, hp, mask=mask, callbacks=[_Legacy()])
    for a, b in zip(model.state_dict().values(), legacy.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    kept = models.prunable(model)
    assert all(torch.count_nonzero(kept[n][m]) > 0.99 * int(m.sum()) for n, m in mask.items())


def test_mask_changes_from_a_callback_reestablish_the_invariant(digits):
    model = _model(digits)
    start = _mask(model, density=0.5)
    other = _mask(model, seed=7, density=0.5)
    probe = _StateProbe()

    class Swap(Callback):
        def before_step(self, state):
            if state.step + 1 == 10:
                counts = state.set_mask(other)
                assert all(d > 0 and g > 0 for d, g in counts.values())
                return True
            return False

    hp = TrainHparams(optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=1e-3, iterations=20, batch_size=32,
                      eval_every=20)
    r = train(model, digits, hp, mask=start, callbacks=[Swap(), probe])
    assert probe.worst == 0.0
    assert all(torch.equal(r.mask[n], other[n]) for n in other)


def test_non_finite_loss_stops_with_a_clear_error_naming_the_iteration(digits):
    model = _model(digits)
    hp = TrainHparams(optimizer="sgd", lr=1e12, momentum=0.0, iterations=50, batch_size=32, eval_every=50)
    with pytest.raises(NonFiniteLossError) as e:
        train(model, digits, hp)
    assert isinstance(e.value, LotteryError) and e.value.exit_code == 2
    assert 1 < e.value.iteration <= 50
    assert f"at iteration {e.value.iteration} of 50" in str(e.value)


def test_resume_from_checkpoint_in_process_is_bit_identical(digits, tmp_path):
    hp = TrainHparams(optimizer="adam", lr=1e-3, schedule="cosine", iterations=45, batch_size=64, eval_every=10)
    ref_model = _model(digits)
    ref = train(ref_model, digits, hp, mask=_mask(ref_model), seed=3, snapshot_at=(5, 40))

    def stop(step, total, metrics):
        if step == 40:
            raise KeyboardInterrupt

    model = _model(digits)
    with pytest.raises(KeyboardInterrupt):
        train(model, digits, hp, mask=_mask(model), seed=3, snapshot_at=(5, 40), on_eval=stop,
              checkpoint_dir=tmp_path, checkpoint_every=15)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-000000030"]
    again = _model(digits, seed=99)  # whatever it holds is replaced by the checkpoint
    r = train(again, digits, hp, mask=_mask(again), seed=3, snapshot_at=(5, 40), checkpoint_dir=tmp_path,
              checkpoint_every=15)
    for a, b in zip(ref_model.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert r.curve == ref.curve and r.early_stop_iter == ref.early_stop_iter and r.test_acc == ref.test_acc
    assert all(torch.equal(r.snapshots[i][k], ref.snapshots[i][k]) for i in (5, 40) for k in ref.snapshots[i])
    with pytest.raises(RunDirError, match="different training"):
        train(_model(digits), digits, hp.replace(lr=2e-3), seed=3, checkpoint_dir=tmp_path, checkpoint_every=15)


_CHILD = """
import sys, torch
torch.set_num_threads(1)
from compress import data, models
from compress.dst import DstHparams, run
from compress.io import save_tensors
ds = data.get("digits")
spec = models.ModelSpec("lenet_300_100", ds.input_shape, 10, 0.5)
hp = DstHparams(sparsity=0.9, delta_t=20, train=DstHparams().train.replace(iterations=int(sys.argv[3]),
                batch_size=32, lr=0.05, eval_every=50))
res = run(spec, ds, hp, seed=1, checkpoint_dir=sys.argv[1] or None, checkpoint_every=25)
save_tensors(sys.argv[2], {**{"w." + k: v for k, v in res.ticket.final.items()},
                           **{"m." + k: v.to(torch.uint8) for k, v in res.ticket.mask.items()}},
             {"history": repr(res.history["updates"]), "curve": repr(res.history["curve"])})
"""


def _child(args):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", _CHILD, *map(str, args)], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_kill_9_mid_training_resumes_to_a_bit_identical_result(tmp_path):
    iterations = 300
    ckpts = tmp_path / "ckpt"
    ref = _child(["", tmp_path / "ref.safetensors", iterations])
    victim = _child([ckpts, tmp_path / "out.safetensors", iterations])
    deadline = time.monotonic() + 120
    while not any(ckpts.glob("ckpt-*/state.json")) and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    victim.kill()  # SIGKILL: no handler runs, files may be mid-write
    assert victim.wait() == -9, victim.stderr.read().decode()[-2000:]
    assert not (tmp_path / "out.safetensors").exists()
    killed_at = max(int(p.parent.name[5:]) for p in ckpts.glob("ckpt-*/state.json"))
    assert 0 < killed_at < iterations
    resumed = _child([ckpts, tmp_path / "out.safetensors", iterations])
    for p in (ref, resumed):
        assert p.wait() == 0, p.stderr.read().decode()[-2000:]
    a, b = load_tensors(tmp_path / "ref.safetensors"), load_tensors(tmp_path / "out.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    from safetensors import safe_open

    metas = [safe_open(str(tmp_path / f), "pt").metadata() for f in ("ref.safetensors", "out.safetensors")]
    assert metas[0] == metas[1]  # same mask-update history and validation curve
