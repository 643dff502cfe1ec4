"""The audit pack: traceability matrix, CycloneDX SBOM and SOUP list, from the last test run.

``make audit`` (or ``uv run python -m tools.audit``) writes ``build/audit/``. It is dev
tooling on purpose: a ``headroom audit`` subcommand would put pytest results, uv and
cyclonedx-bom into the shipped image, which must carry only what the agent and the
controller run (SR-001: every runtime dependency is locked and reviewed).
"""
