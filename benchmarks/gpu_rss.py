"""What GPU collection costs the agent's process: RSS and CPU per cycle, each way (GP-003, PR-002).

Each mode runs in a fresh process (so imports are the mode's own) over the
same recorded kubepods tree (``make_kubepods_tree``, 30 pods) and reads the
node ``--cycles`` times through ``headroom.agent.main.build_reader`` — what
the agent runs — then reports its VmRSS and CPU per read:

* ``no-gpu-modules`` — the agent's modules imported, but the node reader built
  directly and the GPU modules never imported: the agent before GPU support;
* ``no-gpu`` — ``build_reader`` on this machine (no ``libnvidia-ml.so.1``):
  what every node without GPUs runs now;
* ``recorded`` — the recorded NVML reader (an L4 time-sliced between pods);
* ``recorded+pynvml`` — the same with ``pynvml`` imported as the real binding
  imports it: the binding's Python side, without the driver's library (whose
  own mapping only a GPU node has; ``benchmarks/gpu_check.py`` measures it
  there).

Run from the repository root: ``uv run python -m benchmarks.gpu_rss``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks._proc import format_table
from benchmarks.agent_overhead import make_kubepods_tree

REPO = Path(__file__).resolve().parent.parent
RECORDING = REPO / "tests/fixtures/gpu/nvml-timesliced.yaml"
MODES = ("no-gpu-modules", "no-gpu", "recorded", "recorded+pynvml")

_CHILD = """
import json, sys, time
mode, cycles = sys.argv[1], int(sys.argv[2])
if mode == "no-gpu-modules":
    import headroom.agent.main  # noqa: F401  (everything the agent imports but the GPU modules)
    from headroom.agent.settings import AgentSettings
    from headroom.collection.psutil_reader import PsutilNodeReader
    settings = AgentSettings.load()
    reader = PsutilNodeReader(settings.host_paths(), settings.disk_paths)
else:
    if mode == "recorded+pynvml":
        import pynvml  # noqa: F401
    from headroom.agent.main import build_reader
    from headroom.agent.settings import AgentSettings
    settings = AgentSettings.load()
    reader = build_reader(settings)
reader.read()
started = time.thread_time()
for _ in range(cycles):
    sample = reader.read()
cpu = (time.thread_time() - started) / cycles
rss = hwm = 0
for line in open("/proc/self/status"):
    if line.startswith("VmRSS:"):
        rss = int(line.split()[1]) * 1024
    if line.startswith("VmHWM:"):
        hwm = int(line.split()[1]) * 1024
gpus = sample.gpus.gpus if sample.gpus is not None else ()
print(json.dumps({"rss": rss, "hwm": hwm, "cpu": cpu, "gpus": len(gpus),
                  "pynvml": "pynvml" in sys.modules, "gpu_modules": "headroom.collection.gpu.reader" in sys.modules}))
"""


def run_mode(mode: str, cgroupfs: Path, cycles: int) -> dict[str, object]:
    """One mode in a fresh interpreter; its figures."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.pathsep.join([str(REPO / "operator"), str(REPO)]),
        "HEADROOM_CGROUPFS": str(cgroupfs),
    }
    if mode.startswith("recorded"):
        env["HEADROOM_GPU_RECORDING"] = str(RECORDING)
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, mode, str(cycles)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        cwd=REPO,
    )
    figures: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def main(argv: list[str] | None = None) -> int:
    """Print each mode's RSS and CPU per read, and the differences to the first."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3, help="runs per mode (median kept)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as directory:
        cgroupfs = Path(directory)
        make_kubepods_tree(cgroupfs, 30)
        results = {}
        for mode in MODES:
            runs = sorted(
                (run_mode(mode, cgroupfs, args.cycles) for _ in range(args.repeats)),
                key=lambda r: int(r["rss"]),  # type: ignore[call-overload]
            )
            results[mode] = runs[len(runs) // 2]
    base = int(results[MODES[0]]["rss"])  # type: ignore[call-overload]
    rows = []
    for mode, r in results.items():
        rss = int(r["rss"])  # type: ignore[call-overload]
        rows.append(
            [
                mode,
                f"{rss / 2**20:.1f}",
                f"{(rss - base) / 2**20:+.2f}",
                f"{float(r['cpu']) * 1e3:.3f}",  # type: ignore[arg-type]
                str(r["gpus"]),
                "yes" if r["pynvml"] else "no",
                "yes" if r["gpu_modules"] else "no",
            ]
        )
    print(f"agent node reader, 30 pods, {args.cycles} reads, median of {args.repeats} runs")
    print(
        format_table(
            ["mode", "RSS MiB", "vs no-gpu-modules", "CPU ms/read", "GPUs", "pynvml", "GPU reader"],
            rows,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
