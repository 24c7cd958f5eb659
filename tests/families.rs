//! Family-specific checks beyond the per-fixture engine and patching tests: the parallel block
//! of GPT-NeoX (tiny-pythia) in the fast algorithm, and its sequential variant.

mod common;

use candle_core::{DType, Device};
use common::*;
use headhunt::data::{load_and_tokenize, DataSpec, TaskKind, TokenizedPair};
use headhunt::model::{self, BlockShape};
use headhunt::patching::{self, Algorithm, PatchSpec, Receiver, Silent};
use std::path::Path;

fn load(dir: &Path) -> model::LoadedModel {
    model::load(dir.to_str().unwrap(), None, &Device::Cpu, DType::F32).unwrap()
}

fn pairs(lm: &model::LoadedModel) -> Vec<TokenizedPair> {
    let spec = DataSpec::new(
        fixture("tiny-pythia").join("addition.jsonl"),
        TaskKind::Addition,
    );
    load_and_tokenize(&spec, &lm.tokenizer).unwrap().pairs
}

fn patched(
    lm: &model::LoadedModel,
    pairs: &[TokenizedPair],
    receiver: &serde_json::Value,
    algorithm: Algorithm,
) -> Vec<Vec<f64>> {
    let spec = PatchSpec {
        receiver: Receiver::from_fixture_json(receiver).unwrap(),
        begin_layer: 0,
        batch_size: 4,
        algorithm,
        chunk_rows: 0,
        metric: Default::default(),
        senders: Default::default(),
    };
    patching::run(&lm.model, pairs, &spec, &mut Silent)
        .unwrap()
        .matrix
        .patched
}

fn max_diff(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    a.iter()
        .flatten()
        .zip(b.iter().flatten())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// tiny-pythia with `use_parallel_residual: false`: the same weights in sequential blocks.
fn sequential_pythia() -> std::path::PathBuf {
    let dir = temp_dir("families-seq-pythia");
    for f in ["model.safetensors", "tokenizer.json"] {
        std::fs::copy(fixture("tiny-pythia").join(f), dir.join(f)).unwrap();
    }
    let mut cfg: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("tiny-pythia").join("config.json")).unwrap(),
    )
    .unwrap();
    cfg["use_parallel_residual"] = serde_json::json!(false);
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    dir
}

/// Receivers whose numbers depend on where a parallel block's MLP reads: heads two layers on,
/// and resid_mid (a hook point of our parallel block, which TransformerLens lacks).
fn receivers() -> Vec<serde_json::Value> {
    vec![
        serde_json::json!(["heads", [[2, 1, "v"], [1, 0, "v"]]]),
        serde_json::json!(["resid", ["resid_post", [1]]]),
        serde_json::json!(["resid", ["resid_mid", [1]]]),
        serde_json::json!(["resid", ["resid_mid", [2]]]),
        serde_json::json!(["resid", ["resid_pre", [2]]]),
    ]
}

/// The fast algorithm equals the literal one on the parallel block (the literal one runs the
/// real block; a fast pass 1 with the sequential formula would feed the sender layer's MLP
/// the patched resid_mid and differ), and on the sequential variant of the same weights.
#[test]
fn fast_equals_literal_for_parallel_and_sequential_blocks() {
    let seq_dir = sequential_pythia();
    for dir in [fixture("tiny-pythia"), seq_dir] {
        let lm = load(&dir);
        let p = pairs(&lm);
        for r in receivers() {
            let fast = patched(&lm, &p, &r, Algorithm::Fast);
            let literal = patched(&lm, &p, &r, Algorithm::Reference);
            let d = max_diff(&fast, &literal);
            assert!(d <= 1e-5, "{} {r}: fast vs literal {d}", dir.display());
        }
    }
}

/// The block shape matters: the sequential variant of tiny-pythia's weights gives other
/// logits than Hugging Face's parallel model and other path patching than TransformerLens',
/// so the fixtures' agreement (engine.rs, patching.rs) shows that the parallel block is run.
#[test]
fn forcing_the_sequential_block_gives_other_numbers() {
    let par = load(&fixture("tiny-pythia"));
    let seq = load(&sequential_pythia());
    assert_eq!(par.model.block_shape(), BlockShape::Parallel);
    assert_eq!(seq.model.block_shape(), BlockShape::Sequential);
    let p = pairs(&par);
    let r = serde_json::json!(["heads", [[2, 1, "v"], [1, 0, "v"]]]);
    let d = max_diff(
        &patched(&par, &p, &r, Algorithm::Fast),
        &patched(&seq, &p, &r, Algorithm::Fast),
    );
    assert!(d > 1e-2, "parallel and sequential blocks agree within {d}");
    let exp = candle_core::safetensors::load(
        fixture("tiny-pythia").join("expected_path_patching.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    let want: Vec<f32> = exp["heads_v_multi_begin0.patched_logit_diff"]
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let got = patched(&seq, &p, &r, Algorithm::Fast);
    let off = got
        .iter()
        .flatten()
        .zip(&want)
        .map(|(a, b)| (a - *b as f64).abs())
        .fold(0.0, f64::max);
    assert!(
        off > 1e-2,
        "sequential pythia matches TransformerLens within {off}"
    );
}

/// GPT-NeoX's config: partial rotary, parallel by default, sequential when asked.
#[test]
fn gpt_neox_config_reads_rotary_and_block() {
    let text = std::fs::read_to_string(fixture("tiny-pythia").join("config.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let c = model::ModelConfig::from_json(&v, "c").unwrap();
    assert_eq!((c.d_head, c.rotary_dim), (16, 4));
    assert_eq!(c.block, BlockShape::Parallel);
    assert_eq!(c.family.name(), "gpt_neox");
    v["use_parallel_residual"] = serde_json::json!(false);
    let c = model::ModelConfig::from_json(&v, "c").unwrap();
    assert_eq!(c.block, BlockShape::Sequential);
    // transformers 4 writes rotary_pct and partial_rotary_factor: they must agree.
    v["partial_rotary_factor"] = serde_json::json!(0.5);
    let e = model::ModelConfig::from_json(&v, "c.json")
        .unwrap_err()
        .to_string();
    assert!(e.contains("`rotary_pct`") && e.contains("disagrees"), "{e}");
    // 16 × 0.2 = 3 rotated dims: rotate-half needs an even number.
    v["partial_rotary_factor"] = serde_json::json!(0.2);
    v["rotary_pct"] = serde_json::json!(0.2);
    let e = model::ModelConfig::from_json(&v, "c.json")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("c.json") && e.contains("`partial_rotary_factor`") && e.contains("rotates 3"),
        "{e}"
    );
}
