"""The user registry file of third-party generators: its schema, reading and atomic writing.

``$GANBENCH_HOME/registered-generators.json`` (default home: the platformdirs user data
dir) holds ``{"format_version": 1, "generators": {NAME: record}}``; a record is a
:class:`Registration` (:meth:`Registration.to_record`). Reading checks every field and
reports a bad file in one line naming it; the file is never replaced automatically.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganbench.atomic import atomic_write_text
from ganbench.errors import GanbenchError, InputError
from ganbench.generative import LatentSpec

REGISTRY_FILE = "registered-generators.json"
FILE_VERSION = 1  # bump when the file layout changes
FORMATS = ("torchscript", "onnx", "factory", "pickle")
OUTPUT_RANGES = {"-1,1": (-1.0, 1.0), "0,1": (0.0, 1.0), "0,255": (0.0, 255.0)}
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
ORIGIN = "user"  # registry origin of the entries that come from this file


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


def write_registry(registrations: dict[str, Registration], path: Path) -> None:
    data = {"format_version": FILE_VERSION,
            "generators": {name: registrations[name].to_record() for name in sorted(registrations)}}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")
