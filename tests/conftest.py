"""Suite-wide: record each test's outcome and requirement IDs for the audit (tools/audit)."""

pytest_plugins = ["tools.audit.results"]
