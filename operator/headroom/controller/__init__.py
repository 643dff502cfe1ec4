"""The controller: reports, Nodes and expert Deployments in; CapacityRecommendations out.

``state`` (the in-memory model), ``compute`` (batch recomputation) and
``selector`` are pure. ``handlers`` (kopf), ``writer``, ``lease`` and
``metrics`` are the thin shell around them.
"""
