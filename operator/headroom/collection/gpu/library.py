"""Whether this node has NVML at all: one ``stat`` per directory, nothing imported or loaded.

The only GPU module a node without GPUs imports (GP-003): the agent asks
:func:`nvml_library` first and imports the reader, the binding and pynvml
only when it answers with a path.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

__all__ = ["LIBRARY", "nvml_library"]

LIBRARY = "libnvidia-ml.so.1"
_LIBRARY_DIRECTORIES = (
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib64",
    "/usr/lib",
    "/usr/local/nvidia/lib64",
    "/usr/local/nvidia/lib",
    "/run/nvidia/driver/usr/lib/x86_64-linux-gnu",
    "/run/nvidia/driver/usr/lib/aarch64-linux-gnu",
)
"""Where distributions, the NVIDIA container toolkit and the GPU operator put the library."""


def nvml_library(
    directories: Sequence[str] = _LIBRARY_DIRECTORIES, environ: Mapping[str, str] | None = None
) -> str | None:
    """Where ``libnvidia-ml.so.1`` is, or None: a stat per directory, nothing loaded.

    ``LD_LIBRARY_PATH`` first (the container toolkit may set it), then the usual
    directories. Finding it is only a hint: :func:`open_nvml` still has to load
    it and ``nvmlInit`` still has to succeed.
    """
    env = os.environ if environ is None else environ
    extra = [part for part in env.get("LD_LIBRARY_PATH", "").split(":") if part]
    for directory in (*extra, *directories):
        candidate = os.path.join(directory, LIBRARY)
        if os.path.exists(candidate):
            return candidate
    return None
