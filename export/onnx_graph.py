"""torch -> ONNX graph with the TorchScript exporter, and exporter failures turned into clear errors.

Why `dynamo=False`: torch 2.14 defaults to the dynamo exporter (torch.export + onnxscript). Both give
plain Conv/Gemm with constant initializers for these nets, but the TorchScript exporter is ~60x faster
(0.08 s vs 5 s for a tiny conv net), keeps the state_dict names as initializer names (so the 2:4 report
and the sparse-storage report name layers as the ticket does), writes every opset from 9 to 20 directly
(dynamo writes >= 18 and down-converts), and needs nothing online.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from export.errors import ExportError

MIN_OPSET = 9  # IR version 4: initializers that are not graph inputs, and sparse initializers


def max_opset() -> int:
    from torch.onnx import _constants

    return int(getattr(_constants, "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET", 20))


class _Half(nn.Module):
    """float32 in/out around an fp16 model: Cast nodes at the borders, fp16 Conv/Gemm inside."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model.half()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.half()).float()


def to_onnx(model: nn.Module, input_shape: tuple[int, ...], opset: int = 17, batch: int | None = None,
            fp16: bool = False) -> Any:
    """Export `model` (eval mode) to a dense-storage ONNX ModelProto with input `input` and output `logits`.

    `batch=None` makes the batch dimension dynamic; an int fixes it (TensorRT likes static shapes).
    """
    import onnx

    if not MIN_OPSET <= opset <= max_opset():
        raise ExportError(f"opset {opset} is outside what the exporter writes ({MIN_OPSET}..{max_opset()}); "
                          "pass --opset in that range (17 is the default).")
    model = model.eval()
    net = _Half(_copy(model)) if fp16 else model
    sample = torch.zeros(batch or 2, *input_shape)
    buf = io.BytesIO()
    dyn = None if batch else {"input": {0: "batch"}, "logits": {0: "batch"}}
    try:
        with _quiet(), torch.no_grad():
            torch.onnx.export(net, (sample,), buf, dynamo=False, opset_version=opset, input_names=["input"],
                              output_names=["logits"], dynamic_axes=dyn, do_constant_folding=True)
    except torch.onnx.errors.UnsupportedOperatorError as e:
        raise _explain(model, sample, opset, e) from e
    except torch.onnx.errors.OnnxExporterError as e:
        raise ExportError(f"the ONNX exporter failed at opset {opset}: {str(e).splitlines()[0][:300]}") from e
    return inline_constant_identities(onnx.load_from_string(buf.getvalue()))


def inline_constant_identities(model: Any) -> Any:
    """Replace `Identity(initializer)` nodes by a copy of the initializer, in place.

    The TorchScript exporter deduplicates equal initializers (e.g. all-zero biases) and re-exposes them
    through Identity nodes; TensorRT and the 2:4 report want every Conv/Gemm to read its weights straight
    from an initializer. The duplicates cost a few bias vectors at most.
    """
    inits = {i.name: i for i in model.graph.initializer}
    keep = []
    for node in model.graph.node:
        if node.op_type == "Identity" and node.input[0] in inits:
            copy_ = model.graph.initializer.add()
            copy_.CopyFrom(inits[node.input[0]])
            copy_.name = node.output[0]
        else:
            keep.append(node)
    del model.graph.node[:]
    model.graph.node.extend(keep)
    return model


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """No deprecation warnings, and the exporter's 'Torch IR graph at exception' dump kept off stdout."""
    # torch 2.14's setup_onnx_logging tests a function object for truth, so its C++ log is always on and
    # dumps the whole graph on any failure: we explain failures ourselves, so silence fd 2 meanwhile.
    torch._C._jit_set_onnx_log_output_stream("stderr")
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _copy(model: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(model)


def _explain(model: nn.Module, sample: torch.Tensor, opset: int, err: Exception) -> ExportError:
    msg = str(err).splitlines()[0]
    m = re.search(r"operator '([^']+)'", msg)
    op = m.group(1) if m else "an operator"
    newer = re.search(r"added in version (\d+)", str(err))
    layer = locate(model, sample, opset, op)
    where = f"layer '{layer[0]}' ({layer[1]})" if layer else f"the model {type(model).__name__}"
    if newer:
        return ExportError(f"{where} uses {op}, which needs ONNX opset >= {newer.group(1)}; opset {opset} is too "
                           f"old for this graph. Pass --opset {newer.group(1)} (up to {max_opset()}).")
    return ExportError(f"{where} uses {op}, which the ONNX exporter cannot write (opset {opset}). Replace that "
                       "layer with standard conv/linear/activation/pooling layers, or export it another way.")


def locate(model: nn.Module, sample: torch.Tensor, opset: int, op: str) -> tuple[str, str] | None:
    """The deepest submodule whose own export fails on `op`: the layer to name in the error."""
    inputs: dict[str, tuple] = {}

    def keep(name: str):
        def hook(_mod: nn.Module, args: tuple, _out: Any) -> None:  # returns None: the output is left alone
            inputs.setdefault(name, args)

        return hook

    hooks = [mod.register_forward_hook(keep(name)) for name, mod in model.named_modules() if name]
    try:
        with torch.no_grad():
            model(sample)
    except Exception:  # noqa: BLE001 - the model may not even run; then nothing more specific to say
        return None
    finally:
        for h in hooks:
            h.remove()
    modules = dict(model.named_modules())
    for name in sorted(inputs, key=lambda n: -n.count(".")):
        try:
            with _quiet(), torch.no_grad():
                torch.onnx.export(modules[name], inputs[name], io.BytesIO(), dynamo=False, opset_version=opset)
        except torch.onnx.errors.UnsupportedOperatorError as e:
            if op in str(e):
                return name, type(modules[name]).__name__
        except Exception:  # noqa: BLE001,S112 - a submodule that cannot be exported alone for other reasons
            continue
    return None
