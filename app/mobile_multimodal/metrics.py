"""The serving app's Prometheus metrics, on a registry handed in (one per test).

Names are the ones the alert rules use (monitoring/alerts.yml).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["FAILURE_REASONS", "ServingMetrics"]

FAILURE_REASONS = (
    "file_missing", "corrupted", "checksum_mismatch", "old_format", "new_format",
    "permission_denied", "io_error", "config_invalid", "cuda_unavailable", "out_of_memory",
    "import_error", "load_timeout", "unknown",
)
"""Every reason a load can fail with (the ``reason`` of each ModelError a load raises, see
errors.py, plus ``unknown`` for anything else); each series exists from start-up at 0."""


class ServingMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.load_failures = Counter(
            "model_load_failures", "Model loads that failed, by reason.", ["reason"],
            registry=registry)
        for reason in FAILURE_REASONS:
            self.load_failures.labels(reason=reason)
        self.load_duration = Gauge(
            "model_load_duration_seconds", "Duration of the last finished model load.",
            registry=registry)
        self.load_in_progress = Gauge(
            "model_load_in_progress_seconds",
            "Seconds the current model load has been running (0 when none is).",
            registry=registry)
        self.memory = Gauge("model_memory_usage_bytes", "Resident memory of the serving process.",
                            registry=registry)
        self.loaded = Gauge("model_loaded", "1 when the primary model is loaded and serving.",
                            registry=registry)
        self.fallback_active = Gauge("model_fallback_active",
                                     "1 when the fallback model is serving.", registry=registry)
        self.oom_restarts = Gauge(
            "model_oom_restarts",
            "Times this container restarted after the OOM killer took its server, since the "
            "primary model last served (0 when it serves).", registry=registry)
        self.inference_requests = Counter(
            "model_inference_requests", "Inference requests, by task and outcome.",
            ["task", "outcome"], registry=registry)
        self.inference_duration = Histogram(
            "model_inference_duration_seconds", "Inference latency.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=registry)
