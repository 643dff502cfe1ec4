"""kopf handlers: thin, they only feed the in-memory state (CT).

Every handler is an ``on.event`` handler: it neither patches the object nor
adds finalizers, so the controller needs only get/list/watch on what it
follows. Recomputation and writes happen in the runtime's batch loop.
Handlers are ``async``: kopf runs a plain function in a worker thread, where
it would change the model while a batch reads it. Pods, ReplicaSets,
Deployments and ResourceReports are not watched through kopf but by the
runtime's own list-watch (see :mod:`headroom.controller.runtime`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from headroom.controller.runtime import Runtime, tune_memory_allocator
from headroom.kube.client import ApiError
from headroom.kube.config import load_config

__all__ = ["RUNTIME_KEY"]

log = logging.getLogger(__name__)

RUNTIME_KEY = "runtime"


def _runtime(memo: kopf.Memo) -> Runtime:
    runtime: Runtime = memo[RUNTIME_KEY]
    return runtime


@kopf.on.login()
def login(memo: kopf.Memo, **_: Any) -> kopf.ConnectionInfo:
    """The same credentials as our own client: kubeconfig or in-cluster service account."""
    config = load_config(_runtime(memo).settings.kubeconfig)
    return kopf.ConnectionInfo(
        server=config.server,
        ca_path=str(config.ca_file) if config.ca_file else None,
        insecure=config.insecure,
        token=config.bearer_token(),
        certificate_path=str(config.client_cert_file) if config.client_cert_file else None,
        private_key_path=str(config.client_key_file) if config.client_key_file else None,
    )


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Configure kopf once, then start the election and the batch loop."""
    # Both replicas run fully and a Lease picks the writer: kopf peering would pause all.
    settings.peering.standalone = True
    # We post our own Events (recommendation changes, stale reports); kopf's per-handler
    # log events would be noise on every Pod.
    settings.posting.enabled = False
    # Resources are fixed; no need to scan CRDs or namespaces (and no RBAC for it).
    settings.scanning.disabled = True
    # Long watches, re-established quietly; the batch loop tolerates short gaps.
    settings.watching.server_timeout = 600
    settings.watching.client_timeout = 660
    # List in pages: 5,000 Nodes or ResourceReports in one answer is tens of MB at once.
    settings.watching.chunk_size = 500
    runtime = _runtime(memo)
    # Before the big lists: glibc would keep what their buffers freed (see there).
    tune_memory_allocator()
    # History first, so no report can start an expert's history afresh (startup
    # handlers finish before any watch begins).
    try:
        await asyncio.to_thread(runtime.restore_histories)
    except ApiError as error:
        # Right after the CRDs are created the API server may answer 429 "storage is
        # (re)initializing"; kopf's default retry would idle the controller for a minute.
        raise kopf.TemporaryError(
            f"cannot read CapacityRecommendations yet: {error}", delay=2
        ) from error
    memo["tasks"] = [
        asyncio.create_task(runtime.lease_loop(), name="lease"),
        asyncio.create_task(runtime.watch_loop(), name="watch"),
        asyncio.create_task(runtime.batch_loop(), name="batch"),
    ]


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    """Stop the loops and hand the Lease over at once."""
    for task in memo.get("tasks", []):
        task.cancel()
    await asyncio.to_thread(_runtime(memo).elector.release)


def _deleted(event: kopf.RawEvent) -> bool:
    return event.get("type") == "DELETED"


@kopf.on.event("", "v1", "nodes")
async def node_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """Allocatable, cordon and pressure of a Node."""
    state, body = _runtime(memo).state, event["object"]
    if _deleted(event):
        state.delete_node(body["metadata"]["name"])
    else:
        state.upsert_node(body)


@kopf.on.event("headroom.dev", "v1alpha1", "capacityrecommendations")
async def recommendation_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """Our own output: known objects, and persisted history after a restart."""
    state, meta = _runtime(memo).state, event["object"]["metadata"]
    if _deleted(event):
        state.delete_recommendation(meta.get("namespace", ""), meta["name"])
    else:
        state.upsert_recommendation(event["object"])
