//! headhunt's logits against candle-transformers' models (a second, independent
//! implementation in the same language) on the fixtures of the families it has (llama,
//! mistral, qwen2, qwen3, gemma2; it has no GPT-2 or GPT-NeoX model). Last position, f32.

mod common;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::{gemma2, llama, mistral, qwen2, qwen3};
use common::*;
use headhunt::model;

/// The model folder both sides load. candle-transformers' Gemma-2 scales attention by
/// 1/sqrt(head_dim) whatever `query_pre_attn_scalar` says (tiny-gemma2's is 24, head_dim 16),
/// so that comparison runs on a copy of the fixture with the scalar set to head_dim (the
/// scalar itself is checked against Hugging Face in engine.rs).
fn model_dir(name: &str) -> std::path::PathBuf {
    if name != "tiny-gemma2" {
        return fixture(name);
    }
    let dir = temp_dir("ct-gemma2");
    for f in ["model.safetensors", "tokenizer.json", "expected.json"] {
        std::fs::copy(fixture(name).join(f), dir.join(f)).unwrap();
    }
    let text = std::fs::read_to_string(fixture(name).join("config.json")).unwrap();
    let mut cfg: serde_json::Value = serde_json::from_str(&text).unwrap();
    cfg["query_pre_attn_scalar"] = cfg["head_dim"].clone();
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    dir
}

/// The folder's config.json parsed as candle-transformers' config type.
fn config<T: serde::de::DeserializeOwned>(dir: &std::path::Path) -> T {
    let text = std::fs::read_to_string(dir.join("config.json")).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

fn weights(dir: &std::path::Path) -> VarBuilder<'static> {
    let path = dir.join("model.safetensors");
    // Safety: the fixture files are not modified while the test runs.
    unsafe { VarBuilder::from_mmaped_safetensors(&[path], DType::F32, &Device::Cpu).unwrap() }
}

/// candle-transformers' last-position logits [vocab] for `ids`.
fn theirs(name: &str, dir: &std::path::Path, ids: &Tensor) -> Vec<f32> {
    let vb = weights(dir);
    let out = match name {
        "tiny-llama" => {
            let cfg = config::<llama::LlamaConfig>(dir).into_config(false);
            let m = llama::Llama::load(vb, &cfg).unwrap();
            let mut cache = llama::Cache::new(false, DType::F32, &cfg, &Device::Cpu).unwrap();
            m.forward(ids, 0, &mut cache).unwrap()
        }
        "tiny-mistral" => {
            let cfg: mistral::Config = config(dir);
            mistral::Model::new(&cfg, vb)
                .unwrap()
                .forward(ids, 0)
                .unwrap()
        }
        "tiny-qwen2" => {
            let cfg: qwen2::Config = config(dir);
            qwen2::ModelForCausalLM::new(&cfg, vb)
                .unwrap()
                .forward(ids, 0)
                .unwrap()
        }
        "tiny-qwen3" => {
            let cfg: qwen3::Config = config(dir);
            qwen3::ModelForCausalLM::new(&cfg, vb)
                .unwrap()
                .forward(ids, 0)
                .unwrap()
        }
        "tiny-gemma2" => {
            let cfg: gemma2::Config = config(dir);
            gemma2::Model::new(false, &cfg, vb)
                .unwrap()
                .forward(ids, 0)
                .unwrap()
        }
        other => panic!("no candle-transformers model for {other}"),
    };
    out.flatten_all().unwrap().to_vec1().unwrap()
}

#[test]
fn logits_agree_with_candle_transformers() {
    for name in [
        "tiny-llama",
        "tiny-mistral",
        "tiny-qwen2",
        "tiny-qwen3",
        "tiny-gemma2",
    ] {
        let dir = model_dir(name);
        let lm = model::load(dir.to_str().unwrap(), None, &Device::Cpu, DType::F32).unwrap();
        let meta: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(fixture(name).join("expected.json")).unwrap(),
        )
        .unwrap();
        let mut worst = 0f32;
        for text in meta["texts"].as_array().unwrap() {
            let ids = lm.tokenizer.encode(text.as_str().unwrap()).unwrap();
            let tokens = lm.model.tokens_tensor(std::slice::from_ref(&ids)).unwrap();
            let ours = lm.model.forward(&tokens).unwrap();
            let last: Vec<f32> = ours
                .narrow(1, ids.len() - 1, 1)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let d = max_abs_diff(&last, &theirs(name, &dir, &tokens));
            assert!(d <= 1e-4, "{name} {text}: max |logit diff| = {d}");
            worst = worst.max(d);
        }
        eprintln!("{name}: max |logit diff| vs candle-transformers {worst:.2e}");
    }
}
