"""`lottery bench ARTIFACT`: accuracy and latency of any artifact on its deploy target, vs PyTorch eager."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pipelines.bench import bench
from pipelines.cli.common import friendly, out_console, print_json, setup_logging


def bench_table(r: dict) -> Table:
    t = Table(title=f"{Path(r['artifact']).name} on {r['target']} ({r['target_info']}), {r['dataset']}, "
                    f"{r['threads']} thread(s)")
    for col in ("runtime", "test acc %", "batch", "p50 ms", "p90 ms", "samples/s", "speedup p50"):
        t.add_column(col, justify="right")
    torch_ref = r.get("torch") or {}
    for b, v in r["latency"]["batch"].items():
        t.add_row(r["target"], f"{100 * r['test_acc']:.2f}", b, f"{v['latency_ms_p50']:.3f}",
                  f"{v['latency_ms_p90']:.3f}", f"{v['throughput_per_s']:.0f}",
                  f"{r['speedup_p50_vs_torch'][b]:.2f}x" if "speedup_p50_vs_torch" in r else "-")
        if torch_ref:
            tv = torch_ref["latency"][b]
            t.add_row("torch eager", f"{100 * torch_ref['test_acc']:.2f}", b, f"{tv['latency_ms_p50']:.3f}",
                      f"{tv['latency_ms_p90']:.3f}", f"{tv['throughput_per_s']:.0f}", "1.00x")
    t.caption = r["note"]
    return t


def register(app: typer.Typer) -> None:
    @app.command("bench")
    @friendly
    def bench_cmd(
        artifact: Annotated[Path, typer.Argument(help="An exported artifact: .onnx, .plan (later .tflite).")],
        dataset: Annotated[str | None, typer.Option("--dataset", "-d", help="Test set (default: the one it was "
                                                    "exported for).")] = None,
        batch_size: Annotated[list[int] | None, typer.Option(help="Batch sizes to time (default 1 and 64).")] = None,
        threads: Annotated[int, typer.Option(help="Threads for every runtime (same for all).")] = 1,
        warmup: Annotated[int, typer.Option(help="Untimed warm-up calls per batch size.")] = 10,
        iters: Annotated[int, typer.Option(help="Timed calls per batch size.")] = 100,
        provider: Annotated[str | None, typer.Option(help="ONNX Runtime provider: cpu, cuda, tensorrt.")] = None,
        no_torch: Annotated[bool, typer.Option("--no-torch", help="Skip the PyTorch eager reference.")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and the table.")] = False,
    ) -> None:
        """Test accuracy, latency p50/p90 at batch 1 and 64 and throughput, with PyTorch eager in the same run."""
        setup_logging(quiet or as_json)
        report = bench(artifact, dataset, tuple(batch_size or (1, 64)), threads, warmup, iters, provider,
                       not no_torch)
        if as_json:
            print_json(report)
        else:
            out_console.print(bench_table(report))
