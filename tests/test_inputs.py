"""Evaluation inputs read from files: one reader of .npz/.npy and image folders for
``-i``/``-r`` and the ``npz:``/``folder:`` datasets; damaged, hostile or misplaced files
give one-line errors."""
from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from ganbench.cli import main
from ganbench.data import load_images
from ganbench.errors import InputError
from ganbench.sources import resolve_source

pytestmark = pytest.mark.usefixtures("one_thread")  # small models: see conftest


def images(n, size=8, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size), dtype=np.uint8)


def run_cli(*args):
    result = CliRunner().invoke(main, ["eval", "--no-record", "-q", "--no-cache", "--extractor", "lenet-mnist",
                                       "-m", "fid", *args])
    return result.exit_code, result.output


def assert_one_line_error(code, output, message):
    assert code == 2, output
    assert message in output, output
    assert "Traceback" not in output
    assert [line for line in output.splitlines() if line.startswith("Error")] == [output.strip()], output


def bad_crc_npz(path):
    np.savez(path, images=np.full((4, 8, 8), 7, np.uint8))
    data = bytearray(path.read_bytes())
    data[data.find(bytes([7] * 16))] ^= 0xFF  # one byte of the array data: the zip CRC no longer matches
    path.write_bytes(bytes(data))
    return path


def object_npz(path):
    np.savez(path, images=np.array([{"a": 1}], dtype=object))  # loading it would unpickle
    return path


def png_header(path, width, height):
    """A PNG that declares width x height and holds no pixel data (a decompression bomb's header)."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path


# ---- damaged and hostile files -----------------------------------------------------------
@pytest.mark.parametrize("make, message", [(bad_crc_npz, "Bad CRC-32"), (object_npz, "Object arrays")])
@pytest.mark.parametrize("side", ["-i", "-r"])
def test_damaged_npz_is_one_line_error(tmp_path, make, message, side):
    bad = str(make(tmp_path / "bad.npz"))
    np.save(tmp_path / "ok.npy", images(4))
    good = str(tmp_path / "ok.npy")
    code, output = run_cli("-i", bad if side == "-i" else good, "-r", bad if side == "-r" else good)
    assert_one_line_error(code, output, message)
    assert "bad.npz" in output


@pytest.mark.parametrize("make", [bad_crc_npz, object_npz])
def test_damaged_npz_dataset_is_one_line_error(tmp_path, make):
    path = make(tmp_path / "bad.npz")
    with pytest.raises(InputError, match="cannot read") as info:
        load_images(f"npz:{path}")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("size, message", [(20000, "400000000 pixels"), (5000, "5000x5000 pixels")])
def test_decompression_bomb_is_one_line_error(tmp_path, size, message):
    (tmp_path / "imgs").mkdir()
    for i, img in enumerate(images(3)):
        Image.fromarray(img).save(tmp_path / "imgs" / f"{i}.png")
    png_header(tmp_path / "imgs" / "bomb.png", size, size)  # 20000: PIL's own bomb error; 5000: ours
    np.save(tmp_path / "ok.npy", images(4))
    code, output = run_cli("-i", str(tmp_path / "imgs"), "-r", str(tmp_path / "ok.npy"))
    assert_one_line_error(code, output, message)
    assert "bomb.png" in output and "too large" in output and "up to 4096x4096" in output
    with pytest.raises(InputError, match="bomb.png"):
        load_images(f"folder:{tmp_path / 'imgs'}")


# ---- a training run folder is its checkpoint, not a folder of images --------------------------
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from ganbench.training import TrainOptions, train

    out = tmp_path_factory.mktemp("run") / "run"
    train(TrainOptions(model="gan", dataset="digits", steps=2, batch_size=16, seed=0, out=str(out),
                       checkpoint_every=2, sample_every=2, progress=False,
                       overrides={"g_hidden": "16", "d_hidden": "8", "image_size": "8"}))
    assert list(out.rglob("*.png")), "the run folder should hold sample grids"
    return out


def test_run_folder_input_is_its_checkpoint(run_dir):
    source = resolve_source(str(run_dir), num_samples=10)
    assert source.is_generator and len(source) == 10
    assert source.provenance()["model"] == "gan"


def test_run_folder_without_checkpoint_is_refused(run_dir, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.json").write_bytes((run_dir / "run.json").read_bytes())
    Image.fromarray(images(1)[0]).save(tmp_path / "run" / "grid.png")
    with pytest.raises(InputError, match="training run folder"):
        resolve_source(str(tmp_path / "run"))


# ---- one reader: -r f.npz and -r npz:f.npz read the same array -----------------------------
@pytest.mark.parametrize("arrays", [
    {"images": images(5), "labels": np.arange(5) % 3},
    {"x_train": images(5), "y_train": np.arange(5) % 3, "x_test": images(2, seed=1)},
    {"arr_0": images(5)},
    {"samples": images(5)},  # the only array, whatever its name
])
def test_npz_file_and_npz_dataset_read_the_same_array(tmp_path, arrays):
    path = tmp_path / "f.npz"
    np.savez(path, **arrays)
    direct = resolve_source(str(path)).images(0, 5)
    dataset = resolve_source(f"npz:{path}").images(0, 5)
    assert torch.equal(direct, dataset)
    assert torch.equal(direct[:, 0], torch.from_numpy(images(5)))


def test_npz_with_several_unnamed_arrays_is_ambiguous(tmp_path):
    np.savez(tmp_path / "f.npz", a=images(5), b=images(5, seed=1))
    for spec in (str(tmp_path / "f.npz"), f"npz:{tmp_path / 'f.npz'}"):
        with pytest.raises(InputError, match="which array holds the images"):
            resolve_source(spec)


def test_npz_labels_reach_the_source(tmp_path):
    np.savez(tmp_path / "f.npz", images=images(4), labels=np.array([3, 1, 4, 1]))
    assert resolve_source(str(tmp_path / "f.npz")).class_labels().tolist() == [3, 1, 4, 1]


def test_folder_input_and_folder_dataset_agree(tmp_path):
    for i, img in enumerate(images(4)):
        Image.fromarray(img).save(tmp_path / f"{i}.PNG" if i % 2 else tmp_path / f"{i}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    direct = resolve_source(str(tmp_path)).images(0, 4)
    dataset, _ = load_images(f"folder:{tmp_path}")
    assert torch.equal(direct[:, :1], dataset)
