"""Check the agent's GPU reader on a real NVIDIA machine (GP-001, GP-002, GP-003): no network,
nothing beyond the project's locked dependencies, the driver's own ``nvidia-smi`` and ``libcuda``.

Three parts, each printing its figures:

1. **NVML reader vs nvidia-smi** — the agent's :class:`GpuReader` over the real binding beside
   ``nvidia-smi --query-gpu=index,uuid,name,memory.total,memory.used,utilization.gpu,
   utilization.memory,mig.mode.current --format=csv,noheader,nounits``, per GPU, with the
   differences. Memory must agree within 1 %, names and UUIDs exactly; utilisation is
   sampled differently (the reader: mean since its last read; nvidia-smi: the last period),
   so its difference is shown, not judged.
2. **Attribution of a known allocation** — a child process allocates ``--alloc-mib`` MiB on
   GPU 0 through the CUDA driver API with ctypes (``cuInit``, ``cuDeviceGet``,
   ``cuCtxCreate``, ``cuMemAlloc``); the reader must list that PID with at least that much
   memory (and not more than 1 GiB above it: the context's own), attributed to the child's
   cgroup (``/proc/<pid>/cgroup``, the same path the pod mapping reads; a pod UID when this
   runs inside a pod).
3. **Cost** — the node reader's CPU per read (thread CPU time, ``--reads`` reads) without and
   with the GPU reader, and the RSS of a fresh process each way (NVML initialised).

Run on the GPU machine from the repository root::

    uv run python -m benchmarks.gpu_check            # exit 0: all checks passed
    uv run python -m benchmarks.gpu_check --alloc-mib 2048 --reads 200

Exit status: 0 all passed, 1 a check failed, 2 no NVIDIA GPU here (nothing was checked).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks._proc import format_table

REPO = Path(__file__).resolve().parent.parent
SMI_FIELDS = (
    "index,uuid,name,memory.total,memory.used,utilization.gpu,utilization.memory,mig.mode.current"
)
MIB = 1 << 20

_ALLOCATE = r"""
import ctypes, sys
size = int(sys.argv[1])
cuda = ctypes.CDLL("libcuda.so.1")
def check(result, call):
    if result != 0:
        print(f"error {call} {result}", flush=True)
        sys.exit(3)
check(cuda.cuInit(0), "cuInit")
device = ctypes.c_int()
check(cuda.cuDeviceGet(ctypes.byref(device), 0), "cuDeviceGet")
context = ctypes.c_void_p()
if hasattr(cuda, "cuCtxCreate_v2"):
    check(cuda.cuCtxCreate_v2(ctypes.byref(context), 0, device), "cuCtxCreate_v2")
else:  # newer drivers: the primary context
    check(cuda.cuDevicePrimaryCtxRetain(ctypes.byref(context), device), "cuDevicePrimaryCtxRetain")
    check(cuda.cuCtxSetCurrent(context), "cuCtxSetCurrent")
pointer = ctypes.c_uint64()
check(cuda.cuMemAlloc_v2(ctypes.byref(pointer), ctypes.c_size_t(size)), "cuMemAlloc_v2")
print("ready", flush=True)
sys.stdin.read()
cuda.cuMemFree_v2(pointer)
"""

_RSS_CHILD = r"""
import json, sys
from headroom.agent.main import build_reader
from headroom.agent.settings import AgentSettings
from headroom.collection.psutil_reader import PsutilNodeReader
settings = AgentSettings.load()
if sys.argv[1] == "nvml":
    reader = build_reader(settings)
else:
    reader = PsutilNodeReader(settings.host_paths(), settings.disk_paths)
for _ in range(20):
    sample = reader.read()
rss = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmRSS:"))
print(json.dumps({"rss": rss, "gpus": len(sample.gpus.gpus) if sample.gpus else 0,
                  "pynvml": "pynvml" in sys.modules}))
"""


def no_gpu_reason() -> str | None:
    """Why this machine cannot run the check, or None."""
    from headroom.collection.gpu.library import nvml_library

    if nvml_library() is None:
        return "no libnvidia-ml.so.1 on this machine: this check needs an NVIDIA GPU and driver"
    if shutil.which("nvidia-smi") is None:
        return "nvidia-smi is not on PATH: this check compares the reader with it"
    return None


def smi_rows() -> list[dict[str, str]]:
    """``nvidia-smi --query-gpu`` as one dict per GPU (memory in MiB, utilisation in %).

    With ``memory.reserved`` where this nvidia-smi knows it: NVML's v1 memory answer (the
    one the reader takes, so that free is what can still be allocated) counts the driver's
    reserved memory as used; newer nvidia-smi shows it apart.
    """
    for fields in (f"{SMI_FIELDS},memory.reserved", SMI_FIELDS):
        result = subprocess.run(
            ["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        if result.returncode == 0:
            break
    else:
        raise SystemExit(f"gpu_check: nvidia-smi failed: {result.stderr.strip()}")
    out = result.stdout
    names = fields.split(",")
    return [
        {name: value.strip() for name, value in zip(names, row, strict=True)}
        for row in csv.reader(io.StringIO(out))
        if row
    ]


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:  # "[N/A]", "[Not Supported]"
        return None


def compare_with_smi(reader_read: Callable[[], object]) -> bool:
    """Part 1: print the reader's figures beside nvidia-smi's; True when they agree."""
    snapshot = reader_read()
    smi = {row["uuid"]: row for row in smi_rows()}
    rows, ok = [], True
    for gpu in snapshot.gpus:  # type: ignore[attr-defined]
        theirs = smi.get(gpu.uuid or "")
        if theirs is None:
            rows.append([str(gpu.index), gpu.uuid or "-", "not in nvidia-smi", "", "", "", "FAIL"])
            ok = False
            continue
        total_smi, used_smi = _number(theirs["memory.total"]), _number(theirs["memory.used"])
        reserved = _number(theirs.get("memory.reserved", "")) or 0.0
        if used_smi is not None:
            used_smi += reserved
        total = None if gpu.memoryTotalBytes is None else gpu.memoryTotalBytes / MIB
        used = None if gpu.memoryUsedBytes is None else gpu.memoryUsedBytes / MIB
        verdict = "FAIL read" if gpu.error else "ok"
        if theirs["name"] != gpu.name:
            verdict = "FAIL name"
        for mine, theirs_value in ((total, total_smi), (used, used_smi)):
            if (
                mine is not None
                and theirs_value is not None
                and abs(mine - theirs_value) > max(16.0, 0.01 * (total_smi or theirs_value))
            ):
                verdict = "FAIL memory"
        ok = ok and verdict == "ok"
        util_smi = _number(theirs["utilization.gpu"])
        rows.append(
            [
                str(gpu.index),
                f"{gpu.name} / {theirs['name']}",
                f"{total:.0f} / {total_smi}" if total is not None else f"- / {total_smi}",
                f"{used:.0f} / {used_smi} (Δ {used - used_smi:+.0f})"
                if used is not None and used_smi is not None
                else f"- / {used_smi}",
                f"{gpu.utilizationPercent} / {util_smi}",
                f"{gpu.migMode} / {theirs['mig.mode.current']}",
                verdict + (f" ({gpu.error})" if gpu.error else ""),
            ]
        )
    print("1. NVML reader vs nvidia-smi (reader / nvidia-smi; nvidia-smi used + reserved)")
    print(format_table(["GPU", "NAME", "MEMORY MiB", "USED MiB", "UTIL %", "MIG", "VERDICT"], rows))
    return ok and len(snapshot.gpus) == len(smi)  # type: ignore[attr-defined]


def cgroup_of(procfs: str, pid: int) -> str | None:
    """The process's cgroup path (its v2 line, else its first), as the pod mapping reads it."""
    try:
        lines = Path(f"{procfs}/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return None
    unified = [line.split(":", 2)[2] for line in lines if line.startswith("0::")]
    return unified[0] if unified else (lines[0].split(":", 2)[2] if lines else None)


def check_attribution(alloc_mib: int) -> bool:
    """Part 2: a child allocates ``alloc_mib`` MiB; the reader must attribute it to its cgroup."""
    from headroom.collection.gpu.nvml import open_nvml
    from headroom.collection.gpu.pids import pod_uid_of_pid
    from headroom.collection.gpu.reader import GpuReader

    size = alloc_mib * MIB
    child = subprocess.Popen(
        [sys.executable, "-c", _ALLOCATE, str(size)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        line = child.stdout.readline().strip()
        if line != "ready":
            print(f"2. the CUDA child failed: {line or child.wait()}")
            return False
        time.sleep(1.0)
        cgroup = cgroup_of("/proc", child.pid)
        reader = GpuReader(open_nvml(), "/proc", pod_of_pid=cgroup_of)
        snapshot = reader.read()
        mine = snapshot.pods.get(cgroup or "")
        attributed = mine.memoryBytes if mine is not None else None
        ok = attributed is not None and size <= attributed <= size + 1024 * MIB
        print(f"\n2. {alloc_mib} MiB allocated by PID {child.pid} (cgroup {cgroup})")
        print(
            format_table(
                ["KEY (cgroup)", "GPU MEMORY MiB", "DEVICES", "PROCS"],
                [
                    [
                        key,
                        "-" if usage.memoryBytes is None else f"{usage.memoryBytes / MIB:.0f}",
                        ",".join(str(d.gpuIndex) for d in usage.devices),
                        str(sum(d.processes for d in usage.devices)),
                    ]
                    for key, usage in snapshot.pods.items()
                ],
            )
        )
        delta = "-" if attributed is None else f"{(attributed - size) / MIB:+.0f} MiB"
        print(
            f"attributed to its cgroup: "
            f"{'-' if attributed is None else f'{attributed / MIB:.0f} MiB'} "
            f"({delta} beyond the allocation: the CUDA context) → {'ok' if ok else 'FAIL'}"
        )
        print(
            f"its pod by the agent's mapping: {pod_uid_of_pid('/proc', child.pid) or 'none (not in a pod)'}"
        )
        child.stdin.close()
        child.wait(timeout=30)
        return ok
    finally:
        if child.poll() is None:
            child.kill()


def measure_cost(reads: int) -> None:
    """Part 3: CPU per read without and with the GPU reader; RSS of a fresh process each way."""
    from headroom.collection.gpu.nvml import open_nvml
    from headroom.collection.gpu.reader import GpuReader
    from headroom.collection.psutil_reader import PsutilNodeReader

    rows = []
    for label, gpu in (("without NVML", None), ("with NVML", GpuReader(open_nvml(), "/proc"))):
        reader = PsutilNodeReader(gpu=gpu)
        reader.read()
        started = time.thread_time()
        for _ in range(reads):
            reader.read()
        rows.append([label, f"{(time.thread_time() - started) / reads * 1e3:.3f}"])
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.pathsep.join([str(REPO / "operator"), str(REPO)]),
    }
    rss = {}
    for mode in ("plain", "nvml"):
        result = subprocess.run(
            [sys.executable, "-c", _RSS_CHILD, mode],
            capture_output=True,
            text=True,
            env=env,
            check=True,
            timeout=120,
        )
        rss[mode] = json.loads(result.stdout.strip().splitlines()[-1])
    base = rss["plain"]["rss"]
    print(f"\n3. the node reader's cost ({reads} reads; RSS after 20 reads in a fresh process)")
    print(format_table(["READER", "CPU ms/read"], rows))
    print(
        format_table(
            ["PROCESS", "RSS MiB", "vs plain", "GPUs", "pynvml"],
            [
                [
                    mode,
                    f"{r['rss'] / MIB:.1f}",
                    f"{(r['rss'] - base) / MIB:+.2f}",
                    str(r["gpus"]),
                    "yes" if r["pynvml"] else "no",
                ]
                for mode, r in rss.items()
            ],
        )
    )


def main(argv: list[str] | None = None) -> int:
    """Run the three parts; 0 when every check passed, 1 when one failed, 2 without a GPU."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--alloc-mib", type=int, default=1024)
    parser.add_argument("--reads", type=int, default=100)
    args = parser.parse_args(argv)
    reason = no_gpu_reason()
    if reason is not None:
        print(f"gpu_check: {reason}; nothing was checked", file=sys.stderr)
        return 2
    from headroom.collection.gpu.nvml import NvmlError, open_nvml
    from headroom.collection.gpu.reader import GpuReader

    try:
        reader = GpuReader(open_nvml(), "/proc")
    except NvmlError as error:
        print(f"gpu_check: NVML did not start ({error}); nothing was checked", file=sys.stderr)
        return 2
    reader.read()  # the first read sets the utilisation baseline
    time.sleep(1.0)
    agreed = compare_with_smi(reader.read)
    attributed = check_attribution(args.alloc_mib)
    measure_cost(args.reads)
    print(
        f"\nnvidia-smi agreement: {'ok' if agreed else 'FAIL'}; attribution: {'ok' if attributed else 'FAIL'}"
    )
    return 0 if agreed and attributed else 1


if __name__ == "__main__":
    raise SystemExit(main())
