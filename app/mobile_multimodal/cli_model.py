"""``modelserver train`` and ``modelserver evaluate`` (wired into the group in ``cli_group``).

torch is imported inside the commands, not here: ``cli_group`` imports this module at start-up
and ``modelserver serve`` must come up (and report ``import_error``) even without torch.
"""

from __future__ import annotations

from pathlib import Path

import click

from mobile_multimodal.errors import ModelError

__all__ = ["evaluate", "train"]


@click.command()
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory for best_model.pth, int8/int2_quantized.pth, manifest.json.")
@click.option("--seed", default=0, show_default=True, help="Seed of data and weights.")
@click.option("--epochs", default=5, show_default=True, help="Passes over the training set.")
@click.option("--train-size", default=24_000, show_default=True,
              help="Generated training images.")
@click.option("--qat-steps", default=400, show_default=True,
              help="Steps of int2-aware fine-tuning.")
@click.option("--eval-size", default=2_000, show_default=True,
              help="Held-out images each written file is scored on (for the manifest).")
@click.option("--threads", default=2, show_default=True,
              help="torch threads (results are deterministic for a fixed count).")
@click.option("--quiet", is_flag=True, help="Only print the summary.")
def train(out: Path, seed: int, epochs: int, train_size: int, qat_steps: int, eval_size: int,
          threads: int, quiet: bool) -> None:
    """Train the captioner on generated shapes and write the three variants."""
    from mobile_multimodal.training import TrainConfig, train_and_export

    config = TrainConfig(seed=seed, epochs=epochs, train_size=train_size, qat_steps=qat_steps,
                         eval_size=eval_size, threads=threads)
    log = (lambda _: None) if quiet else click.echo
    try:
        report = train_and_export(out, config, log)
    except ModelError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"trained in {report.seconds:.1f}s (seed {seed}, {threads} threads)")
    for name, path in report.files.items():
        click.echo(f"{name:15s} {path}  {path.stat().st_size:>9d} bytes  "
                   f"accuracy {report.accuracy[name] * 100:.2f}%")
    click.echo(f"manifest: {out / 'manifest.json'}")


@click.command()
@click.option("--model", "model", required=True,
              help="Checkpoint path or model name (best_model, mobile-mm-llm-int2, ...).")
@click.option("--model-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where names are looked up (default: MODEL_DIR or /app/models).")
@click.option("--samples", default=2_000, show_default=True, help="Held-out images scored.")
@click.option("--seed", default=None, type=int,
              help="Seed of the held-out set (default: the fixed evaluation seed).")
def evaluate(model: str, model_dir: Path | None, samples: int, seed: int | None) -> None:
    """Print exact-match caption accuracy on a held-out generated set."""
    from mobile_multimodal.data import generate
    from mobile_multimodal.model import MobileMultiModalLLM
    from mobile_multimodal.training import EVAL_SEED, evaluate_network

    eval_seed = EVAL_SEED if seed is None else seed
    try:
        loaded = MobileMultiModalLLM.from_pretrained(model, model_dir=model_dir)
    except ModelError as exc:
        raise click.ClickException(str(exc)) from None
    images, captions, _ = generate(samples, eval_seed)
    accuracy = evaluate_network(loaded.network, loaded.vocabulary, images, captions)
    correct = round(accuracy * samples)
    click.echo(f"exact-match accuracy: {accuracy * 100:.2f}% ({correct}/{samples}) "
               f"model={loaded.path} variant={loaded.variant} format={loaded.version} "
               f"seed={eval_seed}")
