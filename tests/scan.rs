//! Activation-patching scans (`headhunt scan`, `patching::scan`) against TransformerLens 2.16.1's
//! `transformer_lens.patching` scans (`tests/data/scan`, made by
//! `scripts/fixtures/make_scan_refs.py`), on three families incl. the parallel-block one: every
//! example's metric of every cell, for every kind, both directions and every metric; then the
//! score's normalisation, and the command line (refusals, the saved result, `show`).

mod common;

use candle_core::{DType, Device, Tensor};
use common::*;
use headhunt::data::{load_and_tokenize, DataSpec, TaskKind, TokenizedPair};
use headhunt::model::{self, LoadedModel};
use headhunt::patching::scan::{self, Direction, ScanKind, ScanOutcome, ScanSpec};
use headhunt::patching::{Metric, Silent};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

const FIXTURES: [&str; 3] = ["tiny-llama", "tiny-pythia", "tiny-gpt2"];

fn refs(name: &str) -> HashMap<String, Tensor> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/data/scan/{name}.safetensors"));
    candle_core::safetensors::load(p, &Device::Cpu).unwrap()
}

fn values(t: &Tensor) -> Vec<f64> {
    t.flatten_all().unwrap().to_vec1::<f64>().unwrap()
}

fn load(name: &str) -> (LoadedModel, Vec<TokenizedPair>) {
    let lm = model::load(
        fixture(name).to_str().unwrap(),
        None,
        &Device::Cpu,
        DType::F32,
    )
    .unwrap();
    let spec = DataSpec::new(fixture(name).join("addition.jsonl"), TaskKind::Addition);
    let pairs = load_and_tokenize(&spec, &lm.tokenizer).unwrap().pairs;
    assert_eq!(pairs.len(), 8);
    (lm, pairs)
}

fn scan_of(
    lm: &LoadedModel,
    pairs: &[TokenizedPair],
    kind: ScanKind,
    direction: Direction,
    metric: Metric,
) -> ScanOutcome {
    let spec = ScanSpec {
        kind,
        direction,
        metric,
        batch_size: 3,
    };
    scan::run(&lm.model, pairs, &spec, &mut Silent).unwrap()
}

/// The largest |ours − reference| over every example of every cell (`key`: the reference's
/// [examples, layers, columns]) and over both baselines per example.
fn max_diff(o: &ScanOutcome, r: &HashMap<String, Tensor>, key: &str, metric: Metric) -> f64 {
    let want = values(&r[key]);
    let (n_l, n_c) = (o.n_layers, o.n_columns);
    assert_eq!(want.len(), 8 * n_l * n_c, "{key}: shape");
    let mut worst = 0f64;
    for l in 0..n_l {
        let row = o.each[l].as_ref().expect("every layer computed");
        for (c, v) in row.iter().enumerate() {
            for (e, &x) in v.iter().enumerate() {
                worst = worst.max((x as f64 - want[(e * n_l + l) * n_c + c]).abs());
            }
        }
    }
    for (mine, which) in [(&o.normal_each, "normal"), (&o.contrast_each, "contrast")] {
        let want = values(&r[&format!("{}.{which}", metric.name())]);
        for (&x, w) in mine.iter().zip(want) {
            worst = worst.max((x as f64 - w).abs());
        }
    }
    worst
}

#[test]
fn every_scan_matches_transformerlens_per_example() {
    let mut worst = 0f64;
    for name in FIXTURES {
        let (lm, pairs) = load(name);
        let r = refs(name);
        for kind in ScanKind::ALL {
            for direction in Direction::ALL {
                for metric in Metric::ALL {
                    let o = scan_of(&lm, &pairs, kind, direction, metric);
                    let key = format!("{kind}.{direction}.{}.patched", metric.name());
                    let d = max_diff(&o, &r, &key, metric);
                    assert!(d < 1e-4, "{name} {key}: max |diff| {d:e}");
                    worst = worst.max(d);
                }
            }
        }
    }
    eprintln!("largest |headhunt - TransformerLens| over every scan: {worst:e}");
}

/// The test above can fail: a scan in the wrong direction, or of another kind's hook, is far
/// from the reference.
#[test]
fn a_wrong_direction_or_kind_does_not_match() {
    let (lm, pairs) = load("tiny-pythia");
    let r = refs("tiny-pythia");
    let m = Metric::LogitDiff;
    let o = scan_of(&lm, &pairs, ScanKind::Heads, Direction::Denoising, m);
    let d = max_diff(&o, &r, "heads.noising.logit-diff.patched", m);
    assert!(d > 1e-2, "denoising vs noising reference: {d:e}");
    let o = scan_of(&lm, &pairs, ScanKind::MlpPos, Direction::Noising, m);
    let d = max_diff(&o, &r, "resid.noising.logit-diff.patched", m);
    assert!(d > 1e-2, "mlp-pos vs resid reference: {d:e}");
}

/// r = (M_patched − M_base) / (M_base − M_source) from the reference's means: path patching's r
/// when denoising (base = contrast, source = normal), the same with the runs swapped when
/// noising, so 0 is no effect and −1 the full effect in both directions.
#[test]
fn the_score_is_normalised_per_direction() {
    let (lm, pairs) = load("tiny-llama");
    let r = refs("tiny-llama");
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    for direction in Direction::ALL {
        let m = Metric::Logprob;
        let o = scan_of(&lm, &pairs, ScanKind::Heads, direction, m);
        let normal = mean(&values(&r["logprob.normal"]));
        let contrast = mean(&values(&r["logprob.contrast"]));
        let (base, source) = match direction {
            Direction::Denoising => (contrast, normal),
            Direction::Noising => (normal, contrast),
        };
        let want = values(&r[&format!("heads.{direction}.logprob.patched")]);
        let rel = o.relative();
        let (n_l, n_h) = (o.n_layers, o.n_columns);
        for l in 0..n_l {
            for h in 0..n_h {
                let p = mean(
                    &(0..8)
                        .map(|e| want[(e * n_l + l) * n_h + h])
                        .collect::<Vec<_>>(),
                );
                let expected = (p - base) / (base - source);
                let got = rel[l].as_ref().unwrap()[h];
                assert!(
                    (got - expected).abs() < 1e-3 * (1.0 + expected.abs()),
                    "{direction} ({l},{h}): r {got} vs {expected}"
                );
            }
        }
        // The full effect is −1: a cell whose patched value is the source run's.
        assert_eq!(scan::score(source, base, source), -1.0);
        assert_eq!(scan::score(base, base, source), 0.0);
    }
}

fn headhunt(args: &[&str]) -> std::process::Output {
    Command::new(bin()).args(args).output().unwrap()
}

fn fixture_args(name: &str) -> Vec<String> {
    let f = fixture(name);
    vec![
        "--model".into(),
        f.display().to_string(),
        "--data".into(),
        f.join("addition.jsonl").display().to_string(),
    ]
}

fn scan_cmd(extra: &[&str]) -> std::process::Output {
    let mut args: Vec<String> = vec!["scan".into()];
    args.extend(fixture_args("tiny-gpt2"));
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    headhunt(&refs)
}

/// Exit status 2 and the error as the last line of stderr, one line, naming `needles`.
fn one_line_error(o: &std::process::Output, needles: &[&str]) {
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert_eq!(err.trim_end().lines().last(), Some(errors[0]), "{err}");
    for n in needles {
        assert!(errors[0].contains(n), "{n:?} not in {err}");
    }
}

#[test]
fn bad_kind_direction_and_metric_are_one_line_errors() {
    let o = scan_cmd(&["--kind", "attn"]);
    one_line_error(&o, &["--kind \"attn\"", "heads, mlp, resid"]);
    let o = scan_cmd(&["--kind", "heads", "--direction", "sideways"]);
    one_line_error(&o, &["--direction \"sideways\"", "denoising, noising"]);
    let o = scan_cmd(&["--kind", "mlp", "--metric", "loss"]);
    one_line_error(&o, &["--metric \"loss\"", "logit-diff"]);
    let o = scan_cmd(&["--kind", "mlp", "--batch-size", "0"]);
    one_line_error(&o, &["--batch-size 0"]);
}

#[test]
fn a_scan_is_saved_with_per_example_values_and_show_prints_it() {
    let dir = temp_dir("scan-cli");
    let out = dir.join("s.json");
    let o = scan_cmd(&[
        "--kind",
        "resid-pos",
        "--direction",
        "noising",
        "--metric",
        "kl",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(v["format"], "headhunt-scan");
    assert_eq!(
        (v["kind"].as_str(), v["direction"].as_str()),
        (Some("resid"), Some("noising"))
    );
    assert_eq!(v["metric"], "kl");
    for f in [
        "normal_kl",
        "contrast_kl",
        "patched_kl",
        "relative",
        "relative_ci",
    ] {
        assert!(v.get(f).is_some(), "no {f}");
    }
    assert_eq!(v["normal_kl"].as_f64(), Some(0.0));
    assert_eq!(
        (v["n_layers"].as_u64(), v["n_columns"].as_u64()),
        (Some(3), Some(29))
    );
    let stem = out.with_extension("");
    let pe = std::fs::read(format!("{}.per_example.npy", stem.display())).unwrap();
    assert!(String::from_utf8_lossy(&pe[..128]).contains("(8, 3, 29)"));
    // The saved means and r are those of the TransformerLens reference (noising: the normal
    // run is the base, KL of the normal run to itself is 0).
    let r = refs("tiny-gpt2");
    let want = values(&r["resid.noising.kl.patched"]);
    let contrast = values(&r["kl.contrast"]).iter().sum::<f64>() / 8.0;
    for (l, c) in [(0, 28), (1, 11), (2, 28)] {
        let p: f64 = (0..8).map(|e| want[(e * 3 + l) * 29 + c]).sum::<f64>() / 8.0;
        let saved = v["relative"][l][c].as_f64().unwrap();
        let expected = (p - 0.0) / (0.0 - contrast);
        assert!(
            (saved - expected).abs() < 1e-4 * (1.0 + expected.abs()),
            "({l},{c}) {saved} vs {expected}"
        );
    }
    let shown = headhunt(&["show", out.to_str().unwrap()]);
    assert!(
        shown.status.success(),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    let text = String::from_utf8_lossy(&shown.stdout);
    for needle in [
        "scan        resid (noising)",
        "metric      kl",
        "get_act_patch_resid_pre",
        "r in %; rows: layer, columns: position",
        "largest |r|",
        "positions   0:",
    ] {
        assert!(text.contains(needle), "{needle:?} not in\n{text}");
    }
    // Readers of runs refuse it in one line that says what it is.
    let e = headhunt::results::SavedFile::load(&out)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("activation-patching scan") && e.lines().count() == 1,
        "{e}"
    );
    // A newer version is refused with the version this headhunt reads.
    let newer = dir.join("newer.json");
    let text = std::fs::read_to_string(&out).unwrap();
    std::fs::write(
        &newer,
        text.replace("\"format_version\": 1", "\"format_version\": 2"),
    )
    .unwrap();
    let o = headhunt(&["show", newer.to_str().unwrap()]);
    one_line_error(&o, &["format_version", "reads version 1 of headhunt-scan"]);
    // Fields of another metric than the file's are refused naming the field.
    let other = dir.join("other.json");
    std::fs::write(&other, text.replace("\"normal_kl\"", "\"normal_prob\"")).unwrap();
    let o = headhunt(&["show", other.to_str().unwrap()]);
    one_line_error(&o, &["normal_prob"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A per-position scan needs every example of one length: prompts of two lengths are refused
/// naming the example; a heads scan takes them.
#[test]
fn a_per_position_scan_of_prompts_of_two_lengths_is_refused() {
    let dir = temp_dir("scan-lengths");
    let data = dir.join("pairs.jsonl");
    let line = |n: &str, c: &str| {
        serde_json::json!({"normal_input": n, "normal_output": "2", "contrast_input": c, "contrast_output": "3"})
            .to_string()
    };
    std::fs::write(
        &data,
        format!(
            "{}\n{}\n",
            line("1+1=", "2+1="),
            line("1+1=2\n1+1=", "1+1=3\n1+1=")
        ),
    )
    .unwrap();
    let model = fixture("tiny-gpt2");
    let run = |kind: &str| {
        headhunt(&[
            "scan",
            "--model",
            model.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--kind",
            kind,
            "--quiet",
            "--out",
            dir.join(format!("{kind}.json")).to_str().unwrap(),
        ])
    };
    one_line_error(
        &run("resid"),
        &["example 2 has", "example 1 has", "one length"],
    );
    let o = run("heads");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The demo model with NaN in its final norm: its baselines are NaN.
fn nan_model(dir: &std::path::Path) -> PathBuf {
    let m = dir.join("nan-model");
    std::fs::create_dir_all(&m).unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(demo_model().join(f), m.join(f)).unwrap();
    }
    let mut b = std::fs::read(demo_model().join("model.safetensors")).unwrap();
    let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&b[8..8 + n]).unwrap();
    let t = &header["model.norm.weight"];
    let offset = |i: usize| t["data_offsets"][i].as_u64().unwrap() as usize;
    for chunk in b[8 + n + offset(0)..8 + n + offset(1)].chunks_mut(4) {
        chunk.copy_from_slice(&f32::NAN.to_le_bytes());
    }
    std::fs::write(m.join("model.safetensors"), b).unwrap();
    m
}

/// Baselines that are not finite stop the scan before anything is saved.
#[test]
fn nan_weights_stop_a_scan_and_save_nothing() {
    let dir = temp_dir("scan-nan");
    let model = nan_model(&dir);
    let out = dir.join("s.json");
    let o = headhunt(&[
        "scan",
        "--model",
        model.to_str().unwrap(),
        "--data",
        demo_data().to_str().unwrap(),
        "--examples",
        "4",
        "--kind",
        "heads",
        "--out",
        out.to_str().unwrap(),
    ]);
    one_line_error(&o, &["baselines are not finite", "nothing saved"]);
    assert!(!out.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
