//! GGUF loading on files written here from the reference fixtures, the way llama.cpp's
//! converter writes them (llama.cpp tensor names, GGUF metadata, llama q/k rows permuted for
//! interleaved rope, Gemma norm weights stored as 1 + w). These run everywhere (CI included):
//! the GGUF model must give the fixture's transformers logits, like the safetensors model.
//! Bad files (truncated, unsupported architecture, missing tensor) give one-line errors.
//!
//! The real pretrained GGUF models are tested in `gguf_models.rs`.

mod common;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// llama.cpp's name for a Hugging Face tensor name (written independently of the loader's map).
fn llama_cpp_name(hf: &str, gemma: bool) -> String {
    let table: &[(&str, &str)] = &[
        ("model.embed_tokens.weight", "token_embd.weight"),
        ("model.norm.weight", "output_norm.weight"),
        ("lm_head.weight", "output.weight"),
    ];
    if let Some((_, g)) = table.iter().find(|(h, _)| *h == hf) {
        return g.to_string();
    }
    let rest = hf.strip_prefix("model.layers.").unwrap();
    let (l, rest) = rest.split_once('.').unwrap();
    let pairs: &[(&str, &str)] = &[
        ("input_layernorm.", "attn_norm."),
        ("self_attn.q_proj.", "attn_q."),
        ("self_attn.k_proj.", "attn_k."),
        ("self_attn.v_proj.", "attn_v."),
        ("self_attn.o_proj.", "attn_output."),
        ("self_attn.q_norm.", "attn_q_norm."),
        ("self_attn.k_norm.", "attn_k_norm."),
        ("mlp.gate_proj.", "ffn_gate."),
        ("mlp.up_proj.", "ffn_up."),
        ("mlp.down_proj.", "ffn_down."),
        ("pre_feedforward_layernorm.", "ffn_norm."),
        ("post_feedforward_layernorm.", "post_ffw_norm."),
    ];
    for (h, g) in pairs {
        if let Some(s) = rest.strip_prefix(h) {
            return format!("blk.{l}.{g}{s}");
        }
    }
    if let Some(s) = rest.strip_prefix("post_attention_layernorm.") {
        let g = if gemma {
            "post_attention_norm."
        } else {
            "ffn_norm."
        };
        return format!("blk.{l}.{g}{s}");
    }
    panic!("no llama.cpp name for {hf}")
}

/// `LlamaModel.permute` of convert_hf_to_gguf.py: reshape(n_head, 2, d/2, ...), swap axes 1, 2.
fn llama_cpp_permute(t: &Tensor, n_head: usize) -> Tensor {
    let dims = t.dims().to_vec();
    let rest: usize = dims[1..].iter().product();
    t.reshape((n_head, 2, dims[0] / n_head / 2, rest))
        .unwrap()
        .transpose(1, 2)
        .unwrap()
        .contiguous()
        .unwrap()
        .reshape(dims)
        .unwrap()
}

struct GgufSpec {
    metadata: Vec<(String, Value)>,
    tensors: Vec<(String, Tensor)>,
}

/// A fixture as llama.cpp's converter would write it.
fn fixture_as_gguf(name: &str) -> GgufSpec {
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture(name).join("config.json")).unwrap())
            .unwrap();
    let arch = cfg["model_type"].as_str().unwrap().to_string();
    let gemma = arch == "gemma2";
    let u = |k: &str| Value::U32(cfg[k].as_u64().unwrap() as u32);
    let n_heads = cfg["num_attention_heads"].as_u64().unwrap() as usize;
    let n_kv = cfg["num_key_value_heads"].as_u64().unwrap() as usize;
    let head_dim = cfg["head_dim"]
        .as_u64()
        .unwrap_or(cfg["hidden_size"].as_u64().unwrap() / n_heads as u64) as u32;
    let mut md: Vec<(String, Value)> = vec![
        ("general.architecture".into(), Value::String(arch.clone())),
        (format!("{arch}.block_count"), u("num_hidden_layers")),
        (format!("{arch}.embedding_length"), u("hidden_size")),
        (
            format!("{arch}.feed_forward_length"),
            u("intermediate_size"),
        ),
        (
            format!("{arch}.attention.head_count"),
            u("num_attention_heads"),
        ),
        (
            format!("{arch}.attention.head_count_kv"),
            u("num_key_value_heads"),
        ),
        (format!("{arch}.attention.key_length"), Value::U32(head_dim)),
        (
            format!("{arch}.attention.value_length"),
            Value::U32(head_dim),
        ),
        (
            format!("{arch}.context_length"),
            u("max_position_embeddings"),
        ),
        (
            format!("{arch}.rope.freq_base"),
            Value::F32(cfg["rope_theta"].as_f64().unwrap() as f32),
        ),
        (
            format!("{arch}.attention.layer_norm_rms_epsilon"),
            Value::F32(cfg["rms_norm_eps"].as_f64().unwrap() as f32),
        ),
    ];
    if gemma {
        md.push((
            format!("{arch}.attention.sliding_window"),
            u("sliding_window"),
        ));
        for k in ["attn_logit_softcapping", "final_logit_softcapping"] {
            md.push((
                format!("{arch}.{k}"),
                Value::F32(cfg[k].as_f64().unwrap() as f32),
            ));
        }
        // The fixture's query_pre_attn_scalar differs from head_dim: say so explicitly.
        let s = cfg["query_pre_attn_scalar"].as_f64().unwrap();
        md.push((
            format!("{arch}.attention.scale"),
            Value::F32((1.0 / s.sqrt()) as f32),
        ));
    }
    let weights =
        candle_core::safetensors::load(fixture(name).join("model.safetensors"), &Device::Cpu)
            .unwrap();
    let mut names: Vec<&String> = weights.keys().collect();
    names.sort();
    let mut tensors = Vec::new();
    for hf in names {
        let mut t = weights[hf].to_dtype(DType::F32).unwrap();
        if gemma && hf.ends_with("norm.weight") {
            t = (t + 1.0).unwrap();
        }
        if arch == "llama" && hf.contains("self_attn.q_proj") {
            t = llama_cpp_permute(&t, n_heads);
        }
        if arch == "llama" && hf.contains("self_attn.k_proj") {
            t = llama_cpp_permute(&t, n_kv);
        }
        tensors.push((llama_cpp_name(hf, gemma), t));
    }
    GgufSpec {
        metadata: md,
        tensors,
    }
}

fn write_gguf(spec: &GgufSpec, dtype: GgmlDType, path: &Path) {
    let q: Vec<(String, QTensor)> = spec
        .tensors
        .iter()
        .map(|(n, t)| {
            let dt = if t.rank() == 1 { GgmlDType::F32 } else { dtype };
            (n.clone(), QTensor::quantize(t, dt).unwrap())
        })
        .collect();
    let md: Vec<(&str, &Value)> = spec.metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let ts: Vec<(&str, &QTensor)> = q.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut f = std::fs::File::create(path).unwrap();
    gguf_file::write(&mut f, &md, &ts).unwrap();
}

fn gguf_of(name: &str, tag: &str) -> PathBuf {
    let p = temp_dir(tag).join(format!("{name}.gguf"));
    write_gguf(&fixture_as_gguf(name), GgmlDType::F32, &p);
    p
}

/// Every fixture that llama.cpp's converter can express (not tiny-mistral: llama.cpp writes
/// Mistral as `llama` and has no sliding window for it).
const GGUF_FIXTURES: &[&str] = &[
    "tiny-gemma2",
    "tiny-gemma2-window",
    "tiny-llama",
    "tiny-qwen2",
    "tiny-qwen3",
];

#[test]
fn gguf_fixtures_give_the_transformers_logits() {
    for name in GGUF_FIXTURES {
        let path = gguf_of(name, "gguf-logits");
        let tok = fixture(name).join("tokenizer.json");
        let (model, tokenizer) =
            headhunt::model::gguf::load(&path, Some(&tok), &Device::Cpu, DType::F32)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        let reference =
            headhunt::model::ModelConfig::from_file(&fixture(name).join("config.json")).unwrap();
        let mut got_cfg = model.cfg.clone();
        got_cfg.checkpoint_dtype = reference.checkpoint_dtype.clone();
        // f32 round trips of the metadata (eps, theta, attention scale) aside, the config is
        // the one config.json gives.
        assert_eq!(got_cfg.layer_sliding, reference.layer_sliding, "{name}");
        assert_eq!(got_cfg.n_kv_heads, reference.n_kv_heads, "{name}");
        assert_eq!(got_cfg.tie_embeddings, reference.tie_embeddings, "{name}");
        assert_eq!(got_cfg.qkv_bias, reference.qkv_bias, "{name}");
        assert_eq!(got_cfg.qk_norm, reference.qk_norm, "{name}");
        assert_eq!(got_cfg.family, reference.family, "{name}");
        assert!(
            (got_cfg.attn_scale - reference.attn_scale).abs() < 1e-6,
            "{name}"
        );
        assert_eq!(
            model
                .quantization
                .as_deref()
                .map(|q| q.starts_with("F32 ×")),
            Some(true)
        );

        let meta: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(fixture(name).join("expected.json")).unwrap(),
        )
        .unwrap();
        let exp = candle_core::safetensors::load(
            fixture(name).join("expected_logits.safetensors"),
            &Device::Cpu,
        )
        .unwrap();
        for (j, text) in meta["texts"].as_array().unwrap().iter().enumerate() {
            let key = if j == 3 {
                "long".to_string()
            } else {
                j.to_string()
            };
            let ids = tokenizer.encode(text.as_str().unwrap()).unwrap();
            let logits = model
                .forward(&model.tokens_tensor(&[ids]).unwrap())
                .unwrap();
            let d = max_abs_diff(&flat(&logits), &flat(&exp[&format!("logits_{key}")]));
            assert!(d <= 1e-4, "{name} text {key}: max |logit diff| = {d}");
        }
    }
}

/// Without undoing llama.cpp's q/k permutation the llama fixture would not match: the test
/// above really checks the permutation (and its direction).
#[test]
fn llama_permutation_matters() {
    let mut spec = fixture_as_gguf("tiny-llama");
    // Store the rows un-permuted: the loader's un-permutation then scrambles them.
    let weights = candle_core::safetensors::load(
        fixture("tiny-llama").join("model.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    for (n, t) in spec.tensors.iter_mut() {
        if n.ends_with("attn_q.weight") || n.ends_with("attn_k.weight") {
            let hf = format!(
                "model.layers.{}.self_attn.{}_proj.weight",
                n.split('.').nth(1).unwrap(),
                if n.contains("attn_q") { "q" } else { "k" }
            );
            *t = weights[&hf].clone();
        }
    }
    let p = temp_dir("gguf-perm").join("m.gguf");
    write_gguf(&spec, GgmlDType::F32, &p);
    let tok = fixture("tiny-llama").join("tokenizer.json");
    let (model, tokenizer) =
        headhunt::model::gguf::load(&p, Some(&tok), &Device::Cpu, DType::F32).unwrap();
    let exp = candle_core::safetensors::load(
        fixture("tiny-llama").join("expected_logits.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("tiny-llama").join("expected.json")).unwrap(),
    )
    .unwrap();
    let ids = tokenizer
        .encode(meta["texts"][0].as_str().unwrap())
        .unwrap();
    let logits = model
        .forward(&model.tokens_tensor(&[ids]).unwrap())
        .unwrap();
    let d = max_abs_diff(&flat(&logits), &flat(&exp["logits_0"]));
    assert!(d > 1e-2, "un-permuted q/k rows changed nothing (diff {d})");
}

/// Quantized storage (Q8_0) dequantizes to within Q8_0's rounding of the f32 weights.
#[test]
fn q8_0_weights_dequantize_close_to_f32() {
    let spec = fixture_as_gguf("tiny-qwen2");
    let p = temp_dir("gguf-q8").join("m.gguf");
    write_gguf(&spec, GgmlDType::Q8_0, &p);
    let f = headhunt::model::gguf::GgufFile::open(&p).unwrap();
    assert!(f.type_summary().contains("Q8_0 ×"), "{}", f.type_summary());
    let (name, want) = spec
        .tensors
        .iter()
        .find(|(n, _)| n == "blk.0.ffn_up.weight")
        .unwrap();
    let got = f.dequantize(name).unwrap();
    assert_eq!(got.dims(), want.dims());
    let d = max_abs_diff(&flat(&got), &flat(want));
    let scale = flat(want).iter().fold(0f32, |m, x| m.max(x.abs()));
    assert!(d <= scale / 100.0, "Q8_0 error {d} vs max |w| {scale}");
    assert!(d > 0.0, "Q8_0 should not be exact");
}

#[test]
fn info_reports_gguf_types() {
    let p = gguf_of("tiny-qwen2", "gguf-info");
    let tok = fixture("tiny-qwen2").join("tokenizer.json");
    let out = Command::new(bin())
        .args(["info", "--model", p.to_str().unwrap(), "--tokenizer"])
        .arg(&tok)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("family      qwen2"), "{stdout}");
    assert!(
        stdout.contains("quantized   F32 ×") && stdout.contains("dequantized to f32"),
        "{stdout}"
    );
}

#[test]
fn truncated_gguf_is_a_one_line_error() {
    let p = gguf_of("tiny-llama", "gguf-trunc");
    let bytes = std::fs::read(&p).unwrap();
    let tok = fixture("tiny-llama").join("tokenizer.json");
    let tok = tok.to_str().unwrap();
    // Cut in the tensor data, then in the header.
    for keep in [bytes.len() * 2 / 3, bytes.len() - 1, 200, 10] {
        let t = p.with_file_name(format!("cut{keep}.gguf"));
        std::fs::write(&t, &bytes[..keep]).unwrap();
        let (code, err) = info(&t, &["--tokenizer", tok]);
        assert_one_line_error(code, &err, &[&format!("cut{keep}.gguf"), "truncated"]);
    }
}

#[test]
fn unsupported_architecture_is_a_one_line_error() {
    let mut spec = fixture_as_gguf("tiny-llama");
    for (k, v) in spec.metadata.iter_mut() {
        if k == "general.architecture" {
            *v = Value::String("gpt2".into());
        }
    }
    let p = temp_dir("gguf-arch").join("m.gguf");
    write_gguf(&spec, GgmlDType::F32, &p);
    let (code, err) = info(&p, &[]);
    assert_one_line_error(
        code,
        &err,
        &["m.gguf", "unsupported architecture", "gpt2", "qwen2"],
    );
}

#[test]
fn missing_tensor_is_a_one_line_error() {
    let mut spec = fixture_as_gguf("tiny-qwen2");
    spec.tensors.retain(|(n, _)| n != "blk.1.ffn_up.weight");
    let p = temp_dir("gguf-missing").join("m.gguf");
    write_gguf(&spec, GgmlDType::F32, &p);
    let tok = fixture("tiny-qwen2").join("tokenizer.json");
    let (code, err) = info(&p, &["--tokenizer", tok.to_str().unwrap()]);
    assert_one_line_error(code, &err, &["m.gguf", "blk.1.ffn_up.weight", "missing"]);
}

#[test]
fn no_tokenizer_anywhere_is_a_one_line_error() {
    // The fixture GGUFs carry no tokenizer metadata.
    let p = gguf_of("tiny-qwen2", "gguf-notok");
    let (code, err) = info(&p, &[]);
    assert_one_line_error(code, &err, &["tokenizer", "--tokenizer"]);
}

#[test]
fn missing_gguf_file_is_a_one_line_error() {
    let (code, err) = info(Path::new("./no/such/model.gguf"), &[]);
    assert_one_line_error(code, &err, &["not found", "no/such/model.gguf"]);
}

/// The tokenizer built from metadata: a small byte-level BPE vocabulary written here.
#[test]
fn gpt2_vocabulary_from_metadata() {
    let mut spec = fixture_as_gguf("tiny-qwen2");
    // Byte-level alphabet for ASCII digits, '+', '=', '\n' (Ġ/Ċ are GPT-2's bytes for ' ', '\n').
    let mut toks: Vec<String> = "0123456789+=".chars().map(|c| c.to_string()).collect();
    toks.push("Ċ".into());
    toks.push("Ġ".into());
    toks.push("12".into());
    toks.push("<|endoftext|>".into());
    let mut types = vec![1i32; toks.len()];
    *types.last_mut().unwrap() = 3;
    let n = toks.len();
    spec.metadata.extend([
        (
            "tokenizer.ggml.model".to_string(),
            Value::String("gpt2".into()),
        ),
        (
            "tokenizer.ggml.pre".to_string(),
            Value::String("qwen2".into()),
        ),
        (
            "tokenizer.ggml.tokens".to_string(),
            Value::Array(toks.iter().map(|t| Value::String(t.clone())).collect()),
        ),
        (
            "tokenizer.ggml.token_type".to_string(),
            Value::Array(types.iter().map(|t| Value::I32(*t)).collect()),
        ),
        (
            "tokenizer.ggml.merges".to_string(),
            Value::Array(vec![Value::String("1 2".into())]),
        ),
        (
            "tokenizer.ggml.bos_token_id".to_string(),
            Value::U32(n as u32 - 1),
        ),
        (
            "tokenizer.ggml.add_bos_token".to_string(),
            Value::Bool(false),
        ),
    ]);
    let p = temp_dir("gguf-vocab").join("m.gguf");
    write_gguf(&spec, GgmlDType::F32, &p);
    let f = headhunt::model::gguf::GgufFile::open(&p).unwrap();
    let tok = headhunt::model::gguf_vocab::tokenizer_from_gguf(&f).unwrap();
    // Qwen2's split isolates single digits, so "12" is never merged; newlines are Ċ.
    assert_eq!(
        tok.encode("12+3=\n<|endoftext|>").unwrap(),
        vec![1, 2, 10, 3, 11, 12, 15]
    );
    assert_eq!(tok.bos, None);
    assert_eq!(tok.decode(&[1, 2, 12]), "12\n");
}

/// GGUF metadata is read like config.json: an `{arch}.*` key headhunt does not read is an
/// error naming it (allowed with the flag, and then printed), a known one is not.
#[test]
fn unknown_gguf_metadata_is_refused_with_its_key() {
    let mut spec = fixture_as_gguf("tiny-qwen2");
    spec.metadata
        .push(("qwen2.expert_count".into(), Value::U32(8)));
    let p = temp_dir("gguf-unknown").join("m.gguf");
    write_gguf(&spec, GgmlDType::F32, &p);
    let tok = fixture("tiny-qwen2").join("tokenizer.json");
    let t = tok.to_str().unwrap();
    let (code, err) = info(&p, &["--tokenizer", t]);
    assert_one_line_error(
        code,
        &err,
        &[
            "m.gguf",
            "`qwen2.expert_count`",
            "--allow-unknown-config-keys",
        ],
    );
    let (code, err) = info(&p, &["--tokenizer", t, "--allow-unknown-config-keys"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("qwen2.expert_count"), "{err}");
    // A vocabulary size that contradicts the embedding is an error too.
    let mut spec = fixture_as_gguf("tiny-qwen2");
    spec.metadata
        .push(("qwen2.vocab_size".into(), Value::U32(51)));
    write_gguf(&spec, GgmlDType::F32, &p);
    let (code, err) = info(&p, &["--tokenizer", t]);
    assert_one_line_error(code, &err, &["qwen2.vocab_size", "51"]);
}
