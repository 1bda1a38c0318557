"""The registries of ganbench: one generic :class:`Registry` and its instances.

=====================  ==================================  ============================
registry               built-in entries from               entry-point group (plug-ins)
=====================  ==================================  ============================
models                 ganbench.models                     ganbench.models
metrics                ganbench.metrics                    ganbench.metrics
feature_extractors     ganbench.metrics.extractors         ganbench.feature_extractors
datasets               ganbench.data.builtin,              ganbench.datasets
                       ganbench.translation
registered_generators  the user's registry file            --
                       (``ganbench register``, read by
                       ganbench.thirdparty)
=====================  ==================================  ============================

Entries are registered with a decorator (or a plain call), may be lazy ``"module:attr"``
strings, and third-party packages add entries through entry points: a distribution that
declares ``[project.entry-points."ganbench.models"] mygan = "mypkg.gan:build"`` shows up
in ``ganbench.registry.models`` exactly like a built-in model.

Built-in entries are registered on import of their modules (the middle column), which
the registry imports lazily the first time it is queried; the registered
generators are read from their file at that moment too (``on_first_use``).

A plug-in whose module fails to import is skipped by :meth:`Registry.entries` (the
listings) with a :class:`PluginWarning`; using it by name raises :class:`PluginError`
with the cause.

These instances are the only module-level state besides caches.
"""
from __future__ import annotations

import importlib
import sys
import warnings
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from typing import Any, Callable, Generic, Iterator, TypeVar

from ganbench.errors import GanbenchError, UnknownNameError

T = TypeVar("T")


class PluginError(GanbenchError):
    """A plug-in (entry point) whose module cannot be imported."""


class PluginWarning(UserWarning):
    """A broken plug-in left out of a listing."""


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, GanbenchError):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass
class Entry(Generic[T]):
    """One registered object with its metadata and where it came from."""

    name: str
    target: T | str  # the object, or a lazy "module:attr" reference
    _metadata: dict[str, Any] = field(default_factory=dict)
    origin: str = "builtin"  # "builtin", "entry-point:<distribution>", "user"
    error: PluginError | None = None  # why this plug-in's module failed to import

    @property
    def plugin(self) -> bool:
        return self.origin.startswith("entry-point")

    @property
    def metadata(self) -> dict[str, Any]:
        if isinstance(self.target, str) and self.plugin:
            self.load()  # a plug-in's metadata is registered when its module is imported
        return self._metadata

    @metadata.setter
    def metadata(self, value: dict[str, Any]) -> None:
        self._metadata = value

    def load(self) -> T:
        if self.error is not None:
            raise self.error
        if isinstance(self.target, str):
            try:
                self.target = import_target(self.target)
            except Exception as exc:  # a plug-in may raise anything on import
                if not self.plugin:
                    raise
                package = self.origin.partition(":")[2]
                self.error = PluginError(f"plug-in {self.name} (package {package}) failed to load: "
                                         f"{_one_line(exc)}")
                raise self.error from exc
        return self.target


def import_target(ref: str) -> Any:
    """The object a ``"package.module:attr"`` reference names (one-line GanbenchError if none)."""
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise GanbenchError(f"bad reference {ref!r}: expected 'package.module:attribute'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise GanbenchError(f"cannot import {module_name!r} for {ref!r}: {exc}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise GanbenchError(f"{module_name!r} has no attribute {attr!r} (from {ref!r})") from exc
    return obj


class Registry(Generic[T]):
    """A named collection of objects of one kind.

    Args:
        kind: what the entries are, for messages ("model", "metric", ...).
        builtin_modules: modules imported on first use; importing them registers the
            built-in entries.
        entry_point_group: entry-point group scanned on first use for plug-ins.
        validate: optional check run on every loaded object (raise GanbenchError).
        on_first_use: optional ``"module:function"`` called with no arguments on first use,
            after the built-in modules; it adds entries that come from elsewhere (a user
            file) with :meth:`sync`.
    """

    def __init__(
        self,
        kind: str,
        builtin_modules: tuple[str, ...] = (),
        entry_point_group: str | None = None,
        validate: Callable[[str, Any], None] | None = None,
        on_first_use: str | None = None,
    ):
        self.kind = kind
        self.builtin_modules = builtin_modules
        self.entry_point_group = entry_point_group
        self.on_first_use = on_first_use
        self._validate = validate
        self._entries: dict[str, Entry[T]] = {}
        self._populated = False
        self._populating = False

    # -- registration -------------------------------------------------------------
    def register(self, name: str | None = None, obj: T | str | None = None, *,
                 origin: str = "builtin", overwrite: bool = False, **metadata: Any):
        """Register ``obj`` under ``name``; without ``obj``, return a decorator."""

        def add(target: T | str) -> T | str:
            key = name or getattr(target, "__name__", None)
            if not key:
                raise GanbenchError(f"a {self.kind} needs a name")
            if key in self._entries and not overwrite:
                existing = self._entries[key]
                if existing.target is target:
                    return target
                if (isinstance(existing.target, str) and existing.plugin
                        and existing.target.partition(":")[0] in sys.modules):
                    # the plug-in module an entry point names, being imported, registers its
                    # object itself (same decorator as a built-in): fill in the placeholder
                    existing.target, existing.metadata = target, dict(metadata)
                    return target
                raise GanbenchError(
                    f"{self.kind} {key!r} is already registered (from {existing.origin}); "
                    f"choose another name or unregister it first")
            self._entries[key] = Entry(key, target, dict(metadata), origin)
            return target

        if obj is not None:
            return add(obj)
        return add

    def unregister(self, name: str) -> None:
        self._populate()
        if name not in self._entries:
            raise UnknownNameError(self.kind, name, self._entries)
        del self._entries[name]

    def sync(self, origin: str, targets: dict[str, tuple[T | str, dict[str, Any]]]) -> list[Entry[T]]:
        """Make the entries from ``origin`` exactly ``targets`` (name -> (object, metadata)),
        e.g. after the file they are read from changed. A name that another origin holds
        keeps its entry; those entries are returned. Does not populate the registry (the
        ``on_first_use`` function calls it while populating)."""
        for name in [n for n, e in self._entries.items() if e.origin == origin and n not in targets]:
            del self._entries[name]
        shadowing = []
        for name, (target, metadata) in targets.items():
            existing = self._entries.get(name)
            if existing is not None and existing.origin != origin:
                shadowing.append(existing)
                continue
            self._entries[name] = Entry(name, target, dict(metadata), origin)
        return shadowing

    # -- queries --------------------------------------------------------------------
    def _populate(self) -> None:
        if self._populated or self._populating:
            return
        self._populating = True
        try:
            for module in self.builtin_modules:
                importlib.import_module(module)
            if self.on_first_use:
                import_target(self.on_first_use)()
            if self.entry_point_group:
                for ep in importlib_metadata.entry_points(group=self.entry_point_group):
                    if ep.name in self._entries:
                        continue  # a built-in or explicit registration wins
                    dist = getattr(ep, "dist", None)
                    origin = f"entry-point:{dist.name if dist else '?'}"
                    self._entries[ep.name] = Entry(ep.name, ep.value, {}, origin)
            self._populated = True
        finally:
            self._populating = False

    def entry(self, name: str) -> Entry[T]:
        self._populate()
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, self._entries) from None

    def get(self, name: str) -> T:
        entry = self.entry(name)
        obj = entry.load()
        if self._validate is not None:
            self._validate(name, obj)
        return obj

    def metadata(self, name: str) -> dict[str, Any]:
        return self.entry(name).metadata

    def names(self, pattern: str | None = None) -> list[str]:
        """Sorted names, optionally filtered by a shell-style pattern (``"*gan*"``)."""
        import fnmatch

        self._populate()
        names = sorted(self._entries)
        if pattern:
            names = [n for n in names if fnmatch.fnmatch(n, pattern)]
        return names

    def entries(self) -> Iterator[Entry[T]]:
        """Every entry, sorted by name; plug-ins are imported, and one that fails to import
        is skipped with a :class:`PluginWarning` (``get`` on it raises the cause)."""
        self._populate()
        for name in sorted(self._entries):
            entry = self._entries[name]
            if entry.plugin:
                try:
                    entry.load()
                except PluginError as exc:
                    warnings.warn(f"{exc}; skipped", PluginWarning, stacklevel=2)
                    continue
            yield entry

    def __contains__(self, name: object) -> bool:
        self._populate()
        return name in self._entries

    def __len__(self) -> int:
        self._populate()
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._entries)} entries)"


models: Registry = Registry("model", ("ganbench.models",), "ganbench.models")
metrics: Registry = Registry("metric", ("ganbench.metrics",), "ganbench.metrics")
feature_extractors: Registry = Registry(
    "feature extractor", ("ganbench.metrics.extractors",), "ganbench.feature_extractors")
datasets: Registry = Registry("dataset", ("ganbench.data.builtin", "ganbench.translation"), "ganbench.datasets")
# Third-party generators registered with `ganbench register` (the user's registry file).
registered_generators: Registry = Registry("registered generator", on_first_use="ganbench.thirdparty:refresh")
