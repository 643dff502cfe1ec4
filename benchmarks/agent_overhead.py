"""The agent's overhead beside Prometheus node_exporter, measured in one run (PR-001..PR-003).

Side by side, at the same interval and for the same number of cycles:

* **headroom** — the agent's collection cycle in its own process
  (``benchmarks._agent_cycle``: the real ``PsutilNodeReader``, ``derive_status``
  and write decision, no API server), reading a kubepods cgroup tree of
  ``--pods`` pods (v2, systemd driver, files in the kernel's format, made in a
  temporary directory: this host has no kubelet);
* with ``--cluster``, also the real ``headroom agent`` process writing its
  ResourceReport to a real kube-apiserver (``tests/controlplane``), admin
  endpoint on (``--no-agent-admin``: off), at its own default interval of
  15 s (``--agent-interval``), heartbeat 60 s: its RSS, CPU per cycle and
  writes per 60 s (target ≤ 1 in steady state);
* **node_exporter** built from its Go module (``go install``, cached in
  ``~/.cache/headroom/node_exporter-<version>/``), scraped with ``GET /metrics``
  every interval — once with its default collectors, once with only those that
  give the agent's figures (cpu, meminfo, filesystem).

Per process: steady RSS (median VmRSS over the window), CPU per cycle (on-CPU
time from ``/proc/<pid>/task/*/schedstat``; utime + stime from
``/proc/<pid>/stat`` beside it) and cycle latency (headroom: one ``tick``;
node_exporter: one scrape, request to last byte). Targets: RSS ≤ 30 MB, CPU
≤ 1 ms per cycle.

Run from the repository root::

    uv run python -m benchmarks.agent_overhead                 # 300 cycles at 0.5 s
    uv run python -m benchmarks.agent_overhead --cluster       # + the real agent process
    uv run python -m benchmarks.agent_overhead --quick         # 40 cycles, a smoke run
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks._proc import ProcessCost, ProcessSampler, format_table, percentile

if TYPE_CHECKING:
    from tests.controlplane.cluster import ControlPlane

REPO = Path(__file__).resolve().parent.parent
NODE_EXPORTER_MODULE = "github.com/prometheus/node_exporter"
DEFAULT_NODE_EXPORTER_VERSION = "v1.12.1"
_POD_FIXTURE = (
    REPO / "tests/fixtures/cgroupfs/v2-systemd/kubepods.slice/kubepods-burstable.slice"
    "/kubepods-burstable-pod0b9c8d7e_6f5a_4b3c_9d2e_1f0a9b8c7d6e.slice"
)
TARGET_RSS_MB = 30.0
TARGET_CPU_MS = 1.0
TARGET_WRITES_PER_MINUTE = 1.0


# --- node_exporter ----------------------------------------------------------------------


def node_exporter_binary(version: str) -> Path:
    """node_exporter ``version``, built once with ``go install`` into the cache."""
    directory = Path.home() / ".cache" / "headroom" / f"node_exporter-{version}"
    binary = directory / "node_exporter"
    if binary.exists():
        return binary
    if shutil.which("go") is None:
        raise SystemExit("node_exporter is not built and `go` is not on PATH")
    directory.mkdir(parents=True, exist_ok=True)
    print(f"building node_exporter {version} into {directory} ...", file=sys.stderr)
    subprocess.run(
        ["go", "install", f"{NODE_EXPORTER_MODULE}@{version}"],
        env={**os.environ, "GOBIN": str(directory), "CGO_ENABLED": "0"},
        check=True,
    )
    return binary


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Scraped:
    """One node_exporter process and the duration of each scrape."""

    label: str
    proc: subprocess.Popen[bytes]
    port: int
    latencies: list[float] = field(default_factory=list)
    body_bytes: int = 0
    _conn: http.client.HTTPConnection | None = None

    def scrape(self) -> float:
        """``GET /metrics`` over a keep-alive connection; seconds to the last byte."""
        if self._conn is None:
            self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        started = time.perf_counter()
        self._conn.request("GET", "/metrics")
        response = self._conn.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200:
            raise RuntimeError(f"{self.label}: HTTP {response.status}")
        self.body_bytes = len(body)
        return elapsed


def wait_ready(target: Scraped, timeout: float = 20.0) -> None:
    """Until node_exporter answers (or has died)."""
    deadline = time.monotonic() + timeout
    while True:
        if target.proc.poll() is not None:
            raise SystemExit(f"{target.label} exited with {target.proc.returncode}")
        try:
            target.scrape()
            return
        except OSError:
            target._conn = None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@contextmanager
def node_exporter(binary: Path, label: str, collectors: list[str] | None) -> Iterator[Scraped]:
    """A node_exporter on a free loopback port, with all or only ``collectors``."""
    port = free_port()
    args = [str(binary), f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
    if collectors is not None:
        args += ["--collector.disable-defaults", *(f"--collector.{c}" for c in collectors)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        target = Scraped(label, proc, port)
        wait_ready(target)
        yield target
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# --- a kubepods cgroup tree -------------------------------------------------------------


def make_kubepods_tree(root: Path, pods: int) -> None:
    """A cgroup v2 tree (systemd driver) with ``pods`` pods in the kernel's file formats."""
    cpu_stat = (_POD_FIXTURE / "cpu.stat").read_text()
    memory_stat = (_POD_FIXTURE / "memory.stat").read_text()
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    kubepods = root / "kubepods.slice"
    qos_dirs = {
        "Guaranteed": (kubepods, "kubepods-pod{}.slice"),
        "Burstable": (
            kubepods / "kubepods-burstable.slice",
            "kubepods-burstable-pod{}.slice",
        ),
        "BestEffort": (
            kubepods / "kubepods-besteffort.slice",
            "kubepods-besteffort-pod{}.slice",
        ),
    }
    order = ["Guaranteed", "Burstable", "Burstable", "Burstable", "BestEffort"]
    for index in range(pods):
        parent, pattern = qos_dirs[order[index % len(order)]]
        uid = str(uuid.UUID(int=index + 1, version=4)).replace("-", "_")
        pod = parent / pattern.format(uid)
        pod.mkdir(parents=True)
        (pod / "cpu.stat").write_text(cpu_stat)
        (pod / "memory.current").write_text(f"{(index + 1) * 64 << 20}\n")
        (pod / "memory.stat").write_text(memory_stat)
        (pod / "cpu.max").write_text("max 100000\n")
        # Two containers (an app and a sidecar) and the sandbox (pause), as on a node.
        for number, share in ((1, 0.75), (2, 0.2), (3, 0.001)):
            container = pod / f"cri-containerd-{index:08x}{number:056x}.scope"
            container.mkdir()
            (container / "cpu.stat").write_text(cpu_stat)
            memory = int((index + 1) * share * 64) << 20
            (container / "memory.current").write_text(f"{memory}\n")
            (container / "memory.stat").write_text(memory_stat)


# --- the agent ------------------------------------------------------------------------


PYCACHE = Path.home() / ".cache" / "headroom" / "pycache"
_AGENT_MODULES = (
    "headroom.cli, headroom.agent.main, headroom.agent.admin, headroom.agent.metrics, "
    "headroom.kube.config, benchmarks._agent_cycle, ssl, json, email.parser, http.server, "
    "headroom.agent.tls, cryptography.x509, cryptography.hazmat.primitives.asymmetric.ec"
)


def agent_environment(cgroupfs: Path) -> dict[str, str]:
    """The agent's settings for this run, through its environment as in the DaemonSet.

    The agent runs from compiled bytecode, as in the image (``UV_COMPILE_BYTECODE=1``):
    a shell with ``PYTHONDONTWRITEBYTECODE`` and no ``__pycache__`` would make
    every start compile each module from source, ~4 MB of RSS the image never
    pays. The bytecode goes to ``PYCACHE`` (``PYTHONPYCACHEPREFIX``), written
    once here before anything is measured.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADROOM_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    env["HEADROOM_CGROUPFS"] = str(cgroupfs)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    subprocess.run([sys.executable, "-c", f"import {_AGENT_MODULES}"], env=env, check=True)
    return env


@dataclass
class ClusterAgent:
    """The real ``headroom agent`` process, writing to a real API server."""

    plane: ControlPlane
    proc: subprocess.Popen[bytes]
    interval: float
    writes_before: float = 0.0

    def report_writes(self) -> float:
        """PUTs (writes) of ResourceReports the API server has counted so far."""
        return report_writes(self.plane.kubectl("get", "--raw", "/metrics").stdout)


def report_writes(metrics_text: str) -> float:
    """PUTs (writes) of ResourceReports in the API server's own ``/metrics`` text."""
    total = 0.0
    for line in metrics_text.splitlines():
        if (
            line.startswith("apiserver_request_total{")
            and 'resource="resourcereports"' in line
            and 'verb="PUT"' in line
        ):
            total += float(line.rpartition(" ")[2])
    return total


# --- the run --------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    """Start everything, measure ``args.cycles`` cycles after a warm-up, print the tables."""
    interval, cycles, warmup = args.interval, args.cycles, args.warmup
    binary = None if args.headroom_only else node_exporter_binary(args.node_exporter_version)
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="headroom-bench-")))
        cgroupfs = work / "cgroup"
        cgroupfs.mkdir()
        make_kubepods_tree(cgroupfs, args.pods)
        env = agent_environment(cgroupfs)

        cluster_agent = start_cluster_agent(stack, args, env, work) if args.cluster else None
        child = subprocess.Popen(
            [sys.executable, "-m", "benchmarks._agent_cycle", str(interval), str(warmup + cycles)],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
        )
        stack.callback(_kill_if_running, child)
        scraped: list[Scraped] = []
        if binary is not None:
            version = args.node_exporter_version
            full = stack.enter_context(node_exporter(binary, f"node_exporter {version}", None))
            same = stack.enter_context(
                node_exporter(
                    binary, f"node_exporter {version} (cpu,meminfo,filesystem)", SAME_FIGURES
                )
            )
            scraped = [full, same]
        assert child.stdout is not None
        if child.stdout.readline().strip() != b"ready":
            raise SystemExit("the agent cycle did not start")

        samplers = {"headroom": ProcessSampler(child.pid)}
        if cluster_agent is not None:
            samplers["agent"] = ProcessSampler(cluster_agent.proc.pid)
        for target in scraped:
            samplers[target.label] = ProcessSampler(target.proc.pid)
        print(
            f"measuring {cycles} cycles at {interval:g} s after {warmup} warm-up cycles "
            f"(~{(cycles + warmup) * interval:.0f} s) ...",
            file=sys.stderr,
        )
        next_at = time.monotonic()
        for index in range(warmup + cycles):
            if index == warmup:
                for sampler in samplers.values():
                    sampler.start(time.monotonic())
            for target in scraped:
                latency = target.scrape()
                if index >= warmup:
                    target.latencies.append(latency)
            if index >= warmup:
                for sampler in samplers.values():
                    sampler.sample()
            next_at += interval
            pause = next_at - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        costs = {name: sampler.stop(time.monotonic()) for name, sampler in samplers.items()}
        out, _ = child.communicate(timeout=60 + interval * 4)
        result = json.loads(out.decode().strip().splitlines()[-1])
        writes = None
        if cluster_agent is not None:
            writes = cluster_agent.report_writes() - cluster_agent.writes_before
        print_results(args, result, costs, scraped, cluster_agent, writes)
    return 0


SAME_FIGURES = ["cpu", "meminfo", "filesystem"]


def _kill_if_running(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def start_cluster_agent(
    stack: ExitStack, args: argparse.Namespace, env: dict[str, str], work: Path
) -> ClusterAgent:
    """A control plane, a Node, and ``headroom agent`` reporting for it."""
    from tests.controlplane.cluster import ControlPlane, wait_until

    plane = stack.enter_context(ControlPlane(with_controller_manager=False))
    plane.install_crds(REPO / "crds")
    node = "bench-node"
    created = plane.api(
        "POST", "/api/v1/nodes", {"metadata": {"name": node}, "spec": {"unschedulable": False}}
    )
    created["status"] = {"allocatable": {"cpu": "4", "memory": "16Gi", "pods": "110"}}
    plane.api("PUT", f"/api/v1/nodes/{node}/status", created)
    interval = args.agent_interval
    agent_env = {
        **env,
        "NODE_NAME": node,
        "HEADROOM_INTERVAL_SECONDS": f"{interval:g}",
        "HEADROOM_LISTEN_PORT": str(free_port() if args.agent_admin else 0),
    }
    log = (work / "agent.log").open("wb")
    stack.callback(log.close)
    proc = subprocess.Popen(
        [sys.executable, "-m", "headroom.cli", "agent", "--kubeconfig", str(plane.kubeconfig)],
        env=agent_env,
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def _stop() -> None:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)

    stack.callback(_stop)

    def _reported() -> bool:
        try:
            return bool(plane.api("GET", f"/apis/headroom.dev/v1alpha1/resourcereports/{node}"))
        except Exception:
            return False

    wait_until(_reported, timeout=60, what="the agent's first report")
    agent = ClusterAgent(plane, proc, interval)
    agent.writes_before = agent.report_writes()
    return agent


# --- output ---------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f}"


def _ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}" if theirs > 0 else "-"


def print_results(
    args: argparse.Namespace,
    result: dict[str, object],
    costs: dict[str, ProcessCost],
    scraped: list[Scraped],
    cluster_agent: ClusterAgent | None,
    writes: float | None,
) -> None:
    """The detail per process, then metric | headroom | node_exporter | ratio."""
    interval, cycles, warmup = args.interval, args.cycles, args.warmup
    wall = [float(x) for x in result["wall"]][warmup:]  # type: ignore[attr-defined]
    tick_cpu = [float(x) for x in result["cpu"]][warmup:]  # type: ignore[attr-defined]
    warm_cpu = [float(x) for x in result["warm"]]  # type: ignore[attr-defined]
    figures: dict[str, dict[str, float]] = {}

    def per_cycle(cost: ProcessCost, every: float) -> tuple[float, float]:
        count = max(1.0, cost.wall_seconds / every)
        return cost.cpu_sched_seconds / count, cost.cpu_stat_seconds / count

    ours = costs["headroom"]
    sched, stat = per_cycle(ours, interval)
    figures["headroom"] = {
        "rss": ours.steady_rss_mb,
        "rss_max": ours.max_rss_mb,
        "cpu": sched,
        "cpu_stat": stat,
        "cpu_tick": sum(tick_cpu) / len(tick_cpu),
        "p50": percentile(wall, 50),
        "p99": percentile(wall, 99),
    }
    for target in scraped:
        cost = costs[target.label]
        sched, stat = per_cycle(cost, interval)
        figures[target.label] = {
            "rss": cost.steady_rss_mb,
            "rss_max": cost.max_rss_mb,
            "cpu": sched,
            "cpu_stat": stat,
            "p50": percentile(target.latencies, 50),
            "p99": percentile(target.latencies, 99),
        }
    rows = []
    names = {
        "headroom": f"headroom agent cycle ({result['pods']} pods, no API server)",
        **{t.label: f"{t.label} ({t.body_bytes // 1024} KiB/scrape)" for t in scraped},
    }
    for key, label in names.items():
        f = figures[key]
        rows.append(
            [
                label,
                f"{f['rss']:.1f} / {f['rss_max']:.1f}",
                f"{_ms(f['cpu'])} | {_ms(f['cpu_stat'])}",
                _ms(f["p50"]),
                _ms(f["p99"]),
            ]
        )
    if cluster_agent is not None:
        cost = costs["agent"]
        sched, stat = per_cycle(cost, cluster_agent.interval)
        per_minute = (writes or 0) / (cost.wall_seconds / 60)
        figures["agent"] = {"rss": cost.steady_rss_mb, "cpu": sched, "writes": per_minute}
        rows.insert(
            1,
            [
                f"headroom agent process (API server, every {cluster_agent.interval:g} s, "
                f"{per_minute:.2f} writes/60 s)",
                f"{cost.steady_rss_mb:.1f} / {cost.max_rss_mb:.1f}",
                f"{_ms(sched)} | {_ms(stat)}",
                "-",
                "-",
            ],
        )
    print()
    print(
        f"{cycles} cycles at {interval:g} s after {warmup} warm-up cycles; "
        f"{os.cpu_count()} CPUs; python {sys.version.split()[0]}"
    )
    print(
        format_table(
            ["process", "RSS MB steady / max", "CPU ms/cycle sched | stat", "p50 ms", "p99 ms"],
            rows,
        )
    )
    ours_figures = figures["headroom"]
    if "agent" in figures:  # the real process is the honest RSS and CPU
        ours_figures = {**ours_figures, "rss": figures["agent"]["rss"]}
    print(f"ResourceReport status: {result['reportBytes']} bytes of JSON ({result['pods']} pods)")
    if not scraped:
        return
    full, same = (figures[t.label] for t in scraped)
    table = []
    for metric, key, goal in (
        ("steady RSS (MB)", "rss", TARGET_RSS_MB),
        ("CPU per cycle (ms)", "cpu", TARGET_CPU_MS),
        ("cycle latency p50 (ms)", "p50", None),
        ("cycle latency p99 (ms)", "p99", None),
    ):
        scale = 1.0 if key == "rss" else 1000.0
        value = ours_figures[key] * scale
        verdict = "-" if goal is None else ("met" if value <= goal else "MISSED")
        table.append(
            [
                metric,
                f"{value:.3f}" if scale > 1 else f"{value:.1f}",
                f"{full[key] * scale:.3f}" if scale > 1 else f"{full[key]:.1f}",
                _ratio(value, full[key] * scale),
                f"{same[key] * scale:.3f}" if scale > 1 else f"{same[key]:.1f}",
                _ratio(value, same[key] * scale),
                "-" if goal is None else f"≤ {goal:g}",
                verdict,
            ]
        )
    print()
    print(
        format_table(
            [
                "metric",
                "headroom",
                "node_exporter",
                "ratio",
                "n_e cpu,meminfo,fs",
                "ratio",
                "target",
                "",
            ],
            table,
        )
    )
    if "agent" in figures:
        per_minute = figures["agent"]["writes"]
        verdict = "met" if per_minute <= TARGET_WRITES_PER_MINUTE else "MISSED"
        print(
            f"real agent: {per_minute:.2f} report writes per 60 s "
            f"(target ≤ {TARGET_WRITES_PER_MINUTE:g} in steady state: {verdict})"
        )
    print(
        f"\nCPU per cycle measured inside the cycle (thread time of tick): "
        f"{_ms(ours_figures['cpu_tick'])} ms at {interval:g} s intervals (caches cold after "
        f"the pause), {_ms(percentile(warm_cpu, 50))} ms back to back (warm); "
        "ratios are headroom ÷ node_exporter"
        + ("; RSS is the real agent process's" if "agent" in figures else "")
    )


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between cycles")
    parser.add_argument("--cycles", type=int, default=300, help="measured cycles")
    parser.add_argument("--warmup", type=int, default=20, help="cycles before measuring")
    parser.add_argument("--pods", type=int, default=30, help="pods in the cgroup tree")
    parser.add_argument("--node-exporter-version", default=DEFAULT_NODE_EXPORTER_VERSION)
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="also run the real `headroom agent` against a kube-apiserver",
    )
    parser.add_argument(
        "--agent-interval",
        type=float,
        default=15.0,
        help="with --cluster: the real agent's interval (its default 15 s; at least 1)",
    )
    parser.add_argument(
        "--no-agent-admin",
        dest="agent_admin",
        action="store_false",
        help="with --cluster: turn the agent's admin endpoint off",
    )
    parser.add_argument("--quick", action="store_true", help="40 cycles at 0.25 s (smoke run)")
    parser.add_argument(
        "--headroom-only",
        action="store_true",
        help="measure the agent cycle alone (no node_exporter to build or compare with)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.cycles, args.warmup, args.interval = 40, 5, 0.25
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
