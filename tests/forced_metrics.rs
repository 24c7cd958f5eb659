//! `patch --metric logprob|prob` on answers of several tokens, scored in full (teacher-forced,
//! `patching::forced`), against TransformerLens running path patching on the whole sequences
//! (prompt + the normal answer's tokens but its last, every hook at every position):
//! `tests/data/metrics/<fixture>.forced.json`, made by `scripts/fixtures/make_metric_refs.py
//! --forced`. Every example's baselines and patched value of every sender, both algorithms,
//! within 1e-4; then the command line: the warning that the metric reads one token is gone and
//! the result says how the answers were scored.

mod common;

use candle_core::{DType, Device};
use common::*;
use headhunt::data::{load_and_tokenize, token_roles, DataSpec, TaskKind};
use headhunt::model;
use headhunt::patching::{forced, Algorithm, Metric, PatchSpec, Receiver, Silent};
use serde_json::Value;
use std::path::PathBuf;

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn two_digit() -> PathBuf {
    manifest().join("tests/data/analysis_metrics/addition_2digit.jsonl")
}

/// Fixture `name` with its two-digit addition data tokenized and its token roles.
fn two_digit_inputs(
    name: &str,
) -> (
    model::LoadedModel,
    headhunt::data::Tokenized,
    Vec<headhunt::data::TokenRoles>,
) {
    let lm = model::load(
        fixture(name).to_str().unwrap(),
        None,
        &Device::Cpu,
        DType::F32,
    )
    .unwrap();
    let spec = DataSpec::new(two_digit(), TaskKind::Addition);
    let tok = load_and_tokenize(&spec, &lm.tokenizer).unwrap();
    let roles = token_roles(&spec, &lm.tokenizer, &tok).unwrap();
    (lm, tok, roles)
}

/// A TransformerLens reference under `tests/data/` (`metrics/<fixture>.forced.json` ...).
fn reference(rel: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(manifest().join("tests/data").join(rel)).unwrap())
        .unwrap()
}

fn f64s(v: &Value) -> Vec<f64> {
    serde_json::from_value(v.clone()).unwrap()
}

#[test]
fn answers_of_two_tokens_match_transformer_lens_whole_sequences() {
    for name in ["tiny-llama", "tiny-pythia", "tiny-gpt2"] {
        let (lm, tok, roles) = two_digit_inputs(name);
        let refs = reference(&format!("metrics/{name}.forced.json"));
        let want_tokens: Vec<Vec<u32>> =
            serde_json::from_value(refs["answer_tokens"].clone()).unwrap();
        let got_tokens: Vec<Vec<u32>> = roles
            .iter()
            .map(|r| r.normal_continuation.clone().unwrap())
            .collect();
        assert_eq!(got_tokens, want_tokens, "{name}");
        for (key, r) in refs["receivers"].as_object().unwrap() {
            let receiver =
                Receiver::parse_many(&[r["headhunt"].as_str().unwrap().to_string()]).unwrap();
            for metric in [Metric::Logprob, Metric::Prob] {
                for algorithm in Algorithm::ALL {
                    let spec = PatchSpec {
                        receiver: receiver.clone(),
                        begin_layer: 0,
                        batch_size: 3,
                        algorithm,
                        chunk_rows: 0,
                        metric,
                        senders: Default::default(),
                    };
                    let layers = spec.sender_layers();
                    let (out, note) = forced::run_devices(
                        &[&lm.model],
                        &tok.pairs,
                        Some(&roles),
                        &spec,
                        &layers,
                        &mut Silent,
                    )
                    .unwrap();
                    let ctx = format!("{name} {key} {metric} {}", algorithm.name());
                    assert!(note.unwrap().starts_with("8 of 8 examples"), "{ctx}");
                    let m = &out.matrix;
                    assert_eq!((m.n_examples, m.metric), (8, metric), "{ctx}");
                    let mut worst = 0f64;
                    let base = &refs["baselines"][metric.name()];
                    for (mine, which) in
                        [(&m.normal_each, "normal"), (&m.contrast_each, "contrast")]
                    {
                        for (x, w) in mine.iter().zip(f64s(&base[which])) {
                            worst = worst.max((*x as f64 - w).abs());
                        }
                    }
                    let mean =
                        |v: &[f32]| v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
                    assert!((m.ld_normal - mean(&m.normal_each)).abs() < 1e-9, "{ctx}");
                    let want = &r["patched"][metric.name()];
                    for l in 0..m.n_layers {
                        let Some(each) = &m.each[l] else { continue };
                        for (h, v) in each.iter().enumerate() {
                            assert!((m.patched[l][h] - mean(v)).abs() < 1e-9, "{ctx}");
                            for (x, w) in v.iter().zip(f64s(&want[l][h])) {
                                worst = worst.max((*x as f64 - w).abs());
                            }
                        }
                    }
                    assert!(worst < 1e-4, "{ctx}: max |diff| {worst:e}");
                }
            }
        }
    }
}

/// KL and the logit difference stay single-token: no plan, the engine's own run.
#[test]
fn single_token_metrics_are_not_teacher_forced() {
    let (_, tok, roles) = two_digit_inputs("tiny-llama");
    for m in [Metric::LogitDiff, Metric::Kl] {
        assert!(forced::Forced::plan(&tok.pairs, &roles, m).is_none());
    }
    let plan = forced::Forced::plan(&tok.pairs, &roles, Metric::Logprob).unwrap();
    assert_eq!((plan.pairs.len(), plan.several), (16, 8));
    // What the memory estimate counts: the prefixes the engine runs.
    let run = forced::engine_pairs(&tok.pairs, Some(&roles), Metric::Prob);
    assert_eq!(run.len(), 16);
    assert_eq!(run[1].normal_ids.len(), tok.pairs[0].normal_ids.len() + 1);
    assert_eq!(
        forced::engine_pairs(&tok.pairs, Some(&roles), Metric::Kl).len(),
        8
    );
}

/// The command line: no warning that the metric reads one token, a note saying it scores
/// them all, the result's warnings saying how, and the baselines printed are the result's.
#[test]
fn patch_cli_scores_answers_in_full() {
    let dir = temp_dir("forced-cli");
    let out = dir.join("p.json");
    let o = std::process::Command::new(bin())
        .args(["patch", "--model"])
        .arg(fixture("tiny-llama"))
        .arg("--data")
        .arg(two_digit())
        .args(["--shots", "4", "--offset", "1", "--metric", "prob", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(!err.contains("the metric reads the last token"), "{err}");
    assert!(
        err.contains("prob scores every token of each normal answer"),
        "{err}"
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(v["metric"], "prob");
    let warnings = v["warnings"].to_string();
    assert!(warnings.contains("scored in full by prob"), "{warnings}");
    let refs = reference("metrics/tiny-llama.forced.json");
    let want = f64s(&refs["baselines"]["prob"]["normal"]);
    let want = want.iter().sum::<f64>() / want.len() as f64;
    let got = v["normal_prob"].as_f64().unwrap();
    assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    assert!(err.contains(&format!("p_normal {got:+.4}")), "{err}");
}

/// The `heads` and `mlp` scans, both directions, scored in full against TransformerLens' scans
/// of the whole sequences (`tests/data/scan/<fixture>.forced.json`, `make_scan_refs.py
/// --forced`): every example's baselines and every cell's value within 1e-4.
#[test]
fn scans_of_answers_of_two_tokens_match_transformer_lens() {
    use headhunt::patching::scan::{Direction, ScanKind, ScanSpec};
    for name in ["tiny-llama", "tiny-pythia", "tiny-gpt2"] {
        let (lm, tok, roles) = two_digit_inputs(name);
        let refs = reference(&format!("scan/{name}.forced.json"));
        let layers: Vec<usize> = (0..lm.model.n_layers()).rev().collect();
        for kind in [ScanKind::Heads, ScanKind::Mlp] {
            for direction in [Direction::Denoising, Direction::Noising] {
                for metric in [Metric::Logprob, Metric::Prob] {
                    let spec = ScanSpec {
                        kind,
                        direction,
                        metric,
                        batch_size: 3,
                    };
                    let (o, note) = forced::scan_layers(
                        &lm.model,
                        &tok.pairs,
                        Some(&roles),
                        &spec,
                        &layers,
                        &mut Silent,
                    )
                    .unwrap();
                    let ctx = format!("{name} {kind} {direction} {metric}");
                    assert!(note.is_some(), "{ctx}");
                    assert_eq!(o.spec.metric, metric, "{ctx}");
                    let base = &refs["baselines"][metric.name()];
                    let mut worst = 0f64;
                    for (mine, which) in
                        [(&o.normal_each, "normal"), (&o.contrast_each, "contrast")]
                    {
                        assert_eq!(mine.len(), 8, "{ctx}");
                        for (x, w) in mine.iter().zip(f64s(&base[which])) {
                            worst = worst.max((*x as f64 - w).abs());
                        }
                    }
                    let want =
                        &refs["scans"][format!("{kind}.{direction}")]["patched"][metric.name()];
                    for (l, row) in o.each.iter().enumerate() {
                        for (c, cell) in row.as_ref().unwrap().iter().enumerate() {
                            for (e, &x) in cell.iter().enumerate() {
                                let w = want[e][l][c].as_f64().unwrap();
                                worst = worst.max((x as f64 - w).abs());
                            }
                        }
                    }
                    assert!(worst < 1e-4, "{ctx}: max |diff| {worst:e}");
                }
            }
        }
    }
}

/// `scan --kind heads --metric logprob` drops the one-token warning and says how it scored;
/// `--kind resid` (per position) keeps reading one token and keeps the warning.
#[test]
fn scan_cli_scores_answers_in_full_where_it_can() {
    let dir = temp_dir("forced-scan-cli");
    for (kind, full) in [("heads", true), ("resid", false)] {
        let out = dir.join(format!("{kind}.json"));
        let o = std::process::Command::new(bin())
            .args(["scan", "--model"])
            .arg(fixture("tiny-llama"))
            .arg("--data")
            .arg(two_digit())
            .args([
                "--shots", "4", "--offset", "1", "--metric", "logprob", "--kind", kind,
            ])
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{err}");
        assert_eq!(
            !err.contains("the metric reads the last token"),
            full,
            "{kind}: {err}"
        );
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        let warnings = v["warnings"].to_string();
        assert_eq!(
            warnings.contains("scored in full by logprob"),
            full,
            "{kind}: {warnings}"
        );
    }
}
