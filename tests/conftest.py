"""Shared fixtures. Every test runs with private cache/results/home folders, so the
suite never reads or writes a user's real ganbench state.

A test whose data or optional package is missing is skipped, except where CI asks for it:
``GANBENCH_REQUIRE_DATA=1`` (MNIST must be found) and ``GANBENCH_REQUIRE_EXTRAS=1`` (the
optional extras must be installed) turn those skips into failures (.ci/run sets both)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def data_dir_to_search() -> Path:
    """Where the tests look for MNIST / Fashion-MNIST (torchvision layout): $GANBENCH_DATA_DIR
    when set, else ../shared/data beside the repo."""
    env = os.environ.get("GANBENCH_DATA_DIR")
    return Path(env) if env else REPO.parent / "shared" / "data"


def shared_data_dir() -> Path | None:
    """The data folder when it holds MNIST, else None."""
    candidate = data_dir_to_search()
    return candidate if (candidate / "MNIST" / "raw").is_dir() else None


def skip_unless_required(flag: str, message: str) -> None:
    """Skip the test, or fail it when the environment variable ``flag`` is 1 (CI)."""
    if os.environ.get(flag) == "1":
        pytest.fail(f"{message} ({flag}=1)", pytrace=False)
    pytest.skip(message)


def pytest_configure(config):
    """Session-wide defaults, in place before any fixture of any scope runs."""
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="ganbench-tests-"))
    os.environ.setdefault("GANBENCH_CACHE_DIR", str(root / "cache"))
    os.environ.setdefault("GANBENCH_RESULTS", str(root / "results.sqlite"))
    os.environ.setdefault("GANBENCH_HOME", str(root / "home"))
    os.environ["GANBENCH_OFFLINE"] = "1"
    data = shared_data_dir()
    if data is not None:
        os.environ["GANBENCH_DATA_DIR"] = str(data)


@pytest.fixture(autouse=True)
def _private_state(tmp_path_factory, tmp_path, monkeypatch):
    root = tmp_path_factory.getbasetemp() / "ganbench-state"
    monkeypatch.setenv("GANBENCH_CACHE_DIR", str(root / "cache"))  # shared by a worker's tests: reuse is the point
    monkeypatch.setenv("GANBENCH_RESULTS", str(tmp_path / "results.sqlite"))  # each test sees only its own rows
    monkeypatch.setenv("GANBENCH_HOME", str(root / "home"))
    monkeypatch.setenv("GANBENCH_OFFLINE", "1")  # never try a download inside tests
    data = shared_data_dir()
    if data is not None:
        monkeypatch.setenv("GANBENCH_DATA_DIR", str(data))
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))  # cores are shared between workers
    torch.set_num_threads(max(1, min(2, (os.cpu_count() or 1) // workers)))


@pytest.fixture
def one_thread():
    """One torch thread for small models: thread start-up and synchronisation cost more than
    they save (much more when the cores are shared). Modules opt in with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    data = shared_data_dir()
    if data is None:
        skip_unless_required("GANBENCH_REQUIRE_DATA", f"MNIST not found in {data_dir_to_search()}/MNIST/raw: "
                             "set GANBENCH_DATA_DIR or place ../shared/data beside the repo")
    return data


@pytest.fixture
def require_extra():
    """``require_extra("onnx", "onnxruntime", extra="onnx")`` imports optional packages; a missing
    one skips the test, or fails it under GANBENCH_REQUIRE_EXTRAS=1."""
    import importlib

    def require(*modules: str, extra: str) -> list:
        try:
            return [importlib.import_module(m) for m in modules]
        except ImportError as exc:
            skip_unless_required("GANBENCH_REQUIRE_EXTRAS", f"cannot import {exc.name or modules}: {exc}; "
                                 f"pip install 'ganbench[{extra}]'")

    return require


@pytest.fixture(scope="session")
def inception_weights(tmp_path_factory) -> Path:
    """A deterministic, seeded (non-official) FID Inception-v3 weights file."""
    from ganbench.testing import make_seeded_inception_weights

    path = tmp_path_factory.mktemp("weights") / "inception-seeded.pth"
    make_seeded_inception_weights(path, seed=0)
    return path


@pytest.fixture(scope="session")
def vgg16_weights(tmp_path_factory) -> Path:
    """A deterministic, seeded (non-official) torchvision VGG16 weights file."""
    from ganbench.testing import make_seeded_vgg16_weights

    path = tmp_path_factory.mktemp("weights") / "vgg16-seeded.pth"
    make_seeded_vgg16_weights(path, seed=0)
    return path
