#!/usr/bin/env bash
# The one prepared GPU check (issue 17): under 8 minutes on one GPU.
#
#   bash bench/gpu_wheels.sh                      # here first: wheels the GPU image lacks, into .whl/
#   device run (carry .whl): bash bench/gpu_check.sh
#   GPU_CHECK_DEVICE=cpu GPU_CHECK_SCALE=tiny bash bench/gpu_check.sh   # a rehearsal on the CPU (tests do this)
#
# 1. pytest -m gpu: the tests that must pass on CUDA (precision recording, DDP with NCCL on one
#    GPU, evaluation on CUDA equal to evaluation on the CPU on the same images and weights);
# 2. evaluation throughput, ganbench vs torch-fidelity on the same 10,000 images and weights,
#    FID + IS + KID + precision/recall, with the ratio and the share of the float32 peak
#    (bench/eval_speed.py);
# 3. training throughput at 32 px of DCGAN, WGAN-GP, SNGAN-ResNet and StyleGAN
#    (bench/train_models_speed.py), and DCGAN's harness vs a plain PyTorch loop (bench/train_speed.py);
# 4. everything as JSON and logs under $OUT (set by the device tool; else bench/results/gpu-DATE).
# A step that fails is recorded in summary.json and the others still run; the exit status is
# that of the worst step.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results/gpu-$(date -u +%Y%m%d)}
DEVICE=${GPU_CHECK_DEVICE:-cuda}
SCALE=${GPU_CHECK_SCALE:-full}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 GANBENCH_OFFLINE=1

if ! python3 -c "import torch_fidelity, lpips, optuna" 2> /dev/null && ls .whl/*.whl > /dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .whl/*.whl && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
python3 -c "import ganbench.metrics" 2> /dev/null ||
    python3 -m pip install -q --no-deps --no-build-isolation -e . > "$OUT/install.log" 2>&1

if [ "$SCALE" = tiny ]; then  # a rehearsal on a busy CPU: tiny work, generous limits
    EVAL=(--num 32 --batch-size 16 --repeats 1); TRAIN=(--steps 2 --repeats 1 --batch-size 8); PLAIN=(--steps 2 --repeats 1 --width 8)
    TESTS=(--collect-only tests)  # on the CPU the gpu tests are only collected
    LIMIT=(300 600 300 300)
else  # one H200: about 5 minutes in all
    EVAL=(--num 5000 --batch-size 250 --repeats 2); TRAIN=(--steps 50 --repeats 3); PLAIN=(--steps 100 --repeats 3)
    TESTS=(tests)
    LIMIT=(180 240 150 60)
fi

status=0
step() {  # step NAME TIMEOUT_S COMMAND...: run, log to $OUT/NAME.log, record its exit status
    local name=$1 limit=$2; shift 2
    local t0=$SECONDS
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    echo "{\"step\": \"$name\", \"rc\": $rc, \"seconds\": $((SECONDS - t0))}" >> "$OUT/steps.jsonl"
    echo "$name: rc $rc in $((SECONDS - t0)) s"; tail -n 12 "$OUT/$name.log"
    [ $rc -gt $status ] && status=$rc
    return 0
}

(nvidia-smi || true; python3 -c "import torch; print(torch.__version__, torch.cuda.is_available())") > "$OUT/device.txt" 2>&1
step pytest_gpu "${LIMIT[0]}" python3 -m pytest -q -p no:cacheprovider -o addopts="" -m gpu "${TESTS[@]}"
step eval_speed "${LIMIT[1]}" python3 bench/eval_speed.py --device "$DEVICE" "${EVAL[@]}" --json "$OUT/eval_speed.json"
step train_models_speed "${LIMIT[2]}" python3 bench/train_models_speed.py --device "$DEVICE" "${TRAIN[@]}" \
    --json "$OUT/train_models_speed.json"
step train_speed "${LIMIT[3]}" python3 bench/train_speed.py --device "$DEVICE" "${PLAIN[@]}"
python3 - "$OUT" "$DEVICE" << 'EOF'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
steps = [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]
figures = {p.stem: json.loads(p.read_text()) for p in out.glob("*_speed.json")}
(out / "summary.json").write_text(json.dumps({"device": sys.argv[2], "steps": steps, "figures": figures}, indent=1))
EOF
exit $status
