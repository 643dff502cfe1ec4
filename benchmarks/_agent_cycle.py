"""The agent's collection cycle alone, in its own process, for ``agent_overhead``.

It runs what ``headroom agent`` runs every cycle — the real
:class:`~headroom.collection.psutil_reader.PsutilNodeReader`, ``derive_status``
and the write decision of :class:`~headroom.agent.loop.Agent` — with no API
server (``store=None``), on a fixed schedule, and times each ``tick``. Settings
come from the environment (``HEADROOM_CGROUPFS`` etc.), as in the DaemonSet.

It imports as little as it can beyond the agent itself, so its RSS is the
agent's: the results go out as one JSON line on stdout at the end.
Usage: ``python -m benchmarks._agent_cycle INTERVAL CYCLES``.
"""

from __future__ import annotations

import json
import sys
import time
from array import array

_WARM_CYCLES = 200


def main(interval: float, cycles: int) -> None:
    """Tick ``cycles`` times, ``interval`` seconds apart; print per-cycle wall and CPU."""
    from headroom.agent.loop import Agent
    from headroom.agent.main import build_reader
    from headroom.agent.settings import AgentSettings

    settings = AgentSettings.load()
    agent = Agent(settings, build_reader(settings), None, clock=time.monotonic)
    agent.previous = agent.reader.read()  # the CPU baseline, as Agent.run takes it
    wall = array("d", bytes(8 * cycles))
    cpu = array("d", bytes(8 * cycles))
    print("ready", flush=True)
    next_at = time.monotonic() + interval
    for index in range(cycles):
        pause = next_at - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        next_at += interval
        started, started_cpu = time.perf_counter(), time.thread_time()
        agent.tick()
        cpu[index] = time.thread_time() - started_cpu
        wall[index] = time.perf_counter() - started
    # The same cycles back to back: what a cycle costs with warm caches, for contrast.
    warm = array("d", bytes(8 * _WARM_CYCLES))
    for index in range(_WARM_CYCLES):
        started_cpu = time.thread_time()
        agent.tick()
        warm[index] = time.thread_time() - started_cpu
    pods = agent.latest.podCount if agent.latest is not None else 0
    size = len(json.dumps(agent.latest.to_wire(), separators=(",", ":"))) if agent.latest else 0
    result = {
        "wall": wall.tolist(),
        "cpu": cpu.tolist(),
        "warm": warm.tolist(),
        "pods": pods,
        "reportBytes": size,
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(float(sys.argv[1]), int(sys.argv[2]))
