//! `mlp_in:L` receivers (issue #24): the fast and the literal algorithm against TransformerLens
//! 2.16.1 running path patching to `blocks.L.hook_mlp_in` (`tests/data/positions`, made by
//! `scripts/fixtures/make_position_refs.py`), per example and metric, with head and MLP
//! senders, on tiny-llama, tiny-pythia (parallel block: the MLP reads resid_pre, so the
//! receiver layer's heads do not reach it) and tiny-gpt2; and the test's own power: patching the
//! residual stream instead of the MLP's input is caught.

mod common;

use candle_core::{Device, Tensor};
use common::*;
use headhunt::data::TokenizedPair;
use headhunt::model::{self, Model};
use headhunt::patching::batch::{cache_batch_with, make_batches};
use headhunt::patching::{fast, reference, ChunkValues, Metric, Receiver, Senders};
use std::collections::HashMap;
use std::path::PathBuf;

const FIXTURES: [&str; 3] = ["tiny-llama", "tiny-pythia", "tiny-gpt2"];

fn load(name: &str) -> (model::LoadedModel, Vec<TokenizedPair>) {
    fixture_and_addition(name)
}

fn refs_of(name: &str) -> (serde_json::Value, HashMap<String, Tensor>) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/positions");
    let meta =
        serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap())
            .unwrap();
    let refs =
        candle_core::safetensors::load(dir.join(format!("{name}.safetensors")), &Device::Cpu)
            .unwrap();
    (meta, refs)
}

/// Per example, per sender layer: (MLP sender's metric, head senders' metrics), in batches of
/// 3 (batches differ in size and first differing position).
fn sweep(
    m: &Model,
    pairs: &[TokenizedPair],
    receiver: &Receiver,
    metric: Metric,
    fast_algorithm: bool,
) -> Vec<Vec<(f32, Vec<f32>)>> {
    let n = m.n_layers();
    let layers: Vec<usize> = (0..n).collect();
    let s = Senders::HeadsAndMlp;
    let mut out = vec![Vec::new(); pairs.len()];
    for batch in make_batches(m, pairs, 3).unwrap() {
        let v: ChunkValues = if fast_algorithm {
            let mut nd = fast::needs(m, &batch, receiver, 0);
            nd.mlp = true;
            let cache = cache_batch_with(m, &batch, Some(&nd), metric, true).unwrap();
            fast::sweep_chunk_senders(m, &batch, &cache, receiver, &layers, s).unwrap()
        } else {
            let cache = cache_batch_with(m, &batch, None, metric, true).unwrap();
            reference::sweep_chunk_senders(m, &batch, &cache, receiver, &layers, s).unwrap()
        };
        let (heads, mlp) = (v.heads.unwrap(), v.mlp.unwrap());
        for (i, &e) in batch.examples.iter().enumerate() {
            out[e] = (0..n)
                .map(|l| (mlp[l][i], heads[l].iter().map(|h| h[i]).collect()))
                .collect();
        }
    }
    out
}

/// The largest |ours − TransformerLens| over every example, sender layer and sender.
fn max_diff(ours: &[Vec<(f32, Vec<f32>)>], refs: &HashMap<String, Tensor>, key: &str) -> f64 {
    let heads = refs[&format!("{key}.head_patched")]
        .to_vec3::<f64>()
        .unwrap();
    let mlp = refs[&format!("{key}.mlp_patched")]
        .to_vec2::<f64>()
        .unwrap();
    let mut worst = 0f64;
    for (e, row) in ours.iter().enumerate() {
        for (l, (x, hs)) in row.iter().enumerate() {
            worst = worst.max((*x as f64 - mlp[e][l]).abs());
            for (h, y) in hs.iter().enumerate() {
                worst = worst.max((*y as f64 - heads[e][l][h]).abs());
            }
        }
    }
    worst
}

fn receiver(meta: &serde_json::Value, case: &str, m: &Model) -> Receiver {
    let text = meta["cases"][case]["receiver"].as_str().unwrap();
    Receiver::parse_one(text)
        .unwrap()
        .for_block(m.block_shape())
}

#[test]
fn mlp_in_matches_transformerlens_per_example() {
    for name in FIXTURES {
        let (lm, pairs) = load(name);
        let (meta, refs) = refs_of(name);
        for case in ["mlp_in_last", "mlp_in_1"] {
            let r = receiver(&meta, case, &lm.model);
            for metric in Metric::ALL {
                for fast_algorithm in [true, false] {
                    let ours = sweep(&lm.model, &pairs, &r, metric, fast_algorithm);
                    let d = max_diff(&ours, &refs, &format!("{case}.{}", metric.name()));
                    eprintln!("{name} {case} {metric} fast={fast_algorithm}: max |diff| {d:.2e}");
                    assert!(d < 1e-4, "{name} {case} {metric}: max |diff| {d:e}");
                }
            }
        }
    }
}

/// Which senders reach `mlp_in:L`: heads of layer L in a sequential block (the MLP reads
/// resid_mid), not in a parallel one (it reads resid_pre); the MLP of layer L never. The
/// references agree: unreached senders keep the contrast value, reached ones move it.
#[test]
fn reachability_follows_the_block_shape() {
    for name in FIXTURES {
        let (lm, _) = load(name);
        let (meta, refs) = refs_of(name);
        let r = receiver(&meta, "mlp_in_1", &lm.model);
        let parallel = meta["parallel_block"].as_bool().unwrap();
        assert_eq!(r.reachable_from(1), !parallel, "{name}");
        assert!(r.reachable_from(0) && !r.reachable_from(2), "{name}");
        assert!(
            r.mlp_reachable_from(0) && !r.mlp_reachable_from(1),
            "{name}"
        );
        let heads = refs["mlp_in_1.logit-diff.head_patched"]
            .to_vec3::<f64>()
            .unwrap();
        let mlp = refs["mlp_in_1.logit-diff.mlp_patched"]
            .to_vec2::<f64>()
            .unwrap();
        let contrast = refs["logit-diff.contrast"].to_vec1::<f64>().unwrap();
        let moved = |x: f64, e: usize| (x - contrast[e]).abs() > 1e-4;
        let layer1_moves = (0..8).any(|e| heads[e][1].iter().any(|&x| moved(x, e)));
        assert_eq!(layer1_moves, !parallel, "{name}: layer-1 heads vs mlp_in:1");
        assert!((0..8).all(|e| !moved(mlp[e][1], e)), "{name}: MLP 1");
        assert!((0..8).any(|e| moved(mlp[e][0], e)), "{name}: MLP 0");
    }
}

/// Patching the residual stream where the MLP reads it (resid_mid, or resid_pre in a
/// parallel block) instead of the MLP's input alone gives other numbers, and the comparison
/// with TransformerLens catches it.
#[test]
fn patching_the_residual_stream_instead_is_caught() {
    for name in FIXTURES {
        let (lm, pairs) = load(name);
        let (meta, refs) = refs_of(name);
        let parallel = meta["parallel_block"].as_bool().unwrap();
        let wrong = Receiver::parse_one(if parallel {
            "resid_pre:1"
        } else {
            "resid_mid:1"
        })
        .unwrap();
        let ours = sweep(&lm.model, &pairs, &wrong, Metric::LogitDiff, true);
        let d = max_diff(&ours, &refs, "mlp_in_1.logit-diff");
        assert!(
            d > 1e-3,
            "{name}: the residual stream patch was not caught ({d:e})"
        );
    }
}

/// The receiver's text, label, slug and JSON form.
#[test]
fn mlp_in_receiver_texts() {
    let r = Receiver::parse_one("mlp_in:12").unwrap();
    assert_eq!(r.cli_text(), "mlp_in:12");
    assert_eq!(r.label(), "mlp_in 12");
    assert_eq!(r.slug(), "mlp_in_12");
    assert_eq!(r.max_layer(), 12);
    assert!(Receiver::parse_one("mlp_in:3,4").is_err());
    assert!(Receiver::parse_one("mlp_in:x").is_err());
    assert!(r.validate(12, 4).is_err() && r.validate(13, 4).is_ok());
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["type"], "mlp_in");
    let back: Receiver = serde_json::from_value(json).unwrap();
    assert_eq!(back, r);
}
