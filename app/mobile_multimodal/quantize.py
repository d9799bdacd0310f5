"""Weight quantization: int8 and int2, symmetric, one scale per output channel.

Only large weights are quantized (``MIN_QUANT_ELEMENTS``): biases, the embedding, the first
conv and the output layer are a few thousand values together, cost little to keep in fp32
and are the layers where 2-bit error hurts accuracy most.

int2 stores codes 0..3 meaning (code - 1.5) * scale, i.e. the four levels +-0.5 and +-1.5
scales; no zero level, so all four codes carry information. Four codes are packed into one
byte (lowest bits first). The scale of each channel is the one, among a grid of multiples
of the channel's RMS, that minimises the squared error; quantization-aware fine-tuning
(``FakeQuant``) uses the very same function, so the packed model computes exactly what was
fine-tuned.

All quantized weights travel in two flat tensors, ``quantized.qweight`` (int8 values, or
uint8 bytes of packed int2 rows, one weight after the other) and ``quantized.qscale``
(float32, one per output channel), in the order of ``quantization['shapes']``, which
records each weight's name and shape. Two records instead of two per weight keep loading
fast: a zip record costs about as much to read as 100 kB of data. Loading unpacks to fp32
(``dequantize_state``), with a 256-entry lookup table for int2 bytes.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

__all__ = [
    "MIN_QUANT_ELEMENTS",
    "FakeQuant",
    "dequantize_state",
    "int2_codes",
    "int2_dequantize",
    "pack_int2",
    "quantize_state",
    "quantized_names",
    "unpack_int2",
]

MIN_QUANT_ELEMENTS = 4096
"""Weights with fewer values than this stay fp32."""

QWEIGHT, QSCALE = "quantized.qweight", "quantized.qscale"
_SHIFTS = torch.tensor([0, 2, 4, 6], dtype=torch.uint8)
_LEVELS = torch.tensor([-1.5, -0.5, 0.5, 1.5])
_BYTE_CODES = (torch.arange(256, dtype=torch.uint8).unsqueeze(1) >> _SHIFTS) & 3
_BYTE_LEVELS = _LEVELS[_BYTE_CODES.long()]
"""Byte value -> the four int2 levels it packs (256 x 4), for one-step unpacking."""
_SCALE_GRID = torch.linspace(0.5, 1.6, 23)


def quantized_names(state: Mapping[str, Tensor]) -> list[str]:
    """Names of the weights worth quantizing: conv/linear weights of at least the minimum."""
    return [
        name
        for name, t in state.items()
        if name.endswith(".weight") and t.dim() >= 2 and t.numel() >= MIN_QUANT_ELEMENTS
        and not name.startswith("embed.")
    ]


def _rows(weight: Tensor) -> Tensor:
    """The weight as (output channels x everything else)."""
    return weight.reshape(weight.shape[0], -1)


def int2_scales(rows: Tensor) -> Tensor:
    """Per-row scale minimising the int2 squared error over a grid of RMS multiples."""
    rms = rows.pow(2).mean(dim=1, keepdim=True).sqrt().clamp_min(1e-8)
    candidates = rms * _SCALE_GRID.to(rows.dtype)  # R x M
    codes = (rows.unsqueeze(1) / candidates.unsqueeze(2) + 1.5).round().clamp(0, 3)
    error = ((codes - 1.5) * candidates.unsqueeze(2) - rows.unsqueeze(1)).pow(2).sum(dim=2)
    best = error.argmin(dim=1, keepdim=True)
    return candidates.gather(1, best).squeeze(1)


def int2_codes(weight: Tensor) -> tuple[Tensor, Tensor]:
    """(codes 0..3 as uint8, shaped like ``weight``; per-channel float32 scales)."""
    rows = _rows(weight.detach().float())
    scale = int2_scales(rows)
    codes = (rows / scale.unsqueeze(1) + 1.5).round().clamp(0, 3).to(torch.uint8)
    return codes.reshape(weight.shape), scale


def int2_dequantize(codes: Tensor, scale: Tensor) -> Tensor:
    """fp32 weights from codes and per-channel scales."""
    rows = (_rows(codes).float() - 1.5) * scale.float().unsqueeze(1)
    return rows.reshape(codes.shape)


def pack_int2(codes: Tensor) -> Tensor:
    """Pack codes 0..3 four to a byte, per row: (R x ...) -> uint8 (R x ceil(n/4))."""
    rows = _rows(codes).to(torch.uint8)
    pad = (-rows.shape[1]) % 4
    rows = nn.functional.pad(rows, (0, pad))
    grouped = rows.reshape(rows.shape[0], -1, 4) << _SHIFTS
    return grouped.sum(dim=2, dtype=torch.uint8)


def unpack_int2(packed: Tensor, shape: list[int]) -> Tensor:
    """Inverse of ``pack_int2``: uint8 codes shaped ``shape``."""
    codes = (packed.unsqueeze(2) >> _SHIFTS) & 3
    per_row = 1
    for dim in shape[1:]:
        per_row *= dim
    return codes.reshape(packed.shape[0], -1)[:, :per_row].reshape(shape)


def _int8(weight: Tensor) -> tuple[Tensor, Tensor]:
    rows = _rows(weight.detach().float())
    scale = rows.abs().amax(dim=1).clamp_min(1e-8) / 127
    q = (rows / scale.unsqueeze(1)).round().clamp(-127, 127).to(torch.int8)
    return q.reshape(weight.shape), scale


def quantize_state(state: Mapping[str, Tensor], bits: int) -> tuple[dict[str, Tensor],
                                                                     dict[str, list[int]]]:
    """Quantize the large weights of a state dict; returns (stored tensors, shapes)."""
    if bits not in (2, 8):
        raise ValueError(f"unsupported bit width {bits}; use 8 or 2")
    targets = set(quantized_names(state))
    stored = {k: v.detach().clone() for k, v in state.items() if k not in targets}
    shapes: dict[str, list[int]] = {}
    values, scales = [], []
    for name, tensor in state.items():
        if name in targets:
            q, scale = _int8(tensor) if bits == 8 else _packed_int2(tensor)
            values.append(q.reshape(-1))
            scales.append(scale)
            shapes[name] = list(tensor.shape)
    if shapes:
        stored[QWEIGHT], stored[QSCALE] = torch.cat(values), torch.cat(scales)
    return stored, shapes


def _packed_int2(weight: Tensor) -> tuple[Tensor, Tensor]:
    codes, scale = int2_codes(weight)
    return pack_int2(codes), scale


def _stored_size(shape: list[int], bits: int) -> int:
    """Bytes one weight takes in the flat ``qweight`` tensor."""
    per_row = 1
    for dim in shape[1:]:
        per_row *= dim
    return shape[0] * (per_row if bits == 8 else (per_row + 3) // 4)


def _dequantize_one(q: Tensor, scale: Tensor, shape: list[int], bits: int) -> Tensor:
    rows = q.reshape(shape[0], -1)
    if bits == 8:
        values = rows.float()
    else:  # each byte -> its four levels via the table (index_select: the fast gather)
        values = torch.index_select(_BYTE_LEVELS, 0, rows.reshape(-1).int())
        values = values.reshape(shape[0], -1)
        values = values[:, : _stored_size([1, *shape[1:]], 8)]
    return (values * scale.float().unsqueeze(1)).reshape(shape)


def dequantize_state(stored: Mapping[str, Tensor], bits: int,
                     shapes: Mapping[str, list[int]]) -> dict[str, Tensor]:
    """The fp32 state dict a quantized checkpoint stands for (what the network loads).

    Raises ValueError when the flat tensors do not hold exactly what ``shapes`` says.
    """
    state = {k: v for k, v in stored.items() if k not in (QWEIGHT, QSCALE)}
    if not shapes:
        return state
    values, scales = stored[QWEIGHT].reshape(-1), stored[QSCALE].reshape(-1)
    at, scale_at = 0, 0
    for name, shape in shapes.items():
        size = _stored_size(shape, bits)
        state[name] = _dequantize_one(values[at:at + size], scales[scale_at:scale_at + shape[0]],
                                      shape, bits)
        at, scale_at = at + size, scale_at + shape[0]
    if (at, scale_at) != (values.numel(), scales.numel()):
        raise ValueError(f"quantized data holds {values.numel()} values and "
                         f"{scales.numel()} scales, the shapes need {at} and {scale_at}")
    return state


class FakeQuant(nn.Module):
    """Parametrization for quantization-aware fine-tuning: the forward pass sees int2
    weights, the gradient flows to the fp32 latent weights unchanged (straight-through)."""

    def forward(self, weight: Tensor) -> Tensor:
        codes, scale = int2_codes(weight)
        return weight + (int2_dequantize(codes, scale).to(weight.dtype) - weight).detach()
