#!/usr/bin/env bash
# Prepares `.gpu/` (ignored by git) for one run on the GPU machine: the CUDA build of headhunt
# (stripped, compressed), the reference fixtures and the PyTorch baselines. Builds nothing
# itself: run `source ../shared/cuda/setup.sh && CARGO_TARGET_DIR=target-cuda cargo build
# --release --features cuda` first (about 20 minutes the first time on 2 cores).
# Then, with the device tool: run `bash scripts/gpu/run.sh` with carry [".gpu"].
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${CUDA_BIN:-target-cuda/release/headhunt}
[ -x "$BIN" ] || { echo "no CUDA build at $BIN" >&2; exit 1; }
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
[ -d .gpu ] && chmod -R u+w .gpu; rm -rf .gpu && mkdir -p .gpu
strip -o .gpu/headhunt "$BIN"
gzip -9 .gpu/headhunt
cp -r ../shared/fixtures .gpu/fixtures && chmod -R u+w .gpu
cp -r ../shared/bench .gpu/bench
du -sh .gpu
