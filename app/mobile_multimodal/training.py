"""Training, quantization-aware fine-tuning, evaluation and export of the three variants.

Everything is a function of the seed: the data come from ``data.generate`` with seeds derived
from it, torch is seeded, and deterministic algorithms are switched on for the duration
(CPU kernels are deterministic for a fixed thread count; ``TrainConfig.threads`` fixes it).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from mobile_multimodal.checkpoint import build_checkpoint, load_model, save_checkpoint
from mobile_multimodal.data import Vocabulary, generate
from mobile_multimodal.manifest import MODELS, write_manifest
from mobile_multimodal.network import CaptionNet, NetConfig
from mobile_multimodal.quantize import FakeQuant, quantized_names

__all__ = [
    "EVAL_SEED",
    "TrainConfig",
    "TrainReport",
    "evaluate_file",
    "evaluate_network",
    "export_variants",
    "train",
    "train_and_export",
]

EVAL_SEED = 987_654_321
"""Seed of the held-out evaluation set (training data use ``TrainConfig.seed``)."""

Log = Callable[[str], None]


@dataclass(frozen=True)
class TrainConfig:
    """Knobs of one training run; the defaults are what the shipped models were built with."""

    seed: int = 0
    train_size: int = 24_000
    epochs: int = 5
    batch_size: int = 128
    lr: float = 3e-3
    qat_steps: int = 400
    qat_lr: float = 5e-4
    eval_size: int = 2_000
    threads: int = 2


@dataclass
class TrainReport:
    """What a run produced: seconds spent and exact-match accuracy per written variant."""

    seconds: float
    accuracy: dict[str, float]
    files: dict[str, Path]


@contextmanager
def deterministic(seed: int, threads: int) -> Iterator[None]:
    """Seed torch, pin the thread count and force deterministic kernels; restore all three
    after (the caller's random state included), so training has no global side effects."""
    previous = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(True)
        try:
            yield
        finally:
            torch.set_num_threads(previous[0])
            torch.use_deterministic_algorithms(previous[1])


def to_tensor(images: np.ndarray) -> Tensor:
    """N x H x W x 3 uint8 to N x 3 x H x W float in [0, 1], as the network expects."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255)


def _batches(images: Tensor, tokens: Tensor, size: int, generator: torch.Generator
             ) -> Iterator[tuple[Tensor, Tensor]]:
    order = torch.randperm(images.shape[0], generator=generator)
    for start in range(0, len(order) - size + 1, size):
        index = order[start:start + size]
        yield images[index], tokens[index]


def _step(network: CaptionNet, optimiser: torch.optim.Optimizer, images: Tensor,
          tokens: Tensor, pad: int) -> float:
    logits = network(images, tokens[:, :-1])
    loss = nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1), ignore_index=pad
    )
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(network.parameters(), 1.0)
    optimiser.step()
    return loss.item()


def _fit(network: CaptionNet, data: tuple[Tensor, Tensor], steps: int, lr: float,
         config: TrainConfig, log: Log) -> None:
    """Adam with a one-cycle schedule for ``steps`` steps over shuffled epochs."""
    optimiser = torch.optim.Adam(network.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=steps,
                                                   pct_start=0.15)
    generator = torch.Generator().manual_seed(config.seed)
    pad = Vocabulary().pad
    done = 0
    network.train()
    while done < steps:
        for images, tokens in _batches(*data, config.batch_size, generator):
            loss = _step(network, optimiser, images, tokens, pad)
            schedule.step()
            done += 1
            if done % 200 == 0 or done == steps:
                log(f"step {done}/{steps} loss {loss:.4f}")
            if done == steps:
                break
    network.eval()


def _dataset(size: int, seed: int) -> tuple[Tensor, Tensor]:
    images, captions, _ = generate(size, seed)
    vocabulary = Vocabulary()
    tokens = torch.tensor([vocabulary.encode(c) for c in captions], dtype=torch.long)
    return to_tensor(images), tokens


def train(config: TrainConfig, log: Log = print) -> tuple[CaptionNet, CaptionNet]:
    """Train the fp32 network, then fine-tune an int2-aware copy; returns (fp32, int2 latent)."""
    with deterministic(config.seed, config.threads):
        data = _dataset(config.train_size, config.seed)
        network = CaptionNet(NetConfig())
        steps = config.epochs * (config.train_size // config.batch_size)
        _fit(network, data, max(steps, 1), config.lr, config, log)
        qat = quantization_aware(network, data, config, log)
    return network, qat


def quantization_aware(network: CaptionNet, data: tuple[Tensor, Tensor],
                       config: TrainConfig, log: Log) -> CaptionNet:
    """A copy fine-tuned with int2 fake-quantized large weights (straight-through)."""
    qat = copy.deepcopy(network)
    modules = dict(qat.named_modules())
    names = quantized_names(qat.state_dict())
    for name in names:
        parametrize.register_parametrization(modules[name.rsplit(".", 1)[0]], "weight",
                                             FakeQuant())
    if config.qat_steps > 0:
        log(f"int2-aware fine-tuning of {len(names)} weights")
        _fit(qat, data, config.qat_steps, config.qat_lr, config, log)
    for name in names:
        parametrize.remove_parametrizations(modules[name.rsplit(".", 1)[0]], "weight",
                                            leave_parametrized=False)
    return qat.eval()


def evaluate_network(network: CaptionNet, vocabulary: Vocabulary, images: np.ndarray,
                     captions: list[str], batch: int = 500) -> float:
    """Exact-match caption accuracy (0..1) of greedy decoding."""
    correct = 0
    for start in range(0, len(captions), batch):
        chunk = to_tensor(images[start:start + batch])
        ids = network.generate(chunk, vocabulary.bos, vocabulary.eos)
        predicted = [vocabulary.decode(row.tolist()) for row in ids]
        correct += sum(p == c for p, c in zip(predicted, captions[start:start + batch],
                                              strict=True))
    return correct / max(len(captions), 1)


def evaluate_file(path: str | Path, size: int = 2_000, seed: int = EVAL_SEED) -> float:
    """Load a checkpoint file (as the server would) and score it on the held-out set."""
    loaded = load_model(path)
    images, captions, _ = generate(size, seed)
    return evaluate_network(loaded.network, loaded.vocabulary, images, captions)


def export_variants(fp32: CaptionNet, int2_latent: CaptionNet, out: Path,
                    metadata: dict[str, object]) -> dict[str, Path]:
    """Write best_model.pth, int8_quantized.pth, int2_quantized.pth; returns name -> path."""
    vocabulary = Vocabulary()
    sources = {"fp32": fp32, "int8": fp32, "int2": int2_latent}
    files: dict[str, Path] = {}
    for entry in MODELS:
        meta = {**metadata, "variant": entry.variant}
        checkpoint = build_checkpoint(sources[entry.variant], vocabulary, entry.variant, meta)
        files[entry.name] = save_checkpoint(checkpoint, out / entry.file)
    return files


def train_and_export(out: Path, config: TrainConfig, log: Log = print) -> TrainReport:
    """The whole ``modelserver train``: train, export, score each written file, manifest."""
    start = time.perf_counter()
    fp32, int2_latent = train(config, log)
    seconds = time.perf_counter() - start
    # No timestamps or durations in the files: the same seed writes byte-identical files.
    files = export_variants(fp32, int2_latent, out, dict(asdict(config)))
    accuracy = {}
    for name, path in files.items():
        accuracy[name] = evaluate_file(path, config.eval_size)
        log(f"{name}: {path.stat().st_size} bytes, accuracy {accuracy[name]:.4f}")
    write_manifest(out, accuracy)
    return TrainReport(seconds=seconds, accuracy=accuracy, files=files)
