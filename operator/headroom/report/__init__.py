"""``headroom report`` (and ``kubectl headroom``): the read side (FR-007).

``kubectl get rr`` / ``kubectl get caprec -A`` show columns; this shows the
whole picture a platform team schedules by: per node, allocatable vs
requested vs measured CPU and memory, what is left, the fullest disk and how
old the report is (stale ones flagged); per expert, current vs recommended
replicas, CPU and memory and where more replicas fit.

* :mod:`~headroom.report.view` — the view model, the ``-o json|yaml`` shape;
* :mod:`~headroom.report.build` — API objects → view (pure);
* :mod:`~headroom.report.fetch` — paged LISTs into the builder (the only I/O);
* :mod:`~headroom.report.terminal`, :mod:`~headroom.report.html` — rendering.

Nothing is imported here: ``headroom.cli`` builds the report's flags at every
start, the agent's included (PR-002), so the package itself stays empty.
"""
