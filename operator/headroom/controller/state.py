"""The controller's in-memory model of the cluster, fed by watch events (pure).

Handlers hand raw object bodies (dicts) to :class:`ClusterState`; it keeps only
what recomputation needs, in compact records, and maintains running totals
incrementally (requests per node, usage per expert and node) so a batch
recompute never walks every pod (STYLE habit 5: indexes, not look-ups).

Usage history is fed here too: each new report adds one observation per pod
of an expert to that expert's :class:`~headroom.recommend.history.ExpertHistory`,
and one per container to the history of that container's *name*. The agent
names containers by the first 12 characters of their runtime ID; the Pod's
``status.containerStatuses`` and ``initContainerStatuses`` (native sidecars)
give each ID its name. An ID no status names — the pod sandbox (pause), or a
container whose status has not arrived yet — is not learnt from. OOM kills
(a container's ``state`` or ``lastState`` terminated with ``OOMKilled``) are
counted per (expert, container name), each once.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from headroom.api.capacityrecommendation import (
    Confidence,
    Evidence,
    Fit,
    RecommendationColumns,
    RecommendedSizing,
    UsageHistory,
)
from headroom.api.common import Condition
from headroom.api.containersizing import OomKills
from headroom.controller.selector import LabelSelector, SelectorError
from headroom.recommend.containers import (
    ContainerSpec,
    OomRecord,
    container_specs,
    oom_limit,
    pod_level_spec,
)
from headroom.recommend.fit import FreeCapacity
from headroom.recommend.gpu import (
    GpuHistory,
    NodeGpus,
    gpu_requests,
    node_gpus,
    pod_gpu_observations,
)
from headroom.recommend.history import ExpertHistory
from headroom.recommend.quantities import parse_cpu_cores, parse_memory_bytes, pod_requests
from headroom.recommend.replicas import Autoscaler, DisruptionBudget, disruption_floor

__all__ = [
    "ClusterState",
    "ExpertInfo",
    "ExpertKey",
    "ExpertMemo",
    "NodeInfo",
    "PodInfo",
    "ReportInfo",
]

log = logging.getLogger(__name__)

ExpertKey = tuple[str, str]
"""(namespace, Deployment name)."""

PRESSURE_CONDITIONS = ("MemoryPressure", "DiskPressure", "PIDPressure")
CONTAINER_ID_CHARS = 12
"""The agent reports container IDs cut to this many characters (see ``collection.cgroups``)."""
TERMINAL_PHASES = ("Succeeded", "Failed")
UNRESOLVED_GRACE_SECONDS = 30.0


def parse_autoscaler(name: str, spec: Mapping[str, Any]) -> Autoscaler:
    """What the advice needs from an ``autoscaling/v2`` HPA's spec.

    No ``metrics`` means the API's default, 80 % average CPU utilisation.
    """
    metrics = spec.get("metrics")
    if not metrics:
        metrics = [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 80},
                },
            }
        ]
    utilization: float | None = None
    average: float | None = None
    others: list[str] = []
    for metric in metrics:
        kind = str(metric.get("type", ""))
        resource = metric.get("resource") or {}
        target = resource.get("target") or {}
        if kind == "Resource" and resource.get("name") == "cpu":
            if target.get("type") == "Utilization" and target.get("averageUtilization"):
                utilization = float(target["averageUtilization"])
                continue
            if target.get("type") == "AverageValue" and target.get("averageValue"):
                average = parse_cpu_cores(target["averageValue"])
                continue
        described = metric.get(kind[:1].lower() + kind[1:]) or {}
        label = described.get("name") or (described.get("metric") or {}).get("name") or ""
        others.append(f"{kind}/{label}" if label else kind)
    return Autoscaler(
        name=name,
        min_replicas=int(spec.get("minReplicas") or 1),
        max_replicas=int(spec.get("maxReplicas") or 1),
        cpu_utilization_percent=utilization,
        cpu_average_cores=None if utilization is not None else average,
        other_metrics=tuple(others),
    )


def parse_time(text: str) -> datetime:
    """RFC 3339 as the API server writes it."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _container_statuses(
    spec: Mapping[str, Any], status: Mapping[str, Any]
) -> tuple[str, tuple[OomKill, ...]]:
    """Each running container's short ID and name (see ``PodInfo.containers``), and the
    OOM kills the statuses show.

    Regular containers and native sidecars (init containers with
    ``restartPolicy: Always``) only: plain init containers are not sized. A
    kill's limit is the container's memory limit in this Pod (the one it died
    at), else the pod-level limit.
    """
    sidecars = {
        c.get("name")
        for c in spec.get("initContainers") or ()
        if c.get("restartPolicy") == "Always"
    }
    statuses = list(status.get("containerStatuses") or ())
    statuses += [s for s in status.get("initContainerStatuses") or () if s.get("name") in sidecars]
    if not statuses:
        return "", ()
    names: list[str] = []
    kills: list[OomKill] = []
    specs: dict[str, ContainerSpec] | None = None
    for container in statuses:
        name = container.get("name")
        if not name:
            continue
        name = sys.intern(str(name))
        runtime_id = str(container.get("containerID") or "").partition("://")[2]
        if len(runtime_id) >= CONTAINER_ID_CHARS:
            names.append(runtime_id[:CONTAINER_ID_CHARS] + name)
        for state in (container.get("state"), container.get("lastState")):
            terminated = (state or {}).get("terminated") or {}
            if terminated.get("reason") != "OOMKilled" or not terminated.get("finishedAt"):
                continue
            if specs is None:
                try:
                    specs = {c.name: c for c in container_specs(spec)}
                    pod_level = pod_level_spec(spec)
                except ValueError:
                    specs, pod_level = {}, None
            at = parse_time(str(terminated["finishedAt"]))
            kill = (name, at, oom_limit(specs.get(name), pod_level))
            if kill not in kills:
                kills.append(kill)
    return "\0".join(names), tuple(kills)


@dataclass(slots=True)
class NodeInfo:
    """What fit needs from a Node."""

    name: str
    allocatable_cpu: float
    allocatable_memory: int
    unschedulable: bool
    problems: tuple[str, ...]
    gpus: NodeGpus | None = None
    """GPU resources and feature-discovery labels; None without GPUs (GP-005)."""


@dataclass(slots=True)
class ReportInfo:
    """What the controller needs from a ResourceReport."""

    node: str
    collected_at: datetime
    heartbeat_seconds: int
    free_cpu: float
    available_memory: int
    received_at: float
    pods: dict[str, tuple[float | None, int]]
    containers: dict[str, ContainerFigures] = field(default_factory=dict)
    """Each pod's container figures, until learnt from (then dropped: 150,000 pods' worth
    would otherwise stay, ~80 MB)."""
    gpu_pods: dict[str, tuple[int | None, float | None]] = field(default_factory=dict)
    """GPU pods: (GPU memory bytes, GPU use in GPUs) (GP-004)."""
    gpu_free_memory: tuple[int, ...] = ()
    """Free memory of each GPU not in MIG mode, as NVML counted it."""
    gpu_memory: tuple[int | None, str | None] = (None, None)
    """Memory and name of the node's largest GPU."""


ContainerFigures = tuple[tuple[str, float | None, int], ...]
"""(short container ID, CPU cores or None, working set bytes) of each container of a pod."""
OomKill = tuple[str, datetime, int | None]
"""(container name, when it was killed, the memory limit it was killed at or None)."""


@dataclass(slots=True)
class PodInfo:
    """A pod's placement, owner and requests."""

    uid: str
    namespace: str
    node: str | None
    owner_replicaset: str | None
    cpu_request: float
    memory_request: int
    counted: bool
    containers: str = ""
    """Each running container's short ID (12 characters) followed by its name, joined by
    NUL: one string per pod (at 150,000 pods a tuple of pairs cost 46 MB, this 12 MB)."""
    oom_kills: tuple[OomKill, ...] = ()
    gpu_requests: tuple[tuple[str, int], ...] = ()


@dataclass(slots=True)
class ExpertInfo:
    """An expert Deployment as the recommendation needs it."""

    namespace: str
    name: str
    uid: str
    replicas: int
    annotations: dict[str, str]
    cpu_request: float | None
    memory_request: int | None
    generation: int
    containers: tuple[ContainerSpec, ...] = ()
    """The template's containers sized on their own (regular ones, then native sidecars)."""
    pod_level: ContainerSpec | None = None
    """The template's pod-level ``spec.resources``, when it sets them."""
    pod_labels: dict[str, str] = field(default_factory=dict)
    """The pod template's labels (what a PodDisruptionBudget selects)."""
    gpu_requests: dict[str, int] = field(default_factory=dict)
    """GPU devices per replica, by resource; empty for an expert without GPUs."""


@dataclass(slots=True)
class ExpertMemo:
    """What a batch derived from an expert's history, kept to reuse while its inputs stay.

    ``version`` tells whether the history changed (see ``compute``); the
    recommendation is reused only while the history, the policy and current
    objects, the usage totals and the defaults are the same as when computed.
    """

    history: ExpertHistory
    version: Hashable
    model: UsageHistory
    inputs: tuple[object, ...] = ()
    recommendation: tuple[RecommendedSizing, Evidence] | None = None
    fit_figures: Hashable = None
    fit: Fit | None = None
    containers: Any = None
    """The per-container sizing (``compute.PerContainer``) and what it was computed from."""
    containers_inputs: tuple[object, ...] = ()
    confidence_inputs: Hashable = None
    confidence: tuple[Confidence, RecommendationColumns, Condition] | None = None
    """The confidence figures, the REC columns and the ``Confident`` condition (a template)."""


@dataclass
class ClusterState:
    """Everything the controller knows, updated one event at a time."""

    selector: LabelSelector
    half_life_seconds: float = 24 * 3600
    nodes: dict[str, NodeInfo] = field(default_factory=dict)
    reports: dict[str, ReportInfo] = field(default_factory=dict)
    pods: dict[str, PodInfo] = field(default_factory=dict)
    replicaset_owner: dict[tuple[str, str], str] = field(default_factory=dict)
    experts: dict[ExpertKey, ExpertInfo] = field(default_factory=dict)
    histories: dict[ExpertKey, ExpertHistory] = field(default_factory=dict)
    restored_until: dict[ExpertKey, datetime] = field(default_factory=dict)
    node_requests: dict[str, list[float]] = field(default_factory=dict)
    usage: dict[ExpertKey, dict[str, tuple[float, int, int]]] = field(default_factory=dict)
    unprocessed: dict[str, set[str]] = field(default_factory=dict)
    recommendations: dict[ExpertKey, str] = field(default_factory=dict)
    gone: set[ExpertKey] = field(default_factory=set)
    dirty: bool = True
    pending_since: list[float] = field(default_factory=list)
    usage_by_node: dict[str, set[ExpertKey]] = field(default_factory=dict, repr=False)
    """Index of ``usage``: the experts with figures on each node (a report touches only those)."""
    autoscalers: dict[tuple[str, str], tuple[str, Autoscaler]] = field(default_factory=dict)
    """(namespace, HPA name) → (the Deployment it scales, what the advice needs)."""
    autoscaled: dict[ExpertKey, set[str]] = field(default_factory=dict, repr=False)
    """Index of ``autoscalers``: the HPAs targeting each Deployment."""
    budgets: dict[str, dict[str, tuple[LabelSelector | None, DisruptionBudget]]] = field(
        default_factory=dict
    )
    """namespace → PodDisruptionBudget name → (its selector, what the floor needs)."""
    memos: dict[ExpertKey, ExpertMemo] = field(default_factory=dict, repr=False)
    """What the last batch derived from each expert (see ``compute``)."""
    free: FreeCapacity | None = field(default=None, repr=False)
    """The last batch's free capacity, which the next one updates (see ``fit``)."""
    ooms: dict[ExpertKey, dict[str, OomRecord]] = field(default_factory=dict)
    """OOM kills per expert and container name (restored from the stored status)."""
    restored_ooms: set[ExpertKey] = field(default_factory=set, repr=False)
    oom_pending: set[str] = field(default_factory=set, repr=False)
    """Pods with kills not yet attributed to an expert (their ReplicaSet may come later)."""
    node_gpu_requests: dict[str, dict[str, int]] = field(default_factory=dict)
    """GPU devices requested by the pods bound to each node, by resource (GP-005)."""
    gpu_histories: dict[ExpertKey, GpuHistory] = field(default_factory=dict)
    gpu_usage: dict[ExpertKey, dict[str, float | None]] = field(default_factory=dict)
    """Each GPU expert's GPU use per node now (None: some pod's use is unknown)."""

    # --- nodes --------------------------------------------------------------------

    def upsert_node(self, body: Mapping[str, Any]) -> None:
        """A Node was added or changed."""
        name = body["metadata"]["name"]
        status = body.get("status") or {}
        allocatable = status.get("allocatable") or {}
        problems = []
        for condition in status.get("conditions") or []:
            kind, value = condition.get("type"), condition.get("status")
            if kind in PRESSURE_CONDITIONS and value == "True":
                problems.append(kind)
            elif kind == "Ready" and value != "True":
                problems.append("NotReady")
        info = NodeInfo(
            name=name,
            allocatable_cpu=parse_cpu_cores(allocatable.get("cpu", 0)),
            allocatable_memory=parse_memory_bytes(allocatable.get("memory", 0)),
            unschedulable=bool((body.get("spec") or {}).get("unschedulable")),
            problems=tuple(problems),
            gpus=node_gpus(body["metadata"].get("labels"), allocatable),
        )
        if self.nodes.get(name) != info:
            self.nodes[name] = info
            self._touch()

    def delete_node(self, name: str) -> None:
        """A Node is gone."""
        if self.nodes.pop(name, None) is not None:
            self._touch()

    # --- reports ------------------------------------------------------------------

    def upsert_report(self, body: Mapping[str, Any], received_at: float | None = None) -> None:
        """A ResourceReport was written: keep its figures and learn from its pods."""
        status = body.get("status")
        if not status:
            return
        name = body["metadata"]["name"]
        collected_at = parse_time(status["collectedAt"])
        previous = self.reports.get(name)
        if previous is not None and previous.collected_at >= collected_at:
            return  # a replay of what we have (e.g. a re-list after a watch restart)
        cpu, memory = status["cpu"], status["memory"]
        report = ReportInfo(
            node=name,
            collected_at=collected_at,
            heartbeat_seconds=int(status.get("heartbeatSeconds") or 60),
            free_cpu=cpu["logicalCores"] * (1 - cpu["utilizationPercent"] / 100),
            available_memory=int(memory["availableBytes"]),
            received_at=time.monotonic() if received_at is None else received_at,
            pods={
                self._same_uid(p["uid"]): (p.get("cpuCores"), int(p["memoryBytes"]))
                for p in status.get("pods") or []
            },
            containers={
                p["uid"]: tuple(
                    (str(c["id"]), c.get("cpuCores"), int(c["memoryBytes"]))
                    for c in p["containers"]
                )
                for p in status.get("pods") or []
                if p.get("containers") and self._may_be_an_experts(p["uid"])
            },
        )
        if status.get("gpus"):
            _gpu_figures(report, status)
        self.reports[name] = report
        self.unprocessed[name] = set(report.pods)
        self.pending_since.append(report.received_at)
        self._touch()

    def delete_report(self, name: str) -> None:
        """A ResourceReport is gone (its Node was deleted)."""
        self.unprocessed.pop(name, None)
        if self.reports.pop(name, None) is not None:
            for per_node in self.usage.values():
                per_node.pop(name, None)
            self.usage_by_node.pop(name, None)
            self._touch()

    def _may_be_an_experts(self, uid: str) -> bool:
        """False for a pod known not to belong to an expert (its containers are not kept)."""
        known, key = self._resolve(uid)
        return key is not None or not known

    def _same_uid(self, uid: str) -> str:
        """The known pod's own UID string (150,000 pods: one copy of each, not one per report)."""
        known = self.pods.get(uid)
        return uid if known is None else known.uid

    def _resolve(self, uid: str) -> tuple[bool, ExpertKey | None]:
        """(known, expert): whether a pod can be placed yet, and its expert Deployment.

        A pod whose Pod or ReplicaSet has not arrived yet is not known: watches
        start together, so a report can come before the pods it mentions.
        """
        pod = self.pods.get(uid)
        if pod is None:
            return False, None
        if pod.owner_replicaset is None:
            return True, None
        deployment = self.replicaset_owner.get((pod.namespace, pod.owner_replicaset))
        if deployment is None:
            return False, None
        key = (pod.namespace, deployment)
        return True, key if key in self.experts else None

    def ingest_pending(self) -> int:
        """Learn from reports not fully processed yet; returns observations added.

        Each (pod, report) adds one observation to its expert's history exactly
        once; pods the controller cannot place yet wait for the next batch.
        """
        self._attribute_oom_kills()
        added = 0
        for name in list(self.unprocessed):
            report = self.reports.get(name)
            waiting = self.unprocessed.pop(name)
            if report is None:
                continue
            still: set[str] = set()
            for uid in waiting:
                known, key = self._resolve(uid)
                if not known:
                    still.add(uid)
                elif key is not None:
                    restored = self.restored_until.get(key)
                    if restored is None or report.collected_at > restored:
                        cpu, memory = report.pods[uid]
                        at = report.collected_at
                        history = self.history(key, at)
                        history.add_observation(cpu, memory, at)
                        containers = report.containers.get(uid)
                        if containers:
                            self._observe_containers(history, self.pods[uid], containers, at)
                        added += 1
                        gpu = report.gpu_pods.get(uid)
                        if gpu is not None and self.experts[key].gpu_requests:
                            self.gpu_history(key, report.collected_at).add_observation(
                                gpu[0], gpu[1], report.collected_at
                            )
            # Pods the API never shows (they came and went between watches) stop
            # being looked for once the report is older than the grace period.
            if still and time.monotonic() - report.received_at < UNRESOLVED_GRACE_SECONDS:
                self.unprocessed[name] = still
                if report.containers:
                    report.containers = {
                        uid: report.containers[uid] for uid in still if uid in report.containers
                    }
            else:
                report.containers = {}
            self._total_usage(report)
        return added

    @staticmethod
    def _observe_containers(
        history: ExpertHistory, pod: PodInfo, containers: ContainerFigures, at: datetime
    ) -> None:
        """One observation per container the Pod's status names (not the sandbox)."""
        if not pod.containers:
            return
        width = CONTAINER_ID_CHARS
        names = {entry[:width]: entry[width:] for entry in pod.containers.split("\0")}
        for short, cpu, memory in containers:
            name = names.get(short)
            if name is not None:
                history.container(name, at).add_observation(cpu, memory, at)

    def _attribute_oom_kills(self) -> None:
        """Count the kills of pods whose expert is known now, each kill once."""
        for uid in list(self.oom_pending):
            known, key = self._resolve(uid)
            if not known:
                continue
            self.oom_pending.discard(uid)
            pod = self.pods.get(uid)
            if key is None or pod is None:
                continue
            records = self.ooms.setdefault(key, {})
            for name, at, limit in pod.oom_kills:
                record = records.get(name)
                if record is None:
                    record = records[name] = OomRecord()
                if record.add(at, limit):
                    log.warning(
                        "%s/%s: container %s of pod %s was OOM-killed at %s (limit %s)",
                        key[0],
                        key[1],
                        name,
                        uid,
                        at.isoformat(),
                        limit,
                    )
                    self._touch()

    def _total_usage(self, report: ReportInfo) -> None:
        """What each expert's pods on this node use now (for replicas)."""
        totals: dict[ExpertKey, tuple[float, int, int]] = {}
        for uid, (cpu, memory) in report.pods.items():
            key = self._resolve(uid)[1]
            if key is None:
                continue
            cpu_sum, memory_sum, count = totals.get(key, (0.0, 0, 0))
            totals[key] = (cpu_sum + (cpu or 0.0), memory_sum + memory, count + 1)
        for key in self.usage_by_node.get(report.node, ()):
            if key not in totals:
                per_node = self.usage.get(key)
                if per_node is not None:
                    per_node.pop(report.node, None)
        for key, total in totals.items():
            self.usage.setdefault(key, {})[report.node] = total
        self.usage_by_node[report.node] = set(totals)
        self._total_gpu_usage(report)

    def _total_gpu_usage(self, report: ReportInfo) -> None:
        """What each GPU expert's pods on this node use of their GPUs now."""
        totals: dict[ExpertKey, float | None] = {}
        for uid in report.pods:
            key = self._resolve(uid)[1]
            if key is None or not self.experts[key].gpu_requests:
                continue
            used = report.gpu_pods.get(uid, (None, 0.0))[1]
            before = totals.get(key, 0.0)
            totals[key] = None if used is None or before is None else before + used
        for key, per_node in self.gpu_usage.items():
            if key not in totals:
                per_node.pop(report.node, None)
        for key, gpu_total in totals.items():
            self.gpu_usage.setdefault(key, {})[report.node] = gpu_total

    def gpu_history(self, key: ExpertKey, now: datetime) -> GpuHistory:
        """The expert's GPU history, created empty on first use."""
        found = self.gpu_histories.get(key)
        if found is None:
            found = self.gpu_histories[key] = GpuHistory.new(self.half_life_seconds, now)
        return found

    def history(self, key: ExpertKey, now: datetime) -> ExpertHistory:
        """The expert's history, created empty on first use."""
        found = self.histories.get(key)
        if found is None:
            found = self.histories[key] = ExpertHistory.new(self.half_life_seconds, now)
        return found

    # --- pods and replica sets ----------------------------------------------------

    def upsert_pod(self, body: Mapping[str, Any]) -> None:
        """A Pod was added or changed: placement and requests count toward its node."""
        meta, spec = body["metadata"], body.get("spec") or {}
        owner = next(
            (o["name"] for o in meta.get("ownerReferences") or [] if o.get("kind") == "ReplicaSet"),
            None,
        )
        try:
            cpu, memory = pod_requests(spec)
            gpus = tuple(sorted(gpu_requests(spec).items()))
        except ValueError as error:
            log.warning("pod %s/%s: %s", meta.get("namespace"), meta.get("name"), error)
            cpu, memory, gpus = None, None, ()
        status = body.get("status") or {}
        phase = status.get("phase")
        node = spec.get("nodeName")
        containers, kills = _container_statuses(spec, status)
        # One string object per namespace, node and ReplicaSet name, not one per pod.
        info = PodInfo(
            uid=meta["uid"],
            namespace=sys.intern(meta.get("namespace", "")),
            node=sys.intern(node) if node else node,
            owner_replicaset=sys.intern(owner) if owner else owner,
            cpu_request=cpu or 0.0,
            memory_request=memory or 0,
            counted=bool(node) and phase not in TERMINAL_PHASES,
            containers=containers,
            oom_kills=kills,
            gpu_requests=gpus,
        )
        old = self.pods.get(info.uid)
        if old == info:
            return
        if kills and (old is None or old.oom_kills != kills):
            self.oom_pending.add(info.uid)
        if old is not None:
            self._count(old, -1)
        self.pods[info.uid] = info
        self._count(info, +1)
        self._touch()

    def delete_pod(self, uid: str) -> None:
        """A Pod is gone: its requests leave its node."""
        old = self.pods.pop(uid, None)
        if old is not None:
            self._count(old, -1)
            self._touch()

    def _count(self, pod: PodInfo, sign: int) -> None:
        if not pod.counted or pod.node is None:
            return
        totals = self.node_requests.setdefault(pod.node, [0.0, 0.0])
        totals[0] += sign * pod.cpu_request
        totals[1] += sign * pod.memory_request
        if pod.gpu_requests:
            devices = self.node_gpu_requests.setdefault(pod.node, {})
            for resource, count in pod.gpu_requests:
                devices[resource] = devices.get(resource, 0) + sign * count

    def upsert_replicaset(self, body: Mapping[str, Any]) -> None:
        """Remember which Deployment owns a ReplicaSet."""
        meta = body["metadata"]
        owner = next(
            (o["name"] for o in meta.get("ownerReferences") or [] if o.get("kind") == "Deployment"),
            None,
        )
        key = (meta.get("namespace", ""), meta["name"])
        if owner is None:
            self.replicaset_owner.pop(key, None)
        elif self.replicaset_owner.get(key) != owner:
            self.replicaset_owner[key] = owner
            self._touch()

    def delete_replicaset(self, namespace: str, name: str) -> None:
        """A ReplicaSet is gone."""
        self.replicaset_owner.pop((namespace, name), None)

    # --- deployments and recommendations ------------------------------------------

    def upsert_deployment(self, body: Mapping[str, Any]) -> None:
        """A Deployment was added or changed: track it while it matches the selector."""
        meta, spec = body["metadata"], body.get("spec") or {}
        key = (meta.get("namespace", ""), meta["name"])
        if not self.selector.matches(meta.get("labels")):
            self.delete_deployment(*key)
            return
        template = (spec.get("template") or {}).get("spec") or {}
        try:
            cpu, memory = pod_requests(template)
            containers, pod_level = container_specs(template), pod_level_spec(template)
            gpus = gpu_requests(template)
        except ValueError as error:
            log.warning("deployment %s/%s: %s", key[0], key[1], error)
            cpu, memory, gpus = None, None, {}
            containers, pod_level = (), None
        replicas = spec.get("replicas")
        self.experts[key] = ExpertInfo(
            namespace=key[0],
            name=key[1],
            uid=meta["uid"],
            replicas=1 if replicas is None else int(replicas),
            annotations=dict(meta.get("annotations") or {}),
            cpu_request=cpu,
            memory_request=memory,
            generation=int(meta.get("generation") or 0),
            containers=containers,
            pod_level=pod_level,
            pod_labels=dict(
                ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
            ),
            gpu_requests=gpus,
        )
        self.gone.discard(key)
        self._touch()

    def delete_deployment(self, namespace: str, name: str) -> None:
        """A Deployment is gone or stopped matching: its recommendation must go."""
        key = (namespace, name)
        if self.experts.pop(key, None) is not None:
            self.histories.pop(key, None)
            self.memos.pop(key, None)
            self.usage.pop(key, None)
            self.restored_until.pop(key, None)
            self.ooms.pop(key, None)
            self.gpu_histories.pop(key, None)
            self.gpu_usage.pop(key, None)
            self._touch()
        if key in self.recommendations:
            self.gone.add(key)

    def upsert_recommendation(self, body: Mapping[str, Any]) -> None:
        """A CapacityRecommendation exists: remember it, adopt its history after a restart."""
        meta = body["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        self.recommendations[key] = str(meta.get("resourceVersion", ""))
        self._restore_oom_kills(key, (body.get("status") or {}).get("containers"))
        persisted = (body.get("status") or {}).get("history")
        if persisted and key not in self.histories:
            try:
                history = ExpertHistory.from_model(UsageHistory.model_validate(persisted))
            except ValueError as error:
                log.warning("%s/%s: ignoring unreadable history: %s", key[0], key[1], error)
                return
            self.histories[key] = history
            gpu = persisted.get("gpu")
            if gpu:
                model = UsageHistory.model_validate(persisted).gpu
                if model is not None:
                    self.gpu_histories[key] = GpuHistory.from_model(model)
            if history.last_sample_at is not None:
                self.restored_until[key] = history.last_sample_at
        if key not in self.experts and key[1]:
            self.gone.add(key)  # a leftover: its Deployment is gone or no longer an expert

    def _restore_oom_kills(self, key: ExpertKey, containers: Any) -> None:
        """Take the stored OOM kill counts (once per key: later writes are our own)."""
        if key in self.restored_ooms or not isinstance(containers, list):
            return
        self.restored_ooms.add(key)
        for container in containers:
            kills = container.get("oomKills") if isinstance(container, Mapping) else None
            if not kills:
                continue
            try:
                stored = OomKills.model_validate(kills)
            except ValueError as error:
                log.warning("%s/%s: ignoring unreadable OOM kills: %s", key[0], key[1], error)
                continue
            name = str(container.get("name", ""))
            record = self.ooms.setdefault(key, {}).setdefault(name, OomRecord())
            record.restore(stored)

    def delete_recommendation(self, namespace: str, name: str) -> None:
        """A CapacityRecommendation is gone (deleted by us, GC or a user)."""
        key = (namespace, name)
        self.recommendations.pop(key, None)
        self.gone.discard(key)
        if key in self.experts:
            self._touch()  # a user deleted it: write it again

    # --- autoscalers and disruption budgets ----------------------------------------

    def upsert_autoscaler(self, body: Mapping[str, Any]) -> None:
        """An ``autoscaling/v2`` HorizontalPodAutoscaler was added or changed."""
        meta, spec = body["metadata"], body.get("spec") or {}
        key = (meta.get("namespace", ""), meta["name"])
        target = spec.get("scaleTargetRef") or {}
        self.delete_autoscaler(*key)
        if target.get("kind") != "Deployment" or not target.get("name"):
            return
        autoscaler = parse_autoscaler(meta["name"], spec)
        self.autoscalers[key] = (str(target["name"]), autoscaler)
        self.autoscaled.setdefault((key[0], str(target["name"])), set()).add(key[1])
        self._touch()

    def delete_autoscaler(self, namespace: str, name: str) -> None:
        """An HPA is gone."""
        old = self.autoscalers.pop((namespace, name), None)
        if old is None:
            return
        names = self.autoscaled.get((namespace, old[0]))
        if names is not None:
            names.discard(name)
            if not names:
                del self.autoscaled[(namespace, old[0])]
        self._touch()

    def autoscaler_of(self, key: ExpertKey) -> Autoscaler | None:
        """The HPA that owns the expert's replicas (the first by name if several do)."""
        names = self.autoscaled.get(key)
        if not names:
            return None
        return self.autoscalers[(key[0], min(names))][1]

    def upsert_budget(self, body: Mapping[str, Any]) -> None:
        """A ``policy/v1`` PodDisruptionBudget was added or changed."""
        meta, spec = body["metadata"], body.get("spec") or {}
        namespace, name = meta.get("namespace", ""), meta["name"]
        raw = spec.get("selector")
        try:
            selector = None if raw is None else LabelSelector.from_structured(raw)
        except (SelectorError, KeyError) as error:
            log.warning("PodDisruptionBudget %s/%s: %s", namespace, name, error)
            selector = None
        budget = DisruptionBudget(
            name=name,
            min_available=spec.get("minAvailable"),
            max_unavailable=spec.get("maxUnavailable"),
        )
        per_namespace = self.budgets.setdefault(namespace, {})
        if per_namespace.get(name) != (selector, budget):
            per_namespace[name] = (selector, budget)
            self._touch()

    def delete_budget(self, namespace: str, name: str) -> None:
        """A PodDisruptionBudget is gone."""
        per_namespace = self.budgets.get(namespace)
        if per_namespace and per_namespace.pop(name, None) is not None:
            if not per_namespace:
                del self.budgets[namespace]
            self._touch()

    def budget_of(self, expert: ExpertInfo) -> DisruptionBudget | None:
        """The PodDisruptionBudget covering the expert's pods (the highest floor if several)."""
        found: list[tuple[int, str, DisruptionBudget]] = []
        for name, (selector, budget) in (self.budgets.get(expert.namespace) or {}).items():
            if selector is not None and selector.matches(expert.pod_labels):
                floor = disruption_floor(budget)[0]
                found.append((-(floor or 0), name, budget))
        return min(found)[2] if found else None

    def _touch(self) -> None:
        self.dirty = True

    def now(self) -> datetime:
        """Wall-clock time for recomputation (one place to fake it in tests)."""
        return datetime.now(UTC)


def _gpu_figures(report: ReportInfo, status: Mapping[str, Any]) -> None:
    """What the controller keeps of a report's GPUs: pods' GPU figures, free GPU memory."""
    report.gpu_pods = pod_gpu_observations(status)
    free: list[int] = []
    largest: tuple[int | None, str | None] = (None, None)
    for gpu in status.get("gpus") or []:
        total, used = gpu.get("memoryTotalBytes"), gpu.get("memoryUsedBytes")
        if total is None:
            continue
        if largest[0] is None or total > largest[0]:
            largest = (int(total), gpu.get("name"))
        if gpu.get("migMode") != "Enabled" and used is not None and gpu.get("error") is None:
            free.append(max(0, int(total) - int(used)))
    report.gpu_free_memory = tuple(free)
    report.gpu_memory = largest
