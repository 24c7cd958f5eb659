#!/usr/bin/env bash
# README "Case study: IOI on Qwen2.5-Coder-0.5B-Instruct": every result in this folder, by the
# commands the README shows. The model: `../shared/models/fetch.sh models` (or set MODEL).
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL=${MODEL:-models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf}
hh=${HH:-target/release/headhunt}
out=assets/ioi-qwen
data=data/ioi/ioi_abba.jsonl
# (1) Name movers: every head, patched at END only, to the logits read at END.
"$hh" patch --model "$MODEL" --data $data --sender-positions role:END \
    --receiver resid_post:23@role:END --out $out/name-movers.json --force
# (2) The same heads patched at every position: what reaches the logits through later heads.
"$hh" patch --model "$MODEL" --data $data --out $out/all-positions.json --force
# (3) One level down: what writes at END into the top name mover's query at END.
"$hh" patch --model "$MODEL" --data $data --sender-positions role:END \
    --receiver 20.9.q@role:END --out $out/h20.9.q.json --force
# (4) Activation patching of the residual stream at each layer and position (one template,
#     so that every prompt has one length).
"$hh" scan --kind resid-pos --model "$MODEL" --data data/ioi/ioi_abba_t0.jsonl \
    --out $out/scan-resid-pos.json --force
