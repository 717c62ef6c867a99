import pytest

from compress.errors import UnknownNameError, UsageError
from pipelines import gates


def _one(gate, allowed, metrics, baseline=None):
    (r,) = gates.evaluate({gate: allowed}, metrics, baseline)
    return r


def test_acc_drop_is_baseline_minus_stage_and_boundary_passes():
    r = _one("max_acc_drop", 0.01, {"test_acc": 0.94}, {"test_acc": 0.95})
    assert r["measured"] == pytest.approx(0.01) and r["allowed"] == 0.01 and r["passed"]
    r = _one("max_acc_drop", 0.01, {"test_acc": 0.9399}, {"test_acc": 0.95})
    assert not r["passed"] and "FAILED" in r["detail"] and "0.0101" in r["detail"]
    assert _one("max_acc_drop", 0.0, {"test_acc": 0.97}, {"test_acc": 0.95})["measured"] == pytest.approx(-0.02)


def test_ratios_sizes_and_lower_bounds():
    r = _one("min_file_ratio", 4.0, {"file_bytes": 250}, {"file_bytes": 1000})
    assert r["measured"] == 4.0 and r["passed"]
    assert not _one("min_storage_ratio", 4.0, {"storage_bytes": 251}, {"storage_bytes": 1000})["passed"]
    assert _one("max_latency_ratio", 1.2, {"latency_ratio": 1.2}, None)["passed"]
    assert not _one("max_latency_ratio", 1.2, {"latency_ratio": 1.21}, None)["passed"]
    assert _one("max_file_bytes", 1000, {"file_bytes": 1000})["passed"]
    assert not _one("max_storage_bytes", 1000, {"storage_bytes": 1001})["passed"]
    assert not _one("min_agreement", 0.99, {"agreement": 0.98})["passed"]
    assert _one("min_acc", 0.9, {"test_acc": 0.9})["passed"]
    assert not _one("max_density", 0.1, {"density": 0.2})["passed"]


def test_missing_metric_or_baseline_fails_with_reason():
    r = _one("min_agreement", 0.9, {"agreement": None})
    assert not r["passed"] and r["measured"] is None and "agreement was not measured" in r["detail"]
    r = _one("max_acc_drop", 0.01, {"test_acc": 0.9}, None)
    assert not r["passed"] and "baseline test_acc" in r["detail"]


def test_verdict_and_validation():
    res = gates.evaluate({"min_acc": 0.5, "max_density": 0.5}, {"test_acc": 0.6, "density": 0.7}, None)
    assert [r["passed"] for r in res] == [True, False] and gates.verdict(res) == "fail"
    assert gates.verdict([]) == "pass"
    assert gates.valid_for(("test_acc",)) == ["max_acc_drop", "min_acc"]
    with pytest.raises(UsageError, match=r"must be in \[0.0, 1.0\]"):
        gates.check_value("max_acc_drop", 1.5, "imp.gate.max_acc_drop")
    with pytest.raises(UsageError, match="must be a number"):
        gates.check_value("min_acc", "high", "dense.gate.min_acc")
    with pytest.raises(UnknownNameError, match="max_acc_drop"):
        gates.get("max_accuracy_drop")


def test_size_gates_compare_the_same_kind_and_a_missing_value_fails():
    # a file gate never reads the storage model, and the other way round
    r = _one("min_file_ratio", 2.0, {"file_bytes": 400, "storage_bytes": 10}, {"file_bytes": 1000, "storage_bytes": 20})
    assert r["measured"] == 2.5 and r["metric"] == "file_bytes"
    r = _one("min_file_ratio", 2.0, {"storage_bytes": 10}, {"file_bytes": 1000})
    assert not r["passed"] and "file_bytes was not measured" in r["detail"]
    assert not _one("min_packed_fraction", 0.5, {"packed_fraction": 0.0})["passed"]
    assert _one("max_parity_diff", 1e-3, {"parity_max_abs_diff": 1e-5})["passed"]
