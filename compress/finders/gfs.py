"""`gfs` (`lottery find gfs`): greedy forward selection (Ye, Gong, Nie, Zhou, Klivans, Liu, "Good Subnetworks
Provably Exist: Pruning via Greedy Forward Selection", ICML 2020): a structured ticket that is a smaller real
network, checked against the structured controls.

Per seed, in the finders' layout:
- `seed-<s>/level-0`: the dense network, trained with `train` (in a pipeline whose dense baseline used the same
  training settings, seed and architecture, that baseline is copied in, not trained twice);
- `seed-<s>/level-1`: the GFS ticket: layer by layer from the input, units (neurons, channels) added greedily
  by minibatch loss, the layer physically shrunk (compress.structured), briefly finetuned; the shrunk network
  finetuned at the end. Its architecture is the model plus a `shrink` transform, so every later stage
  (finetune, binarize, exports, bench) takes it as a normal ticket;
- `control-<kind>.json` beside level 1: `l1` (L1-norm filters, Li et al., ICLR 2017) and `random` (random
  units), each the dense net cut to the same widths one shot and finetuned as many epochs as GFS finetunes in
  all (its final finetune plus one `layer_train` per layer); `small_dense` (the paper's control): the model at
  width x keep, the same small architecture, trained from scratch with `train`.
GFS "wins" only if its mean test accuracy over the seeds beats every control's mean by more than `margin`.

Sizes: the ticket keeps every weight of its own, smaller architecture (`density` 1.0, in the terms every
ticket uses); what shrinking saved is `params_ratio` (parameters, biases included) and `flops_ratio` (FLOPs per
sample, torch.utils.flop_counter), both against the dense network, and the ticket's `storage_bytes`/`file_bytes`.
"""

from __future__ import annotations

from dataclasses import dataclass

from compress.errors import UsageError
from compress.hparams import setting
from compress.method import Context, Method, Output
from compress.settings import TrainHparams
from compress.structured.settings import GfsSettings, VerdictSettings


@dataclass(frozen=True)
class GfsHparams(GfsSettings):
    """GFS's own settings (compress.structured.settings.GfsSettings) plus the dense training and the controls."""

    train: TrainHparams = setting(factory=TrainHparams, prefix="", model_defaults=True,
                                  help="Training of the dense network (level 0) and of the small_dense control.")
    controls: VerdictSettings = setting(factory=VerdictSettings, prefix="",
                                        help="Structured controls GFS must beat (none: no verdict).")

    def validate(self) -> None:
        super().validate()
        if self.layers and "small_dense" in self.controls.controls:
            raise UsageError("the small_dense control is the model at width x keep, which shrinks every hidden "
                             "layer; with `layers` set, choose the controls l1 and random (--controls l1,random).")


def run(ctx: Context) -> Output:
    from compress.finders.common import model_spec
    from compress.structured.finder import check, run_seed, summarize

    hp: GfsHparams = ctx.settings
    data = ctx.data()
    spec = model_spec(ctx, data)
    check(hp, spec, data)
    ctx.progress.message(f"GFS: keep {hp.keep:g} of each layer's units, then {len(hp.controls.controls)} "
                         "structured control(s)")
    for seed in ctx.scope.seed_list():
        run_seed(ctx, hp, data, spec, seed)
    return summarize(ctx, hp, data)


METHOD = Method(
    name="gfs", command=("find", "gfs"), settings=GfsHparams, run=run,
    summary="Greedy forward selection: a smaller real network (structured ticket) with L1/random/small-dense controls",
    doc="Trains the dense net, then keeps KEEP of each hidden layer's neurons/channels by greedy forward selection "
        "(Ye et al., ICML 2020) and physically shrinks the network, so it runs faster on every runtime. L1-norm "
        "and random units of the dense net (finetuned as long as GFS) and the same small architecture trained "
        "from scratch are the controls; GFS is 'winning' only if it beats all of them. Re-running resumes.",
    produces=("ticket", "model", "predictions"),
    metrics=("test_acc", "density", "storage_bytes", "file_bytes", "agreement", "dense_test_acc", "params_ratio",
             "flops_ratio", "parameters", "flops", "winning", "l1_test_acc", "random_test_acc",
             "small_dense_test_acc", "gfs_wall_s"),
)
