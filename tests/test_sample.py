"""``ganbench sample``: the samples are the ones ``ganbench eval`` scores (same latents, order,
labels), class rows hold each class's samples, truncation, interpolation, refusals."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from ganbench.testing import one_error_line
from ganbench.testing import run_cli as run
from ganbench.models.base import model_info
from ganbench.sampling import interpolation, open_generator, sample, slerp, truncated
from ganbench.sources import resolve_source
from ganbench.training import TrainOptions, train

pytestmark = pytest.mark.usefixtures("one_thread")  # small models: see conftest

SIZE = 16  # px of the tiny checkpoints
PAD = 2  # gap between the tiles of a grid




def tiny_checkpoint(folder, model, overrides):
    """A checkpoint of ``model`` after one training step on digits."""
    result = train(TrainOptions(model=model, dataset="digits", steps=1, batch_size=8, seed=0, out=str(folder),
                                overrides=overrides, checkpoint_every=1, sample_every=0, progress=False))
    return result.checkpoint


@pytest.fixture(scope="module")
def dcgan(tmp_path_factory):
    overrides = {"g_channels": "4", "d_channels": "4", "image_size": str(SIZE)}
    return tiny_checkpoint(tmp_path_factory.mktemp("dcgan"), "dcgan", overrides)


@pytest.fixture(scope="module")
def biggan(tmp_path_factory):
    overrides = {**model_info("biggan").tiny, "image_size": SIZE, "g_channels": 8, "d_channels": 8, "shared_dim": 8}
    return tiny_checkpoint(tmp_path_factory.mktemp("biggan"), "biggan", overrides)


def eval_values(tmp_path, input_, metrics, n, seed) -> dict[str, float]:
    """``ganbench eval``'s numbers (lenet-mnist features, digits:test reference, no intervals)."""
    out = tmp_path / f"rows-{len(list(tmp_path.glob('rows-*')))}.json"
    args = ["eval", "-i", input_, "-r", "digits:test", "--extractor", "lenet-mnist", "-n", n, "--seed", seed,
            "--bootstrap", "0", "--no-record", "-q", "--json", out]
    options = ["-o", "kid.subset_size=40"] if "kid" in metrics else []
    res = run(*args, *options, *[arg for m in metrics for arg in ("-m", m)])
    assert res.exit_code == 0, res.output
    return {row["key"]: row["value"] for row in json.loads(out.read_text())}


def tiles(path, rows: int, columns: int, size: int = SIZE) -> torch.Tensor:
    """The tiles of a grid PNG as uint8 (rows, columns, 3, size, size)."""
    grid = torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1)
    assert grid.shape[1:] == (rows * (size + PAD) + PAD, columns * (size + PAD) + PAD)
    step = size + PAD
    return torch.stack([torch.stack([grid[:, PAD + r * step:PAD + r * step + size, PAD + c * step:PAD + c * step + size]
                                     for c in range(columns)]) for r in range(rows)])


@pytest.mark.parametrize("model, metrics", [("dcgan", ["fid", "kid"]), ("biggan", ["fid", "class-accuracy"])])
def test_sampled_files_score_as_the_checkpoint(tmp_path, request, model, metrics):
    """sample --npz / --out then eval gives exactly the numbers of eval on the checkpoint."""
    checkpoint, n, seed = request.getfixturevalue(model), 80, 3
    res = run("sample", checkpoint, "-n", n, "--seed", seed, "--npz", tmp_path / "s.npz", "--out", tmp_path / "s",
              "--device", "cpu", "-q")
    assert res.exit_code == 0, res.output
    expected = eval_values(tmp_path, checkpoint, metrics, n, seed)
    assert eval_values(tmp_path, tmp_path / "s.npz", metrics, n, seed) == expected  # labels travel in the .npz
    assert eval_values(tmp_path, tmp_path / "s", ["fid"], n, seed)["fid"] == expected["fid"]  # PNG files: lossless
    assert expected["fid"] != eval_values(tmp_path, checkpoint, ["fid"], n, seed + 1)["fid"]  # the seed matters
    with np.load(tmp_path / "s.npz") as arrays:
        assert arrays["images"].shape == (n, 3, SIZE, SIZE) and arrays["images"].dtype == np.uint8
        assert ("labels" in arrays) == (model == "biggan")
    assert len(list((tmp_path / "s").glob("*.png"))) == n


def test_class_rows_are_the_samples_eval_draws_for_each_class(tmp_path, biggan):
    classes, per_class, seed = [7, 0, 3], 4, 5
    res = run("sample", biggan, "--grid", tmp_path / "rows.png", "--classes", "7,0,3", "-n", 12, "--seed", seed,
              "--device", "cpu")
    assert res.exit_code == 0, res.output
    grid = tiles(tmp_path / "rows.png", len(classes), per_class)
    evaluated = resolve_source(str(biggan), num_samples=2000, seed=seed)  # as eval opens it
    labels = evaluated.class_labels()
    for row, c in zip(grid, classes):
        first = torch.nonzero(labels == c).flatten()[:per_class].tolist()
        expected = torch.cat([evaluated.images(i, i + 1) for i in first])  # one at a time: any batch gives these
        assert torch.equal(row, expected), c


def test_truncation_zero_gives_one_image_per_class(tmp_path, biggan):
    args = ["sample", biggan, "--classes", "1,2", "-n", 6, "--device", "cpu"]
    assert run(*args, "--grid", tmp_path / "t.png", "--truncation", 0).exit_code == 0
    assert run(*args, "--grid", tmp_path / "u.png").exit_code == 0
    truncated_rows, free_rows = tiles(tmp_path / "t.png", 2, 3), tiles(tmp_path / "u.png", 2, 3)
    for row in truncated_rows:
        assert all(torch.equal(image, row[0]) for image in row)
    assert not torch.equal(truncated_rows[0, 0], truncated_rows[1, 0])  # one image per class, not one in all
    assert not torch.equal(free_rows[0, 0], free_rows[0, 1])


def test_stylegan_truncation_hook_is_set_and_restored():
    from ganbench.models import create_model

    with torch.random.fork_rng():
        torch.manual_seed(0)
        G = create_model("stylegan", dataset="mnist", overrides={**model_info("stylegan").tiny}).generator.eval()
    source = open_generator(G, num_samples=4)
    with truncated(source, 0.0):
        assert G.truncation_psi == 0.0
        images = source.images(0, 4)  # untrained: noise scales are 0, so w = w_avg gives one image
    assert G.truncation_psi == 1.0
    assert all(torch.equal(image, images[0]) for image in images)
    assert not torch.equal(source.images(0, 1), source.images(1, 2))


def test_interpolation_ends_are_the_evaluated_samples(tmp_path, dcgan):
    source = open_generator(str(dcgan), num_samples=6, seed=2)
    paths = interpolation(source, paths=3, steps=5)
    evaluated = resolve_source(str(dcgan), num_samples=6, seed=2).images(0, 6)
    assert torch.equal(paths[:, 0], evaluated[0::2]) and torch.equal(paths[:, -1], evaluated[1::2])
    assert not torch.equal(paths[:, 2], paths[:, 0])
    res = run("sample", dcgan, "--interpolate", 5, "-n", 3, "--grid", tmp_path / "walk.gif", "--device", "cpu")
    assert res.exit_code == 0, res.output
    with Image.open(tmp_path / "walk.gif") as gif:
        assert gif.n_frames == 2 * 5 - 2  # there and back
        assert gif.size == (2 * (SIZE + PAD) + PAD,) * 2  # 3 paths in a 2 x 2 grid


def test_slerp_follows_the_great_circle():
    a, b = torch.tensor([[3.0, 0.0]]), torch.tensor([[0.0, 3.0]])
    t = torch.tensor([0.0, 1 / 3, 0.5, 1.0])
    angles = t * math.pi / 2
    expected = 3 * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    assert torch.allclose(slerp(a, b, t)[0], expected, atol=1e-6)
    assert torch.equal(slerp(a, a, t)[0], a.expand(4, 2))  # parallel ends: no NaN


def test_existing_outputs_are_refused_unless_forced(tmp_path, dcgan):
    grid, folder, npz = tmp_path / "g.png", tmp_path / "pngs", tmp_path / "s.npz"
    grid.write_text("mine")
    folder.mkdir()
    (folder / "999999.png").write_text("mine")  # as if left by a longer run
    npz.write_text("mine")
    for option, path in [("--grid", grid), ("--out", folder), ("--npz", npz)]:
        line = one_error_line(run("sample", dcgan, option, path, "--device", "cpu"))
        assert line.startswith(f"Error: {option} {path} exists") and "--force" in line
    assert grid.read_text() == npz.read_text() == "mine"
    assert sorted(p.name for p in folder.iterdir()) == ["999999.png"]
    sample(str(dcgan), grid=grid, num_samples=4, device="cpu", force=True)
    assert Image.open(grid).size == (2 * (SIZE + PAD) + PAD,) * 2
    res = run("sample", dcgan, "--out", folder, "-n", 2, "--force", "--device", "cpu", "-q")
    assert res.exit_code == 0 and "warning: --out" in res.stderr and "holds 1 other images" in res.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["000000.png", "000001.png", "999999.png"]


@pytest.mark.parametrize("args, message", [
    (["digits:test", "--grid", "{tmp}/g.png"], "'digits:test' holds images, not a generator"),
    (["{tmp}/missing.safetensors", "--grid", "{tmp}/g.png"], "does not exist"),
    (["{dcgan}"], "nothing to write"),
    (["{dcgan}", "--grid", "{tmp}/g.gif"], "write a .png (or a .gif with --interpolate)"),
    (["{dcgan}", "--npz", "{tmp}/s.npy"], "must end in .npz"),
    (["{dcgan}", "--grid", "{tmp}/g.png", "--truncation", "0.5"], "has no truncation trick"),
    (["{dcgan}", "--grid", "{tmp}/g.png", "--classes", "1"], "is not class-conditional"),
    (["{dcgan}", "--npz", "{tmp}/s.npz", "--interpolate", "4"], "--interpolate writes a --grid"),
    (["{biggan}", "--grid", "{tmp}/g.png", "--classes", "0,12"], "--classes 12: "),
    (["{biggan}", "--grid", "{tmp}/g.png", "--classes", "a"], "expected class numbers separated by commas"),
])
def test_bad_requests_end_in_one_line(tmp_path, dcgan, biggan, args, message):
    args = [a.format(tmp=tmp_path, dcgan=dcgan, biggan=biggan) for a in args]
    assert message in one_error_line(run("sample", *args, "--device", "cpu"))
    assert not list(tmp_path.glob("g.*")) and not list(tmp_path.glob("s.*"))


@pytest.mark.slow
def test_class_rows_of_a_trained_model_show_their_class(tmp_path, data_dir):
    """ACGAN's tiny config after its test steps on MNIST: lenet-mnist recognises each row's class."""
    from ganbench.metrics.lenet import classifier_accuracy, lenet_mnist

    info = model_info("acgan")
    run_folder = tmp_path / "acgan"
    train(TrainOptions(model="acgan", dataset="mnist", steps=info.test_steps, batch_size=64, ema=0.0, seed=0,
                       out=str(run_folder), overrides=dict(info.tiny), progress=False))
    classes = list(range(10))
    assert run("sample", run_folder, "--grid", tmp_path / "rows.png", "-n", 80, "--device", "cpu").exit_code == 0
    rows = tiles(tmp_path / "rows.png", 10, 8, size=28)
    labels = torch.tensor(classes).repeat_interleave(8)
    assert classifier_accuracy(rows.flatten(0, 1), labels, lenet_mnist()) > 0.5  # chance: 0.1
