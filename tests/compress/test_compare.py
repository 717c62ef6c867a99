from pathlib import Path

import pytest

from compress.errors import RunDirError
from compress.io import load_json
from compress.report.compare import compare
from pipelines import api

TINY = {"scope": {"width": 0.25, "dataset": "digits"}, "train": {"epochs": 1, "batch_size": 64},
        "controls": {"controls": ["random"]}}


def test_compare_merges_runs_per_finder(tmp_path):
    runs = [api.run("random", out=tmp_path, sparsity=s, **TINY)["run_dir"] for s in (0.5, 0.8)]
    runs.append(api.run("imp", out=tmp_path, rounds=1, **TINY)["run_dir"])
    result = compare(runs, tmp_path / "cmp")
    saved = load_json(tmp_path / "cmp" / "compare.json")
    assert saved["rows"] == result["rows"] and (tmp_path / "cmp" / "compare.png").stat().st_size > 1000
    rows = [(r["finder"], round(r["density"], 1)) for r in result["rows"]]
    assert rows == [("imp", 0.8), ("random", 0.5), ("random", 0.2)]  # dense levels dropped, one finder per line
    assert all("random_test_acc_mean" in r for r in result["rows"])
    with pytest.raises(RunDirError, match="no report.json"):
        compare([Path(tmp_path)], tmp_path / "cmp2")
