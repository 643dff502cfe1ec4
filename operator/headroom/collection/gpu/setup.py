"""Which GPU reader a node gets: a recording, the real NVML, or none (GP-003).

No recording configured and no ``libnvidia-ml.so.1`` on the library path: no
reader, nothing imported, no ``gpus`` section and no warning — a node without
GPUs is exactly as before. The library present but NVML not starting (driver
not loaded, no permission) or no GPU counted: no reader, and one line saying
why, so a GPU node that reports no GPUs says so in the agent's log.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from headroom.collection.gpu.library import nvml_library

if TYPE_CHECKING:
    from headroom.collection.gpu.reader import GpuReader

__all__ = ["choose_gpu_reader"]


def choose_gpu_reader(
    procfs: str, recording: str | None = None, *, library: str | None = None
) -> tuple[GpuReader | None, str | None]:
    """(reader, why there is none) for a node whose procfs is at ``procfs``.

    ``library`` overrides the search for ``libnvidia-ml.so.1`` (tests).
    """
    if recording:
        from headroom.collection.gpu.reader import GpuReader
        from headroom.collection.gpu.recorded import RecordedNvml

        return GpuReader(RecordedNvml.from_file(recording), procfs), None
    found = library if library is not None else nvml_library()
    if not found:
        return None, None
    from headroom.collection.gpu.nvml import NvmlError, open_nvml
    from headroom.collection.gpu.reader import GpuReader

    try:
        nvml = open_nvml()
        count = nvml.device_count()
    except NvmlError as error:
        return None, f"{found} is present but NVML did not start ({error.name}); no GPU figures"
    except ImportError as error:  # the image lacks nvidia-ml-py
        return None, f"{found} is present but pynvml cannot be imported ({error}); no GPU figures"
    if count == 0:
        return None, "NVML counts no GPU on this node; no GPU figures"
    return GpuReader(nvml, procfs), None
