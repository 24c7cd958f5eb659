#!/usr/bin/env bash
# One measurement run on the GPU machine (H100/H200), everything in one call: correctness of
# the CUDA build against the fixtures (f32, then bf16), then the Gemma-2-9B-shaped benchmark
# (random weights, bf16) and one circuit evaluation of its 16-shot prompts, beside the two
# PyTorch baselines, then the other architectures if time allows. Output goes to $OUT/log. Prepare with scripts/gpu/prepare.sh; carry [".gpu"].
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
exec > >(tee "$OUT/log") 2>&1
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:/usr/lib:${LD_LIBRARY_PATH:-}
cd "$(dirname "$0")/../.."
gunzip -kf .gpu/headhunt.gz && chmod +x .gpu/headhunt
H=.gpu/headhunt
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
echo "== correctness: cuda f32 against the fixtures (tolerance 1e-4)"
$H check --fixtures .gpu/fixtures --device cuda --dtype f32
echo "== correctness: cuda bf16 (reported)"
$H check --fixtures .gpu/fixtures --device cuda --dtype bf16
echo "== --place layers on one card: cuda:0,cuda:0 (two device handles: every layer op moves its tensors) and cuda:0,cpu, against cuda (f32)"
for fx in tiny-llama tiny-pythia tiny-gemma2; do
  P="$H patch --model .gpu/fixtures/$fx --data .gpu/fixtures/$fx/addition.jsonl --dtype f32 --quiet --force"
  $P --device cuda --out "$OUT/place-$fx-one.json"
  $P --device cuda:0,cuda:0 --place layers --out "$OUT/place-$fx-two.json"
  $P --device cuda:0,cpu --place layers --out "$OUT/place-$fx-cpu.json"
  python3 - "$OUT/place-$fx-one.json" "$OUT/place-$fx-two.json" "$OUT/place-$fx-cpu.json" <<'PY'
import json, sys
def flat(p):
    r = json.load(open(p))["relative"]
    return [x for row in r if row for x in row if x is not None]
one = flat(sys.argv[1])
for other in sys.argv[2:]:
    d = max(abs(a - b) for a, b in zip(one, flat(other)))
    print(f"{other}: max |r - r(cuda)| = {d:.3g}", "ok" if d < 1e-4 else "MISMATCH")
PY
done
echo "== headhunt bench: gemma-2-9b shape, bf16, 12 and 100 prompts"
$H bench --random-weights gemma-2-9b --device cuda --dtype bf16 --examples 12 --large 100 --head-receiver 39.7.v --reference-layers 2 --repeat 3
echo "== circuit evaluation F(C), gemma-2-9b shape, bf16, 16 shots, 100 prompts (target: <= 1 s; the paper's notebook: 75 s)"
$H bench --random-weights gemma-2-9b --device cuda --dtype bf16 --shots 16 --examples 12 --large 100 --only circuit --repeat 3
echo "== PyTorch baselines (same card)"
python3 .gpu/bench/torch_fast.py time-gemma2-9b bf16
python3 .gpu/bench/torch_literal.py bf16 2
for arch in llama-3-8b mistral-7b llama-2-7b; do
  echo "== headhunt bench: $arch, bf16"
  $H bench --random-weights $arch --device cuda --dtype bf16 --examples 12 --large 100 --reference-layers 1 --repeat 2
done
