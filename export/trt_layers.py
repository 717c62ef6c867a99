"""Which layers of a TensorRT engine run sparse kernels: read from TensorRT's own per-layer report.

The report is the engine inspector's JSON (`engine.create_engine_inspector().get_engine_information(
LayerInformationFormat.JSON)`), the same document `trtexec --exportLayerInfo=FILE --profilingVerbosity=detailed`
writes. Built with `ProfilingVerbosity.DETAILED` it lists, per fused layer, its `Name`, `LayerType`, the chosen
`TacticName`, `HasSparseWeights` (convolutions) and `Metadata` naming the ONNX nodes fused into it
(`[ONNX Layer: <node>]` entries separated by U+001E); with the default `LAYER_NAMES_ONLY` it lists names only.

Two different facts, never mixed up:
- `HasSparseWeights: 1` means TensorRT found the weights 2:4-structured (eligible for sparse math). It does not
  mean a sparse kernel runs: TensorRT times sparse and dense tactics and keeps the faster (NVIDIA/TensorRT#2169,
  #3849). In NVIDIA/TensorRT#4020 a ResNet-18 built with `--sparsity=force` has layers with `HasSparseWeights: 1`
  running dense tactics (`..._implicit_gemm_interleaved_i8i8_...`, `..._simt_small_batch_...`).
- A sparse kernel ran when the chosen tactic is a sparse one; TensorRT names them with `sparse`, e.g.
  `sm80_xmma_fprop_avdt_sparse_int8int8_...` in the same #4020 report. A sparse kernel whose name lacked the
  word would be missed here: the list can under-report, never over-claim.
"""

from __future__ import annotations

import json
from typing import Any

from export.errors import ArtifactError

ONNX_PREFIX = "[ONNX Layer: "
SEPARATOR = "\x1e"  # TensorRT joins the Metadata entries of a fused layer with the ASCII record separator


def onnx_layers(metadata: str) -> list[str]:
    """The ONNX node names in a layer's `Metadata` string (empty when it names none)."""
    names = []
    for part in metadata.split(SEPARATOR):
        part = part.strip()
        if part.startswith(ONNX_PREFIX) and part.endswith("]"):
            names.append(part[len(ONNX_PREFIX):-1])
    return names


def is_sparse_tactic(tactic: str | None) -> bool:
    """True for a tactic TensorRT names as a sparse kernel (see the module docstring for the evidence)."""
    return bool(tactic) and "sparse" in str(tactic).lower()


def parse(info: str | dict[str, Any]) -> list[dict[str, Any]]:
    """Per layer of an engine-inspector JSON document: name, type, ONNX nodes, tactic and the two sparsity facts.

    `sparse_weights` is None where TensorRT does not report it (non-convolution layers, names-only reports)."""
    doc = info
    if isinstance(info, str):
        try:
            doc = json.loads(info)
        except json.JSONDecodeError as e:
            raise ArtifactError(f"TensorRT's layer information is not JSON ({e}); get it with get_engine_information("
                                "LayerInformationFormat.JSON) or trtexec --exportLayerInfo.") from e
    if not isinstance(doc, dict) or not isinstance(doc.get("Layers"), list):
        raise ArtifactError("TensorRT's layer information has no 'Layers' list: it is not an engine-inspector "
                            "JSON document (trtexec --exportLayerInfo writes one).")
    rows: list[dict[str, Any]] = []
    for i, layer in enumerate(doc["Layers"]):
        if isinstance(layer, str):  # built with ProfilingVerbosity.LAYER_NAMES_ONLY
            rows.append({"name": layer, "type": None, "onnx_layers": [], "tactic": None, "sparse_weights": None,
                         "sparse_kernel": False})
            continue
        if not isinstance(layer, dict):
            raise ArtifactError(f"layer {i} of TensorRT's layer information is neither a name nor an object.")
        nodes = onnx_layers(str(layer.get("Metadata", "")))
        tactic = layer.get("TacticName")
        flag = layer.get("HasSparseWeights")
        rows.append({"name": layer.get("Name") or " + ".join(nodes) or f"layer {i}", "type": layer.get("LayerType"),
                     "onnx_layers": nodes, "tactic": tactic, "sparse_weights": None if flag is None else bool(flag),
                     "sparse_kernel": is_sparse_tactic(tactic)})
    return rows


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The layers TensorRT found 2:4-eligible and the ones it ran with sparse kernels (names and ONNX nodes)."""
    sparse = [r for r in rows if r["sparse_kernel"]]
    return {
        "layers": len(rows),
        "detailed": any(r["type"] is not None for r in rows),
        "eligible": [r["name"] for r in rows if r["sparse_weights"]],
        "sparse": [r["name"] for r in sparse],
        "sparse_onnx_layers": [n for r in sparse for n in r["onnx_layers"]],
    }
