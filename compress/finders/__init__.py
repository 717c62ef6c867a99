"""Ticket finders, one method per module (imp, pai: grasp/snip/synflow/random, mpt, retrain, finetune, ...).

Each module defines its settings dataclass and a `compress.method.Method`; `compress.finders.common` holds
what they share (levels, verdicts, the chosen ticket's record). Torch-free at import.
"""
