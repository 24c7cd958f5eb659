//! The real pretrained GGUF models that `../shared/models/fetch.sh` downloads, checked against
//! Hugging Face transformers (`tests/data/gguf_reference.json`, written by
//! `scripts/gguf_reference.py`: transformers 4.57.6 loading the same GGUF files, dequantized to
//! f32).
//!
//! Measured when the reference was made (f32, CPU; max |logit diff| over every position and the
//! whole vocabulary of five prompts): Qwen2.5-Coder-0.5B-Instruct Q4_K_M 9.3e-5, SmolLM2-135M
//! Q4_1 8.3e-5, Gemma-3-270M Q4_K_M 8.6e-5. These tests check the top-20 logits of the last
//! position (tolerance 1e-3), token ids, dequantized weights, shapes, and that each model
//! answers small addition prompts.
//!
//! The models are looked up in $HEADHUNT_MODELS, else ~/.cache/headhunt-models; when a file is
//! absent (CI) its test prints SKIPPED and passes.

mod common;
use common::flat;

use candle_core::{DType, Device};
use std::path::PathBuf;
use std::sync::Mutex;

use headhunt::model::{self, Family};

/// One model in memory at a time (Qwen-0.5B dequantized to f32 takes 2.5 GB).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn models_dir() -> PathBuf {
    match std::env::var_os("HEADHUNT_MODELS") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".cache/headhunt-models"),
    }
}

fn reference() -> serde_json::Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/gguf_reference.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// The model file, or None after printing why the test is skipped.
fn model_file(name: &str) -> Option<PathBuf> {
    let p = models_dir().join(name);
    if p.is_file() {
        Some(p)
    } else {
        eprintln!(
            "SKIPPED: {} not found (run ../shared/models/fetch.sh, or set HEADHUNT_MODELS)",
            p.display()
        );
        None
    }
}

fn qwen_tokenizer() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/models/qwen2.5-coder-0.5b-instruct/tokenizer.json")
}

struct Expect {
    key: &'static str,
    family: Family,
    /// layers, heads, kv heads, d_model, d_head, vocab
    dims: [usize; 6],
    /// Type counts `info` reports.
    types: &'static str,
    /// (prompt, expected next token text)
    addition: &'static [(&'static str, &'static str)],
}

fn check(lm: &model::LoadedModel, e: &Expect) {
    let m = &lm.model;
    let c = &m.cfg;
    assert_eq!(c.family, e.family);
    assert_eq!(
        [
            c.n_layers,
            c.n_heads,
            c.n_kv_heads,
            c.d_model,
            c.d_head,
            c.vocab_size
        ],
        e.dims,
        "{}: layers, heads, kv heads, d_model, d_head, vocab",
        e.key
    );
    assert_eq!(m.quantization.as_deref(), Some(e.types), "{}", e.key);

    // Shapes as the engine holds them (PyTorch order, ungrouped heads).
    let w = |name: &str| m.weight(name).unwrap_or_else(|| panic!("no weight {name}"));
    assert_eq!(w("layers.0.q").dims(), &[c.n_heads * c.d_head, c.d_model]);
    assert_eq!(
        w("layers.0.k").dims(),
        &[c.n_kv_heads * c.d_head, c.d_model]
    );
    assert_eq!(w("layers.0.down").dims(), &[c.d_model, c.d_mlp]);
    assert_eq!(w("embed").dims(), &[c.vocab_size, c.d_model]);

    let r = &reference()[e.key];
    // Dequantized weights: the first values of a few tensors equal transformers' (its
    // dequantization, q/k un-permutation and Gemma norm shift).
    let plus = if c.norm_plus_one { 1.0 } else { 0.0 };
    let ours: Vec<(&str, Vec<f32>)> = vec![
        (
            "model.layers.0.self_attn.q_proj.weight",
            flat(&w("layers.0.q")),
        ),
        (
            "model.layers.0.self_attn.k_proj.weight",
            flat(&w("layers.0.k")),
        ),
        (
            "model.layers.0.mlp.down_proj.weight",
            flat(&w("layers.0.down")),
        ),
        (
            "model.layers.0.input_layernorm.weight",
            flat(&w("layers.0.attn_norm"))
                .iter()
                .map(|x| x - plus)
                .collect(),
        ),
        (
            "model.norm.weight",
            flat(&w("final_norm")).iter().map(|x| x - plus).collect(),
        ),
        (
            "model.embed_tokens.weight",
            flat(&w("embed").narrow(0, 0, 1).unwrap()),
        ),
    ];
    for (name, vals) in ours {
        let want: Vec<f32> = r["weights"][name]
            .as_array()
            .unwrap_or_else(|| panic!("{}: no reference for {name}", e.key))
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let d = common::max_abs_diff(&vals[..want.len()], &want);
        assert!(d <= 1e-6, "{} {name}: {:?} vs {want:?}", e.key, &vals[..8]);
    }

    // Token ids and logits against the reference.
    for p in r["prompts"].as_array().unwrap() {
        let text = p["text"].as_str().unwrap();
        let ids = lm.tokenizer.encode(text).unwrap();
        let want_ids: Vec<u32> = p["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(ids, want_ids, "{} tokens of {text:?}", e.key);
        let logits = m
            .forward(&m.tokens_tensor(std::slice::from_ref(&ids)).unwrap())
            .unwrap();
        let last = flat(&logits.narrow(1, ids.len() - 1, 1).unwrap());
        let top: Vec<usize> = p["last_top_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let want: Vec<f32> = p["last_top_logits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let got: Vec<f32> = top.iter().map(|&i| last[i]).collect();
        let d = common::max_abs_diff(&got, &want);
        assert!(
            d <= 1e-3,
            "{} {text:?}: max |logit diff| {d} over the top 20",
            e.key
        );
        let argmax = last
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0;
        assert_eq!(argmax, top[0], "{} {text:?}: argmax", e.key);
    }

    // Small addition prompts: the most likely next token is the sum.
    for (prompt, want) in e.addition {
        let ids = lm.tokenizer.encode(prompt).unwrap();
        let logits = m
            .forward(&m.tokens_tensor(std::slice::from_ref(&ids)).unwrap())
            .unwrap();
        let next =
            headhunt::model::transformer::argmax_last(&logits.narrow(1, ids.len() - 1, 1).unwrap())
                .unwrap()[0];
        assert_eq!(
            lm.tokenizer.token_text(next),
            *want,
            "{}: next token after {prompt:?}",
            e.key
        );
    }
}

#[test]
fn qwen2_5_coder_0_5b_q4_k_m() {
    let Some(path) = model_file("qwen2.5-coder-0.5b-instruct-q4_k_m.gguf") else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let tok = qwen_tokenizer();
    // The shipped tokenizer.json, and the one built from the GGUF metadata, give the same ids.
    let lm = model::load(path.to_str().unwrap(), Some(&tok), &Device::Cpu, DType::F32).unwrap();
    let from_meta = {
        let f = headhunt::model::gguf::GgufFile::open(&path).unwrap();
        headhunt::model::gguf_vocab::tokenizer_from_gguf(&f).unwrap()
    };
    for text in [
        "2+3=5\n4+1=5\n3+4=",
        "def fib(n):\n    if n < 2:\n        return n",
        "Ünïcödé — ½ 東京 🙂  tabs\tand  spaces",
        "<|im_start|>user\nHi<|im_end|>",
        "x=3 -> 3\n\n\nx=12345 ->",
    ] {
        assert_eq!(
            from_meta.encode(text).unwrap(),
            lm.tokenizer.encode(text).unwrap(),
            "{text:?}"
        );
    }
    assert_eq!(from_meta.bos, None);
    check(
        &lm,
        &Expect {
            key: "qwen2",
            family: Family::Qwen2,
            dims: [24, 14, 2, 896, 64, 151936],
            types: "Q5_0 ×133, F32 ×121, Q8_0 ×13, Q4_K ×12, Q6_K ×12; file type Q4_K_M",
            addition: &[
                ("2+3=5\n4+1=5\n3+4=", "7"),
                ("1+1=2\n2+2=4\n3+3=", "6"),
                ("2+2=4\n3+5=8\n1+6=7\n4+4=", "8"),
                ("3+4=7\n5+2=7\n6+3=", "9"),
            ],
        },
    );
    assert!(!lm.model.cfg.tie_embeddings, "the file has output.weight");
}

#[test]
fn smollm2_135m_q4_1() {
    let Some(path) = model_file("SmolLM2-135M-Instruct.Q4_1.gguf") else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let lm = model::load(path.to_str().unwrap(), None, &Device::Cpu, DType::F32).unwrap();
    assert_eq!(lm.tokenizer.bos, None, "add_bos_token is false in the file");
    check(
        &lm,
        &Expect {
            key: "llama",
            family: Family::Llama,
            dims: [30, 9, 3, 576, 64, 49152],
            types: "Q4_1 ×210, F32 ×61, Q8_0 ×1; file type Q4_1",
            addition: &[("2+2=4\n3+5=8\n1+6=7\n4+4=", "8")],
        },
    );
    assert!(lm.model.cfg.tie_embeddings);
}

#[test]
fn gemma3_270m_q4_k_m() {
    let Some(path) = model_file("gemma-3-270m-q4_k_m.gguf") else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let lm = model::load(path.to_str().unwrap(), None, &Device::Cpu, DType::F32).unwrap();
    let c = &lm.model.cfg;
    // llama.cpp's hard-coded Gemma-3 facts: every 6th layer global, local rope base 10000,
    // 1/sqrt(head_dim) attention scale, no soft-caps, embeddings × sqrt(d_model).
    let globals: Vec<usize> = (0..c.n_layers).filter(|&l| !c.layer_sliding[l]).collect();
    assert_eq!(globals, vec![5, 11, 17]);
    assert_eq!(c.sliding_window, Some(512));
    assert_eq!(c.rope_global.theta, 1e6);
    assert_eq!(c.rope_local.as_ref().unwrap().theta, 1e4);
    assert!((c.attn_scale - 1.0 / 16.0).abs() < 1e-12);
    assert_eq!((c.attn_softcap, c.final_softcap), (None, None));
    assert!(c.qk_norm && c.norm_plus_one && c.sandwich_norms);
    assert_eq!(c.embed_scale, Some((640f64).sqrt()));
    assert_eq!(lm.tokenizer.bos, Some(2));
    check(
        &lm,
        &Expect {
            key: "gemma3",
            family: Family::Gemma3,
            dims: [18, 4, 1, 640, 256, 262144],
            types: "F32 ×109, Q5_0 ×81, Q4_K ×27, Q8_0 ×10, Q6_K ×9; file type Q4_K_M",
            addition: &[
                ("1+1=2\n2+2=4\n3+3=", "6"),
                ("2+2=4\n3+5=8\n1+6=7\n4+4=", "8"),
            ],
        },
    );
}
