"""INT8 entropy calibrator for TensorRT 10 fed from an in-memory tensor (device buffers via torch.cuda)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def make_calibrator(data: Any, cache: Path, batch_size: int = 32) -> Any:
    """An `IInt8EntropyCalibrator2` over `data` (float32 (N, ...)), caching its table at `cache`."""
    import tensorrt as trt
    import torch

    class Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.data = torch.as_tensor(data, dtype=torch.float32)
            self.pos = 0
            self.device: torch.Tensor | None = None

        def get_batch_size(self) -> int:
            return batch_size

        def get_batch(self, names: list[str]) -> list[int]:
            if self.pos + batch_size > len(self.data):
                return []  # no more batches (TensorRT API: an empty list)
            # Keep a reference: TensorRT reads the buffer after this method returns.
            self.device = self.data[self.pos : self.pos + batch_size].contiguous().cuda()
            self.pos += batch_size
            return [int(self.device.data_ptr())]

        def read_calibration_cache(self) -> bytes | None:
            return cache.read_bytes() if cache.is_file() else None

        def write_calibration_cache(self, table: Any) -> None:
            from compress.io import atomic_write_bytes

            atomic_write_bytes(cache, bytes(table))

    return Calibrator()
