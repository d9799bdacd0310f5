"""`modelserver`: serve, train and evaluate the captioning model; diagnose why it does not load.

``diagnose`` and ``use-model`` run on the standard library alone (the runbook's checks and
its scenario-5 config change must work in an image whose own dependencies are broken), so
they are dispatched here, before click, torch or PIL is imported; every other command is
the click group in ``cli_group``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

__all__ = ["STDLIB_COMMANDS", "main"]


def _diagnose(argv: list[str]) -> int:
    from mobile_multimodal.diagnose import main as run

    return run(argv)


def _use_model(argv: list[str]) -> int:
    from mobile_multimodal.use_model import main as run

    return run(argv)


STDLIB_COMMANDS: dict[str, tuple[Callable[[list[str]], int], str]] = {
    "diagnose": (_diagnose, "Why the model does not load: the runbook's checks (--json)."),
    "use-model": (_use_model, "Point config/model.yml at another model file and reload it."),
}
"""Commands that need nothing but the standard library: name -> (run, one-line help)."""


def main(argv: Sequence[str] | None = None) -> None:
    """The `modelserver` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in STDLIB_COMMANDS:
        raise SystemExit(STDLIB_COMMANDS[args[0]][0](args[1:]))
    from mobile_multimodal.cli_group import group

    group.main(args=args, prog_name="modelserver")
