"""Structured (JSON) logs for the cluster, plain text for a terminal."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

__all__ = ["setup_logging"]


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and any ``extra``."""

    # kopf attaches its settings and object references to every record: keep the reference.
    _RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {
        "message",
        "asctime",
        "settings",
        "k8s_skip",
    }

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in self._RESERVED})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup_logging(level: str = "INFO", json_logs: bool | None = None) -> None:
    """Configure the root logger once; JSON when stderr is not a terminal."""
    handler = logging.StreamHandler(sys.stderr)
    if json_logs is None:
        json_logs = not sys.stderr.isatty()
    handler.setFormatter(
        JsonFormatter() if json_logs else logging.Formatter("%(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # kopf logs every handler call at INFO; with one event per Pod change that drowns the rest.
    logging.getLogger("kopf.objects").setLevel(max(logging.WARNING, root.level))
