"""The captioning network: a three-block CNN encoder and a GRU decoder.

Small on purpose (about 270k parameters, ~1 MB in fp32) so it trains in a couple of minutes
on two CPU cores and loads in milliseconds. The GRU cell is written with two ``nn.Linear``
layers instead of ``nn.GRU`` so every weight is a plain Linear/Conv weight: quantization
(int8, int2, quantization-aware fine-tuning) then treats all layers the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from mobile_multimodal.data import IMAGE_SIZE, MAX_CAPTION_TOKENS, VOCABULARY

__all__ = ["ARCHITECTURE", "CaptionNet", "NetConfig"]

ARCHITECTURE = "MobileCaptionNet"
"""Architecture name written into every checkpoint (``checkpoint['architecture']``)."""


@dataclass(frozen=True)
class NetConfig:
    """Hyper-parameters that fix the shape of every weight; stored in each checkpoint."""

    image_size: int = IMAGE_SIZE
    channels: tuple[int, int, int] = (16, 32, 64)
    embed: int = 32
    hidden: int = 128
    vocab_size: int = len(VOCABULARY)
    max_len: int = MAX_CAPTION_TOKENS

    def to_dict(self) -> dict[str, int | list[int]]:
        """A dict of ints and int lists: the only types a weights-only load accepts."""
        out: dict[str, int | list[int]] = {}
        for key, value in asdict(self).items():
            out[key] = list(value) if isinstance(value, tuple) else int(value)
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, object]) -> NetConfig:
        """Rebuild from a checkpoint; raises ValueError naming the first bad key."""
        values: dict[str, object] = {}
        for key, default in asdict(cls()).items():
            value = raw.get(key, default)
            if isinstance(default, tuple):
                if not isinstance(value, list | tuple) or len(value) != len(default):
                    raise ValueError(f"config key {key!r} must be a list of {len(default)} ints")
                value = tuple(_positive_int(key, v) for v in value)
            else:
                value = _positive_int(key, value)
            values[key] = value
        return cls(**values)  # type: ignore[arg-type]


def _positive_int(key: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"config key {key!r} must be a positive int, got {value!r}")
    return value


class GRUCell(nn.Module):
    """A standard GRU cell (same equations as ``nn.GRUCell``) built from two Linear layers."""

    def __init__(self, inputs: int, hidden: int,
                 device: str | torch.device | None = None) -> None:
        super().__init__()
        self.ih = nn.Linear(inputs, 3 * hidden, device=device)
        self.hh = nn.Linear(hidden, 3 * hidden, device=device)

    def forward(self, x: Tensor, h: Tensor) -> Tensor:
        ir, iz, in_ = self.ih(x).chunk(3, dim=-1)
        hr, hz, hn = self.hh(h).chunk(3, dim=-1)
        r = torch.sigmoid(ir + hr)
        z = torch.sigmoid(iz + hz)
        n = torch.tanh(in_ + r * hn)
        return (1 - z) * n + z * h


class CaptionNet(nn.Module):
    """Image (B x 3 x S x S floats in [0, 1]) to caption token logits.

    The image context is fed to the GRU at every step rather than only as its initial state,
    so the decoder need not carry the whole picture in its hidden state across 8 tokens.
    """

    def __init__(self, config: NetConfig, device: str | torch.device | None = None) -> None:
        """``device="meta"`` builds it without allocating or initialising weights, for a
        load that replaces them all anyway (``load_state_dict(..., assign=True)``)."""
        super().__init__()
        self.config = config
        c1, c2, c3 = config.channels
        self.encoder = nn.Sequential(
            _block(3, c1, device), _block(c1, c2, device), _block(c2, c3, device), nn.Flatten()
        )
        cells = (config.image_size // 8) ** 2
        self.project = nn.Linear(c3 * cells, config.hidden, device=device)
        self.embed = nn.Embedding(config.vocab_size, config.embed,
                                  _weight=_embedding_init(config, device))
        self.gru = GRUCell(config.embed + config.hidden, config.hidden, device)
        self.out = nn.Linear(config.hidden, config.vocab_size, device=device)

    def encode(self, images: Tensor) -> Tensor:
        """The image context vector (B x hidden)."""
        return torch.relu(self.project(self.encoder((images - 0.5) / 0.25)))

    def forward(self, images: Tensor, tokens: Tensor) -> Tensor:
        """Teacher-forced logits (B x T x V) for next-token prediction from ``tokens``."""
        context = self.encode(images)
        h = context.new_zeros(context.shape[0], self.config.hidden)
        steps = []
        for t in range(tokens.shape[1]):
            h = self.gru(torch.cat([self.embed(tokens[:, t]), context], dim=-1), h)
            steps.append(self.out(h))
        return torch.stack(steps, dim=1)

    @torch.inference_mode()
    def generate(self, images: Tensor, bos: int, eos: int) -> Tensor:
        """Greedy decoding: token ids (B x max_len-1), stopping early once all hit EOS."""
        context = self.encode(images)
        batch = context.shape[0]
        h = context.new_zeros(batch, self.config.hidden)
        device = context.device
        token = torch.full((batch,), bos, dtype=torch.long, device=device)
        done = torch.zeros(batch, dtype=torch.bool, device=device)
        out = torch.full((batch, self.config.max_len - 1), eos, dtype=torch.long, device=device)
        for t in range(self.config.max_len - 1):
            h = self.gru(torch.cat([self.embed(token), context], dim=-1), h)
            token = self.out(h).argmax(dim=-1)
            out[:, t] = torch.where(done, eos, token)
            done |= token == eos
            if bool(done.all()):
                break
        return out


def _block(inputs: int, outputs: int, device: str | torch.device | None) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, 3, padding=1, device=device), nn.ReLU(), nn.MaxPool2d(2)
    )


def _embedding_init(config: NetConfig, device: str | torch.device | None) -> Tensor:
    """nn.Embedding's own N(0, 1) init, done here because on the meta device ``normal_``
    goes through torch._refs and imports torch._dynamo (about 1.5 s on first use)."""
    shape = (config.vocab_size, config.embed)
    if torch.device(device or "cpu").type == "meta":
        return torch.empty(shape, device="meta")
    return torch.randn(shape, device=device)
