"""OpenAI CLIP image features (``clip-vit-b32``, ``clip-vit-l14``, ``clip-vit-l14-336``).

Network: Radford et al., "Learning Transferable Visual Models From Natural Language
Supervision" (ICML 2021), OpenAI's released files ``ViT-B-32.pt``, ``ViT-L-14.pt`` and
``ViT-L-14-336px.pt`` (TorchScript archives of the whole CLIP model, MIT license; the
sha256 of each file is part of its URL). The image tower is torch-fidelity's
(``torch_fidelity.feature_extractor_clip.build_model``, adapted from openai/CLIP), which
like OpenAI's ``build_model`` rounds the convolution, linear and attention weights to
float16 (the released files store them so) and runs in float32. Feature ``"pool"``:
``encode_image``, the projected CLS token (512-d for B/32, 768-d for L/14), not
normalised; CMMD normalises it itself.

Weights are read without running code: a TorchScript archive's tensors are taken from
its ``data.pkl`` by a restricted unpickler (:func:`read_torchscript_tensors`); a plain
state dict (safetensors or ``torch.save``) is read with ``weights_only``.

Preprocessing, two references:

* ``clip-vit-b32``, ``clip-vit-l14``: OpenAI's ``preprocess`` -- as clean-fid's CLIP-FID
  (``img_preprocess_clip``) and dgm-eval use it: the uint8 RGB image resized with PIL's
  bicubic filter so that its short side is 224 (torchvision ``Resize(224)``), then a
  centre crop of 224x224 (``CenterCrop``: offsets ``round((h - 224) / 2)``), ``/ 255`` and
  the CLIP mean and std.
* ``clip-vit-l14-336``: CMMD's (Jayasumana et al. 2024, google-research ``cmmd/io_util.py``
  and ``embedding.py``): a centre square crop (offsets ``(h - l) // 2``), PIL bicubic to
  336x336 (uint8), ``/ 255``, the CLIP mean and std (its second, JAX bicubic resize is
  to the same size). For square images both give the same input.

clean-fid's ``clip.load`` keeps OpenAI's float16 weights *and activations* on a GPU; this module
runs float32 activations everywhere.
"""
from __future__ import annotations

import io
import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from ganbench.errors import GanbenchError
from ganbench.metrics.base import FeatureExtractor, register_extractor
from ganbench.metrics.dinov2 import normalize, resize_pil
from ganbench.metrics.inception import check_request, check_state_dict
from ganbench.weights import WeightsFile, build_from_weights, load_state_dict

FEATURES = ("pool",)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
_BASE_URL = "https://openaipublic.azureedge.net/clip/models"


@dataclass(frozen=True)
class ClipArch:
    """One OpenAI CLIP ViT image tower."""

    name: str  # registry name
    filename: str  # OpenAI's file
    sha256: str  # of OpenAI's file (it is in the URL)
    width: int  # transformer width
    layers: int
    patch: int
    resolution: int  # input size
    embed_dim: int  # projected feature size
    text_width: int  # width of the text tower (rows of text_projection)
    crop: str  # "openai" (resize short side, then centre crop) or "cmmd" (square crop, then resize)

    @property
    def weights(self) -> WeightsFile:
        return WeightsFile(self.name, self.filename, f"{_BASE_URL}/{self.sha256}/{self.filename}", self.sha256,
                           f"OpenAI CLIP {self.filename[:-3]} (Radford et al. 2021), openai/CLIP", "MIT")


ARCHS = {a.name: a for a in [
    ClipArch("clip-vit-b32", "ViT-B-32.pt", "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af",
             768, 12, 32, 224, 512, 512, "openai"),
    ClipArch("clip-vit-l14", "ViT-L-14.pt", "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836",
             1024, 24, 14, 224, 768, 768, "openai"),
    ClipArch("clip-vit-l14-336", "ViT-L-14-336px.pt",
             "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02",
             1024, 24, 14, 336, 768, 768, "cmmd"),
]}


def official_visual_shapes(arch: ClipArch) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the image tower's tensors (and ``text_projection``) in OpenAI's file."""
    w, grid = arch.width, arch.resolution // arch.patch
    shapes: dict[str, tuple[int, ...]] = {
        "visual.class_embedding": (w,), "visual.positional_embedding": (grid * grid + 1, w),
        "visual.proj": (w, arch.embed_dim), "visual.conv1.weight": (w, 3, arch.patch, arch.patch),
        "visual.ln_pre.weight": (w,), "visual.ln_pre.bias": (w,),
        "visual.ln_post.weight": (w,), "visual.ln_post.bias": (w,),
        "text_projection": (arch.text_width, arch.embed_dim),
    }
    block = {"attn.in_proj_weight": (3 * w, w), "attn.in_proj_bias": (3 * w,), "attn.out_proj.weight": (w, w),
             "attn.out_proj.bias": (w,), "ln_1.weight": (w,), "ln_1.bias": (w,), "mlp.c_fc.weight": (4 * w, w),
             "mlp.c_fc.bias": (4 * w,), "mlp.c_proj.weight": (w, 4 * w), "mlp.c_proj.bias": (w,),
             "ln_2.weight": (w,), "ln_2.bias": (w,)}
    for i in range(arch.layers):
        shapes.update({f"visual.transformer.resblocks.{i}.{k}": s for k, s in block.items()})
    return shapes


# -- reading OpenAI's TorchScript archives without running them -------------------------------
_STORAGE_DTYPES = {"HalfStorage": torch.float16, "FloatStorage": torch.float32, "DoubleStorage": torch.float64,
                   "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
                   "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
                   "BoolStorage": torch.bool}


class _ScriptObject:
    """Stands in for a pickled TorchScript module: keeps its attributes, runs nothing."""

    def __setstate__(self, state):
        self.attributes = state if isinstance(state, dict) else {}


def _rebuild_tensor(storage, offset, size, stride, *args):
    return torch.as_strided(storage, tuple(size), tuple(stride), offset).clone()


def _restore_type_tag(value, type_name):
    return value


# TorchScript's typed containers (torch.jit._pickle): plain lists and values here
_TORCHSCRIPT_CONTAINERS = {"build_intlist": list, "build_doublelist": list, "build_boollist": list,
                           "build_tensorlist": list, "build_stringlist": list, "restore_type_tag": _restore_type_tag}


class _TensorUnpickler(pickle.Unpickler):
    """Unpickles a TorchScript ``data.pkl``: tensors, plain containers and module stand-ins only."""

    def __init__(self, data: bytes, archive: zipfile.ZipFile, root: str):
        super().__init__(io.BytesIO(data))
        self.archive, self.root = archive, root

    def find_class(self, module: str, name: str):
        if module == "__torch__" or module.startswith("__torch__."):
            return _ScriptObject
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        if (module, name) in {("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor")}:
            return _rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            return dict
        if module == "torch.jit._pickle" and name in _TORCHSCRIPT_CONTAINERS:
            return _TORCHSCRIPT_CONTAINERS[name]
        raise GanbenchError(f"TorchScript archive refers to {module}.{name}: not a plain weights file")

    def persistent_load(self, pid):
        kind, dtype, key, _location, numel = pid
        if kind != "storage" or not isinstance(dtype, torch.dtype):
            raise GanbenchError(f"TorchScript archive: unexpected persistent id {pid!r}")
        raw = bytearray(self.archive.read(f"{self.root}/data/{key}"))
        return torch.frombuffer(raw, dtype=dtype, count=numel) if numel else torch.empty(0, dtype=dtype)


def read_torchscript_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Every tensor attribute of a TorchScript archive, by dotted name (the state dict's
    names for parameters and buffers), read without compiling or running its code."""
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise GanbenchError(f"{str(path)!r} is not a TorchScript archive (no top-level data.pkl)")
        root = pickles[0].split("/")[0]
        top = _TensorUnpickler(archive.read(pickles[0]), archive, root).load()
    tensors: dict[str, torch.Tensor] = {}
    _collect(top, "", tensors)
    return tensors


def _collect(obj, prefix: str, out: dict[str, torch.Tensor]) -> None:
    if isinstance(obj, _ScriptObject):
        for name, value in getattr(obj, "attributes", {}).items():
            _collect(value, f"{prefix}{name}.", out)
    elif isinstance(obj, torch.Tensor):
        out[prefix[:-1]] = obj


def read_clip_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of an OpenAI CLIP file: the TorchScript archive OpenAI ships, or a state
    dict saved from it (safetensors or ``torch.save``)."""
    path = Path(path)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            scripted = any(n.endswith("/constants.pkl") for n in archive.namelist())
        if scripted:
            return read_torchscript_tensors(path)
    return load_state_dict(path)


# -- preprocessing ----------------------------------------------------------------------------
def crop_resize(images: torch.Tensor, size: int, crop: str) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> uint8 (N, 3, size, size) as OpenAI's or CMMD's preprocessing
    (see the module docstring)."""
    h, w = images.shape[-2:]
    if crop == "cmmd":
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        return resize_pil(images[..., top:top + side, left:left + side], (size, size), Image.BICUBIC)
    if crop != "openai":
        raise GanbenchError(f"unknown CLIP crop {crop!r}; expected 'openai' or 'cmmd'")
    short, long = (h, w) if h <= w else (w, h)
    new_long = int(size * long / short)  # torchvision's Resize(size) for one int
    resized = resize_pil(images, (size, new_long) if h <= w else (new_long, size), Image.BICUBIC)
    top, left = int(round((resized.shape[-2] - size) / 2.0)), int(round((resized.shape[-1] - size) / 2.0))
    return resized[..., top:top + size, left:left + size]


def preprocess(images: torch.Tensor, arch: ClipArch) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> float32 (N, 3, R, R), the CLIP input of ``arch``."""
    return normalize(crop_resize(images, arch.resolution, arch.crop), CLIP_MEAN, CLIP_STD)


# -- the extractor ----------------------------------------------------------------------------
class ClipImageFeatures(FeatureExtractor):
    """CLIP ViT image tower: uint8 images of any size -> ``"pool"`` (N, embed_dim)."""

    provides = FEATURES
    resize = "pil-bicubic"

    def __init__(self, arch: ClipArch, visual: torch.nn.Module):
        super().__init__()
        self.arch = arch
        self.name = arch.name
        self.input_size = arch.resolution
        self.resize = f"pil-bicubic-{arch.crop}-crop"
        self.visual = visual
        self.requires_grad_(False)

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor], arch: ClipArch) -> "ClipImageFeatures":
        """Build from OpenAI's tensors (whole model or image tower + ``text_projection``).

        Raises:
            GanbenchError: the image tower's keys or shapes are not ``arch``'s.
        """
        from torch_fidelity.feature_extractor_clip import build_model

        expected = official_visual_shapes(arch)
        visual = {k: v for k, v in state.items() if k.startswith("visual.") or k == "text_projection"}
        check_state_dict(visual, expected, f"OpenAI CLIP {arch.filename}")
        model = build_model({k: v.float() for k, v in visual.items()}, torch.float32)
        return cls(arch, model.visual).eval()

    def forward(self, images: torch.Tensor, features: tuple[str, ...] | None = None) -> dict[str, torch.Tensor]:
        """Features of uint8 images (N, 3, H, W), any H and W: {"pool": float32 (N, embed_dim)}."""
        check_request(self, images, features)
        device = self.visual.proj.device
        with torch.inference_mode():
            pool = self.visual(preprocess(images, self.arch).to(device))
        return {"pool": pool.float().clone()}  # ordinary tensors, not inference ones


def _factory(arch: ClipArch):
    def build(weights: str | None = None, device: str | torch.device = "cpu") -> ClipImageFeatures:
        """CLIP's image tower with OpenAI's weights (or ``weights``), ready for eval.

        Raises:
            MissingFileError: the weights file cannot be found or downloaded.
        """
        return build_from_weights(arch.weights, weights,
                                  lambda path: ClipImageFeatures.from_state_dict(read_clip_weights(path), arch), device)

    return build


for _arch in ARCHS.values():
    register_extractor(
        _arch.name, provides=FEATURES, weights=_arch.weights,
        description=f"OpenAI CLIP {_arch.filename[:-3]} image embedding ({_arch.embed_dim}-d, {_arch.crop} "
                    f"preprocessing); weights {_arch.filename} (sha256 {_arch.sha256}) from {_arch.weights.url}",
    )(_factory(_arch))
del _arch
