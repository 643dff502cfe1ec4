"""The recommendation maths: pure functions, no cluster (CT).

Nothing here imports kopf, a Kubernetes client or aiohttp — only the standard
library, pydantic, :mod:`headroom.api` and, for fit's arrays, numpy (an
import-linter contract holds the line). The controller parses objects into models, calls these functions and
writes what they return.

* :mod:`~headroom.recommend.quantities` — Kubernetes quantities in and out,
  rounding to readable steps, what a pod asks the scheduler for;
* :mod:`~headroom.recommend.histogram` — the decaying histogram (after VPA);
* :mod:`~headroom.recommend.history` — one expert's per-pod samples, persisted;
* :mod:`~headroom.recommend.policy` — defaults and per-Deployment annotations;
* :mod:`~headroom.recommend.sizing` — replicas and requests, with reasons;
* :mod:`~headroom.recommend.replicas` — replicas for the window's load, the
  PodDisruptionBudget floor, an HPA's min/max;
* :mod:`~headroom.recommend.confidence` — bounds, ``Confident``, the REC columns;
* :mod:`~headroom.recommend.containers` — per container: requests, limits, OOM kills;
* :mod:`~headroom.recommend.fit` — where more replicas fit right now.
"""

from headroom.recommend.fit import (
    FreeCapacity,
    NodeCapacity,
    compute_fit,
    exclusion_reason,
    free_capacity,
    report_free_cpu_cores,
)
from headroom.recommend.histogram import DecayingHistogram
from headroom.recommend.history import ExpertHistory
from headroom.recommend.policy import ANNOTATION_KEYS, SizingDefaults, policy_from_annotations
from headroom.recommend.quantities import (
    format_cpu,
    format_memory,
    parse_cpu_cores,
    parse_memory_bytes,
    parse_quantity,
    pod_requests,
    round_up_cpu_cores,
    round_up_memory_bytes,
    sum_container_requests,
)
from headroom.recommend.sizing import recommend

__all__ = [
    "ANNOTATION_KEYS",
    "DecayingHistogram",
    "ExpertHistory",
    "FreeCapacity",
    "NodeCapacity",
    "SizingDefaults",
    "compute_fit",
    "exclusion_reason",
    "format_cpu",
    "format_memory",
    "free_capacity",
    "parse_cpu_cores",
    "parse_memory_bytes",
    "parse_quantity",
    "pod_requests",
    "policy_from_annotations",
    "recommend",
    "report_free_cpu_cores",
    "round_up_cpu_cores",
    "round_up_memory_bytes",
    "sum_container_requests",
]
