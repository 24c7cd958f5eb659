#!/usr/bin/env bash
# Re-takes the explorer screenshots of README.md ("The explorer"): drives the built binary on
# the bundled demo model in a 100×26 tmux session (the paper's result in 120×34) (as tests/tui_tmux.rs does), captures each
# screen with and without colours (assets/screenshots/NAME.ansi and NAME.txt) and renders the
# PNGs with scripts/ansi2png.py. Needs tmux (installed here if missing, as scripts/test does),
# python3 with Pillow, and DejaVu Sans Mono.
#
# The keys: `r` runs the sweep to resid_post 2; `h` `j` `j` `j` put the cursor on H1.3 (layers
# as columns: left is a lower layer, down a higher head); `g` `t` tag it into "function
# induction" -> heatmap. `Enter` drills into 1.3.v -> drill-1.3.v. `[` goes back (the cursor
# stays on H1.3), `a` opens its attention, mean of the first 4 contrast prompts ->
# attention-grid; `b` the bars of the final `=` -> attention-bars. Then, in a second session,
# `headhunt open` on the paper's Gemma-2-9B resid_post_41 (opens on its largest effect, 39.7)
# -> paper-resid_post_41, and `w` lists the saved results -> gallery.
set -euo pipefail
cd "$(dirname "$0")/.."
# What ansi2png.py needs, checked before anything runs (neither script installs it).
if ! python3 -c 'import PIL' 2>/dev/null; then
    echo "screenshots.sh: needs Pillow for python3 (pip install Pillow, or apt-get install python3-pil)" >&2
    exit 1
fi
if [ ! -f /usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf ]; then
    echo "screenshots.sh: needs DejaVu Sans Mono at /usr/share/fonts/truetype/dejavu/ (apt-get install fonts-dejavu-core)" >&2
    exit 1
fi
if ! command -v tmux >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && apt-get install -y -qq tmux >/dev/null
    else
        sudo apt-get update -qq && sudo apt-get install -y -qq tmux >/dev/null
    fi
fi
cargo build --release -q
hh=$PWD/target/release/headhunt
out=assets/screenshots
results=$(mktemp -d)
session="hh-screenshots-$$"
cleanup() {
    tmux kill-session -t "$session" 2>/dev/null || true
    rm -rf "$results"
}
trap cleanup EXIT

start() {
    tmux kill-session -t "$session" 2>/dev/null || true
    tmux new-session -d -s "$session" -x "$1" -y "$2" "COLORTERM=truecolor $3; sleep 600"
}
start 100 26 "$hh tui --results $results"

# Waits until the screen shows $1 (at most 60 s).
wait_for() {
    for _ in $(seq 600); do
        if tmux capture-pane -p -t "$session" | grep -qF -- "$1"; then
            return 0
        fi
        sleep 0.1
    done
    echo "screenshots.sh: timed out waiting for '$1'; the screen:" >&2
    tmux capture-pane -p -t "$session" >&2
    exit 1
}

# Sends keys one at a time (so that Escape is never read as Alt + the next key).
keys() {
    for k in "$@"; do
        tmux send-keys -t "$session" "$k"
        sleep 0.15
    done
}

# Captures the screen as NAME.ansi (colours) and NAME.txt, and renders NAME.png.
shot() {
    sleep 0.5 # one more frame after the last change
    tmux capture-pane -e -p -t "$session" >"$out/$1.ansi"
    tmux capture-pane -p -t "$session" >"$out/$1.txt"
    python3 scripts/ansi2png.py "$out/$1.ansi" "$out/$1.png"
    echo "wrote $out/$1.png"
}

wait_for "ready: r runs"
keys r
wait_for "done: resid_post 2"
keys h j j j g t
wait_for "H1.3 tagged function induction"
shot heatmap
keys Enter
wait_for "done: 1.3.v"
shot drill-1.3.v
keys "[" a
wait_for "values: mean over 4 prompts"
shot attention-grid
keys b
wait_for "attends to:"
shot attention-bars

start 120 34 "$hh open data/paper/results/gemma_2_9b/resid_post_41.json --results $results"
wait_for "from resid_post_41.json"
shot paper-resid_post_41
keys w
wait_for "saved results"
shot gallery
