"""``headroom controller``: settings, metrics server, then kopf."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

from pydantic import ValidationError

from headroom import __version__
from headroom.logs import setup_logging

__all__ = ["run_controller"]

log = logging.getLogger("headroom.controller")

_SETTING_FLAGS = (
    "expert_selector",
    "kubeconfig",
    "metrics_port",
    "health_port",
    "identity",
    "lease_namespace",
    "recompute_seconds",
)


def run_controller(args: argparse.Namespace) -> int:
    """Run until SIGTERM (kopf handles the signal and our cleanup releases the Lease)."""
    setup_logging(args.log_level)
    import kopf
    from prometheus_client import start_http_server

    from headroom.controller import handlers
    from headroom.controller.lease import LeaseElector
    from headroom.controller.runtime import Runtime
    from headroom.controller.settings import ControllerSettings, describe_settings_error
    from headroom.controller.state import ClusterState
    from headroom.controller.writer import RecommendationWriter
    from headroom.kube.client import KubeClient
    from headroom.kube.config import ConfigError, load_config
    from headroom.recommend.policy import SizingDefaults

    overrides: dict[str, Any] = {
        name: getattr(args, name)
        for name in _SETTING_FLAGS
        if getattr(args, name, None) is not None
    }
    try:
        settings = ControllerSettings(**overrides)
        defaults = SizingDefaults(
            target_utilization_percent=settings.target_utilization_percent,
            cpu_margin_percent=settings.cpu_margin_percent,
            memory_margin_percent=settings.memory_margin_percent,
            min_replicas=settings.min_replicas,
            max_replicas=settings.max_replicas,
        )
        client = KubeClient(
            load_config(settings.kubeconfig), user_agent=f"headroom-controller/{__version__}"
        )
    except ValidationError as error:
        problems = describe_settings_error(error)
        print(f"headroom controller: invalid settings, not starting:\n{problems}", file=sys.stderr)
        return 2
    except (ValueError, ConfigError) as error:
        print(f"headroom controller: invalid settings, not starting:\n{error}", file=sys.stderr)
        return 2
    runtime = Runtime(
        settings=settings,
        state=ClusterState(
            selector=settings.selector(), half_life_seconds=defaults.half_life_seconds
        ),
        elector=LeaseElector(
            client,
            settings.lease_namespace,
            settings.lease_name,
            settings.identity,
            duration_seconds=settings.lease_duration_seconds,
        ),
        writer=RecommendationWriter(
            client,
            identity=settings.identity,
            persist_history_seconds=settings.persist_history_seconds,
            material_change_percent=settings.material_change_percent,
        ),
        defaults=defaults,
    )
    if settings.metrics_port:
        start_http_server(settings.metrics_port)
    memo = kopf.Memo()
    memo[handlers.RUNTIME_KEY] = runtime
    liveness = f"http://0.0.0.0:{settings.health_port}/healthz" if settings.health_port else None
    log.info(
        "controller %s starting as %s; experts: %s",
        __version__,
        settings.identity,
        settings.expert_selector,
    )
    asyncio.run(
        kopf.operator(clusterwide=True, standalone=True, memo=memo, liveness_endpoint=liveness)
    )
    return 0
