//! MLP senders (issue #24): the fast and the literal algorithm against TransformerLens 2.16.1
//! running path patching with `blocks.{l}.hook_mlp_out` as the sender (`tests/data/mlp`, made by
//! `scripts/fixtures/make_mlp_refs.py`), per example, on four families incl. the parallel-block
//! one and Gemma-2's post-MLP norm; the fast algorithm against the literal one on receivers
//! TransformerLens cannot hook in every family; and the test's own power: an MLP sender given
//! the wrong run's output is caught.

mod common;

use candle_core::{Device, Tensor};
use common::*;
use headhunt::data::TokenizedPair;
use headhunt::model::{self, Capture, HookName, HookPoint, Hooks, Model, RunOptions, Start};
use headhunt::patching::batch::{cache_batch_with, make_batches, BatchCache};
use headhunt::patching::{fast, reference, ChunkValues, Metric, Receiver, Senders};
use std::collections::HashMap;
use std::path::PathBuf;

const FIXTURES: [&str; 4] = ["tiny-llama", "tiny-pythia", "tiny-gemma2", "tiny-gpt2"];

fn refs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/mlp")
}

fn load(name: &str) -> (model::LoadedModel, Vec<TokenizedPair>) {
    fixture_and_addition(name)
}

/// Which algorithm, and how it is fed.
#[derive(Clone, Copy, Debug)]
enum Run {
    /// The fast algorithm, every sender layer advancing together.
    FastChunk,
    /// The fast algorithm, one sender layer at a time.
    FastLayers,
    Literal,
}

/// Per example, per sender layer: (MLP sender's metric, head senders' metrics), over batches
/// of 3 (so batches differ in size and first differing position). `tamper` may change each
/// batch's cache before the sweep.
fn sweep(
    m: &Model,
    pairs: &[TokenizedPair],
    receiver: &Receiver,
    metric: Metric,
    run: Run,
    tamper: &dyn Fn(&Model, &headhunt::patching::batch::Batch, &mut BatchCache),
) -> Vec<Vec<(f32, Vec<f32>)>> {
    let n = m.n_layers();
    let layers: Vec<usize> = (0..n).collect();
    let mut out = vec![Vec::new(); pairs.len()];
    for batch in make_batches(m, pairs, 3).unwrap() {
        let needs = match run {
            Run::Literal => None,
            _ => {
                let mut nd = fast::needs(m, &batch, receiver, 0);
                nd.mlp = true;
                Some(nd)
            }
        };
        let mut cache = cache_batch_with(m, &batch, needs.as_ref(), metric, true).unwrap();
        tamper(m, &batch, &mut cache);
        let s = Senders::HeadsAndMlp;
        let v: ChunkValues = match run {
            Run::FastChunk => fast::sweep_chunk_senders(m, &batch, &cache, receiver, &layers, s),
            Run::FastLayers => {
                let mut all = ChunkValues {
                    heads: Some(Vec::new()),
                    mlp: Some(Vec::new()),
                };
                for &l in &layers {
                    let one =
                        fast::sweep_chunk_senders(m, &batch, &cache, receiver, &[l], s).unwrap();
                    all.heads.as_mut().unwrap().extend(one.heads.unwrap());
                    all.mlp.as_mut().unwrap().extend(one.mlp.unwrap());
                }
                Ok(all)
            }
            Run::Literal => reference::sweep_chunk_senders(m, &batch, &cache, receiver, &layers, s),
        }
        .unwrap();
        let (heads, mlp) = (v.heads.unwrap(), v.mlp.unwrap());
        for (i, &e) in batch.examples.iter().enumerate() {
            out[e] = (0..n)
                .map(|l| (mlp[l][i], heads[l].iter().map(|h| h[i]).collect()))
                .collect();
        }
    }
    out
}

fn no_tamper(_: &Model, _: &headhunt::patching::batch::Batch, _: &mut BatchCache) {}

/// The largest |ours − TransformerLens| over every example and MLP sender layer, and over the
/// head senders of layer 0 (swept in the same batch as the MLPs).
fn max_diff(
    ours: &[Vec<(f32, Vec<f32>)>],
    refs: &HashMap<String, Tensor>,
    key: &str,
    metric: &str,
) -> f64 {
    let want = refs[&format!("{key}.{metric}.mlp_patched")]
        .to_vec2::<f64>()
        .unwrap();
    let mut worst = 0f64;
    for (e, row) in ours.iter().enumerate() {
        for (l, (x, _)) in row.iter().enumerate() {
            worst = worst.max((*x as f64 - want[e][l]).abs());
        }
    }
    if metric == "logit-diff" {
        let heads = refs[&format!("{key}.logit-diff.head_patched_layer0")]
            .to_vec2::<f64>()
            .unwrap();
        for (e, row) in ours.iter().enumerate() {
            for (h, x) in row[0].1.iter().enumerate() {
                worst = worst.max((*x as f64 - heads[e][h]).abs());
            }
        }
    }
    worst
}

fn refs_of(name: &str) -> (serde_json::Value, HashMap<String, Tensor>) {
    let meta = serde_json::from_str(
        &std::fs::read_to_string(refs_dir().join(format!("{name}.json"))).unwrap(),
    )
    .unwrap();
    let refs = candle_core::safetensors::load(
        refs_dir().join(format!("{name}.safetensors")),
        &Device::Cpu,
    )
    .unwrap();
    (meta, refs)
}

fn receiver_of(r: &serde_json::Value) -> Receiver {
    Receiver::parse_many(&[r["headhunt"].as_str().unwrap().to_string()]).unwrap()
}

#[test]
fn mlp_senders_match_transformerlens_per_example() {
    for name in FIXTURES {
        let (lm, pairs) = load(name);
        let (meta, refs) = refs_of(name);
        for (key, r) in meta["receivers"].as_object().unwrap() {
            let receiver = receiver_of(r);
            for metric in Metric::ALL {
                for run in [Run::FastChunk, Run::FastLayers, Run::Literal] {
                    let ours = sweep(&lm.model, &pairs, &receiver, metric, run, &no_tamper);
                    let d = max_diff(&ours, &refs, key, metric.name());
                    eprintln!("{name} {key} {metric} {run:?}: max |diff| {d:.2e}");
                    assert!(d < 1e-4, "{name} {key} {metric} {run:?}: max |diff| {d:e}");
                }
            }
        }
    }
}

/// The contrast run's MLP outputs of a batch, as the cache keeps the normal run's (from the
/// cache's first position on).
fn contrast_mlp_outs(m: &Model, batch: &headhunt::patching::batch::Batch, c: &mut BatchCache) {
    let names: Vec<HookName> = (0..m.n_layers())
        .map(|l| HookName::Layer(l, HookPoint::MlpOut))
        .collect();
    let mut hooks = Hooks::capture(Capture::only(names));
    m.run(
        Start::Tokens(&batch.contrast),
        RunOptions::default(),
        &mut hooks,
    )
    .unwrap();
    for l in 0..m.n_layers() {
        if c.mlp_normal[l].is_some() {
            let x = hooks.cache.layer(l, HookPoint::MlpOut).unwrap();
            let t = x.dim(1).unwrap();
            let kept = c.mlp_normal[l].as_ref().unwrap().dim(1).unwrap();
            c.mlp_normal[l] = Some(x.narrow(1, t - kept, kept).unwrap());
        }
    }
}

/// An MLP sender that writes the contrast run's output instead of the normal run's reproduces
/// the contrast run, and the comparison with TransformerLens catches it on every family.
#[test]
fn an_mlp_sender_with_the_wrong_runs_output_is_caught() {
    for name in FIXTURES {
        let (lm, pairs) = load(name);
        let (meta, refs) = refs_of(name);
        let key = meta["receivers"]
            .as_object()
            .unwrap()
            .keys()
            .find(|k| k.starts_with("resid_post_") && *k != "resid_post_1")
            .unwrap()
            .clone();
        let receiver = receiver_of(&meta["receivers"][&key]);
        for run in [Run::FastChunk, Run::Literal] {
            let m = Metric::LogitDiff;
            let wrong = sweep(&lm.model, &pairs, &receiver, m, run, &contrast_mlp_outs);
            let d = max_diff(&wrong, &refs, &key, m.name());
            assert!(
                d > 1e-3,
                "{name} {run:?}: wrong MLP output not caught ({d:e})"
            );
            let contrast = refs["logit-diff.contrast"].to_vec1::<f64>().unwrap();
            for (e, row) in wrong.iter().enumerate() {
                for (x, _) in row {
                    assert!((*x as f64 - contrast[e]).abs() < 1e-4, "{name} {run:?}");
                }
            }
        }
    }
}

/// Receivers the references do not cover (resid_mid, resid_pre, several heads): the fast
/// algorithm equals the literal one, and an MLP cannot reach its own layer's resid_mid.
#[test]
fn fast_equals_literal_on_other_receivers() {
    for name in ["tiny-llama", "tiny-pythia"] {
        let (lm, pairs) = load(name);
        for text in ["resid_mid:2", "resid_pre:2", "resid_post:0", "3.0.v 2.1.k"] {
            let receiver =
                Receiver::parse_many(&text.split(' ').map(String::from).collect::<Vec<_>>());
            let Ok(receiver) = receiver else { continue };
            if receiver
                .validate(lm.model.n_layers(), lm.model.n_heads())
                .is_err()
            {
                continue;
            }
            let m = Metric::LogitDiff;
            let f = sweep(&lm.model, &pairs, &receiver, m, Run::FastChunk, &no_tamper);
            let r = sweep(&lm.model, &pairs, &receiver, m, Run::Literal, &no_tamper);
            let mut worst = 0f32;
            let mut moved = 0f32;
            for (fe, re) in f.iter().zip(&r) {
                for ((fm, fh), (rm, rh)) in fe.iter().zip(re) {
                    worst = worst.max((fm - rm).abs()).max(max_abs_diff(fh, rh));
                    moved = moved.max((fm - fe.last().unwrap().0).abs());
                }
            }
            assert!(worst < 1e-4, "{name} {text}: max |diff| {worst:e}");
            assert!(
                moved > 1e-4,
                "{name} {text}: no MLP sender changed anything"
            );
            if text == "resid_mid:2" {
                // Unreachable: MLP senders of layers 2 and up keep the contrast value exactly.
                for e in &f {
                    assert_eq!(e[2].0, e[e.len() - 1].0, "{name}");
                }
            }
        }
    }
}
