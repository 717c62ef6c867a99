"""`binarize`: turn any ticket or trained model (IMP, GraSP, dense, ...) into a binary network and finetune it.

Binary weights are sign(w) times a per-output-channel scale (XNOR-Net, Rastegari et al., 2016; larq's
default), optional binary activations, first and last layers float by default (XNOR-Net, larq, biprop);
then training with the straight-through estimator (Courbariaux et al., 2016). The ticket's pruned weights
stay exactly zero (the `keep` buffers and masked training), so a pruned binary ticket is ternary {-a, 0, +a}.
The result is a normal Ticket in `<ticket dir>/binarize-<digest>/` (never overwriting the source).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from torch import nn

from compress import data as datasets
from compress.binarize.layers import SCALES, BinaryMixin
from compress.binarize.summary import summarize
from compress.binarize.transform import ACTS, all_layers, binarize_model, default_layers
from compress.errors import RunDirError, UsageError
from compress.hparams import NO_DIGEST, Hparams, field
from compress.io import load_json, save_json
from compress.ticket import TICKET_FILE, Ticket, resolve
from compress.train import TrainHparams, evaluate, train

log = logging.getLogger("lottery")


def _finetune_train() -> TrainHparams:
    return TrainHparams(optimizer="adam", lr=1e-3, epochs=5, batch_size=64, schedule="cosine")


@dataclass(frozen=True)
class BinarizeHparams(Hparams):
    act: str = "float"          # binary: sign activations on the inputs of binary layers (not the first layer)
    scale: str = "channel"      # per output channel (XNOR-Net), per layer, or none
    layers: str = "inner"       # inner (first and last stay float), all, or comma-separated layer names
    train: TrainHparams = field(default_factory=_finetune_train)
    dataset: str = ""           # default: the ticket's own dataset
    data_root: str | None = field(default=None, metadata=NO_DIGEST)

    def validate(self) -> None:
        if self.act not in ACTS:
            raise UsageError(f"act must be one of {', '.join(ACTS)}, got '{self.act}'.")
        if self.scale not in SCALES:
            raise UsageError(f"scale must be one of {', '.join(SCALES)}, got '{self.scale}'.")
        if not self.layers.strip():
            raise UsageError("layers must be 'inner', 'all' or comma-separated layer names, got an empty string.")


def chosen_layers(model: nn.Module, spec: str) -> list[str]:
    if spec == "inner":
        return default_layers(model)
    if spec == "all":
        return all_layers(model)
    return [s.strip().removesuffix(".weight") for s in spec.split(",") if s.strip()]


def binarize_ticket(ticket: Ticket, hp: BinarizeHparams) -> tuple[nn.Module, Ticket]:
    """The ticket's trained network with binary layers (keep = the ticket's mask), before finetuning."""
    if any(t.get("name") in ("binarize", "scored") for t in ticket.spec.extra.get("transforms", [])):
        raise UsageError("this ticket is already binary (its architecture records a binarize transform); "
                         "binarize a float ticket (IMP, GraSP, dense) instead.")
    model = ticket.model("final")
    layers = chosen_layers(model, hp.layers)
    binarize_model(model, layers, hp.act, hp.scale)
    for name, m in model.named_modules():
        if isinstance(m, BinaryMixin) and f"{name}.weight" in ticket.mask:
            m.keep.copy_(ticket.mask[f"{name}.weight"])
    t = {"name": "binarize", "layers": layers, "act": hp.act, "scale": hp.scale}
    spec = replace(ticket.spec, extra={**ticket.spec.extra,
                                       "transforms": [*ticket.spec.extra.get("transforms", []), t]})
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    s = summarize(model)
    binary = {"act": hp.act, "ternary": s["ternary"], "scale": hp.scale, "layers": layers, "sign_zero": "+1",
              "padding": "one" if hp.act == "binary" else "zero", "first_layer_act": "float"}
    precision = {f"{n}.weight": 1 if n in layers else 32 for n in all_layers(model)}
    return model, Ticket(spec, state, ticket.mask, None, precision, {"binary": binary})


def run(path: str | Path, hp: BinarizeHparams, out: str | Path | None = None, level: int | None = None,
        seed: int = 0) -> dict[str, Any]:
    """Binarize and finetune the ticket at `path` (ticket, seed or run directory); write report.json."""
    start = time.perf_counter()
    src_dir = resolve(path, level=level)
    src = Ticket.load(src_dir)
    d = Path(out) if out is not None else src_dir / f"binarize-{hp.digest()}"
    if (d / "report.json").is_file():
        return load_json(d / "report.json")
    name = hp.dataset or src.meta.get("dataset")
    if not name:
        raise RunDirError(f"{src_dir} does not record its dataset; pass the dataset to binarize it.")
    data = datasets.get(name, data_root=hp.data_root)
    model, ticket = binarize_ticket(src, hp)
    _, before = evaluate(model, data.x_test, data.y_test)
    if not (d / TICKET_FILE).is_file():
        r = train(model, data, hp.train, mask=src.mask, seed=seed)
        ticket.final = {k: v.detach().clone() for k, v in model.state_dict().items()}
        s = summarize(model)
        ticket.meta.update({"finder": "binarize", "digest": hp.digest(), "parent": str(src_dir), "seed": seed,
                            "dataset": name, "metrics": r.metrics(), "layer_density": src.mask.layer_density(),
                            "summary": s["layers"], "bits_total": s["bits_total"],
                            "float32_bits_total": s["float32_bits_total"]})
        ticket.save(d)
    ticket = Ticket.load(d)
    final = ticket.model("final")
    loss, acc = evaluate(final, data.x_test, data.y_test)
    s = summarize(final)
    src_acc = src.meta.get("metrics", {}).get("test_acc")
    report = {
        "command": "binarize", "source": str(src_dir), "ticket_dir": str(d), "dataset": name,
        "model": ticket.spec.name, "width": ticket.spec.width, "density": ticket.density,
        "source_test_acc": src_acc, "before_finetune_test_acc": before, "test_acc": acc, "test_loss": loss,
        "binary": ticket.meta["binary"], "ternary": ticket.meta["binary"]["ternary"],
        **{k: v for k, v in s.items() if k != "layers"}, "layers": s["layers"],
        "wall_s": round(time.perf_counter() - start, 2), "hparams": hp.to_dict(),
    }
    save_json(d / "report.json", report)
    log.info("binarized %s: test_acc %.4f (source %s, before finetune %.4f)", src_dir, acc, src_acc, before)
    return report
