#!/usr/bin/env python3
"""Reference check of headhunt's GGUF loading against Hugging Face transformers.

Not used by CI. Needs CPU torch, transformers (4.57) and gguf, and the models that
../shared/models/fetch.sh downloads. For each GGUF model it
  1. loads the file with transformers (`from_pretrained(dir, gguf_file=...)`, which dequantizes
     every tensor to float32, undoes llama.cpp's q/k permutation and Gemma's +1 on norms),
  2. tokenizes a few prompts with transformers' tokenizer (built from the GGUF metadata too;
     for Qwen2 the shipped tokenizer.json) and runs the reference forward pass,
  3. runs `headhunt run --save-logits` on the same prompts and prints max |logit diff| over all
     positions and the whole vocabulary,
  4. with --write FILE, writes the compact expectations tests/gguf_models.rs checks (token ids,
     top logits of the last position, argmax per position, a few dequantized weights).

Usage: scripts/gguf_reference.py [--models DIR] [--bin target/release/headhunt] [--write F]
"""
import argparse, json, os, subprocess, sys, tempfile
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = Path(__file__).resolve().parent.parent
MODELS = {
    "qwen2": ("qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
              str(ROOT / "../shared/models/qwen2.5-coder-0.5b-instruct/tokenizer.json")),
    "llama": ("SmolLM2-135M-Instruct.Q4_1.gguf", None),
    "gemma3": ("gemma-3-270m-q4_k_m.gguf", None),
}
PROMPTS = [
    "2+3=5\n4+1=5\n3+4=",
    "7+1=8\n2+6=8\n5+3=9\n1+4=5\n6+2=",
    "The capital of France is",
    "def fib(n):\n    if n < 2:\n        return n\n    return",
    "x=3 -> 3\nx=5 -> 5\nx=8 -> ",
]
# Weights whose first values the tests check (Hugging Face names, after conversion).
WEIGHTS = ["model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.k_proj.weight",
           "model.layers.0.mlp.down_proj.weight", "model.layers.0.input_layernorm.weight",
           "model.norm.weight", "model.embed_tokens.weight"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=os.environ.get("HEADHUNT_MODELS",
                                                       str(Path.home() / ".cache/headhunt-models")))
    ap.add_argument("--bin", default=str(ROOT / "target/release/headhunt"))
    ap.add_argument("--write")
    ap.add_argument("--only")
    args = ap.parse_args()
    torch.set_num_threads(2)
    out = {}
    for key, (fname, tok_json) in MODELS.items():
        if args.only and key != args.only:
            continue
        path = Path(args.models) / fname
        model = AutoModelForCausalLM.from_pretrained(args.models, gguf_file=fname,
                                                     torch_dtype=torch.float32)
        model.eval()
        if tok_json:
            from tokenizers import Tokenizer
            t = Tokenizer.from_file(tok_json)
            encode = lambda s: t.encode(s).ids
        else:
            t = AutoTokenizer.from_pretrained(args.models, gguf_file=fname)
            encode = lambda s: t(s)["input_ids"]
        sd = model.state_dict()
        rec = {"file": fname, "prompts": [], "weights": {}}
        for w in WEIGHTS:
            if w in sd:
                rec["weights"][w] = [float(x) for x in sd[w].flatten()[:8]]
        worst = 0.0
        for p in PROMPTS:
            hf_ids = encode(p)
            with tempfile.TemporaryDirectory() as d:
                npy = Path(d) / "l.npy"
                cmd = [args.bin, "run", "--model", str(path), "--prompt", p, "--top", "1",
                       "--save-logits", str(npy)]
                if tok_json:
                    cmd += ["--tokenizer", tok_json]
                r = subprocess.run(cmd, capture_output=True, text=True,
                                   env={**os.environ, "RAYON_NUM_THREADS": "2"})
                if r.returncode != 0:
                    sys.exit(f"headhunt failed: {r.stderr}")
                lines = r.stdout.splitlines()
                n = int(lines[0].split("(")[1].split(")")[0])
                ids = [int(l.split()[1]) for l in lines[1:1 + n]]
                ours = np.load(npy)
            # The forward pass is compared on headhunt's token ids (transformers' GGUF
            # tokenizers add a BOS that the file's add_bos_token=false says not to add).
            with torch.no_grad():
                ref = model(torch.tensor([ids])).logits[0].float().numpy()
            bos = getattr(model.config, "bos_token_id", None)
            if hf_ids == ids:
                tok_note = "same"
            elif hf_ids[:1] == [bos] and hf_ids[1:] == ids:
                tok_note = "same but for transformers' BOS"
            else:
                tok_note = f"DIFFER hf {hf_ids} ours {ids}"
            diff = float(np.abs(ours - ref).max())
            worst = max(worst, diff)
            last = ref[-1]
            top = np.argsort(-last)[:20]
            print(f"{key:7} tokens {tok_note}"
                  f"  max|diff| {diff:.2e}  argmax ref {int(top[0])} ours {int(ours[-1].argmax())}  {p[:30]!r}")
            rec["prompts"].append({
                "text": p, "ids": ids, "hf_tokenizer_ids": hf_ids,
                "last_top_ids": [int(i) for i in top],
                "last_top_logits": [float(last[i]) for i in top],
                "argmax": [int(i) for i in ref.argmax(-1)],
                "max_abs_diff_measured": diff,
            })
        print(f"{key}: max |logit diff| over {len(PROMPTS)} prompts = {worst:.3e}")
        rec["max_abs_diff_measured"] = worst
        out[key] = rec
        del model
    if args.write:
        Path(args.write).write_text(json.dumps(out, indent=1) + "\n")
        print("wrote", args.write)


if __name__ == "__main__":
    main()
