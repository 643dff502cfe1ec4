"""A thin, synchronous Kubernetes API adapter for the agent and the read side.

The standard library's ``http.client`` over TLS is all the agent needs (a few
requests a minute); it keeps the agent's memory small (PR-002) where the
official client would add tens of megabytes. The controller uses kopf's own
client instead.
"""
