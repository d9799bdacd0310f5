"""An in-process Service around one playbook, and a stand-in for Alertmanager's v2 API.

    service = playbook_service(tmp_path, PLAYBOOK, runtime, token="t0k")
    Reconciler(service.store, "http://alertmanager", ..., client=FakeAlertmanager([...]))
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from remediator.adapters.http import HttpClient
from remediator.core.config import RemediatorConfig
from remediator.core.runner import Runtime
from remediator.core.targets import Target
from remediator.service.build import Service, build_service

__all__ = ["APP_PROD", "FakeAlertmanager", "playbook_service"]

APP_PROD = Target(name="app-prod", selector={"service": "app-prod"}, container="app-prod",
                  base_url="http://127.0.0.1:1")
"""The one declared target: alerts labelled service=app-prod act on container app-prod."""


def playbook_service(tmp_path: Path, playbook: str, runtime: Runtime, *, token: str,
                     **config: Any) -> Service:
    """A Service (not started) with `playbook` as its only playbook and APP_PROD as its only
    target; `config` goes to RemediatorConfig. The caller closes service.store."""
    books = tmp_path / "pb"
    books.mkdir()
    (books / "playbook.yml").write_text(playbook)
    return build_service(RemediatorConfig(targets=[APP_PROD], **config),
                         db_path=tmp_path / "r.db", playbooks_dir=books, token=token,
                         runtime=runtime)


class FakeAlertmanager(HttpClient):
    """Alertmanager's v2 API answering `answer` (200) to every GET, whatever the path:
    both of reconciliation's reads see it."""

    def __init__(self, answer: Any) -> None:
        super().__init__()
        self.answer = answer

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        answer = self.answer

        class Answer:
            def raise_for_status(self) -> None:
                pass

            def json(self) -> Any:
                return answer

        return Answer()
