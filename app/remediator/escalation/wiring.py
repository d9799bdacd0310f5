"""Which escalation policy the service reads."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Final

from remediator.core.config import RemediatorConfig
from remediator.core.defaults import DEFAULT_ESCALATION_PATH
from remediator.core.escalation_eval import EscalationPolicy
from remediator.core.escalation_load import load_escalation_policy

__all__ = ["SHIPPED_POLICY", "load_service_policy"]

log = logging.getLogger("remediator.escalation")

SHIPPED_POLICY: Final = Path(__file__).resolve().parents[3] / DEFAULT_ESCALATION_PATH
"""The repository's config/escalation.yml (present in a source checkout)."""


def load_service_policy(config: RemediatorConfig) -> EscalationPolicy:
    """The policy at ``config.escalation_path`` (relative to the working directory).

    When the path is the default and the working directory has no such file, the
    repository's shipped policy is used, with a warning. Anything else missing or invalid
    is a ConfigError naming the file: escalation never runs without a policy.
    """
    path = Path(config.escalation_path)
    if (not path.exists() and config.escalation_path == DEFAULT_ESCALATION_PATH
            and SHIPPED_POLICY.exists()):
        log.warning("no %s in %s; using the shipped %s", DEFAULT_ESCALATION_PATH,
                    Path.cwd(), SHIPPED_POLICY)
        path = SHIPPED_POLICY
    return load_escalation_policy(path)
