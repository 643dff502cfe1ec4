"""One expert's usage history: per-pod CPU and memory samples, persisted across restarts.

Every cycle the controller adds one observation per running pod of the expert
(from the ResourceReports: CPU cores between the agent's last two cycles, and
the working set). CPU goes into a decaying histogram for its percentile,
memory into another for its peak (see :mod:`headroom.recommend.histogram`).
Samples are per pod, not per replica set: a request is per pod, so its
evidence must be too. Each container (by name) has a history of its own in
``containers``, fed the same way from the container figures under each pod.
A further histogram holds the expert's *total* CPU (all its pods together),
sampled at a fixed cadence by the caller (see
:func:`headroom.recommend.replicas.record_total_cpu`): replicas follow the load
over the window, not the load of the moment.

The history lives in the CapacityRecommendation status
(:class:`headroom.api.UsageHistory`), so a restarted or failed-over controller
does not start from nothing — VPA keeps the same in
``VerticalPodAutoscalerCheckpoint`` objects; KRR re-reads Prometheus each run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from headroom.api.capacityrecommendation import ContainerHistory, UsageHistory
from headroom.recommend.histogram import DecayingHistogram

__all__ = ["ExpertHistory"]


@dataclass(slots=True)
class ExpertHistory:
    """The in-memory form of :class:`headroom.api.UsageHistory` (cheap to add to)."""

    cpu: DecayingHistogram
    memory: DecayingHistogram
    samples: int = 0
    cpu_samples: int = 0
    first_sample_at: datetime | None = None
    last_sample_at: datetime | None = None
    containers: dict[str, ExpertHistory] = field(default_factory=dict)
    """Each container's own history, by container name (none of them has containers)."""
    total_cpu: DecayingHistogram | None = None
    """The expert's total CPU; ``None`` until the first total is recorded."""
    total_cpu_samples: int = 0
    last_total_cpu_at: datetime | None = None

    @classmethod
    def new(cls, half_life_seconds: float, now: datetime) -> ExpertHistory:
        """An empty history (CPU: 10m first bucket; memory: 1 MiB; both growing 5 %)."""
        return cls(
            cpu=DecayingHistogram.for_cpu(half_life_seconds, now),
            memory=DecayingHistogram.for_memory(half_life_seconds, now),
        )

    def add_total_cpu(self, cores: float, at: datetime) -> None:
        """Add one sample of the expert's total CPU (all pods) observed at ``at``, weight 1."""
        if self.total_cpu is None:
            self.total_cpu = DecayingHistogram.for_cpu(self.cpu.half_life_seconds, at)
        self.total_cpu.add_sample(cores, 1.0, at)
        self.total_cpu_samples += 1
        self.last_total_cpu_at = at

    def add_observation(self, cpu_cores: float | None, memory_bytes: int, at: datetime) -> None:
        """Add one pod's usage observed at ``at``, each sample with weight 1.

        ``cpu_cores`` is ``None`` on a pod's first agent cycle (a rate needs two
        readings): then only memory is recorded. The caller adds each
        (pod, report time) once; a report seen twice would count twice.
        """
        if cpu_cores is not None:
            self.cpu.add_sample(cpu_cores, 1.0, at)
            self.cpu_samples += 1
        self.memory.add_sample(float(memory_bytes), 1.0, at)
        self.samples += 1
        if self.first_sample_at is None or at < self.first_sample_at:
            self.first_sample_at = at
        if self.last_sample_at is None or at > self.last_sample_at:
            self.last_sample_at = at

    def container(self, name: str, now: datetime) -> ExpertHistory:
        """The history of the container ``name``, created empty on first use."""
        found = self.containers.get(name)
        if found is None:
            found = self.containers[name] = ExpertHistory.new(self.cpu.half_life_seconds, now)
        return found

    def prune(self, now: datetime, window_seconds: float, *, total: bool = True) -> None:
        """Forget buckets that fell out of the window and compact the histograms.

        A container whose last sample left the window is forgotten whole (it
        was renamed or removed). ``total=False`` leaves the total-CPU histogram
        alone: the controller prunes it when it adds to it, once a minute,
        rather than in every batch.
        """
        self.cpu.prune(now, window_seconds)
        self.memory.prune(now, window_seconds)
        if total and self.total_cpu is not None:
            self.total_cpu.prune(now, window_seconds)
        for name, history in list(self.containers.items()):
            last = history.last_sample_at
            if last is not None and (now - last).total_seconds() > window_seconds:
                del self.containers[name]
            else:
                history.prune(now, window_seconds)

    def to_model(self) -> UsageHistory:
        """The persisted form (exact: :meth:`from_model` gives the same percentiles and peaks)."""
        return UsageHistory(
            cpu=self.cpu.to_model(),
            memory=self.memory.to_model(),
            samples=self.samples,
            cpuSamples=self.cpu_samples,
            firstSampleAt=self.first_sample_at,
            lastSampleAt=self.last_sample_at,
            containers=[
                ContainerHistory(
                    name=name,
                    cpu=history.cpu.to_model(),
                    memory=history.memory.to_model(),
                    samples=history.samples,
                    cpuSamples=history.cpu_samples,
                    firstSampleAt=history.first_sample_at,
                    lastSampleAt=history.last_sample_at,
                )
                for name, history in sorted(self.containers.items())
            ]
            or None,
            totalCpu=None if self.total_cpu is None else self.total_cpu.to_model(),
            totalCpuSamples=self.total_cpu_samples,
            lastTotalCpuAt=self.last_total_cpu_at,
        )

    @classmethod
    def from_model(cls, model: UsageHistory | ContainerHistory) -> ExpertHistory:
        """Read a persisted history back; :class:`ValueError` when it is inconsistent."""
        history = cls(
            cpu=DecayingHistogram.from_model(model.cpu),
            memory=DecayingHistogram.from_model(model.memory),
            samples=model.samples,
            cpu_samples=model.cpuSamples,
            first_sample_at=model.firstSampleAt,
            last_sample_at=model.lastSampleAt,
        )
        if isinstance(model, UsageHistory):
            history.containers = {c.name: cls.from_model(c) for c in model.containers or ()}
            if model.totalCpu is not None:
                history.total_cpu = DecayingHistogram.from_model(model.totalCpu)
            history.total_cpu_samples = model.totalCpuSamples
            history.last_total_cpu_at = model.lastTotalCpuAt
        return history
