"""The CPU side of the prepared GPU check (bench/gpu_check.sh): its benches run and write
their figures; the float32 peak is looked up by device name. The whole script is rehearsed
on the CPU at a tiny scale (slow)."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def bench_module(name):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_float32_peak_is_found_by_device_name(monkeypatch):
    eval_speed = bench_module("eval_speed")
    monkeypatch.setattr(eval_speed.torch.cuda, "get_device_name", lambda device=None: "NVIDIA H200")
    assert eval_speed.peak_tflops("cuda", None) == 67.0
    assert eval_speed.peak_tflops("cuda", 12.5) == 12.5  # given wins
    assert eval_speed.peak_tflops("cpu", None) is None
    monkeypatch.setattr(eval_speed.torch.cuda, "get_device_name", lambda device=None: "Some Future GPU")
    assert eval_speed.peak_tflops("cuda", None) is None  # unknown: no share printed rather than a wrong one


def test_training_throughput_bench_writes_its_figures(tmp_path):
    speed = bench_module("train_models_speed")
    out = tmp_path / "train.json"
    figures = speed.main(["--models", "dcgan,wgan-gp", "--steps", "1", "--repeats", "1", "--batch-size", "4",
                          "--device", "cpu", "--threads", "1", "--json", str(out)])
    written = json.loads(out.read_text())
    assert [f["model"] for f in written["models"]] == ["dcgan", "wgan-gp"] == [f["model"] for f in figures]
    by_model = {f["model"]: f for f in figures}
    assert by_model["dcgan"]["real_images_per_step"] == 4
    assert by_model["wgan-gp"]["real_images_per_step"] == 4 * 5  # n_critic 5: five real batches per G step
    assert all(f["steps_per_s"] > 0 and f["images_per_s"] > 0 for f in figures)


@pytest.mark.slow
def test_the_whole_check_rehearses_on_the_cpu(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path), "GPU_CHECK_DEVICE": "cpu", "GPU_CHECK_SCALE": "tiny",
           "OMP_NUM_THREADS": "1"}
    done = subprocess.run(["bash", str(BENCH / "gpu_check.sh")], env=env, capture_output=True, text=True,
                          timeout=1800)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert done.returncode == 0, done.stdout[-2000:]
    assert [s["step"] for s in summary["steps"]] == ["pytest_gpu", "eval_speed", "train_models_speed",
                                                    "train_speed"]
    assert set(summary["figures"]) == {"eval_speed", "train_models_speed"}
    assert summary["figures"]["eval_speed"]["largest_relative_difference"] < 1e-3
