# Dev-only entry points; CI runs .ci/run.
.PHONY: test audit

test:
	uv run --locked pytest

# From the last test run (build/test-results.json): build/audit/traceability.md (+ .json),
# sbom.cdx.json (CycloneDX) and soup.md (+ .json). Non-zero when a requirement has no test,
# a test of it failed, or (after a full run) none of its tests ran.
audit:
	uv run --locked python -m tools.audit
