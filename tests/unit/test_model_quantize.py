"""int8 / int2 weight quantization: packing is exact, dequantization is what was trained."""

from __future__ import annotations

import pytest
import torch

from mobile_multimodal.network import CaptionNet, NetConfig
from mobile_multimodal.quantize import (
    MIN_QUANT_ELEMENTS,
    FakeQuant,
    dequantize_state,
    int2_codes,
    int2_dequantize,
    pack_int2,
    quantize_state,
    quantized_names,
    unpack_int2,
)


@pytest.mark.parametrize("shape", [[7, 13], [16, 3, 3, 3], [5, 4], [1, 1], [3, 1025]])
def test_int2_pack_unpack_is_exact_for_every_shape(shape: list[int]) -> None:
    generator = torch.Generator().manual_seed(0)
    codes = torch.randint(0, 4, shape, generator=generator, dtype=torch.uint8)
    packed = pack_int2(codes)
    per_row = codes[0].numel()
    assert packed.dtype == torch.uint8
    assert packed.shape == (shape[0], (per_row + 3) // 4)
    assert torch.equal(unpack_int2(packed, shape), codes)


def test_int2_uses_four_levels_and_requantizing_keeps_the_codes() -> None:
    weight = torch.randn(64, 300, generator=torch.Generator().manual_seed(1))
    codes, scale = int2_codes(weight)
    assert set(codes.unique().tolist()) == {0, 1, 2, 3}
    assert scale.shape == (64,)
    again_codes, _ = int2_codes(int2_dequantize(codes, scale))
    assert torch.equal(again_codes, codes)


def test_int2_scale_beats_the_naive_max_scale() -> None:
    weight = torch.randn(32, 512, generator=torch.Generator().manual_seed(2))
    codes, scale = int2_codes(weight)
    chosen = (int2_dequantize(codes, scale) - weight).pow(2).mean()
    naive = weight.abs().amax(dim=1) / 1.5
    naive_codes = (weight / naive[:, None] + 1.5).round().clamp(0, 3)
    naive_error = ((naive_codes - 1.5) * naive[:, None] - weight).pow(2).mean()
    assert chosen < naive_error


def test_only_large_conv_and_linear_weights_are_quantized() -> None:
    state = CaptionNet(NetConfig()).state_dict()
    names = quantized_names(state)
    assert names
    assert all(state[n].numel() >= MIN_QUANT_ELEMENTS and n.endswith(".weight") for n in names)
    assert "embed.weight" not in names and "out.weight" not in names
    assert not any(n.endswith(".bias") for n in names)


@pytest.mark.parametrize("bits", [8, 2])
def test_state_round_trip_keeps_shapes_and_is_close(bits: int) -> None:
    torch.manual_seed(3)
    state = CaptionNet(NetConfig()).state_dict()
    stored, shapes = quantize_state(state, bits)
    restored = dequantize_state(stored, bits, shapes)
    assert restored.keys() == state.keys()
    for name, tensor in state.items():
        assert restored[name].shape == tensor.shape
        if name not in shapes:
            assert torch.equal(restored[name], tensor)
    worst = max((restored[n] - state[n]).abs().max().item() / state[n].abs().max().item()
                for n in shapes)
    assert worst < (0.01 if bits == 8 else 1.0)


def test_fake_quant_forward_matches_packed_weights_and_passes_gradients() -> None:
    weight = torch.randn(48, 200, requires_grad=True)
    fake = FakeQuant()(weight)
    stored, shapes = quantize_state({"w.weight": weight.detach().clone()}, 2)
    assert torch.allclose(fake.detach(), dequantize_state(stored, 2, shapes)["w.weight"])
    fake.sum().backward()
    assert weight.grad is not None and torch.equal(weight.grad, torch.ones_like(weight))


def test_unsupported_bit_width_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported bit width"):
        quantize_state({}, 4)
