import subprocess
import sys
import textwrap

import pytest
import torch

from compress.errors import RunDirError
from compress.io import load_json, load_tensors, save_json, save_tensors
from compress.mask import Mask


def test_out_of_disk_leaves_no_half_written_file(tmp_path):
    """A real write failure (file-size limit -> EFBIG), not a mock: the old file survives, no temp remains."""
    target = tmp_path / "final.safetensors"
    save_tensors(target, {"w": torch.zeros(4)})
    before = target.read_bytes()
    script = textwrap.dedent(f"""
        import resource, signal, torch
        from compress.io import save_tensors
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        try:
            save_tensors({str(target)!r}, {{"w": torch.ones(100_000)}})
        except OSError as e:
            print("OSError", e.errno)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=str(tmp_path.parent))
    assert "OSError" in out.stdout, out.stderr
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["final.safetensors"]


def test_corrupt_files_are_named_and_kept(tmp_path):
    bad = tmp_path / "mask.safetensors"
    bad.write_bytes(b"garbage")
    with pytest.raises(RunDirError, match="mask.safetensors is corrupt"):
        load_tensors(bad)
    assert bad.read_bytes() == b"garbage"
    j = tmp_path / "ticket.json"
    j.write_text("{not json")
    with pytest.raises(RunDirError, match="ticket.json is corrupt"):
        load_json(j)
    assert j.exists()


def test_foreign_safetensors_is_not_a_mask(tmp_path):
    save_tensors(tmp_path / "m.safetensors", {"w": torch.full((3,), 7, dtype=torch.uint8)})
    with pytest.raises(RunDirError, match="not a lottery mask"):
        Mask.load(tmp_path / "m.safetensors")


def test_json_round_trip(tmp_path):
    save_json(tmp_path / "a.json", {"x": 1.5, "t": (1, 2)})
    assert load_json(tmp_path / "a.json") == {"x": 1.5, "t": [1, 2]}
