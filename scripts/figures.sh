#!/usr/bin/env bash
# Regenerates every picture in README.md from commands: the figures in assets/figures/
# (`headhunt plot` on the paper's results and on analyses of the demo model that this script
# runs), and the explorer's screenshots (scripts/screenshots.sh drives the binary in tmux).
# `--no-screenshots` skips the latter (no tmux needed).
set -euo pipefail
cd "$(dirname "$0")/.."
# The screenshots need Pillow (scripts/screenshots.sh checks the rest); say so before the
# figures take their minutes, not after.
if [ "${1:-}" != "--no-screenshots" ] && ! python3 -c 'import PIL' 2>/dev/null; then
    echo "figures.sh: the screenshots need Pillow for python3 (pip install Pillow, or apt-get install python3-pil); --no-screenshots skips them" >&2
    exit 1
fi
cargo build --release -q
hh=target/release/headhunt
f=assets/figures
g=data/paper/results/gemma_2_9b
"$hh" plot "$g/resid_post_41.json" --out $f/gemma2-9b-resid_post_41.png --force
"$hh" plot "$g/ind_h39_7_v.json" --out $f/gemma2-9b-ind_h39_7_v.png --force
"$hh" plot "$g/resid_post_41.json" --out $f/gemma2-9b-resid_post_41.svg --force
"$hh" plot "$g/ind_h39_7_v.json" --out $f/gemma2-9b-ind_h39_7_v.svg --force
# README "Case study: indirect objects" (results in assets/ioi-qwen/, made by its run.sh).
i=assets/ioi-qwen
"$hh" plot $i/name-movers.json --out $f/ioi-qwen-name-movers.png --force
"$hh" plot $i/name-movers.json --bars 10 --out $f/ioi-qwen-name-movers-bars.png --force
"$hh" plot $i/scan-resid-pos.json --out $f/ioi-qwen-scan-resid-pos.png --force
# The demo model's path-patching result (README's circuit section).
d=assets/demo-analysis
"$hh" plot "$d/resid_post_2.json" --out $f/demo-resid_post_2.png --force

# The demo model's case study (README "Case study: the demo model"), the same commands: the
# circuit with minimality, ablation against random groups, function vectors. Their JSON goes
# to a scratch folder (it carries timestamps); the figures are drawn from it.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
D=(--model assets/demo-model --data data/paper/addition/setting1/addition_nmax9_offset1.jsonl
    --examples 100 --batch-size 100)
"$hh" circuit "${D[@]}" --group 'fi=1.3,1.2,1.1@tok:=' --group 'lines=0.0,0.3@tok:\n' \
    --knockout 1.3 --knockout 1.1+1.2+1.3 --knockout 0.0+0.3 --minimality \
    --json "$tmp/circuit.json" >/dev/null
"$hh" ablate "${D[@]}" --heads 1.3,1.2,1.1 --random-groups 5 --json "$tmp/ablate-fi.json" >/dev/null
"$hh" ablate "${D[@]}" --heads 0.0,0.3 --random-groups 5 --json "$tmp/ablate-lines.json" >/dev/null
"$hh" fv "${D[@]}" --heads 1.3,1.2,1.1 --json "$tmp/fv.json" >/dev/null
"$hh" plot "$tmp/circuit.json" --out $f/demo-minimality.png --force
"$hh" plot "$tmp/ablate-fi.json" --out $f/demo-ablation-fi.png --force
"$hh" plot "$tmp/ablate-lines.json" --out $f/demo-ablation-lines.png --force
"$hh" plot "$tmp/fv.json" --head 1.3 --out $f/demo-fv-1.3.png --force

# The Qwen2.5-Coder-0.5B case study (README "Case study: Qwen2.5-Coder-0.5B-Instruct"): drawn
# from the JSON files shipped in assets/qwen-analysis/ (the model is not bundled; README says
# which commands wrote them).
q=assets/qwen-analysis
"$hh" plot "$q/circuit.json" --out $f/qwen-minimality.png --force
"$hh" plot "$q/ablate-late.json" --out $f/qwen-ablation-late.png --force
"$hh" plot "$q/ablate-fi.json" --out $f/qwen-ablation-fi.png --force
"$hh" plot "$q/fv.json" --head 13.8 --head all --out $f/qwen-fv-13.8-all.png --force
if [ "${1:-}" != "--no-screenshots" ]; then
    bash scripts/screenshots.sh
fi
