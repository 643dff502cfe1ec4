"""Collection: reading the node's figures (psutil, procfs, statvfs, cgroup files).

Nothing here imports kopf or a Kubernetes client. One small interface,
:class:`~headroom.collection.sample.NodeReader`, stands between the agent and
the operating system so tests can feed recorded figures.
"""
