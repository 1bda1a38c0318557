"""The generic Registry: registration, lazy "module:attr" entries, entries filled on first
use (`on_first_use`) and kept in step with their source (`sync`)."""
from __future__ import annotations

import sys
import types

import pytest

from ganbench.errors import GanbenchError, UnknownNameError
from ganbench.registry import Registry

SOURCE = "ganbench_test_registry_source"  # a module standing for a user file


@pytest.fixture
def source(monkeypatch):
    """A module whose ``fill`` syncs ``REG`` with its ``ITEMS`` and counts its calls."""
    module = types.ModuleType(SOURCE)
    module.ITEMS, module.calls = {"a": 1}, []

    def fill():
        module.calls.append(1)
        return module.REG.sync("file", {k: (v, {"value": v}) for k, v in module.ITEMS.items()})

    module.fill = fill
    module.REG = Registry("thing", on_first_use=f"{SOURCE}:fill")
    monkeypatch.setitem(sys.modules, SOURCE, module)
    return module


def test_on_first_use_runs_once_on_the_first_query(source):
    assert source.calls == []  # creating the registry reads nothing
    assert source.REG.names() == ["a"] and source.REG.get("a") == 1
    assert "a" in source.REG and source.calls == [1]
    assert source.REG.entry("a").origin == "file" and source.REG.metadata("a") == {"value": 1}


def test_sync_replaces_the_entries_of_its_origin_only(source):
    source.REG.register("kept", 0)  # another origin ("builtin")
    source.REG.names()
    source.ITEMS = {"b": 2, "kept": 9}
    [shadowing] = source.fill()
    assert shadowing.name == "kept" and shadowing.origin == "builtin"
    assert source.REG.names() == ["b", "kept"] and source.REG.get("kept") == 0
    with pytest.raises(UnknownNameError, match="unknown thing 'a'"):
        source.REG.get("a")


def test_a_failing_first_use_is_raised_and_retried(source):
    source.fill = lambda: (_ for _ in ()).throw(GanbenchError("invalid registry file"))
    with pytest.raises(GanbenchError, match="invalid registry file"):
        "a" in source.REG  # noqa: B015
    source.fill = lambda: source.REG.sync("file", {"c": (3, {})})
    assert source.REG.names() == ["c"]


def test_lazy_module_attr_entries_load_on_get():
    reg = Registry("thing")
    reg.register("join", "os.path:join")
    assert reg.entry("join").target == "os.path:join"
    import os.path

    assert reg.get("join") is os.path.join
    reg.register("bad", "os.path:no_such_thing")
    with pytest.raises(GanbenchError, match="has no attribute 'no_such_thing'"):
        reg.get("bad")
