"""BiP: model pruning as bi-level optimization (Zhang et al., "Advancing Model Pruning via Bi-level
Optimization", NeurIPS 2022).

- `settings.BipHparams`: the method's one settings class (torch-free; the CLI builds flags from it). The method
  itself (`lottery find bip`, pipeline stage `bip`) is `compress.finders.bip`.
- `run.find_ticket(spec, data, hp, seed, pretrained=None) -> (Ticket, history)`: pretrain -> bilevel
  pruning -> finetune; `run.run_seed(run_dir, hp, data, spec, seed, ctx=None)` writes the finders' level-0/level-1
  layout with reinit/random controls (verdicts via `compress.finders.common.finish`).
- `problem`: the bilevel problem (global top-k straight-through mask) and BiP's closed-form oracle;
  `sgd`: BiP's own alternating update; `mrbo`/`vrbo` come from `compress.bilevel`.
"""
