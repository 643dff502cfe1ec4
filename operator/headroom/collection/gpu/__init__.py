"""GPU collection: NVML figures per GPU and per pod, behind a small interface.

:mod:`~headroom.collection.gpu.nvml` is the interface (:class:`Nvml`) and the
real binding (``nvidia-ml-py``, loaded only where ``libnvidia-ml.so.1`` is
present); :mod:`~headroom.collection.gpu.recorded` replays NVML answers from a
file for tests; :mod:`~headroom.collection.gpu.reader` turns either into the
figures a ResourceReport carries; :mod:`~headroom.collection.gpu.pids` maps a
host PID to its pod through the host's procfs. Nothing here imports kopf or a
Kubernetes client, nor pynvml at import time.
"""
