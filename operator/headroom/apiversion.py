"""The API's group and version, importable without pydantic (the agent's process, PR-002).

:mod:`headroom.api` re-exports them; they are defined here once.
"""

from __future__ import annotations

__all__ = ["API_VERSION", "GROUP", "VERSION"]

GROUP = "headroom.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
