"""The image contract (ganbench.images): one reader of layouts, one resize, one float mapping."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ganbench.errors import InputError
from ganbench.images import convert_uint8, float_to_uint8, to_rgb_uint8, to_uint8_nchw, uint8_to_float


def batch(shape, seed=0):
    return torch.randint(0, 256, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def test_layouts_read_to_nchw():
    nchw = batch((4, 3, 6, 5))
    assert torch.equal(to_uint8_nchw(nchw), nchw)
    assert torch.equal(to_uint8_nchw(nchw.permute(0, 2, 3, 1).numpy()), nchw)  # NHWC numpy
    gray = batch((4, 6, 5))
    assert torch.equal(to_uint8_nchw(gray), gray[:, None])  # NHW keeps one channel
    assert torch.equal(to_rgb_uint8(gray), gray[:, None].expand(-1, 3, -1, -1))  # the contract: 3 channels


@pytest.mark.parametrize("bad, message", [
    (torch.zeros(2, 5, 6, 6, dtype=torch.uint8), "got shape (2, 5, 6, 6)"),
    (torch.zeros(6, 6, dtype=torch.uint8), "got shape (6, 6)"),
    (np.zeros((2, 6, 6), np.int64), "got dtype int64"),
    (torch.zeros(2, 6, 6), "got dtype torch.float32"),  # float range is ambiguous: refused by default
])
def test_bad_batches_are_one_line_errors(bad, message):
    with pytest.raises(InputError, match="what:") as info:
        to_rgb_uint8(bad, what="what")
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("as_array", [np.asarray, torch.from_numpy])
def test_whole_floats_are_images_when_asked(as_array):
    x = as_array(np.full((2, 4, 4), 7.0, np.float32))
    assert to_uint8_nchw(x, whole_floats=True).unique().tolist() == [7]
    with pytest.raises(InputError, match="fractional"):
        to_uint8_nchw(as_array(np.full((2, 4, 4), 0.5, np.float32)), whole_floats=True)
    with pytest.raises(InputError, match="out of range"):
        to_uint8_nchw(as_array(np.full((2, 4, 4), 256.0, np.float32)), whole_floats=True)


def test_float_mapping_round_trips():
    x = batch((2, 3, 4, 4))
    assert torch.equal(float_to_uint8(uint8_to_float(x)), x)
    assert torch.equal(float_to_uint8(uint8_to_float(x, (0.0, 1.0)), (0.0, 1.0)), x)
    with pytest.raises(InputError, match="NaN/Inf"):
        float_to_uint8(torch.tensor([[[[float("nan")]]]]))


def test_convert_uint8_channels_and_sizes():
    x = batch((2, 3, 10, 12))
    gray = convert_uint8(x, None, 1)
    assert gray.shape == (2, 1, 10, 10)  # centre crop to square
    assert torch.equal(gray[:, 0], x[:, :, :, 1:11].float().mean(1).round().to(torch.uint8))
    assert convert_uint8(x, 20, 3).shape == (2, 3, 20, 20)
    assert convert_uint8(x, 5, 3).shape == (2, 3, 5, 5)
    one = torch.full((1, 1, 4, 4), 200, dtype=torch.uint8)
    assert torch.equal(convert_uint8(one, 8, 3), torch.full((1, 3, 8, 8), 200, dtype=torch.uint8))
