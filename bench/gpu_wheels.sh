#!/usr/bin/env bash
# Here (not on the GPU machine), once per machine before a device run: download into .whl/ the
# wheels of ganbench's dependencies that the GPU image lacks (its Python is 3.12; it has torch,
# torchvision, timm, pandas, click, safetensors, tqdm, scipy, scikit-learn, matplotlib, pillow).
# The device run names .whl in carry; bench/gpu_check.sh installs them. See bench/gpu_check.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude || echo '/.whl/' >> .git/info/exclude
platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
           --platform any)
for pkg in torch-fidelity==0.4.0 lpips==0.1.4 optuna==5.0.0 sqlalchemy==2.1.9 alembic==1.20.1 colorlog==6.12.0 \
           mako==1.4.3 platformdirs==4.14.9 greenlet; do
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        "${platforms[@]}" -d .whl "$pkg"
done
ls .whl
