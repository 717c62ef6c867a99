"""BiP: model pruning as bi-level optimization (Zhang et al., "Advancing Model Pruning via Bi-level
Optimization", NeurIPS 2022).

`settings.BipHparams` is torch-free (the CLI builds flags from it); `compress.bip.run.find_ticket` runs
pretrain -> bilevel pruning -> finetune and returns a `compress.ticket.Ticket`.
"""
