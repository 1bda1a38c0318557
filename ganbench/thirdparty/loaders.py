"""Loading a third-party generator safely: TorchScript, ONNX, a factory plus weights, or
(only when the user trusts it) a pickled module.

Nothing is unpickled unless ``trust_pickle`` is set: weights are read with safetensors or
``torch.load(weights_only=True)``, TorchScript with ``torch.jit.load``, ONNX with
onnxruntime. A file that only full unpickling could read is refused with a message naming
the Python objects it holds.
"""
from __future__ import annotations

import os
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganbench.errors import GanbenchError, InputError
from ganbench.generative import GenerativeModel, LatentSpec, ModuleGenerator
from ganbench.registry import import_target
from ganbench.thirdparty.registry_file import Registration

ONNX_HINT = "pip install 'ganbench[onnx]'"


def foreign_error(exc: BaseException) -> str:
    """``Type: first line`` of an exception raised by foreign code (TorchScript puts the
    real error last)."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    if not lines:
        return f"{type(exc).__name__}: no message"
    if "TorchScript interpreter" in lines[0] and len(lines) > 1:
        return lines[-1]  # e.g. "RuntimeError: mat1 and mat2 shapes cannot be multiplied ..."
    return f"{type(exc).__name__}: {lines[0]}"


def _pickle_refusal(path: Path, what: str) -> GanbenchError:
    """The error for a file that only full unpickling (arbitrary code) could read."""
    objects = ""
    if zipfile.is_zipfile(path):
        try:  # lists the Python objects without unpickling them
            found = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
            if found:
                objects = f" (it holds {', '.join(sorted(found)[:5])}{', ...' if len(found) > 5 else ''})"
        except Exception:  # noqa: BLE001 -- only for the message
            pass
    return GanbenchError(
        f"{path} is {what}: loading it needs full unpickling, which can run arbitrary code{objects}. "
        f"Refused; if you trust its source pass --trust-pickle (trust_pickle=True), or re-save "
        f"it as a safetensors/state-dict file or TorchScript")


def _looks_like_pickle(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(2)
    return zipfile.is_zipfile(path) or (len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5)


def _torch_load_safely(path: Path, trust_pickle: bool, what: str) -> Any:
    """``torch.load(weights_only=True)``; full unpickling only with ``trust_pickle``."""
    import pickle

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Detected pickle protocol 4 ..." noise
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only load failed" not in str(exc).lower() or not _looks_like_pickle(path):
            raise GanbenchError(f"cannot read {path}: not a PyTorch file ({foreign_error(exc)})") from None
        if not trust_pickle:
            raise _pickle_refusal(path, what) from None
    except Exception as exc:  # noqa: BLE001 -- corrupt zip, truncated file, ...
        raise GanbenchError(f"cannot read {path}: {foreign_error(exc)}") from None
    try:
        return torch.load(str(path), map_location="cpu", weights_only=False)  # trusted by the user
    except Exception as exc:  # noqa: BLE001
        raise GanbenchError(f"cannot unpickle {path}: {foreign_error(exc)}") from None


def is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    return any("/code/" in n for n in names) and any(n.endswith("constants.pkl") for n in names)


def _load_torchscript_file(path: Path, device: str, trust_pickle: bool) -> tuple[nn.Module, str]:
    """(module, format) for ``--torchscript PATH``: TorchScript, or a trusted pickled module."""
    if is_torchscript(path):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation notice
                return torch.jit.load(str(path), map_location=device), "torchscript"
        except Exception as exc:  # noqa: BLE001
            raise GanbenchError(f"cannot load TorchScript file {path}: {foreign_error(exc)}") from None
    obj = _torch_load_safely(path, trust_pickle, "a pickled Python object, not TorchScript")
    if isinstance(obj, dict):
        raise GanbenchError(f"{path} is a state dict, not TorchScript: register it with "
                            f"--factory MODULE:FUNCTION --weights {path}")
    if not isinstance(obj, nn.Module):
        raise GanbenchError(f"{path} holds a {type(obj).__name__}, not a TorchScript module or nn.Module")
    return obj.to(device), "pickle"


def _read_weights(path: Path, trust_pickle: bool, key: str | None) -> dict[str, torch.Tensor]:
    """The state dict in a weights file: safetensors, or a ``.pth`` read with weights_only."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            obj: Any = load_file(str(path))
        except Exception as exc:  # noqa: BLE001
            raise GanbenchError(f"cannot read safetensors file {path}: {foreign_error(exc)}") from None
    else:
        obj = _torch_load_safely(path, trust_pickle, "a checkpoint holding Python objects")
    if key is not None:
        if not isinstance(obj, dict) or key not in obj:
            keys = sorted(map(str, obj)) if isinstance(obj, dict) else []
            raise GanbenchError(f"{path} has no entry {key!r}; its top-level keys: {', '.join(keys) or '(none)'}")
        obj = obj[key]
    elif isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        keys = sorted(map(str, obj))[:8] if isinstance(obj, dict) else []
        hint = f"; pick the generator's entry with --weights-key (keys: {', '.join(keys)})" if keys else ""
        raise GanbenchError(f"{path} is not a state dict of tensors{hint}")
    return obj


def _build_from_factory(factory: str, weights: Path, weights_key: str | None, trust_pickle: bool,
                        device: str) -> nn.Module:
    """The module ``factory`` builds, with the state dict from ``weights`` loaded into it."""
    module = _call_factory(factory)
    state = _read_weights(weights, trust_pickle, weights_key)
    _load_state(module, state, f"weights {weights} do not fit the module built by {factory!r}")
    return module.to(device)


def _call_factory(factory: str) -> nn.Module:
    if ":" not in factory:
        raise GanbenchError(f"bad factory {factory!r}: expected 'package.module:function'")
    build = import_target(factory)
    if not callable(build):
        raise GanbenchError(f"factory {factory!r} is a {type(build).__name__}, not a function")
    try:
        module = build()
    except Exception as exc:  # noqa: BLE001 -- foreign code
        raise GanbenchError(f"factory {factory!r} failed: {foreign_error(exc)}") from None
    if not isinstance(module, nn.Module):
        raise GanbenchError(f"factory {factory!r} returned a {type(module).__name__}, not an nn.Module")
    return module


def _load_state(module: nn.Module, state: dict[str, torch.Tensor], misfit: str) -> None:
    """``module.load_state_dict(state)``; keys or shapes that do not fit raise ``misfit: <which>``."""
    expected = set(module.state_dict())
    if not set(state) & expected and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}  # saved from DataParallel/DDP
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        parts = [f"{label} {', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''}"
                 for label, keys in (("missing keys", missing), ("unexpected keys", unexpected)) if keys]
        raise GanbenchError(f"{misfit}: {'; '.join(parts)}")
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if "size mismatch" in ln] or [foreign_error(exc)]
        raise GanbenchError(f"{misfit}: {lines[0]}") from None


class OnnxGenerator(GenerativeModel):
    """An ONNX generator run with onnxruntime: inputs ``(z)`` or ``(z, labels)``, first output = images."""

    def __init__(self, path: str | os.PathLike, latent: LatentSpec, device: str = "cpu"):
        super().__init__()
        try:
            import onnxruntime as ort
        except ImportError:
            raise GanbenchError(f"ONNX generators need onnxruntime: {ONNX_HINT}") from None
        self.latent = latent
        self.device = torch.device(device)
        providers = ["CPUExecutionProvider"]
        if self.device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": self.device.index or 0}))
        try:
            self.session = ort.InferenceSession(str(path), providers=providers)
        except Exception as exc:  # noqa: BLE001
            raise GanbenchError(f"cannot load ONNX file {path}: {foreign_error(exc)}") from None
        self.inputs = self.session.get_inputs()
        wanted = 2 if latent.num_classes else 1
        if len(self.inputs) != wanted:
            names = ", ".join(i.name for i in self.inputs)
            raise GanbenchError(
                f"ONNX generator {path} takes {len(self.inputs)} input(s) ({names}) but the declared "
                f"interface needs {wanted}: z{' and labels (--num-classes)' if wanted == 2 else ''}")

    _DTYPES = {"tensor(float)": "float32", "tensor(double)": "float64", "tensor(float16)": "float16",
               "tensor(int64)": "int64", "tensor(int32)": "int32"}

    def _feed(self, index: int, value: torch.Tensor) -> Any:
        dtype = self._DTYPES.get(self.inputs[index].type)
        if dtype is None:
            raise InputError(f"ONNX input {self.inputs[index].name!r} has unsupported type {self.inputs[index].type}")
        return value.detach().cpu().numpy().astype(dtype)

    def generate(self, z, labels=None):
        feeds = {self.inputs[0].name: self._feed(0, z)}
        if self.latent.num_classes:
            if labels is None:
                raise InputError("this generator is class-conditional and needs labels")
            feeds[self.inputs[1].name] = self._feed(1, labels)
        out = self.session.run(None, feeds)[0]
        return torch.from_numpy(out).to(self.device)


def load_registration(reg: Registration, device: str) -> GenerativeModel:
    """The generator a registration names, loaded from its file (no sha256 check here)."""
    path = Path(reg.path)
    if reg.format == "onnx":
        return OnnxGenerator(path, reg.latent, device)
    if reg.format == "factory":
        assert reg.factory is not None
        module = _build_from_factory(reg.factory, path, reg.weights_key, reg.trust_pickle, device)
    else:
        module, fmt = _load_torchscript_file(path, device, reg.trust_pickle)
        if fmt != reg.format:
            raise GanbenchError(f"{path} is no longer a {reg.format} file; register it again")
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return ModuleGenerator(module, reg.latent)
