"""Headroom: host-true node figures and capacity recommendations for Kubernetes."""

__version__ = "0.1.0"
