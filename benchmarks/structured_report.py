"""Floors, verdicts and the plot of benchmarks/structured_mnist5k.py (issue 13's floors, checked as written)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from compress.structured.verdict import compare, verdict

LATENCY_FLOORS = {"conv4": 0.5, "lenet_300_100": 0.6}  # ORT batch-64 p50 ratio at keep 0.25


def _row(rows: list[dict], model: str, method: str, keep: float) -> dict:
    return next(r for r in rows if r["model"] == model and r["method"] == method and r["keep"] == keep)


def verdicts(rows: list[dict]) -> dict[str, Any]:
    """Per model and keep: GFS against every control (wins only if it beats all), GFS - small_dense spread."""
    out: dict[str, Any] = {}
    for model in sorted({r["model"] for r in rows}):
        for keep in sorted({r["keep"] for r in rows}):
            gfs = _row(rows, model, "gfs", keep)["test_acc_per_seed"]
            controls = {m: _row(rows, model, m, keep)["test_acc_per_seed"] for m in ("random", "l1", "small_dense")}
            out[f"{model} keep {keep}"] = verdict(gfs, controls)
    return out


def floors(rows: list[dict], dense_wall: dict[str, float]) -> list[dict[str, Any]]:
    """Every floor of the issue with the measured value and whether it is met."""
    out = []
    for model in sorted({r["model"] for r in rows}):
        for keep in (0.25, 0.5):
            g, r, l1 = (_row(rows, model, m, keep)["test_acc_mean"] for m in ("gfs", "random", "l1"))
            need = 0.01 if keep == 0.25 else 0.0
            out.append({"floor": f"{model} keep {keep}: GFS >= random + {100 * need:g} pt",
                        "value": g - r, "limit": need, "met": g - r >= need - 1e-12})
            out.append({"floor": f"{model} keep {keep}: GFS >= L1 - 0.3 pt", "value": g - l1, "limit": -0.003,
                        "met": g - l1 >= -0.003 - 1e-12})
            sd = compare(_row(rows, model, "gfs", keep)["test_acc_per_seed"],
                         _row(rows, model, "small_dense", keep)["test_acc_per_seed"])
            out.append({"floor": f"{model} keep {keep}: GFS - small_dense (reported, paper claims > 0)",
                        "value": sd["diff_mean"], "spread": [sd.get("diff_min"), sd.get("diff_max")],
                        "met": None})
            ratio = _row(rows, model, "gfs", keep)["wall_s"] / dense_wall[model]
            out.append({"floor": f"{model} keep {keep}: GFS wall <= 5x one dense training", "value": ratio,
                        "limit": 5.0, "met": ratio <= 5.0})
        lat = _row(rows, model, "gfs", 0.25)["ort_b64_latency_ratio"]
        out.append({"floor": f"{model} keep 0.25: ORT batch-64 p50 ratio <= {LATENCY_FLOORS[model]}", "value": lat,
                    "limit": LATENCY_FLOORS[model], "met": lat <= LATENCY_FLOORS[model]})
    return out


def plot(rows: list[dict], dense: dict[str, dict], path: Path) -> Path:
    """Test accuracy (seed range as error bars) vs kept fraction, one panel per model, dense as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = sorted({r["model"] for r in rows})
    fig, axes = plt.subplots(1, len(models), figsize=(5.5 * len(models), 4.2))
    for ax, model in zip(list(axes) if len(models) > 1 else [axes], models, strict=True):
        for i, method in enumerate(("gfs", "l1", "random", "small_dense")):
            pts = sorted((r["keep"], r) for r in rows if r["model"] == model and r["method"] == method)
            x = [k + (i - 1.5) * 0.006 for k, _ in pts]  # a small offset keeps error bars apart
            y = [r["test_acc_mean"] for _, r in pts]
            err = [[m - min(r["test_acc_per_seed"]) for m, (_, r) in zip(y, pts, strict=True)],
                   [max(r["test_acc_per_seed"]) - m for m, (_, r) in zip(y, pts, strict=True)]]
            ax.errorbar(x, y, yerr=err, marker="o", ms=4, capsize=3, label=method)
        ax.axhline(dense[model]["test_acc_mean"], color="grey", ls=":", lw=1,
                   label=f"dense ({dense[model]['test_acc_mean']:.4f})")
        ax.set_xticks([0.25, 0.5])
        ax.set_xlabel("fraction of hidden units / channels kept")
        ax.set_ylabel("test accuracy (mean, seed range)")
        ax.set_title(f"{model} (width {dense[model]['width']:g}) on mnist5k")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
