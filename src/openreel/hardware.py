"""What this machine can run on: device, dtype and free memory.

torch is imported only when asked, so `openreel models list` and the server start fast.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Hardware:
    device: str  # "cuda", "mps" or "cpu"
    dtype: str  # "bfloat16" on CUDA, else "float32"
    name: str
    # Memory the model may use, GiB: free accelerator memory, or available system RAM on CPU.
    memory_gib: float
    cpu_threads: int
    # Accelerator devices this process sees (GPUs on CUDA; 1 elsewhere): context parallelism
    # (render.parallel) spreads one run over up to this many.
    devices: int = 1

    @property
    def accelerated(self) -> bool:
        return self.device != "cpu"


def _system_available_gib() -> float:
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return 8.0


@lru_cache(maxsize=1)
def detect() -> Hardware:
    """Probe once per process. ``OPENREEL_DEVICE`` forces a device (cpu, cuda, mps)."""
    import torch

    forced = os.environ.get("OPENREEL_DEVICE", "").strip().lower() or None
    threads = torch.get_num_threads()
    if forced in (None, "cuda") and torch.cuda.is_available():
        free, _total = torch.cuda.mem_get_info()
        name, count = torch.cuda.get_device_name(0), torch.cuda.device_count()
        return Hardware("cuda", "bfloat16", name, free / 2**30, threads, count)
    mps = getattr(torch.backends, "mps", None)
    if forced in (None, "mps") and mps is not None and mps.is_available():
        # MPS shares system memory; bf16 support is partial, so stay in fp32... except it is slow.
        return Hardware("mps", "float16", "Apple MPS", _system_available_gib(), threads)
    return Hardware("cpu", "float32", "CPU", _system_available_gib(), threads)
