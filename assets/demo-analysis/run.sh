#!/bin/sh
# Reproduces the analysis of the demo model in this folder (run from the repository root):
# path patching to the final residual stream, then to the value inputs of the heads above 5%,
# then the mean attention patterns. About a second in all on one CPU core.
set -e
hh="cargo run --release --quiet --"
model=assets/demo-model
data=data/paper/addition/setting1/addition_nmax9_offset1.jsonl
out=assets/demo-analysis
$hh patch --model $model --data $data --shots 4 --offset 1 --examples 100 \
    --receiver resid_post:2 --out $out/resid_post_2.json --force
for head in 2.0 1.3 1.2 1.1; do
    $hh patch --model $model --data $data --shots 4 --offset 1 --examples 100 \
        --receiver $head.v --out $out/h$head.v.json --force
done
cargo run --release --quiet --example demo_attention -- $model $data 4 100 > $out/attention.txt
