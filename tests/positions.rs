//! Position sets (issue #24 item 2): senders patched only at some positions of the contrast
//! prompt, receivers written in pass 2 only at some positions. The fast and the literal
//! algorithm against TransformerLens 2.16.1 (`tests/data/positions`, made by
//! `scripts/fixtures/make_position_refs.py`), per example and metric, on tiny-llama,
//! tiny-pythia (parallel block) and tiny-gpt2: a q receiver at `@last`, head and MLP senders
//! at position -2 only, a residual receiver at each demonstration's answer (`@role:answers`)
//! and `mlp_in:1@last`. Each case is also checked to differ from the same sweep without its
//! positions, so a sweep that ignored them would fail.

mod common;

use candle_core::{DType, Device, Tensor};
use common::*;
use headhunt::data::{self, DataSpec, PositionSet, TaskKind, TokenizedPair};
use headhunt::model::{self, Model};
use headhunt::patching::batch::{cache_batch_with, make_batches};
use headhunt::patching::{fast, reference, ChunkValues, Metric, Receiver, Senders};
use std::collections::HashMap;
use std::path::PathBuf;

const FIXTURES: [&str; 3] = ["tiny-llama", "tiny-pythia", "tiny-gpt2"];
const CASES: [&str; 5] = [
    "q_last",
    "sender_pos",
    "role_answers",
    "mlp_in_1_last",
    "plain_2_1_v",
];

struct Fixture {
    lm: model::LoadedModel,
    spec: DataSpec,
    pairs: Vec<TokenizedPair>,
    meta: serde_json::Value,
    refs: HashMap<String, Tensor>,
}

fn load(name: &str) -> Fixture {
    let lm = model::load(
        fixture(name).to_str().unwrap(),
        None,
        &Device::Cpu,
        DType::F32,
    )
    .unwrap();
    let spec = DataSpec::new(fixture(name).join("addition.jsonl"), TaskKind::Addition);
    let pairs = data::load_and_tokenize(&spec, &lm.tokenizer).unwrap().pairs;
    assert_eq!(pairs.len(), 8);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/positions");
    let meta =
        serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap())
            .unwrap();
    let refs =
        candle_core::safetensors::load(dir.join(format!("{name}.safetensors")), &Device::Cpu)
            .unwrap();
    Fixture {
        lm,
        spec,
        pairs,
        meta,
        refs,
    }
}

/// The pairs with the case's position sets resolved on them, its receiver and senders, as the
/// command line resolves `--receiver TEXT@SET` and `--sender-positions SET`.
fn case_of(f: &Fixture, case: &str) -> (Vec<TokenizedPair>, Receiver, Senders) {
    let c = &f.meta["cases"][case];
    let (receiver, sets) =
        Receiver::parse_positioned(&[c["receiver"].as_str().unwrap().to_string()]).unwrap();
    let receiver = receiver.for_block(f.lm.model.block_shape());
    let tok = &f.lm.tokenizer;
    let sender = c["sender_positions"]
        .as_str()
        .map(|s| PositionSet::parse(s, tok).unwrap());
    let sets: Vec<Option<PositionSet>> = sets
        .iter()
        .map(|s| s.as_ref().map(|s| PositionSet::parse(s, tok).unwrap()))
        .collect();
    let tokenized = data::Tokenized {
        pairs: f.pairs.clone(),
        skipped: Vec::new(),
        multi_token_answers: Vec::new(),
    };
    let roles = data::token_roles(&f.spec, tok, &tokenized).unwrap();
    let pairs = data::with_positions(&f.pairs, &roles, sender.as_ref(), &sets).unwrap();
    let senders = match c["senders"].as_str().unwrap() {
        "heads" => Senders::Heads,
        _ => Senders::HeadsAndMlp,
    };
    (pairs, receiver, senders)
}

/// Per example, per sender layer: (MLP sender's metric if swept, head senders' metrics), in
/// batches of 3.
fn sweep(
    m: &Model,
    pairs: &[TokenizedPair],
    receiver: &Receiver,
    senders: Senders,
    metric: Metric,
    fast_algorithm: bool,
) -> Vec<Vec<(Option<f32>, Vec<f32>)>> {
    let n = m.n_layers();
    let layers: Vec<usize> = (0..n).collect();
    let mut out = vec![Vec::new(); pairs.len()];
    for batch in make_batches(m, pairs, 3).unwrap() {
        let v: ChunkValues = if fast_algorithm {
            let mut nd = fast::needs(m, &batch, receiver, 0);
            nd.mlp = senders.mlp();
            let cache = cache_batch_with(m, &batch, Some(&nd), metric, nd.mlp).unwrap();
            fast::sweep_chunk_senders(m, &batch, &cache, receiver, &layers, senders).unwrap()
        } else {
            let cache = cache_batch_with(m, &batch, None, metric, senders.mlp()).unwrap();
            reference::sweep_chunk_senders(m, &batch, &cache, receiver, &layers, senders).unwrap()
        };
        let heads = v.heads.unwrap();
        for (i, &e) in batch.examples.iter().enumerate() {
            out[e] = (0..n)
                .map(|l| {
                    let mlp = v.mlp.as_ref().map(|x| x[l][i]);
                    (mlp, heads[l].iter().map(|h| h[i]).collect())
                })
                .collect();
        }
    }
    out
}

/// The largest |ours − TransformerLens| over every example, sender layer and sender.
fn max_diff(
    ours: &[Vec<(Option<f32>, Vec<f32>)>],
    refs: &HashMap<String, Tensor>,
    key: &str,
) -> f64 {
    let heads = refs[&format!("{key}.head_patched")]
        .to_vec3::<f64>()
        .unwrap();
    let mlp = refs
        .get(&format!("{key}.mlp_patched"))
        .map(|t| t.to_vec2::<f64>().unwrap());
    let mut worst = 0f64;
    for (e, row) in ours.iter().enumerate() {
        for (l, (x, hs)) in row.iter().enumerate() {
            if let (Some(x), Some(m)) = (x, &mlp) {
                worst = worst.max((*x as f64 - m[e][l]).abs());
            }
            for (h, y) in hs.iter().enumerate() {
                worst = worst.max((*y as f64 - heads[e][l][h]).abs());
            }
        }
    }
    worst
}

#[test]
fn position_sets_match_transformerlens_per_example() {
    for name in FIXTURES {
        let f = load(name);
        for case in CASES {
            let (pairs, receiver, senders) = case_of(&f, case);
            for metric in Metric::ALL {
                for fast_algorithm in [true, false] {
                    let m = &f.lm.model;
                    let ours = sweep(m, &pairs, &receiver, senders, metric, fast_algorithm);
                    let d = max_diff(&ours, &f.refs, &format!("{case}.{}", metric.name()));
                    eprintln!("{name} {case} {metric} fast={fast_algorithm}: max |diff| {d:.2e}");
                    assert!(d < 1e-4, "{name} {case} {metric}: max |diff| {d:e}");
                }
            }
        }
    }
}

/// The same sweeps with the positions dropped differ from the references: the tests above
/// would catch an algorithm that ignored them.
#[test]
fn ignoring_the_positions_is_caught() {
    for name in FIXTURES {
        let f = load(name);
        for case in ["q_last", "sender_pos", "role_answers", "mlp_in_1_last"] {
            // A q at layer 2 of a 3-layer model is read only where it is: its other positions
            // reach no later layer, and the last position's logits are the same either way.
            if case == "q_last" && f.lm.model.n_layers() == 3 {
                continue;
            }
            let (_, receiver, senders) = case_of(&f, case);
            let m = &f.lm.model;
            let ours = sweep(m, &f.pairs, &receiver, senders, Metric::LogitDiff, true);
            let d = max_diff(&ours, &f.refs, &format!("{case}.logit-diff"));
            assert!(
                d > 1e-3,
                "{name} {case}: positions ignored but not caught ({d:e})"
            );
        }
    }
}
