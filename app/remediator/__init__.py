"""Remediator: runs the model-load-failure runbook itself."""

__version__ = "0.1.0"
