#!/usr/bin/env bash
# Regenerates the figures in assets/figures/ (README "Figures") with `headhunt plot`.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
hh=target/release/headhunt
g=data/paper/results/gemma_2_9b
"$hh" plot "$g/resid_post_41.json" --out assets/figures/gemma2-9b-resid_post_41.png --force
"$hh" plot "$g/ind_h39_7_v.json" --out assets/figures/gemma2-9b-ind_h39_7_v.png --force
"$hh" plot "$g/resid_post_41.json" --out assets/figures/gemma2-9b-resid_post_41.svg --force
"$hh" plot "$g/ind_h39_7_v.json" --out assets/figures/gemma2-9b-ind_h39_7_v.svg --force
# The demo model's path-patching result (README's circuit section).
d=assets/demo-analysis
"$hh" plot "$d/resid_post_2.json" --out assets/figures/demo-resid_post_2.png --force
# The explorer's screenshots: PNGs rendered from the committed tmux captures
# (`tmux capture-pane -e -p` into assets/screenshots/*.ansi).
for a in assets/screenshots/*.ansi; do
    python3 scripts/ansi2png.py "$a" "${a%.ansi}.png"
done
