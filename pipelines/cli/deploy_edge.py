"""`lottery deploy edge MODEL.tflite --host USER@HOST | --local`: run an LCE model on a device, bring back numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from compress.errors import UsageError
from compress.io import save_json
from pipelines.cli.common import err_console, friendly, out_console, print_json, setup_logging
from pipelines.cli.deploy import app


def deploy_edge(model: Path, host: str | None, local: bool, port: int | None = None, identity: Path | None = None,
                remote_python: str = "python3", dataset: str | None = None, threads: int = 1, warmup: int = 10,
                iters: int = 100, accept_new_host_key: bool = False, known_hosts: Path | None = None,
                remote_dir: str = "/tmp") -> dict:
    """Run `model` here or over SSH; writes `deploy-edge-<where>.json` beside it and returns the report."""
    from deploy_targets.arm_lce import LceTarget

    if local == (host is not None):
        raise UsageError("pass exactly one of --host USER@HOST (run on the device over SSH) or --local (run here).")
    target = LceTarget(threads, warmup, iters, host, port, identity, remote_python, accept_new_host_key,
                       known_hosts, remote_dir)
    x = y = None
    if dataset:
        from compress import data as datasets
        from export.lce import to_nhwc

        xt, yt = datasets.get(dataset).split("test")
        x, y = to_nhwc(xt.numpy()), yt.numpy()
    out = target.run(model, x, y)
    out.pop("logits", None)
    report = {"artifact": str(model), "dataset": dataset, **out,
              "note": "x86 numbers are LCE reference kernels (correct, not optimized); ARM latency is measured "
                      "on the device itself."}
    where = "local" if local else str(host).replace("@", "_").replace(":", "_")
    save_json(model.parent / f"deploy-edge-{where}.json", report)
    return report


def table(r: dict) -> Table:
    t = Table(title=f"{Path(r['artifact']).name} on {r['where']} ({r['machine']})")
    t.add_column("measure")
    t.add_column("value", justify="right")
    t.add_row("latency p50 / p90 (ms, batch 1)", f"{r['latency_ms_p50']:.3f} / {r['latency_ms_p90']:.3f}")
    t.add_row("threads", str(r["threads"]))
    if "test_acc" in r:
        t.add_row(f"test acc ({r['dataset']}, {r['samples']} samples)", f"{100 * r['test_acc']:.2f}%")
    if "lce_benchmark_model" in r and "avg_ms" in r["lce_benchmark_model"]:
        t.add_row("lce_benchmark_model avg (ms)", f"{r['lce_benchmark_model']['avg_ms']:.3f}")
    t.caption = f"kernels: {r['kernels']}"
    return t


@app.command("edge")
@friendly
def edge_cmd(
    model: Annotated[Path, typer.Argument(help="The .tflite from `lottery export lce`.")],
    host: Annotated[str | None, typer.Option(help="USER@HOST of the device (OpenSSH client).")] = None,
    local: Annotated[bool, typer.Option("--local", help="Run here instead of on a device.")] = False,
    port: Annotated[int | None, typer.Option(help="SSH port.")] = None,
    identity: Annotated[Path | None, typer.Option(help="SSH private key.")] = None,
    remote_python: Annotated[str, typer.Option(help="Python on the device with numpy and LCE.")] = "python3",
    dataset: Annotated[str | None, typer.Option(help="Also measure accuracy on this dataset's test set.")] = None,
    threads: Annotated[int, typer.Option(min=1, help="Interpreter threads.")] = 1,
    warmup: Annotated[int, typer.Option(min=0, help="Warm-up runs.")] = 10,
    iters: Annotated[int, typer.Option(min=1, help="Timed runs.")] = 100,
    accept_new_host_key: Annotated[bool, typer.Option(help="Trust a device's host key seen for the first time.")]
    = False,
    known_hosts: Annotated[Path | None, typer.Option(help="known_hosts file (default: OpenSSH's).")] = None,
    remote_dir: Annotated[str, typer.Option(help="Where the device's temporary folder is made.")] = "/tmp",
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Copy MODEL and a small runner to the device over SSH, run it there, bring back latency (and accuracy).

    Host key checking is on (BatchMode, no prompts); the device's temporary folder is removed afterwards,
    whatever happens. With --local the same runner runs here: on x86 that is LCE's reference kernels.
    """
    setup_logging(as_json)
    r = deploy_edge(model, host, local, port, identity, remote_python, dataset, threads, warmup, iters,
                    accept_new_host_key, known_hosts, remote_dir)
    if as_json:
        print_json(r)
    else:
        out_console.print(table(r))
        err_console.print(r["note"], highlight=False)
