"""The click commands of `modelserver`: serve, train, evaluate (``cli`` dispatches to them).

``diagnose`` and ``use-model`` are not click commands: ``cli.main`` runs them before click
is imported, since they must work in an image whose dependencies are broken.
"""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["group"]


@click.group()
def group() -> None:
    """The mobile_multimodal serving app.

    \b
    Also, on the standard library alone (they work when the app's dependencies do not):
      modelserver diagnose --json   why the model does not load (the runbook's checks)
      modelserver use-model NAME    point config/model.yml at NAME and reload the app
    """


@group.command()
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--model-dir", type=click.Path(path_type=Path), default=None,
              help="Directory of model files (default: MODEL_DIR or /app/models).")
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
              help="config/model.yml (default: MODEL_CONFIG if set).")
@click.option("--threads", default=4, show_default=True, type=int)
def serve(host: str, port: int, model_dir: Path | None, config_path: Path | None,
          threads: int) -> None:
    """Serve the model over HTTP (gunicorn, one process, threads)."""
    import os

    from mobile_multimodal.server import serve as run

    if config_path is None and os.environ.get("MODEL_CONFIG"):
        config_path = Path(os.environ["MODEL_CONFIG"])
    run(host, port, model_dir, config_path, threads)


def _add_model_commands() -> None:
    from mobile_multimodal.cli_model import evaluate, train

    group.add_command(train)
    group.add_command(evaluate)


_add_model_commands()
