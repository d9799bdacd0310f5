"""JSON log lines, one object per line, carrying incident and execution ids when known.

    log.info("step done", extra={"incident_id": 4, "execution_id": 9})
    {"ts": "...", "level": "INFO", "logger": "remediator.service.worker", "msg": "step done",
     "incident_id": 4, "execution_id": 9}
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

__all__ = ["CONTEXT_FIELDS", "JsonFormatter", "configure"]

CONTEXT_FIELDS = ("incident_id", "execution_id", "step_id", "target", "playbook")
"""`extra=` keys copied into each JSON line."""


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "msg": record.getMessage(),
        }
        for key in CONTEXT_FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure(level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
