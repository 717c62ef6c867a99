"""Pipeline plots (matplotlib, headless): ticket search accuracy vs density, size per stage, latency per target."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    _plt().close(fig)
    tmp.replace(path)
    return path


def draw_all(root: Path, rep: dict[str, Any]) -> list[Path]:
    out = []
    for fn in (search_plot, size_plot, latency_plot):
        p = fn(root, rep)
        if p is not None:
            out.append(p)
    return out


def search_plot(root: Path, rep: dict[str, Any]) -> Path | None:
    """Accuracy vs density of every ticket search in the pipeline (levels and controls)."""
    from compress.report.plot import accuracy_vs_density

    series = [{"label": r["name"], "levels": r["details"]["levels"], "controls": r["details"].get("controls", [])}
              for r in rep["stages"] if r.get("details", {}).get("levels")]
    if not series:
        return None
    dense = (rep.get("baseline") or {}).get("test_acc")
    return accuracy_vs_density(series, root / "accuracy_vs_density.png",
                               f"{rep['name']}: ticket search", dense)


def size_plot(root: Path, rep: dict[str, Any]) -> Path | None:
    # Benchmark stages only re-measure the artifact before them: one bar per stage that made something.
    from pipelines.report import size_of

    rows = [(f"{r['name']} ({size_of(r)[1]})", size_of(r)[0]) for r in rep["stages"]
            if size_of(r)[0] and r["method"] not in ("bench", "deploy_edge")]
    if not rows:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.8))
    names, sizes = zip(*rows, strict=True)
    bars = ax.bar(names, [s / 1024 for s in sizes], color="tab:blue")
    for b, s in zip(bars, sizes, strict=True):
        ax.annotate(f"{s / 1024:.1f}", (b.get_x() + b.get_width() / 2, b.get_height()), ha="center", va="bottom",
                    fontsize=8)
    ax.set_yscale("log")
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    ax.set_ylabel("size (KiB, log)")
    ax.set_title(f"{rep['name']}: size per stage")
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    return _save(fig, root / "size_per_stage.png")


def latency_plot(root: Path, rep: dict[str, Any]) -> Path | None:
    """Median latency of each benchmark stage next to the baseline's on the same target."""
    rows = [r for r in rep["stages"] if r["metrics"].get("latency_ms_p50") is not None]
    if not rows:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.8))
    labels = [f"{r['name']}\n{r.get('details', {}).get('target', r['method'])}" for r in rows]
    xs = range(len(rows))
    mine = [r["metrics"]["latency_ms_p50"] for r in rows]
    base = [r["metrics"].get("baseline_latency_ms_p50") or 0.0 for r in rows]
    ax.bar([x - 0.2 for x in xs], base, width=0.4, label="dense baseline", color="tab:gray")
    ax.bar([x + 0.2 for x in xs], mine, width=0.4, label="this stage", color="tab:green")
    ax.set_xticks(list(xs), labels, fontsize=8)
    ax.set_ylabel("latency p50 (ms)")
    ax.set_title(f"{rep['name']}: latency per target")
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    return _save(fig, root / "latency_per_target.png")
