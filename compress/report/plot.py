"""Accuracy-vs-density plots (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CONTROL_STYLE = {"reinit": ("reinit (same mask, new init)", "tab:orange"),
                 "random": ("random mask (same layer densities)", "tab:green")}


def accuracy_vs_density(series: list[dict[str, Any]], path: str | Path, title: str,
                        dense_acc: float | None = None) -> Path:
    """One solid line per ticket series (with error bars), its controls dashed; log-density x axis.

    `series`: [{"label": str, "levels": [report level rows], "controls": [names]}].
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for s in series:
        rows = [r for r in s["levels"] if r["test_acc_mean"] is not None]
        x = [100 * r["density"] for r in rows]
        line = ax.errorbar(x, [r["test_acc_mean"] for r in rows], yerr=[r["test_acc_std"] for r in rows],
                           marker="o", ms=4, capsize=3, label=s["label"])
        for kind in s.get("controls", []):
            pts = [(100 * r["density"], r[f"{kind}_test_acc_mean"]) for r in rows
                   if r.get(f"{kind}_test_acc_mean") is not None]
            if pts:
                name, color = CONTROL_STYLE.get(kind, (kind, None))
                ax.plot(*zip(*pts, strict=True), ls="--", marker="x", ms=4,
                        color=color if len(series) == 1 else line[0].get_color(), alpha=0.8,
                        label=f"{s['label']}: {name}" if len(series) > 1 else name)
    if dense_acc is not None:
        ax.axhline(dense_acc, color="grey", lw=1, ls=":", label=f"dense ({dense_acc:.4f})")
    ax.set_xscale("log")
    ax.invert_xaxis()
    ax.set_xlabel("weights remaining (%)")
    ax.set_ylabel("test accuracy")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
    return path
