"""The FID Inception-v3 (``inception-v3-compat``), ganbench's own fast implementation.

Network: Szegedy et al., "Rethinking the Inception Architecture for Computer Vision"
(CVPR 2016), in the variant of the TensorFlow graph ``inception-2015-12-05`` that
Heusel et al. (NeurIPS 2017) used for FID and Salimans et al. (NeurIPS 2016) for the
Inception Score. Reference code: torch-fidelity's ``FeatureExtractorInceptionV3``
(Apache-2.0), itself adapted from mseitzer/pytorch-fid. This file computes the same
features from the same weights file (same state-dict keys), with these differences in
*how*, none in *what*:

* every BatchNorm (eps 0.001) is folded into its convolution when the weights are
  loaded (in float64, rounded once);
* 1x1 convolutions that read the same input are merged into one; where a branch is
  "3x3 average pool, then 1x1 conv", the conv is merged too and the pool applied to its
  (far fewer) output channels -- both operations are linear and the pool's weights sum
  to one, so the bias passes through unchanged;
* activations are channels_last; on CPU each convolution is one oneDNN call with its
  ReLU fused and its weights pre-reordered (:class:`FastConv2d`); the forward runs
  under ``torch.inference_mode`` and stops after the last requested feature (no fc
  for ``"pool"`` alone).

The results differ from torch-fidelity's by float32 rounding only: measured against a
float64 run of torch-fidelity, ganbench's error is the size of torch-fidelity's own
float32 error (a few 1e-5 of the largest feature on test weights; see
tests/test_extractors.py). On a 2-core CPU it is about twice as fast.

The resize to 299x299 reproduces TensorFlow 1.x ``resize_bilinear`` (align_corners=False,
no half-pixel centres) bit-exactly on CPU; see :func:`resize_bilinear_tf1`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ganbench.errors import GanbenchError, InputError
from ganbench.metrics.base import FeatureExtractor, register_extractor
from ganbench.weights import CATALOG, build_from_weights, load_state_dict

BN_EPS = 0.001  # the TensorFlow graph's batch-norm epsilon
INPUT_SIZE = 299
FEATURES = ("pool", "logits", "logits_biased", "spatial")
# sFID (Nash et al. 2021, the ADM evaluator): the TF graph's "mixed_6/conv:0" -- Mixed_6d's 1x1 branch
# after its BN and ReLU -- first 7 of its 192 channels, 17x17, flattened in TF's (H, W, C) order: 2023-d
SPATIAL_BLOCK = 6  # index of Mixed_6d in InceptionV3Compat.blocks
SPATIAL_CHANNELS = 7


# --------------------------------------------------------------------------------------
# TensorFlow-1.x-compatible bilinear resize
# --------------------------------------------------------------------------------------
def _tf1_grid(in_size: int, out_size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Source indices (lo, hi) and weights of TF1 bilinear sampling along one axis.

    TF1 without half-pixel centres samples output pixel ``i`` at ``i * in/out``. The
    product is taken in float32, as TensorFlow (and torch-fidelity) do, so that the
    weights are bit-identical.
    """
    scale = torch.tensor(in_size / out_size, dtype=torch.float32)
    pos = torch.arange(out_size, dtype=torch.float32) * scale
    lo = pos.long()  # pos >= 0, so truncation is floor
    hi = (lo + 1).clamp_max(in_size - 1)
    frac = pos - lo.float()
    return lo.to(device), hi.to(device), frac.to(device)


def resize_bilinear_tf1(images: torch.Tensor, size: int | tuple[int, int], *,
                        channels_last: bool = False) -> torch.Tensor:
    """Resize like TensorFlow 1.x ``tf.image.resize_bilinear(align_corners=False)``.

    Equal, bit for bit on CPU, to torch-fidelity's
    ``interpolate_bilinear_2d_like_tensorflow1x(..., align_corners=False)``: the same
    float32 sampling positions and the same order of operations (interpolate along
    width, then along height), but separable, so the width pass runs on the input rows
    only, and with one gather per axis.

    Args:
        images: (N, C, H, W) tensor; integer input is converted to float32.
        size: output size, an int or (height, width).
        channels_last: return a channels_last tensor (computed in that layout, no copy).
    Returns:
        float (N, C, out_h, out_w) tensor.
    """
    out_h, out_w = (size, size) if isinstance(size, int) else size
    if not images.is_floating_point():
        images = images.float()
    n, c, in_h, in_w = images.shape
    x_lo, x_hi, x_frac = _tf1_grid(in_w, out_w, images.device)
    y_lo, y_hi, y_frac = _tf1_grid(in_h, out_h, images.device)
    if channels_last:
        src = images.permute(0, 2, 3, 1)  # N, H, W, C
        w_dim, h_dim = 2, 1
        x_frac = x_frac.view(1, 1, out_w, 1)
        y_frac = y_frac.view(1, out_h, 1, 1)
    else:
        src = images
        w_dim, h_dim = 3, 2
        x_frac = x_frac.view(1, 1, 1, out_w)
        y_frac = y_frac.view(1, 1, out_h, 1)
    # width pass on the in_h input rows: a + (b - a) * t, as torch-fidelity does
    left = src.index_select(w_dim, x_lo)
    rows = src.index_select(w_dim, x_hi).sub_(left).mul_(x_frac).add_(left)
    # height pass
    top = rows.index_select(h_dim, y_lo)
    out = rows.index_select(h_dim, y_hi).sub_(top).mul_(y_frac).add_(top)
    return out.permute(0, 3, 1, 2) if channels_last else out


# --------------------------------------------------------------------------------------
# The network: official weight names in, folded and merged convolutions inside
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConvSpec:
    """One "conv (no bias) + BatchNorm + ReLU" unit of the official weights file."""

    name: str  # key prefix in the weights file, e.g. "Mixed_5b.branch1x1"
    cin: int
    cout: int
    kernel: tuple[int, int]
    stride: int = 1
    padding: tuple[int, int] = (0, 0)


def _k(k: int | tuple[int, int]) -> tuple[int, int]:
    return (k, k) if isinstance(k, int) else k


def _spec(name: str, cin: int, cout: int, kernel, stride: int = 1, padding=0) -> ConvSpec:
    return ConvSpec(name, cin, cout, _k(kernel), stride, _k(padding))


def _fold(state: dict[str, torch.Tensor], spec: ConvSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """Pop one unit's conv + BN tensors from ``state``; return the folded (weight, bias).

    ``bn(conv(x)) = conv(x) * g / sqrt(v + eps) + (b - m * g / sqrt(v + eps))``, computed
    in float64 and rounded once to float32.
    """
    p = spec.name
    weight = _take(state, f"{p}.conv.weight", (spec.cout, spec.cin, *spec.kernel)).double()
    gamma = _take(state, f"{p}.bn.weight", (spec.cout,)).double()
    beta = _take(state, f"{p}.bn.bias", (spec.cout,)).double()
    mean = _take(state, f"{p}.bn.running_mean", (spec.cout,)).double()
    var = _take(state, f"{p}.bn.running_var", (spec.cout,)).double()
    state.pop(f"{p}.bn.num_batches_tracked", None)  # saved by nn.BatchNorm2d, unused
    scale = gamma / torch.sqrt(var + BN_EPS)
    return (weight * scale.view(-1, 1, 1, 1)).float(), (beta - mean * scale).float()


def _take(state: dict[str, torch.Tensor], key: str, shape: tuple[int, ...]) -> torch.Tensor:
    tensor = state.pop(key)
    assert tuple(tensor.shape) == shape, key  # checked by check_state_dict
    return tensor


def check_state_dict(state: dict[str, torch.Tensor], expected: dict[str, tuple[int, ...]], what: str) -> None:
    """Raise GanbenchError unless ``state`` has exactly the ``expected`` keys and shapes
    (``*.num_batches_tracked`` counters, saved by ``nn.BatchNorm2d``, are ignored)."""
    keys = {k for k in state if not k.endswith(".num_batches_tracked")}
    missing = [k for k in expected if k not in keys]
    extra = sorted(keys - expected.keys())
    if missing or extra:
        first = f"missing {missing[0]!r}" if missing else f"unexpected {extra[0]!r}"
        raise GanbenchError(f"{what} weights: {first} ({len(missing)} missing, {len(extra)} unexpected "
                            f"tensors); not a {what} state dict")
    for key, shape in expected.items():
        if tuple(state[key].shape) != shape:
            raise GanbenchError(f"{what} weights: {key!r} has shape {tuple(state[key].shape)}, expected {shape}")


def _has_fused_conv() -> bool:
    # private oneDNN ops (used by torch.compile's CPU backend); plain F.conv2d otherwise
    try:
        return (torch.backends.mkldnn.is_available()
                and hasattr(torch.ops.mkldnn, "_convolution_pointwise")
                and hasattr(torch.ops.mkldnn, "_reorder_convolution_weight"))
    except (AttributeError, RuntimeError):
        return False


_FUSED_CONV = _has_fused_conv()


class FastConv2d(nn.Conv2d):
    """``nn.Conv2d`` (with bias) followed by an optional ReLU, fast on CPU.

    On CPU (float32) it is one oneDNN call with the ReLU as a post-op -- the kernel
    ``F.conv2d`` runs, without a second pass over the output -- on weights reordered
    once into oneDNN's blocked layout and cached (repacked when the weight moves or is
    updated in place; edits through ``.data`` are not seen: the extractors are frozen).
    Elsewhere it is ``F.conv2d`` then ``F.relu``.
    """

    def __init__(self, *args, relu: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.relu = relu
        self._packed: tuple[tuple, torch.Tensor] | None = None  # (weight identity, oneDNN weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        if not (_FUSED_CONV and x.device.type == "cpu" and x.dtype == w.dtype == torch.float32
                and self.groups == 1 and self.padding_mode == "zeros" and isinstance(self.padding, tuple)):
            y = super().forward(x)
            return F.relu(y, inplace=True) if self.relu else y
        x = x.contiguous(memory_format=torch.channels_last)
        padding, stride, dilation = list(self.padding), list(self.stride), list(self.dilation)
        key = (w.data_ptr(), w._version, w.device)
        if self._packed is None or self._packed[0] != key:
            packed = torch.ops.mkldnn._reorder_convolution_weight(w, padding, stride, dilation, 1, list(x.shape))
            self._packed = (key, packed)
        return torch.ops.mkldnn._convolution_pointwise(
            x, self._packed[1], self.bias, padding, stride, dilation, 1, "relu" if self.relu else "none", [], "")

    def __getstate__(self):  # oneDNN tensors can be neither pickled nor deep-copied
        state = self.__dict__.copy()
        state["_packed"] = None
        return state


class FusedConv(nn.Module):
    """Several units reading the same input, as one convolution with a bias.

    The output channels are the units' outputs in order. ``relu=False`` leaves the
    ReLU to the caller (a merged pool branch must be pooled before its ReLU).
    """

    def __init__(self, specs: list[ConvSpec], relu: bool = True):
        super().__init__()
        first = specs[0]
        assert all((s.cin, s.kernel, s.stride, s.padding) == (first.cin, first.kernel, first.stride, first.padding)
                   for s in specs)
        self.specs = specs
        self.splits = [s.cout for s in specs]
        self.conv = FastConv2d(first.cin, sum(self.splits), first.kernel, first.stride, first.padding, relu=relu)

    def load(self, state: dict[str, torch.Tensor]) -> None:
        folded = [_fold(state, s) for s in self.specs]
        self.conv.weight.data.copy_(torch.cat([w for w, _ in folded]))
        self.conv.bias.data.copy_(torch.cat([b for _, b in folded]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Unit(FusedConv):
    """A single conv + BN + ReLU unit."""

    def __init__(self, spec: ConvSpec):
        super().__init__([spec])


def _relu(x: torch.Tensor) -> torch.Tensor:
    return F.relu(x, inplace=True)


def _heads_with_pool(heads: FusedConv, x: torch.Tensor) -> list[torch.Tensor]:
    """Run merged heads whose last part is a pool branch: pool that part before the
    ReLU, then one ReLU over the whole (contiguous) output."""
    y = heads(x)
    pooled = _relu(_avg3(y[:, -heads.splits[-1]:]))
    return [*_relu(y).split(heads.splits, dim=1)[:-1], pooled]


def _avg3(x: torch.Tensor) -> torch.Tensor:
    # TensorFlow's average pool ignores the zero padding
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class BlockA(nn.Module):
    """Mixed_5b/5c/5d (35x35): 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avgpool-1x1."""

    def __init__(self, name: str, cin: int, pool_features: int):
        super().__init__()
        s = lambda *a, **k: _spec(f"{name}.{a[0]}", *a[1:], **k)  # noqa: E731
        self.heads = FusedConv([s("branch1x1", cin, 64, 1), s("branch5x5_1", cin, 48, 1),
                                s("branch3x3dbl_1", cin, 64, 1), s("branch_pool", cin, pool_features, 1)],
                               relu=False)
        self.b5_2 = Unit(s("branch5x5_2", 48, 64, 5, padding=2))
        self.b3_2 = Unit(s("branch3x3dbl_2", 64, 96, 3, padding=1))
        self.b3_3 = Unit(s("branch3x3dbl_3", 96, 96, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1, b5, b3, bp = _heads_with_pool(self.heads, x)
        return torch.cat([b1, self.b5_2(b5), self.b3_3(self.b3_2(b3)), bp], 1)


class BlockB(nn.Module):
    """Mixed_6a (35 -> 17): 3x3/2 | 1x1-3x3-3x3/2 | maxpool/2."""

    def __init__(self, name: str, cin: int):
        super().__init__()
        s = lambda *a, **k: _spec(f"{name}.{a[0]}", *a[1:], **k)  # noqa: E731
        self.b3 = Unit(s("branch3x3", cin, 384, 3, stride=2))
        self.b3d_1 = Unit(s("branch3x3dbl_1", cin, 64, 1))
        self.b3d_2 = Unit(s("branch3x3dbl_2", 64, 96, 3, padding=1))
        self.b3d_3 = Unit(s("branch3x3dbl_3", 96, 96, 3, stride=2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b3(x), self.b3d_3(self.b3d_2(self.b3d_1(x))),
                          F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class BlockC(nn.Module):
    """Mixed_6b..6e (17x17): 1x1 | 1x1-1x7-7x1 | 1x1-7x1-1x7-7x1-1x7 | avgpool-1x1."""

    def __init__(self, name: str, cin: int, c7: int):
        super().__init__()
        s = lambda *a, **k: _spec(f"{name}.{a[0]}", *a[1:], **k)  # noqa: E731
        self.heads = FusedConv([s("branch1x1", cin, 192, 1), s("branch7x7_1", cin, c7, 1),
                                s("branch7x7dbl_1", cin, c7, 1), s("branch_pool", cin, 192, 1)],
                               relu=False)
        self.b7_2 = Unit(s("branch7x7_2", c7, c7, (1, 7), padding=(0, 3)))
        self.b7_3 = Unit(s("branch7x7_3", c7, 192, (7, 1), padding=(3, 0)))
        self.b7d_2 = Unit(s("branch7x7dbl_2", c7, c7, (7, 1), padding=(3, 0)))
        self.b7d_3 = Unit(s("branch7x7dbl_3", c7, c7, (1, 7), padding=(0, 3)))
        self.b7d_4 = Unit(s("branch7x7dbl_4", c7, c7, (7, 1), padding=(3, 0)))
        self.b7d_5 = Unit(s("branch7x7dbl_5", c7, 192, (1, 7), padding=(0, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_branch1x1(x)[0]

    def forward_with_branch1x1(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(block output, the 1x1 branch's output after its ReLU)."""
        b1, b7, b7d, bp = _heads_with_pool(self.heads, x)
        b7 = self.b7_3(self.b7_2(b7))
        b7d = self.b7d_5(self.b7d_4(self.b7d_3(self.b7d_2(b7d))))
        return torch.cat([b1, b7, b7d, bp], 1), b1


class BlockD(nn.Module):
    """Mixed_7a (17 -> 8): 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | maxpool/2."""

    def __init__(self, name: str, cin: int):
        super().__init__()
        s = lambda *a, **k: _spec(f"{name}.{a[0]}", *a[1:], **k)  # noqa: E731
        self.heads = FusedConv([s("branch3x3_1", cin, 192, 1), s("branch7x7x3_1", cin, 192, 1)])
        self.b3_2 = Unit(s("branch3x3_2", 192, 320, 3, stride=2))
        self.b7_2 = Unit(s("branch7x7x3_2", 192, 192, (1, 7), padding=(0, 3)))
        self.b7_3 = Unit(s("branch7x7x3_3", 192, 192, (7, 1), padding=(3, 0)))
        self.b7_4 = Unit(s("branch7x7x3_4", 192, 192, 3, stride=2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3, b7 = self.heads(x).split(self.heads.splits, dim=1)
        return torch.cat([self.b3_2(b3), self.b7_4(self.b7_3(self.b7_2(b7))),
                          F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class BlockE(nn.Module):
    """Mixed_7b/7c (8x8): 1x1 | 1x1-(1x3,3x1) | 1x1-3x3-(1x3,3x1) | pool-1x1.

    Mixed_7b average-pools its pool branch; Mixed_7c max-pools it (a quirk of the
    TensorFlow graph, kept for compatibility), so there the 1x1 cannot be merged.
    """

    def __init__(self, name: str, cin: int, max_pool: bool):
        super().__init__()
        s = lambda *a, **k: _spec(f"{name}.{a[0]}", *a[1:], **k)  # noqa: E731
        heads = [s("branch1x1", cin, 320, 1), s("branch3x3_1", cin, 384, 1), s("branch3x3dbl_1", cin, 448, 1)]
        pool = s("branch_pool", cin, 192, 1)
        self.heads = FusedConv(heads) if max_pool else FusedConv(heads + [pool], relu=False)
        self.b_pool = Unit(pool) if max_pool else None
        self.b3_2a = Unit(s("branch3x3_2a", 384, 384, (1, 3), padding=(0, 1)))
        self.b3_2b = Unit(s("branch3x3_2b", 384, 384, (3, 1), padding=(1, 0)))
        self.b3d_2 = Unit(s("branch3x3dbl_2", 448, 384, 3, padding=1))
        self.b3d_3a = Unit(s("branch3x3dbl_3a", 384, 384, (1, 3), padding=(0, 1)))
        self.b3d_3b = Unit(s("branch3x3dbl_3b", 384, 384, (3, 1), padding=(1, 0)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.b_pool is not None:
            b1, b3, b3d = self.heads(x).split(self.heads.splits, dim=1)
            bp = self.b_pool(F.max_pool2d(x, kernel_size=3, stride=1, padding=1))
        else:
            b1, b3, b3d, bp = _heads_with_pool(self.heads, x)
        b3d = self.b3d_2(b3d)
        return torch.cat([b1, self.b3_2a(b3), self.b3_2b(b3), self.b3d_3a(b3d), self.b3d_3b(b3d), bp], 1)


class InceptionV3Compat(FeatureExtractor):
    """FID Inception-v3: uint8 images of any size -> pool3 (2048) and logits (1008).

    Features: ``"pool"`` (2048-d pool3, FID/KID/PR), ``"logits"`` (fc without bias:
    torch-fidelity's ``logits_unbiased``, used by its Inception Score), ``"logits_biased"``
    (fc with bias: torch-fidelity's ``logits``), ``"spatial"`` (2023-d, sFID: see
    :data:`SPATIAL_BLOCK`).

    Build with :meth:`from_state_dict` (or the registered factory); a bare instance has
    uninitialised weights.
    """

    name = "inception-v3-compat"
    provides = FEATURES
    input_size = INPUT_SIZE
    resize = "tf1-bilinear"

    def __init__(self):
        super().__init__()
        self.stem = nn.ModuleList([
            Unit(_spec("Conv2d_1a_3x3", 3, 32, 3, stride=2)),
            Unit(_spec("Conv2d_2a_3x3", 32, 32, 3)),
            Unit(_spec("Conv2d_2b_3x3", 32, 64, 3, padding=1)),
            Unit(_spec("Conv2d_3b_1x1", 64, 80, 1)),
            Unit(_spec("Conv2d_4a_3x3", 80, 192, 3)),
        ])
        self.blocks = nn.Sequential(
            BlockA("Mixed_5b", 192, 32), BlockA("Mixed_5c", 256, 64), BlockA("Mixed_5d", 288, 64),
            BlockB("Mixed_6a", 288),
            BlockC("Mixed_6b", 768, 128), BlockC("Mixed_6c", 768, 160),
            BlockC("Mixed_6d", 768, 160), BlockC("Mixed_6e", 768, 192),
            BlockD("Mixed_7a", 768),
            BlockE("Mixed_7b", 1280, max_pool=False), BlockE("Mixed_7c", 2048, max_pool=True),
        )
        self.fc = nn.Linear(2048, 1008)
        self.requires_grad_(False)

    # -- weights ------------------------------------------------------------------
    @staticmethod
    def official_shapes() -> dict[str, tuple[int, ...]]:
        """Key -> shape of every tensor in the official weights file (the same keys as
        torch-fidelity's ``FeatureExtractorInceptionV3`` state dict, without
        ``num_batches_tracked``)."""
        shapes: dict[str, tuple[int, ...]] = {}
        with torch.device("meta"):
            model = InceptionV3Compat()
        for module in model.modules():
            if isinstance(module, FusedConv):
                for s in module.specs:
                    shapes[f"{s.name}.conv.weight"] = (s.cout, s.cin, *s.kernel)
                    for stat in ("weight", "bias", "running_mean", "running_var"):
                        shapes[f"{s.name}.bn.{stat}"] = (s.cout,)
        shapes["fc.weight"] = (1008, 2048)
        shapes["fc.bias"] = (1008,)
        return shapes

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> "InceptionV3Compat":
        """Build from a state dict with the official keys (BN folded on the way in).

        Raises:
            GanbenchError: keys or shapes differ from :meth:`official_shapes`.
        """
        check_state_dict(state, cls.official_shapes(), "FID Inception-v3")
        state = {k: v.float() for k, v in state.items()}  # a shallow copy we may pop from
        with torch.device("meta"):  # skip the default initialisation: every tensor is loaded
            model = cls()
        model = model.to_empty(device="cpu")
        for module in model.modules():
            if isinstance(module, FusedConv):
                module.load(state)
        model.fc.weight.data.copy_(_take(state, "fc.weight", (1008, 2048)))
        model.fc.bias.data.copy_(_take(state, "fc.bias", (1008,)))
        model.eval()
        return model.to(memory_format=torch.channels_last)

    # -- forward ------------------------------------------------------------------
    def forward(self, images: torch.Tensor, features: tuple[str, ...] | None = None) -> dict[str, torch.Tensor]:
        """Features of uint8 images (N, 3, H, W), any H and W.

        Args:
            images: uint8 (N, 3, H, W), values 0..255.
            features: subset of :attr:`provides` (default: all); the network runs only
                as far as they need.
        Returns:
            {name: float32 (N, D)} with D = 2048 ("pool"), 1008 (logits) or 2023 ("spatial").
        """
        features = check_request(self, images, features)
        with torch.inference_mode():
            out = self._features(images.to(self.fc.weight.device), features)
        return {f: out[f].float().clone() for f in features}  # ordinary tensors, not inference ones

    def _features(self, images: torch.Tensor, features: tuple[str, ...]) -> dict[str, torch.Tensor]:
        x = resize_bilinear_tf1(images, INPUT_SIZE, channels_last=True)
        x = x.sub_(128).div_(128)
        for i, unit in enumerate(self.stem):
            x = unit(x)
            if i in (2, 4):
                x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.blocks[:SPATIAL_BLOCK](x)
        x, branch1x1 = self.blocks[SPATIAL_BLOCK].forward_with_branch1x1(x)
        out = {"spatial": branch1x1[:, :SPATIAL_CHANNELS].permute(0, 2, 3, 1).flatten(1)}  # (H, W, C), as TF
        if features == ("spatial",):
            return out
        pool = self.blocks[SPATIAL_BLOCK + 1:](x).mean(dim=(2, 3))
        out["pool"] = pool
        if "logits" in features or "logits_biased" in features:
            out["logits"] = pool.mm(self.fc.weight.T)
            out["logits_biased"] = out["logits"] + self.fc.bias
        return out


def check_request(extractor: FeatureExtractor, images: torch.Tensor,
                  features: tuple[str, ...] | None) -> tuple[str, ...]:
    """Validate a forward call; return the requested feature names (default: all)."""
    features = extractor.provides if features is None else tuple(features)
    unknown = [f for f in features if f not in extractor.provides]
    if unknown:
        raise InputError(f"{extractor.name} provides {', '.join(extractor.provides)}; not {', '.join(unknown)}")
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.dim() != 4 \
            or images.shape[1] != 3:
        got = f"{images.dtype} {tuple(images.shape)}" if isinstance(images, torch.Tensor) else type(images).__name__
        raise InputError(f"{extractor.name}: expected uint8 images (N, 3, H, W), got {got}")
    return features


@register_extractor("inception-v3-compat", provides=FEATURES, weights=CATALOG["inception-v3-fid"],
                    description="FID Inception-v3 (TF 2015-12-05 weights), torch-fidelity compatible")
def build(weights: str | None = None, device: str | torch.device = "cpu") -> InceptionV3Compat:
    """The FID Inception-v3 with the official weights (or ``weights``), ready for eval.

    Raises:
        MissingFileError: the weights file cannot be found or downloaded.
    """
    return build_from_weights(CATALOG["inception-v3-fid"], weights,
                              lambda path: InceptionV3Compat.from_state_dict(load_state_dict(path)), device)
