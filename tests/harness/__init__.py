"""Test harness: real Docker engine, real Prometheus and Alertmanager processes."""
