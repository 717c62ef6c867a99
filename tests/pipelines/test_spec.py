import pytest

from compress.errors import UnknownNameError
from pipelines import presets
from pipelines.runner import Pipeline
from pipelines.spec import SpecError, apply_sets, parse
from tests.pipelines.pipeline_specs import tiny


def _fails(raw, match):
    with pytest.raises((SpecError, UnknownNameError), match=match):
        parse(raw, "spec.toml")


def test_tiny_spec_validates_into_dataclasses():
    spec = parse(tiny(), "spec.toml")
    assert [s.name for s in spec.stages] == ["dense", "imp", "bench"]
    imp = spec.stages[1]
    assert imp.hp.rounds == 2 and imp.hp.train.epochs == 1.0 and imp.hp.controls.controls == ()
    assert imp.gates == {"max_acc_drop": 0.5, "min_storage_ratio": 1.1, "max_density": 0.9}
    assert spec.settings.width == 0.25 and spec.settings.dataset == "digits"


def test_unknown_stage_kind_and_keys_name_the_valid_ones():
    raw = tiny()
    raw["stages"][1]["kind"] = "imq"
    _fails(raw, r"unknown method 'imq'. Valid methods: .*bench, .*dense, .*imp")
    raw = tiny()
    raw["stages"][1]["roundz"] = 3
    _fails(raw, r"spec.toml: unknown setting 'imp.roundz'. Valid settings here: imp.controls, imp.from_ticket, "
                r"imp.level")
    raw = tiny()
    raw["stages"][1]["train"]["lr_x"] = 3
    _fails(raw, r"unknown setting 'imp.train.lr_x'")
    raw = tiny()
    raw["pipeline"]["modle"] = "conv4"
    _fails(raw, r"unknown setting 'pipeline.modle'. Valid settings here: pipeline.data_root, pipeline.dataset")
    _fails({**tiny(), "stagez": []}, r"unknown top-level key 'stagez'. Valid keys: pipeline, stages")
    _fails({"pipeline": {}}, r"at least one \[\[stages\]\]")
    _fails({"stages": [{"rounds": 2}]}, r"stages\[0\] has no 'kind'. Valid kinds: .*dense")


def test_wrong_types_cite_the_key_path():
    raw = tiny()
    raw["stages"][1]["rounds"] = "many"
    _fails(raw, r"setting 'imp.rounds' must be an integer, got 'many'")
    raw = tiny()
    raw["stages"][0]["train"]["lr"] = [1, 2]
    _fails(raw, r"setting 'dense.train.lr' must be a number")
    raw = tiny()
    raw["stages"][1]["rounds"] = 0
    _fails(raw, r"stage 'imp' \(imp\): rounds must be >= 1, got 0")
    raw = tiny()
    raw["stages"][0]["gate"] = {"min_acc": "high"}
    _fails(raw, r"gate 'dense.gate.min_acc' must be a number")
    raw = tiny()
    raw["stages"][0]["gate"] = {"min_acc": 2}
    _fails(raw, r"gate 'dense.gate.min_acc' must be in \[0.0, 1.0\]")


def test_gate_on_a_metric_the_stage_does_not_produce():
    raw = tiny()
    raw["stages"][0]["gate"] = {"max_latency_ratio": 1.2}
    _fails(raw, r"gate 'dense.gate.max_latency_ratio' checks metric 'latency_ratio', which a dense stage does not "
                r"produce .* Gates valid here: max_acc_drop, min_acc, min_agreement, max_storage_bytes, "
                r"min_storage_ratio, max_file_bytes, min_file_ratio, max_density")
    raw = tiny()
    raw["stages"][2]["gate"] = {"max_speedup": 2}
    _fails(raw, r"unknown gate 'bench.gate.max_speedup'. Gates valid for a bench stage: "
                r"max_acc_drop, min_acc, min_agreement, min_parity, max_latency_ratio, max_latency_ms")


def test_impossible_order_and_missing_baseline():
    raw = tiny()
    raw["stages"] = [raw["stages"][2], *raw["stages"][:2]]
    _fails(raw, r"stage 'bench' \(bench\) needs a model, which no earlier stage produces "
                r"\(stages before it: none\). Put one of .*dense, .*imp.* before it, or give it an 'input' path")
    raw = tiny()
    raw["stages"] = [raw["stages"][0], {"kind": "export_lce"}]
    _fails(raw, r"stage 'export_lce' \(export_lce\) needs a binary_ticket, which no earlier stage produces \(stages "
                r"before it: dense\). Put one of binarize, mpt")
    raw = tiny()
    del raw["stages"][0]
    _fails(raw, r"gate 'imp.gate.max_acc_drop' compares with the dense baseline.*Add a 'dense' stage first")


def test_names_must_be_unique_and_valid():
    raw = tiny({"kind": "bench"})
    _fails(raw, r"two stages are named 'bench'")
    raw = tiny({"kind": "bench", "name": "Bad-Name"})
    _fails(raw, r"stages\[3\].name 'Bad-Name' must be lowercase")


def test_set_overrides_and_their_errors():
    raw = apply_sets(tiny(), ["imp.rounds=3", "pipeline.seed=2", "imp.gate.max_acc_drop=0.02",
                              "imp.train.lr=0.01", "pipeline.dataset=digits"])
    spec = parse(raw)
    assert spec.stages[1].hp.rounds == 3 and spec.settings.seed == 2 and spec.stages[1].hp.train.lr == 0.01
    assert spec.stages[1].gates["max_acc_drop"] == 0.02 and spec.stages[1].hp.train.epochs == 1.0
    with pytest.raises(SpecError, match=r"no stage named 'imb'. Valid: pipeline, dense, imp, bench"):
        apply_sets(tiny(), ["imb.rounds=3"])
    with pytest.raises(SpecError, match=r"--set needs STAGE.KEY=VALUE"):
        apply_sets(tiny(), ["rounds=3"])
    with pytest.raises(SpecError, match=r"'imp.rounds' must be an integer"):
        parse(apply_sets(tiny(), ["imp.rounds=lots"]))


def test_model_recommended_lr_applies_unless_set():
    raw = tiny()
    raw["pipeline"]["model"] = "conv2"
    assert parse(raw).stages[0].hp.train.lr == 2e-4  # the LTH paper's Conv-2 rate
    raw["stages"][0]["train"]["lr"] = 0.01
    spec = parse(raw)
    assert spec.stages[0].hp.train.lr == 0.01 and spec.stages[0].hp.train.epochs == 1.0


def test_presets_parse_and_unknown_preset_is_named():
    names = presets.names()
    assert "quickstart" in names
    for name in names:
        assert Pipeline.from_preset(name).spec.stages
    with pytest.raises(UnknownNameError, match=r"unknown preset 'quikstart'. Valid presets: .*quickstart"):
        Pipeline.load("quikstart")
    with pytest.raises(SpecError, match="does not exist"):
        Pipeline.load("missing/file.toml")


def test_rules_across_fields_are_checked_before_anything_runs():
    raw = tiny()
    raw["stages"][1]["rewind"] = "iter"  # the stage used to accept this and fail only after the dense stage
    _fails(raw, r"rewind 'iter' needs rewind_iter >= 1")


def test_an_explicit_input_replaces_an_earlier_stage(tmp_path):
    raw = {"pipeline": {"dataset": "digits"}, "stages": [{"kind": "export_onnx", "input": str(tmp_path / "t")}]}
    spec = parse(raw)
    assert spec.stages[0].input == str(tmp_path / "t")
    _fails({"pipeline": {}, "stages": [{"kind": "export_onnx", "input": 3}]}, r"'export_onnx.input' must be a path")
