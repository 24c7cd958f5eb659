//! Bad model input: every case gives a one-line error naming what is wrong and exit code 2.

mod common;

use candle_core::{Device, Tensor};
use common::*;
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

/// Copies a fixture to a temporary folder that a test may break.
fn copy_fixture(name: &str, tag: &str) -> std::path::PathBuf {
    let dst = temp_dir(tag);
    for entry in std::fs::read_dir(fixture(name)).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, dst.join(p.file_name().unwrap())).unwrap();
    }
    dst
}

fn rewrite_weights(dir: &Path, f: impl FnOnce(&mut HashMap<String, Tensor>)) {
    let path = dir.join("model.safetensors");
    let mut t = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
    f(&mut t);
    candle_core::safetensors::save(&t, &path).unwrap();
}

#[test]
fn missing_directory() {
    let (code, err) = info(Path::new("./no/such/model-dir"), &[]);
    assert_one_line_error(code, &err, &["not found", "no/such/model-dir"]);
}

#[test]
fn missing_config() {
    let d = copy_fixture("tiny-llama", "noconfig");
    std::fs::remove_file(d.join("config.json")).unwrap();
    let (code, err) = info(&d, &[]);
    assert_one_line_error(code, &err, &["config.json"]);
}

#[test]
fn missing_tokenizer() {
    let d = copy_fixture("tiny-llama", "notok");
    std::fs::remove_file(d.join("tokenizer.json")).unwrap();
    let (code, err) = info(&d, &[]);
    assert_one_line_error(code, &err, &["tokenizer.json"]);
}

#[test]
fn unsupported_model_type() {
    let d = copy_fixture("tiny-llama", "badtype");
    let cfg = std::fs::read_to_string(d.join("config.json")).unwrap();
    std::fs::write(d.join("config.json"), cfg.replace("\"llama\"", "\"bloom\"")).unwrap();
    let (code, err) = info(&d, &[]);
    assert_one_line_error(
        code,
        &err,
        &["bloom", "gemma2", "llama", "mistral", "qwen2"],
    );
}

#[test]
fn missing_tensor() {
    let d = copy_fixture("tiny-llama", "missingtensor");
    rewrite_weights(&d, |t| {
        t.remove("model.layers.2.mlp.up_proj.weight").unwrap();
    });
    let (code, err) = info(&d, &[]);
    assert_one_line_error(
        code,
        &err,
        &["model.layers.2.mlp.up_proj.weight", "missing"],
    );
}

#[test]
fn tensor_of_wrong_shape() {
    let d = copy_fixture("tiny-qwen2", "wrongshape");
    rewrite_weights(&d, |t| {
        let bad = Tensor::zeros((3, 64), candle_core::DType::F32, &Device::Cpu).unwrap();
        t.insert("model.layers.1.self_attn.k_proj.weight".into(), bad);
    });
    let (code, err) = info(&d, &[]);
    assert_one_line_error(
        code,
        &err,
        &[
            "model.layers.1.self_attn.k_proj.weight",
            "[3, 64]",
            "[32, 64]",
        ],
    );
}

#[test]
fn truncated_safetensors() {
    let d = copy_fixture("tiny-gemma2", "truncated");
    let p = d.join("model.safetensors");
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    let (code, err) = info(&d, &[]);
    assert_one_line_error(code, &err, &["model.safetensors", "truncated"]);
}

#[test]
fn invalid_config_json() {
    let d = copy_fixture("tiny-mistral", "badjson");
    std::fs::write(d.join("config.json"), "{\"model_type\": \"mistral\", ").unwrap();
    let (code, err) = info(&d, &[]);
    assert_one_line_error(code, &err, &["config.json", "invalid JSON"]);
}

#[test]
fn info_prints_the_architecture() {
    let out = Command::new(bin())
        .args(["info", "--model", fixture("tiny-gemma2").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let s = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "family      gemma2",
        "layers      4",
        "kv heads    2",
        "d_head      16",
        "vocab       50",
    ] {
        assert!(s.contains(needle), "{s}");
    }
}

#[test]
fn run_prints_tokens_and_top_next_tokens() {
    let out = Command::new(bin())
        .args([
            "run",
            "--model",
            fixture("tiny-llama").to_str().unwrap(),
            "--prompt",
            "1+2=",
            "--top",
            "3",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = String::from_utf8(out.stdout).unwrap();
    assert!(
        s.contains("tokens (5):") && s.contains("<bos>") && s.contains("next token (top 3):"),
        "{s}"
    );
}

#[test]
fn check_command_passes_on_cpu() {
    let out = Command::new(bin())
        .args(["check", "--fixtures", fixtures_dir().to_str().unwrap()])
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{s}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        s.contains("tiny-gemma2-window")
            && s.contains("path patching (8 receivers)")
            && s.contains("ok: largest difference"),
        "{s}"
    );
    // A tolerance nothing can meet makes it fail with exit code 1.
    let out = Command::new(bin())
        .args([
            "check",
            "--fixtures",
            fixtures_dir().to_str().unwrap(),
            "--tolerance",
            "1e-12",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

/// A checkpoint split into shards with `model.safetensors.index.json` loads to the same logits.
#[test]
fn sharded_safetensors_load_the_same() {
    let d = copy_fixture("tiny-llama", "sharded");
    let path = d.join("model.safetensors");
    let all = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
    std::fs::remove_file(&path).unwrap();
    let mut names: Vec<&String> = all.keys().collect();
    names.sort();
    let a: Vec<&String> = names.iter().step_by(2).copied().collect();
    let b: Vec<&String> = names.iter().skip(1).step_by(2).copied().collect();
    let mut map = serde_json::Map::new();
    for (file, part) in [
        ("model-00001-of-00002.safetensors", a),
        ("model-00002-of-00002.safetensors", b),
    ] {
        let tensors: HashMap<String, Tensor> = part
            .iter()
            .map(|n| ((*n).clone(), all[*n].clone()))
            .collect();
        for n in tensors.keys() {
            map.insert(n.clone(), serde_json::Value::from(file));
        }
        candle_core::safetensors::save(&tensors, d.join(file)).unwrap();
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": map});
    std::fs::write(d.join("model.safetensors.index.json"), index.to_string()).unwrap();
    let dev = Device::Cpu;
    let sharded =
        headhunt::model::load(d.to_str().unwrap(), None, &dev, candle_core::DType::F32).unwrap();
    let single = headhunt::model::load(
        fixture("tiny-llama").to_str().unwrap(),
        None,
        &dev,
        candle_core::DType::F32,
    )
    .unwrap();
    let ids = single.tokenizer.encode("1+2=3\n2+2=").unwrap();
    let t = single.model.tokens_tensor(&[ids]).unwrap();
    let x: Vec<f32> = sharded
        .model
        .forward(&t)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let y: Vec<f32> = single
        .model
        .forward(&t)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    assert_eq!(x, y);
    assert_eq!(sharded.model.n_params, single.model.n_params);
    // A shard listed in the index but missing is named.
    std::fs::remove_file(d.join("model-00002-of-00002.safetensors")).unwrap();
    let (code, err) = info(&d, &[]);
    assert_one_line_error(code, &err, &["model-00002-of-00002.safetensors", "missing"]);
}

/// A hub id resolves in the Hugging Face cache layout (HF_HUB_CACHE), offline.
#[test]
fn hub_id_resolves_in_the_cache_offline() {
    let cache = temp_dir("hfcache");
    let repo = cache.join("models--tiny-org--tiny-qwen2");
    let snap = repo.join("snapshots").join("0123abcd");
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), "0123abcd").unwrap();
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(fixture("tiny-qwen2").join(f), snap.join(f)).unwrap();
    }
    let out = Command::new(bin())
        .args(["info", "--model", "tiny-org/tiny-qwen2"])
        .env("HF_HUB_CACHE", &cache)
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{s}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        s.contains("model       tiny-org/tiny-qwen2") && s.contains("family      qwen2"),
        "{s}"
    );
    // A revision that is a commit in snapshots/ works too; an unknown one is a one-line error.
    let out = Command::new(bin())
        .args(["info", "--model", "tiny-org/tiny-qwen2@0123abcd"])
        .env("HF_HUB_CACHE", &cache)
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = Command::new(bin())
        .args(["info", "--model", "tiny-org/other"])
        .env("HF_HUB_CACHE", &cache)
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_one_line_error(
        out.status.code().unwrap(),
        &err,
        &["tiny-org/other", "HF_HUB_OFFLINE"],
    );
}

#[test]
fn f16_runs() {
    let lm = headhunt::model::load(
        fixture("tiny-gemma2").to_str().unwrap(),
        None,
        &Device::Cpu,
        candle_core::DType::F16,
    )
    .unwrap();
    let ids = lm.tokenizer.encode("1+2=3\n2+2=").unwrap();
    let logits = lm
        .model
        .forward(&lm.model.tokens_tensor(&[ids]).unwrap())
        .unwrap();
    let v: Vec<f32> = logits
        .to_dtype(candle_core::DType::F32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    assert!(v.iter().all(|x| x.is_finite()));
}

/// f64 runs give the exact-arithmetic reference `check --dtype f64` reports.
#[test]
fn check_in_f64_reports_r() {
    let out = Command::new(bin())
        .args([
            "check",
            "--fixtures",
            fixtures_dir().to_str().unwrap(),
            "--dtype",
            "f64",
        ])
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{s}");
    assert!(
        s.contains("in f64") && s.contains(" r ") && s.contains("(scaled "),
        "{s}"
    );
}
