"""`binarize` (`lottery binarize INPUT`): turn any ticket or trained model (IMP, GraSP, dense, ...) into a binary
network and finetune it with the straight-through estimator.

Binary weights are sign(w) times a per-output-channel scale (XNOR-Net, Rastegari et al., 2016; larq's default);
binary activations by default (what Larq Compute Engine bit-packs: a binary layer on float inputs stays a float
op there); first and last layers float by default (XNOR-Net, larq, biprop). Pruned weights stay exactly zero,
so a pruned ticket becomes ternary {-a, 0, +a} (compress.binarize.convert).
"""

from __future__ import annotations

from dataclasses import dataclass

from compress.hparams import Hparams, setting
from compress.method import Context, Method, Output
from compress.settings import TrainHparams

ACTS = ("binary", "float")
SCALES = ("channel", "layer", "none")


def _finetune_train() -> TrainHparams:
    return TrainHparams(optimizer="adam", lr=1e-3, epochs=5, batch_size=64, schedule="cosine")


@dataclass(frozen=True)
class BinarizeHparams(Hparams):
    act: str = setting("binary", choices=ACTS, help="binary: sign activations into binary layers (what LCE "
                                                    "bit-packs); float: 1-bit weights only.")
    scale: str = setting("channel", choices=SCALES, help="Weight scale: per output channel (XNOR-Net), per "
                                                         "layer, or none.")
    layers: str = setting("inner", help="Layers to binarize: inner (first and last stay float), all, or "
                                        "comma-separated layer names.")
    train: TrainHparams = setting(factory=_finetune_train, prefix="", help="The straight-through finetuning.")

    def validate(self) -> None:
        from compress.errors import UsageError

        if not self.layers.strip():
            raise UsageError("layers must be 'inner', 'all' or comma-separated layer names, got an empty string.")


def run(ctx: Context) -> Output:
    from compress.binarize.convert import binarize_ticket
    from compress.binarize.summary import summarize
    from compress.finders.common import ticket_output
    from compress.ticket import TICKET_FILE, Ticket
    from compress.train import evaluate, train

    hp: BinarizeHparams = ctx.settings
    src = Ticket.load(ctx.input("ticket"))
    data = ctx.data()
    out_dir = ctx.dir / "ticket"
    model, ticket = binarize_ticket(src, hp)
    _, before = evaluate(model, data.x_test, data.y_test)
    if not (out_dir / TICKET_FILE).is_file():
        r = train(model, data, hp.train, mask=src.mask, seed=ctx.scope.seed,
                  on_eval=ctx.progress.train_hook("binary finetuning"))
        ticket.final = {k: v.detach().clone() for k, v in model.state_dict().items()}
        s = summarize(model)
        ticket.meta.update({"method": "binarize", "digest": hp.digest(), "seed": ctx.scope.seed,
                            "dataset": data.name, "parent_digest": src.meta.get("digest"),
                            "layer_density": src.mask.layer_density(), "summary": s["layers"],
                            **{k: s[k] for k in ("bits_total", "float32_bits_total", "bits_per_weight",
                                                 "binary_layer_bits_per_weight")}})
        ticket.metrics = {**r.metrics(), "before_finetune_test_acc": before}
        ticket.save(out_dir)
    ticket = Ticket.load(out_dir)
    b = ticket.meta["binary"]
    extra = {"source_test_acc": src.metrics.get("test_acc"),
             "before_finetune_test_acc": ticket.metrics.get("before_finetune_test_acc"),
             "bits_per_weight": ticket.meta.get("bits_per_weight"),
             "binary_layer_bits_per_weight": ticket.meta.get("binary_layer_bits_per_weight")}
    note = f"binary {', '.join(b['layers'])} ({hp.act} activations){', ternary' if b['ternary'] else ''}"
    return ticket_output(ctx, out_dir, ("ticket", "model", "binary_ticket", "predictions"), extra, [note],
                         {"layers": ticket.meta.get("summary", []), "binary": b})


METHOD = Method(
    name="binarize", command=("binarize",), settings=BinarizeHparams, run=run,
    summary="Binarize a float ticket (1-bit weights, binary activations) and finetune it",
    doc="Sign weights x per-channel scale; pruned weights stay 0 (ternary). The first and last layers stay float by "
        "default; with binary activations every inner layer is bit-packed by `lottery export lce`.",
    needs=("ticket",), produces=("ticket", "model", "binary_ticket", "predictions"),
    metrics=("test_acc", "source_test_acc", "before_finetune_test_acc", "density", "storage_bytes", "file_bytes",
             "agreement", "bits_per_weight", "binary_layer_bits_per_weight"),
)
