"""Third-party generators: register a checkpoint once, evaluate it by name.

    $ ganbench register stylegan-ffhq --torchscript G.pt --z-dim 512 --image-size 256 --dataset celeba
    $ ganbench eval -m fid -i stylegan-ffhq -r celeba:train

A registration is data in the user registry file ``$GANBENCH_HOME/registered-generators.json``
(default home: the platformdirs user data dir): the checkpoint's absolute path and sha256,
its format, the latent interface (:class:`~ganbench.generative.LatentSpec`) and the dataset
it belongs to. Importing this module (which :data:`ganbench.registries.checkpoints` does
the first time it is queried) puts every registration into that registry as a factory
``(device="cpu") -> (GenerativeModel, metadata)``; the metadata carries ``model``,
``checkpoint_sha256``, ``third_party=True`` and ``dataset`` into every result row.

Formats:

===============  ===================================================================
``torchscript``  ``torch.jit.save`` archive, read with ``torch.jit.load`` (no Python pickle)
``onnx``         run with onnxruntime (``pip install 'ganbench[onnx]'``)
``factory``      ``package.module:function`` building an ``nn.Module`` plus a weights file:
                 safetensors, or a ``.pth`` state dict read with ``weights_only=True``
``pickle``       a whole pickled ``nn.Module``; only with ``trust_pickle=True``
===============  ===================================================================

Safety: nothing is unpickled unless the user says ``--trust-pickle``; a file that would
need it is refused with a message naming the Python objects it contains. The sha256 is
checked again every time the generator is loaded, so a replaced file is never evaluated
under an old name. A registration is made only after the generator ran on a small batch
of latents and gave images of the declared shape and range.
"""
from __future__ import annotations

import functools
import json
import os
import re
import tempfile
import warnings
import zipfile
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import nn

import ganbench
from ganbench.errors import GanbenchError, InputError, MissingFileError, UnknownNameError
from ganbench.generative import GenerativeModel, LatentSpec, ModuleGenerator, check_generated, sample_latents
from ganbench.registries import checkpoints
from ganbench.weights import sha256_file

REGISTRY_FILE = "registered-generators.json"
FILE_VERSION = 1  # bump when the file layout changes
FORMATS = ("torchscript", "onnx", "factory", "pickle")
OUTPUT_RANGES = {"-1,1": (-1.0, 1.0), "0,1": (0.0, 1.0), "0,255": (0.0, 255.0)}
PROBE_BATCH = 4  # latents run through a generator before it is registered
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
ORIGIN = "user"  # registry origin of entries that come from the user registry file
ONNX_HINT = "pip install 'ganbench[onnx]'"


# ---------------------------------------------------------------------------------------
# The registry file
# ---------------------------------------------------------------------------------------
def home_dir() -> Path:
    """``$GANBENCH_HOME``, else the user data dir (``~/.local/share/ganbench`` on Linux)."""
    env = os.environ.get("GANBENCH_HOME")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("ganbench"))


def registry_path() -> Path:
    """The user registry file of third-party generators."""
    return home_dir() / REGISTRY_FILE


@dataclass(frozen=True)
class Registration:
    """One registered generator, as stored in the registry file."""

    name: str
    format: str  # one of FORMATS
    path: str  # absolute path of the checkpoint file (the weights file for "factory")
    sha256: str  # of that file at registration time
    latent: LatentSpec  # how to drive the generator
    dataset: str | None = None  # the dataset it was trained on ("mnist", "folder:PATH"...)
    factory: str | None = None  # "package.module:function" (format "factory")
    weights_key: str | None = None  # entry of the weights file holding the state dict
    trust_pickle: bool = False  # the user allowed full unpickling of this file
    registered_at: str | None = None  # ISO time, UTC
    ganbench_version: str | None = None

    def to_record(self) -> dict[str, Any]:
        return {"format": self.format, "path": self.path, "sha256": self.sha256,
                "latent": self.latent.to_dict(), "dataset": self.dataset, "factory": self.factory,
                "weights_key": self.weights_key, "trust_pickle": self.trust_pickle,
                "registered_at": self.registered_at, "ganbench_version": self.ganbench_version}

    def row(self) -> dict[str, Any]:
        """A flat description for listings (``ganbench models``)."""
        return {"name": self.name, "format": self.format, "dataset": self.dataset,
                "z_dim": self.latent.z_dim, "z_dist": self.latent.z_dist,
                "num_classes": self.latent.num_classes, "output_range": list(self.latent.output_range),
                "channels": self.latent.channels, "image_size": self.latent.image_size,
                "path": self.path, "checkpoint_sha256": self.sha256, "factory": self.factory,
                "weights_key": self.weights_key, "trust_pickle": self.trust_pickle,
                "registered_at": self.registered_at, "third_party": True}

    def metadata(self) -> dict[str, Any]:
        """Provenance carried into result rows."""
        return {"model": self.name, "checkpoint_sha256": self.sha256, "third_party": True,
                "dataset": self.dataset, "format": self.format, "path": self.path}


def _invalid(path: Path, problem: str) -> GanbenchError:
    return GanbenchError(f"invalid registry file {path}: {problem}; fix or delete it "
                         f"(it is never replaced automatically)")


def _latent_from_record(d: Any) -> LatentSpec:
    """A LatentSpec from stored/user values, checking every field (ValueError on problems)."""
    if not isinstance(d, dict):
        raise ValueError("latent must be an object")
    known = {"z_dim", "z_dist", "num_classes", "output_range", "channels", "image_size"}
    if set(d) - known:
        raise ValueError(f"unknown latent field(s) {sorted(set(d) - known)}")
    if "z_dim" not in d:
        raise ValueError("latent.z_dim is missing")
    return make_latent(z_dim=d["z_dim"], z_dist=d.get("z_dist", "normal"), num_classes=d.get("num_classes", 0),
                       output_range=d.get("output_range", (-1.0, 1.0)), channels=d.get("channels", 3),
                       image_size=d.get("image_size"), error=ValueError)


def make_latent(*, z_dim: Any, z_dist: Any = "normal", num_classes: Any = 0,
                output_range: Any = (-1.0, 1.0), channels: Any = 3, image_size: Any = None,
                error: type[Exception] = InputError) -> LatentSpec:
    """A validated :class:`LatentSpec`; ``output_range`` may be ``"-1,1"``, ``"0,1"``, ``"0,255"``."""

    def integer(value: Any, what: str, minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise error(f"{what} must be an integer >= {minimum}, got {value!r}")
        return value

    z_dim = integer(z_dim, "z_dim", 1)
    num_classes = integer(num_classes, "num_classes", 0)
    if z_dist not in ("normal", "uniform"):
        raise error(f"z_dist must be 'normal' or 'uniform', got {z_dist!r}")
    if isinstance(channels, bool) or not isinstance(channels, int) or channels not in (1, 3):
        raise error(f"channels must be 1 or 3, got {channels!r}")
    if image_size is not None:
        image_size = integer(image_size, "image_size", 1)
    if isinstance(output_range, str):
        if output_range not in OUTPUT_RANGES:
            raise error(f"output range must be one of {', '.join(OUTPUT_RANGES)}, got {output_range!r}")
        output_range = OUTPUT_RANGES[output_range]
    try:
        lo, hi = (float(v) for v in output_range)
        if isinstance(output_range, (str, bytes)) or not lo < hi:
            raise ValueError
    except (TypeError, ValueError):
        raise error(f"output range must be two numbers low < high, got {output_range!r}") from None
    return LatentSpec(z_dim=z_dim, z_dist=z_dist, num_classes=num_classes, output_range=(lo, hi),
                      channels=channels, image_size=image_size)


def _registration_from_record(name: Any, rec: Any, path: Path) -> Registration:
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise _invalid(path, f"bad generator name {name!r}")
    if not isinstance(rec, dict):
        raise _invalid(path, f"generator {name!r} is not an object")
    where = f"generator {name!r}"
    for key, kind in (("format", str), ("path", str), ("sha256", str), ("latent", dict)):
        if not isinstance(rec.get(key), kind):
            raise _invalid(path, f"{where}: {key!r} is missing or not a{'n object' if kind is dict else ' string'}")
    if rec["format"] not in FORMATS:
        raise _invalid(path, f"{where}: format {rec['format']!r} is not one of {', '.join(FORMATS)}")
    if not os.path.isabs(rec["path"]):
        raise _invalid(path, f"{where}: path {rec['path']!r} is not absolute")
    if not re.fullmatch(r"[0-9a-f]{64}", rec["sha256"]):
        raise _invalid(path, f"{where}: sha256 {rec['sha256']!r} is not 64 lowercase hex digits")
    for key in ("dataset", "factory", "weights_key", "registered_at", "ganbench_version"):
        if rec.get(key) is not None and not isinstance(rec[key], str):
            raise _invalid(path, f"{where}: {key!r} must be a string or null")
    trust = rec.get("trust_pickle", False)
    if not isinstance(trust, bool):
        raise _invalid(path, f"{where}: 'trust_pickle' must be true or false")
    if (rec["format"] == "factory") != (rec.get("factory") is not None):
        raise _invalid(path, f"{where}: 'factory' must be given exactly when format is 'factory'")
    if rec["format"] == "pickle" and not trust:
        raise _invalid(path, f"{where}: format 'pickle' needs 'trust_pickle': true")
    unknown = set(rec) - set(Registration.__dataclass_fields__) - {"latent"}
    if unknown:
        raise _invalid(path, f"{where}: unknown field(s) {sorted(unknown)}")
    try:
        latent = _latent_from_record(rec["latent"])
    except (ValueError, GanbenchError) as exc:
        raise _invalid(path, f"{where}: {exc}") from None
    return Registration(name=name, format=rec["format"], path=rec["path"], sha256=rec["sha256"],
                        latent=latent, dataset=rec.get("dataset"), factory=rec.get("factory"),
                        weights_key=rec.get("weights_key"), trust_pickle=trust,
                        registered_at=rec.get("registered_at"), ganbench_version=rec.get("ganbench_version"))


def read_registry(path: str | os.PathLike | None = None) -> dict[str, Registration]:
    """Every registration in the registry file (empty when the file does not exist).

    Raises:
        GanbenchError: one line naming the file and the problem when it is unreadable,
            not JSON or not a valid registry. The file is left as it is.
    """
    path = Path(path) if path is not None else registry_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise GanbenchError(f"cannot read registry file {path}: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _invalid(path, f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(data, dict) or not isinstance(data.get("generators"), dict):
        raise _invalid(path, 'expected an object {"format_version": 1, "generators": {...}}')
    version = data.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise _invalid(path, "'format_version' is missing or not an integer")
    if version > FILE_VERSION:
        raise GanbenchError(f"registry file {path} has format_version {version}, written by a newer "
                            f"ganbench (this one reads {FILE_VERSION}); upgrade ganbench")
    return {name: _registration_from_record(name, rec, path) for name, rec in data["generators"].items()}


def _write_registry(registrations: dict[str, Registration], path: Path) -> None:
    data = {"format_version": FILE_VERSION,
            "generators": {name: registrations[name].to_record() for name in sorted(registrations)}}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic: readers see the old or the new file, never half of one
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# ---------------------------------------------------------------------------------------
# Loading a generator, safely
# ---------------------------------------------------------------------------------------
def _first_line(exc: BaseException) -> str:
    """``Type: first line`` of an exception (TorchScript puts the real error last)."""
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
            raise GanbenchError(f"cannot read {path}: not a PyTorch file ({_first_line(exc)})") from None
        if not trust_pickle:
            raise _pickle_refusal(path, what) from None
    except Exception as exc:  # noqa: BLE001 -- corrupt zip, truncated file, ...
        raise GanbenchError(f"cannot read {path}: {_first_line(exc)}") from None
    try:
        return torch.load(str(path), map_location="cpu", weights_only=False)  # trusted by the user
    except Exception as exc:  # noqa: BLE001
        raise GanbenchError(f"cannot unpickle {path}: {_first_line(exc)}") from None


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    return any("/code/" in n for n in names) and any(n.endswith("constants.pkl") for n in names)


def _load_torchscript_file(path: Path, device: str, trust_pickle: bool) -> tuple[nn.Module, str]:
    """(module, format) for ``--torchscript PATH``: TorchScript, or a trusted pickled module."""
    if _is_torchscript(path):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation notice
                return torch.jit.load(str(path), map_location=device), "torchscript"
        except Exception as exc:  # noqa: BLE001
            raise GanbenchError(f"cannot load TorchScript file {path}: {_first_line(exc)}") from None
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
            raise GanbenchError(f"cannot read safetensors file {path}: {_first_line(exc)}") from None
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
    from ganbench.registry import _import_target

    if ":" not in factory:
        raise GanbenchError(f"bad factory {factory!r}: expected 'package.module:function'")
    build = _import_target(factory)
    if not callable(build):
        raise GanbenchError(f"factory {factory!r} is a {type(build).__name__}, not a function")
    try:
        module = build()
    except Exception as exc:  # noqa: BLE001
        raise GanbenchError(f"factory {factory!r} failed: {_first_line(exc)}") from None
    if not isinstance(module, nn.Module):
        raise GanbenchError(f"factory {factory!r} returned a {type(module).__name__}, not an nn.Module")
    state = _read_weights(weights, trust_pickle, weights_key)
    expected = set(module.state_dict())
    if not set(state) & expected and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}  # saved from DataParallel/DDP
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        parts = [f"{label} {', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''}"
                 for label, keys in (("missing keys", missing), ("unexpected keys", unexpected)) if keys]
        raise GanbenchError(f"weights {weights} do not fit the module built by {factory!r}: {'; '.join(parts)}")
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if "size mismatch" in ln] or [_first_line(exc)]
        raise GanbenchError(f"weights {weights} do not fit the module built by {factory!r}: {lines[0]}") from None
    return module.to(device)


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
            raise GanbenchError(f"cannot load ONNX file {path}: {_first_line(exc)}") from None
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


def _load_module(reg: Registration, device: str) -> GenerativeModel:
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


def _probe(model: GenerativeModel, latent: LatentSpec, what: str, device: str) -> LatentSpec:
    """Run the generator on a few latents; raise one line on anything unusable.

    Returns the latent spec with ``image_size`` filled in from the output when undeclared.
    """
    z, labels = sample_latents(latent, PROBE_BATCH, torch.Generator().manual_seed(0), device)
    try:
        with torch.inference_mode():
            out = model.generate(z, labels)
    except GanbenchError:
        raise
    except Exception as exc:  # noqa: BLE001 -- any failure of foreign code
        cond = f" and labels in 0..{latent.num_classes - 1}" if latent.num_classes else ""
        raise InputError(f"{what} failed on {PROBE_BATCH} latents of size {latent.z_dim}{cond} "
                         f"({_first_line(exc)}); does --z-dim/--num-classes match the generator?") from None
    check_generated(out, latent, PROBE_BATCH, what=what)
    if out.dtype == torch.uint8 and tuple(latent.output_range) != (0.0, 255.0):
        raise InputError(f"{what} returned uint8 images but the declared output range is "
                         f"{latent.output_range[0]:g},{latent.output_range[1]:g}; declare 0,255")
    if not out.dtype.is_floating_point and out.dtype != torch.uint8:
        raise InputError(f"{what} returned {out.dtype} images, expected float or uint8")
    h, w = out.shape[2:]
    if latent.image_size is None and h == w:
        latent = replace(latent, image_size=int(h))
    return latent


# ---------------------------------------------------------------------------------------
# The public API
# ---------------------------------------------------------------------------------------
def _check_name(name: str, registered: dict[str, Registration], overwrite: bool) -> None:
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise GanbenchError(f"bad name {name!r}: use letters, digits, '-' and '_' (at most 64, "
                            f"starting with a letter or digit)")
    from ganbench.registries import datasets, models

    if name in datasets:
        raise GanbenchError(f"{name!r} is the name of a dataset; choose another name")
    if name in models:
        raise GanbenchError(f"{name!r} is the name of a model ({models.entry(name).origin}); choose another name")
    if name in checkpoints and checkpoints.entry(name).origin != ORIGIN:
        raise GanbenchError(f"{name!r} is already a generator from {checkpoints.entry(name).origin}; "
                            f"choose another name")
    if name in registered and not overwrite:
        raise GanbenchError(f"{name!r} is already registered ({registered[name].path}); pass --force to "
                            f"replace it or `ganbench unregister {name}` first")


def register_checkpoint(
    name: str,
    *,
    torchscript: str | os.PathLike | None = None,
    onnx: str | os.PathLike | None = None,
    factory: str | None = None,
    weights: str | os.PathLike | None = None,
    weights_key: str | None = None,
    z_dim: int,
    z_dist: str = "normal",
    num_classes: int = 0,
    output_range: str | tuple[float, float] = (-1.0, 1.0),
    channels: int = 3,
    image_size: int | None = None,
    dataset: str | None = None,
    trust_pickle: bool = False,
    overwrite: bool = False,
    device: str = "cpu",
) -> dict[str, Any]:
    """Validate a third-party generator and add it to the user registry file.

    Give exactly one source: ``torchscript`` (a ``torch.jit.save`` file), ``onnx`` (needs
    onnxruntime) or ``factory`` (``"package.module:function"`` returning an ``nn.Module``)
    with ``weights`` (safetensors or a state-dict ``.pth``; ``weights_key`` picks an entry
    such as ``"g_ema"``). The generator takes ``z`` (N, z_dim) -- and int64 ``labels`` (N,)
    when ``num_classes`` > 0 -- and returns images (N, channels, H, W) in ``output_range``
    (``"-1,1"``, ``"0,1"`` or ``"0,255"``).

    It is run on 4 latents before anything is written; shape, channels, size, NaN/Inf,
    range and latent size problems raise :class:`~ganbench.errors.InputError` and register
    nothing. Returns the registration as a :func:`list_registered` row.
    """
    sources = {k: v for k, v in (("torchscript", torchscript), ("onnx", onnx), ("factory", factory)) if v}
    if len(sources) != 1:
        raise GanbenchError("give exactly one of --torchscript FILE, --onnx FILE or --factory MODULE:FUNCTION "
                            f"(got {', '.join(sources) or 'none'})")
    if factory and not weights:
        raise GanbenchError("--factory needs --weights FILE (safetensors or a state-dict .pth)")
    if weights and not factory:
        raise GanbenchError("--weights goes with --factory MODULE:FUNCTION")
    if weights_key and not factory:
        raise GanbenchError("--weights-key goes with --factory and --weights")
    latent = make_latent(z_dim=z_dim, z_dist=z_dist, num_classes=num_classes, output_range=output_range,
                         channels=channels, image_size=image_size)
    registered = read_registry()  # a corrupt file stops here, before anything is written
    _check_name(name, registered, overwrite)
    if dataset is not None:
        from ganbench.registries import datasets

        base = dataset.partition(":")[0]
        if base not in datasets:
            raise UnknownNameError("dataset", base, datasets.names())

    fmt = "factory" if factory else ("onnx" if onnx else "torchscript")
    raw = weights if factory else (onnx or torchscript)
    path = Path(os.fspath(raw)).expanduser().resolve()
    if not path.is_file():
        raise MissingFileError(f"{fmt} file {str(path)!r} does not exist")
    sha = sha256_file(path)
    what = f"generator {name!r}"
    if fmt == "torchscript" and not _is_torchscript(path):
        fmt = "pickle"  # loaded only if it is a trusted pickled module; else a clear refusal
    reg = Registration(name=name, format=fmt, path=str(path), sha256=sha, latent=latent, dataset=dataset,
                       factory=factory, weights_key=weights_key,
                       trust_pickle=bool(trust_pickle) and fmt in ("factory", "pickle"),  # else never used
                       registered_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                       ganbench_version=ganbench.__version__)
    model = _load_module(reg, device)
    reg = replace(reg, latent=_probe(model, latent, what, device))

    registered = read_registry()
    if name in registered and not overwrite:
        raise GanbenchError(f"{name!r} was registered meanwhile; pass --force to replace it")
    registered[name] = reg
    _write_registry(registered, registry_path())
    _add_to_registry(reg)
    return reg.row()


def unregister_checkpoint(name: str) -> None:
    """Remove a registration from the user registry file (the checkpoint file is kept)."""
    registered = read_registry()
    if name not in registered:
        raise UnknownNameError("registered generator", name, registered)
    del registered[name]
    _write_registry(registered, registry_path())
    if name in checkpoints and checkpoints.entry(name).origin == ORIGIN:
        checkpoints.unregister(name)


def list_registered() -> list[dict[str, Any]]:
    """The registered third-party generators as rows (name, format, dataset, z_dim,
    z_dist, num_classes, output_range, channels, image_size, path, checkpoint_sha256,
    factory, trust_pickle, registered_at, third_party=True), sorted by name."""
    return [reg.row() for _, reg in sorted(read_registry().items())]


def describe(row: dict[str, Any]) -> str:
    """What a registered generator makes and takes, e.g. ``3x32x32, z 128 normal, 10 classes``
    (``row`` as from :func:`list_registered`)."""
    size = row["image_size"]
    shape = f"{row['channels']}x{size}x{size}" if size else f"{row['channels']} channels"
    classes = f", {row['num_classes']} classes" if row["num_classes"] else ""
    return f"{shape}, z {row['z_dim']} {row['z_dist']}{classes}"


def load_registered(name: str, device: str = "cpu") -> tuple[GenerativeModel, dict[str, Any]]:
    """(GenerativeModel, provenance metadata) of a registered generator.

    The checkpoint's sha256 is checked first: a file changed since registration is refused.
    """
    registered = read_registry()
    if name not in registered:
        raise UnknownNameError("registered generator", name, registered)
    reg = registered[name]
    path = Path(reg.path)
    if not path.is_file():
        raise MissingFileError(f"the checkpoint of {name!r} is gone: {reg.path} does not exist; "
                               f"restore it or `ganbench unregister {name}`")
    digest = sha256_file(path)
    if digest != reg.sha256:
        raise GanbenchError(f"the checkpoint of {name!r} changed since it was registered: {reg.path} has "
                            f"sha256 {digest[:16]}..., registered {reg.sha256[:16]}...; register it again "
                            f"(--force) if the change is intended")
    model = _load_module(reg, device)
    return model, reg.metadata()


# ---------------------------------------------------------------------------------------
# The checkpoints registry
# ---------------------------------------------------------------------------------------
def _add_to_registry(reg: Registration) -> None:
    existing = checkpoints._entries.get(reg.name)  # noqa: SLF001 -- no query: we may be populating it
    if existing is not None and existing.origin != ORIGIN:
        warnings.warn(f"registered generator {reg.name!r} in {registry_path()} is shadowed by the one "
                      f"from {existing.origin}", stacklevel=3)
        return
    metadata = {k: v for k, v in reg.row().items() if k != "name"}
    checkpoints.register(reg.name, functools.partial(load_registered, reg.name), origin=ORIGIN,
                         overwrite=True, **metadata)


def refresh() -> None:
    """Make :data:`ganbench.registries.checkpoints` match the registry file (e.g. after
    ``GANBENCH_HOME`` changed or another process registered a generator)."""
    registered = read_registry()
    for name, entry in list(checkpoints._entries.items()):  # noqa: SLF001
        if entry.origin == ORIGIN and name not in registered:
            del checkpoints._entries[name]  # noqa: SLF001
    for reg in registered.values():
        _add_to_registry(reg)


refresh()  # populates the checkpoints registry on its first query (see ganbench.registries)
