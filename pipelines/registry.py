"""Every method lottery knows, by name: one line per method module (each defines `METHOD` or `METHODS`).

A method is a `compress.method.Method`; its name is the stage `kind` of pipeline specs, and its `command`
(if any) is its `lottery` command. Method modules are torch-free at import, so listing them is instant.
"""

from __future__ import annotations

import importlib

from compress.errors import UnknownNameError
from compress.method import Method

METHOD_MODULES: list[str] = [
    "compress.finders.dense",
    "compress.finders.imp",
    "compress.finders.pai",
    "compress.finders.mpt",
    "compress.finders.dst",
    "compress.finders.gfs",
    "compress.finders.bip",
    "compress.finders.retrain",
    "compress.finders.finetune",
    "compress.binarize.method",
    "export.onnx",
    "export.tensorrt",
    "export.lce",
    "deploy_targets.bench",
    "deploy_targets.edge_deploy",
]

_METHODS: dict[str, Method] = {}


def _load() -> dict[str, Method]:
    if not _METHODS:
        for name in METHOD_MODULES:
            module = importlib.import_module(name)
            for m in getattr(module, "METHODS", None) or [module.METHOD]:
                if m.name in _METHODS:
                    raise RuntimeError(f"method '{m.name}' is defined twice ({name})")
                _METHODS[m.name] = m
    return _METHODS


def get(name: str) -> Method:
    methods = _load()
    if name not in methods:
        raise UnknownNameError("method", name, methods)
    return methods[name]


def all_methods() -> list[Method]:
    return list(_load().values())


def names() -> dict[str, str]:
    return {n: m.summary for n, m in sorted(_load().items())}
