"""Faults: etcd restarted and the controller SIGKILLed 20 times at random points while
reports flow (CT-004): no duplicate or orphaned CapacityRecommendation afterwards, figures
converged within 10 s of the last start, and every expert's history kept."""

from __future__ import annotations

import random
import signal
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from headroom.controller.writer import recommendation_path
from tests.controlplane.cluster import ApiError, ControlPlane, wait_until
from tests.integration.cluster_sim import ControllerProcess, MiB, SimulatedAgent, create_expert
from tests.integration.faults import ReportPump
from tests.integration.kube_helpers import create_node, unique

KILLS = 20
SEED = 20240607


def recommendations(cp: ControlPlane, ns: str) -> dict[str, dict[str, Any]]:
    items = cp.api("GET", recommendation_path(ns))["items"]
    return {item["metadata"]["name"]: item for item in items}


def settled(check: Callable[[], bool]) -> Callable[[], bool]:
    """``check``, False while the API server answers 429 ("storage is (re)initializing")."""

    def guarded() -> bool:
        try:
            return check()
        except ApiError as error:
            if error.status == 429:
                return False
            raise

    return guarded


def deployments(cp: ControlPlane, ns: str) -> dict[str, dict[str, Any]]:
    items = cp.api("GET", f"/apis/apps/v1/namespaces/{ns}/deployments")["items"]
    return {item["metadata"]["name"]: item for item in items}


def experts(cp: ControlPlane, ns: str) -> dict[str, dict[str, Any]]:
    return {
        name: d
        for name, d in deployments(cp, ns).items()
        if (d["metadata"].get("labels") or {}).get("headroom.dev/expert") == "true"
    }


def problems(cp: ControlPlane, ns: str) -> list[str]:
    """What keeps the namespace from being converged; empty when it is."""
    found: list[str] = []
    recs, wanted = recommendations(cp, ns), experts(cp, ns)
    for name in sorted(recs.keys() - wanted.keys()):
        found.append(f"orphaned recommendation {name}")
    for name in sorted(wanted.keys() - recs.keys()):
        found.append(f"no recommendation for {name}")
    for name in sorted(recs.keys() & wanted.keys()):
        rec, deployment = recs[name], wanted[name]
        owners = rec["metadata"].get("ownerReferences") or []
        if [o["uid"] for o in owners] != [deployment["metadata"]["uid"]]:
            found.append(f"{name}: owners {owners}")
        current = (rec.get("status") or {}).get("current") or {}
        if current.get("replicas") != deployment["spec"]["replicas"]:
            found.append(f"{name}: replicas {current.get('replicas')}")
        if not (rec.get("status") or {}).get("recommended"):
            found.append(f"{name}: nothing recommended yet")
    return found


def figure_problems(cp: ControlPlane, ns: str) -> list[str]:
    return [p for p in problems(cp, ns) if not p.startswith("orphaned")]


@pytest.mark.requirement("CT-004")
def test_etcd_restart_and_20_sigkills_leave_no_duplicate_or_orphan_and_keep_history(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    cp, rng = control_plane, random.Random(SEED)
    nodes = [unique("node") for _ in range(3)]
    for name in nodes:
        create_node(cp, name)
    ns = unique("team")
    agents = {name: SimulatedAgent(cp, name, heartbeat_seconds=30) for name in nodes}
    for index, (expert, replicas) in enumerate((("expert-a", 2), ("expert-b", 1), ("expert-c", 1))):
        _, uids = create_expert(cp, ns, expert, replicas=replicas, nodes=[nodes[index]])
        for uid in uids:
            agents[nodes[index]].pods[uid] = (0.1 * (index + 1), (300 + 100 * index) * MiB)

    def start() -> ControllerProcess:
        return ControllerProcess(
            cp, "crashy", tmp_path, HEADROOM_PERSIST_HISTORY_SECONDS="10"
        ).start()

    with ExitStack() as stack:
        for agent in agents.values():
            stack.enter_context(ReportPump(agent, period=1.0))
        controller = start()
        stack.callback(lambda: controller.stop())

        def with_history() -> bool:
            recs = recommendations(cp, ns)
            return len(recs) == 3 and all(
                ((r.get("status") or {}).get("history") or {}).get("samples", 0) >= 2
                for r in recs.values()
            )

        wait_until(settled(with_history), timeout=90, what="three recommendations with history")
        before = {n: r["status"]["history"] for n, r in recommendations(cp, ns).items()}

        etcd_seconds = 0.0
        lived: list[float] = []
        for kill in range(KILLS):
            if kill:
                controller = start()
            life = rng.uniform(0.2, 3.0)
            time.sleep(life)
            lived.append(life)
            if kill == 5:  # changes the controllers must catch up with
                cp.api(
                    "PATCH",
                    f"/apis/apps/v1/namespaces/{ns}/deployments/expert-b",
                    {"spec": {"replicas": 3}},
                    content_type="application/merge-patch+json",
                )
            if kill == 8:
                etcd_seconds = cp.restart_etcd()
            if kill == 10:  # no longer an expert: its recommendation must go
                cp.api(
                    "PATCH",
                    f"/apis/apps/v1/namespaces/{ns}/deployments/expert-c",
                    {"metadata": {"labels": {"headroom.dev/expert": None}}},
                    content_type="application/merge-patch+json",
                )
            if kill == 12:  # a new expert while controllers keep dying
                _, uids = create_expert(cp, ns, "expert-d", replicas=1, nodes=[nodes[2]])
                agents[nodes[2]].pods[uids[0]] = (0.3, 200 * MiB)
            assert controller.stop(signal.SIGKILL) == -signal.SIGKILL

        controller = start()
        last_start = time.monotonic()
        wait_until(
            settled(lambda: not figure_problems(cp, ns)),
            timeout=60,
            interval=0.25,
            what="figures converged after the last restart",
        )
        figures_after = time.monotonic() - last_start
        wait_until(
            settled(lambda: not problems(cp, ns)), timeout=60, interval=0.25, what="no orphan left"
        )
        orphans_after = time.monotonic() - last_start
        final = recommendations(cp, ns)
        assert controller.proc is not None and controller.proc.poll() is None

    figures = (
        f"{KILLS} SIGKILLs after {min(lived):.1f}-{max(lived):.1f}s of life (seed {SEED}), "
        f"etcd restarted (API server ready again after {etcd_seconds:.1f}s): figures converged "
        f"{figures_after:.1f}s and the orphan removed {orphans_after:.1f}s after the last start"
    )
    print(f"\nFAULT FIGURES: {figures}", file=sys.stderr)
    assert sorted(final) == ["expert-a", "expert-b", "expert-d"], figures
    for name in ("expert-a", "expert-b"):
        history = final[name]["status"]["history"]
        assert history["firstSampleAt"] == before[name]["firstSampleAt"], name  # history kept
        assert history["samples"] >= before[name]["samples"], name
    assert figures_after <= 10, figures
