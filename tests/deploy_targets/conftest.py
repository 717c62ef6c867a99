import sys
from pathlib import Path

import pytest

# The hand-built ticket factory lives with the export tests; share it without making tests/ a package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "export"))


@pytest.fixture(scope="session")
def tflite(tmp_path_factory):
    """A real LCE model (a tiny binary net), converted once by the TensorFlow worker; skips without LCE."""
    import importlib.util

    if importlib.util.find_spec("larq_compute_engine") is None:
        pytest.skip("larq-compute-engine (edge extra) not installed")
    from export.lce import prepare_job, run_worker
    from export.lce_graph import describe
    from tests.export.lce_nets import binary_net

    job = prepare_job(tmp_path_factory.mktemp("job"), describe(binary_net((1, 8, 8), 10).eval(), (1, 8, 8)), None)
    run_worker([job])
    return job / "model.tflite"
