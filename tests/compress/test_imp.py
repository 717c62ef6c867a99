import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from compress import models
from compress.errors import RunDirError, UsageError
from compress.io import load_json
from compress.ticket import Ticket, resolve
from pipelines import api


def _levels(run: Path, n: int = 3, seed: int = 0) -> list[Ticket]:
    return [Ticket.load(run / f"seed-{seed}" / f"level-{i}") for i in range(n)]


def test_imp_masks_shrink_and_rewind_to_init(tmp_path, tiny_imp):
    report = api.run("imp", out=tmp_path, **tiny_imp)
    run = Path(report["run_dir"])
    t0, t1, t2 = _levels(run)
    assert t1.mask.is_subset_of(t0.mask) and t2.mask.is_subset_of(t1.mask)
    assert t0.density == 1.0 and t1.density == pytest.approx(0.8, abs=0.01) and t2.density < t1.density
    for t in (t1, t2):
        # Rewound weights equal the original init on kept positions (and are zero elsewhere once masked).
        start = t.model("init")
        for name, w in models.prunable(start).items():
            m = t.mask[name]
            assert torch.equal(w[m], t0.init[name][m])
            assert torch.count_nonzero(w[~m]) == 0
        trained = models.prunable(t.model("final"))
        for name, m in t.mask.items():
            assert torch.count_nonzero(t.final[name][~m]) == 0  # pruned weights stayed zero in training
            assert torch.equal(trained[name], t.final[name])
    # Magnitude pruning of level 1 was done on level 0's trained weights.
    w0 = t0.final["1.weight"].abs()
    assert w0[t1.mask["1.weight"]].min() >= w0[~t1.mask["1.weight"]].max()
    levels = report["details"]["levels"]
    assert [r["level"] for r in levels] == [0, 1, 2]
    assert all(r["reinit_test_acc_mean"] is not None for r in levels[1:])
    assert (run / "accuracy_vs_density.png").stat().st_size > 1000
    assert report["metrics"]["level"] == report["details"]["selected_level"]
    assert report["artifacts"]["ticket"] == f"seed-0/level-{report['metrics']['level']}"
    # measured once, recorded beside the ticket: metrics.json; ticket.json holds no timing
    assert "wall_s" in load_json(run / "seed-0" / "level-1" / "metrics.json")
    assert "wall_s" not in (run / "seed-0" / "level-1" / "ticket.json").read_text()


def test_rerun_skips_finished_levels(tmp_path, tiny_imp):
    run = Path(api.run("imp", out=tmp_path, **tiny_imp)["run_dir"])
    stamps = {p: p.stat().st_mtime_ns for p in run.glob("seed-*/**/*.safetensors")}
    controls = {p: p.stat().st_mtime_ns for p in run.rglob("control-*.json")}
    again = api.run("imp", out=tmp_path, **tiny_imp)
    assert again["resumed"] is True
    assert {p: p.stat().st_mtime_ns for p in run.glob("seed-*/**/*.safetensors")} == stamps
    assert {p: p.stat().st_mtime_ns for p in run.rglob("control-*.json")} == controls
    (run / "result.json").unlink()  # the stage reruns, but every finished level is read back, not retrained
    third = api.run("imp", out=tmp_path, **tiny_imp)
    assert {p: p.stat().st_mtime_ns for p in run.glob("seed-*/**/*.safetensors")} == stamps
    assert third["details"]["levels"] == again["details"]["levels"]


def test_more_rounds_extend_nothing_else(tmp_path, tiny_imp):
    """A different setting is a different run directory; nothing is overwritten."""
    a = Path(api.run("imp", out=tmp_path, **tiny_imp)["run_dir"])
    b = Path(api.run("imp", out=tmp_path, **{**tiny_imp, "rounds": 1})["run_dir"])
    assert a != b and (a / "seed-0" / "level-2" / "ticket.json").is_file()


def test_kill_9_loses_at_most_the_level_in_progress(tmp_path):
    settings = {"scope": {"dataset": "digits", "width": 0.25}, "train": {"epochs": 20, "batch_size": 32},
                "rounds": 3, "controls": {"controls": []}}
    code = f"from pipelines import api\napi.run('imp', out={str(tmp_path)!r}, **{settings!r})\n"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=Path(__file__).parents[2],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 600  # generous: a loaded 2-core machine trains slowly
    level1 = None
    while time.time() < deadline and proc.poll() is None:
        hits = list(tmp_path.glob("*/*/seed-0/level-1/ticket.json"))
        if hits:
            level1 = hits[0]
            break
        time.sleep(0.05)
    assert level1 is not None, proc.stderr.read().decode() if proc.stderr else "no level 1"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    run = level1.parents[2]
    assert not (run / "seed-0" / "level-3" / "ticket.json").exists()  # it really died mid-run
    before = {p: p.stat().st_mtime_ns for p in run.glob("seed-0/level-[01]/*")}
    report = api.run("imp", out=tmp_path, **settings)
    assert [r["level"] for r in report["details"]["levels"]] == [0, 1, 2, 3]
    assert {p: p.stat().st_mtime_ns for p in before} == before
    assert not list(run.rglob("*.tmp"))


def test_corrupt_file_is_named_and_never_deleted(tmp_path, tiny_imp):
    run = Path(api.run("imp", out=tmp_path, **tiny_imp)["run_dir"])
    mask = run / "seed-0" / "level-1" / "mask.safetensors"
    mask.write_bytes(b"\x00garbage")
    (run / "seed-0" / "level-2" / "ticket.json").unlink()  # force level 2 to read level 1 again
    (run / "result.json").unlink()
    with pytest.raises(RunDirError, match="level-1/mask.safetensors is corrupt"):
        api.run("imp", out=tmp_path, **tiny_imp)
    assert mask.read_bytes() == b"\x00garbage"


def test_foreign_run_directory_is_refused(tmp_path, tiny_imp):
    one = {**tiny_imp, "rounds": 1}
    run = Path(api.run("imp", out=tmp_path, **one)["run_dir"])
    (run / "result.json").unlink()
    (run / "stage.json").write_text('{"method": "grasp", "key": "0000000000"}')
    with pytest.raises(RunDirError, match="belongs to another run"):
        api.run("imp", out=tmp_path, **one)


def test_late_rewinding_and_lr_rewinding(tmp_path, tiny_imp):
    late = api.run("imp", out=tmp_path, **{**tiny_imp, "rounds": 1, "rewind": "iter", "rewind_iter": 3})
    t0, t1 = _levels(Path(late["run_dir"]), 2)
    assert not torch.equal(t1.init["1.weight"], t0.init["1.weight"])  # iteration 3, not 0
    lr = api.run("imp", out=tmp_path, **{**tiny_imp, "rounds": 1, "rewind": "lr"})
    t0, t1 = _levels(Path(lr["run_dir"]), 2)
    assert torch.equal(t1.init["1.weight"], t0.final["1.weight"])  # trained weights kept, schedule restarted
    with pytest.raises(UsageError, match="rewind_iter"):
        api.run("imp", out=tmp_path, **{**tiny_imp, "rewind": "iter"})


def test_resolve_finds_levels_and_reports_missing(tmp_path, tiny_imp):
    report = api.run("imp", out=tmp_path, **tiny_imp)
    run = Path(report["run_dir"])
    assert resolve(run) == run / "seed-0" / f"level-{report['metrics']['level']}"
    assert resolve(run, level=1) == run / "seed-0" / "level-1"
    with pytest.raises(RunDirError, match="finished levels: 0, 1, 2"):
        resolve(run, level=7)
    with pytest.raises(RunDirError, match="no finished ticket"):
        resolve(tmp_path)


def test_two_seeds_average_into_the_verdicts(tmp_path, tiny_imp):
    report = api.run("imp", out=tmp_path, **{**tiny_imp, "rounds": 1,
                                             "scope": {**tiny_imp["scope"], "seeds": 2}})
    row = report["details"]["levels"][1]
    assert row["seeds"] == [0, 1] and len(row["test_acc_per_seed"]) == 2
    assert report["details"]["seeds"] == [0, 1]
