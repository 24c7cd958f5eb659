//! The metrics (`logit-diff`, `logprob`, `prob`, `kl`) and the per-example values of a sweep,
//! against TransformerLens 2.16.1 running the paper's two-pass path patching
//! (`tests/data/metrics`, made by `scripts/fixtures/make_metric_refs.py`), on three families
//! incl. the parallel-block one, for the fast and the literal algorithm: every example's
//! patched metric of every sender head, and both baselines per example.

mod common;

use candle_core::{DType, Device, Tensor};
use common::*;
use headhunt::data::{load_and_tokenize, DataSpec, TaskKind};
use headhunt::model;
use headhunt::patching::{self, Algorithm, Metric, PatchSpec, Receiver, Silent};
use std::collections::HashMap;
use std::path::PathBuf;

const FIXTURES: [&str; 3] = ["tiny-llama", "tiny-pythia", "tiny-gpt2"];

fn refs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/metrics")
}

fn values(t: &Tensor) -> Vec<f64> {
    t.flatten_all().unwrap().to_vec1::<f64>().unwrap()
}

/// The largest |a − b| over the per-example patched values of every computed row, and over
/// both baselines per example.
fn max_diff(
    m: &patching::PatchMatrix,
    refs: &HashMap<String, Tensor>,
    key: &str,
    metric: &str,
) -> f64 {
    let want = values(&refs[&format!("{key}.{metric}.patched")]);
    let (l_n, h_n) = (m.n_layers, m.n_heads);
    let mut worst = 0f64;
    let mut rows = 0;
    for l in 0..l_n {
        let Some(each) = &m.each[l] else { continue };
        rows += 1;
        for (h, v) in each.iter().enumerate() {
            for (e, &x) in v.iter().enumerate() {
                let w = want[(e * l_n + l) * h_n + h];
                worst = worst.max((x as f64 - w).abs());
            }
        }
    }
    assert!(rows > 0, "{key} {metric}: no row computed");
    for (mine, which) in [(&m.normal_each, "normal"), (&m.contrast_each, "contrast")] {
        let want = values(&refs[&format!("{metric}.{which}")]);
        for (&x, w) in mine.iter().zip(want) {
            worst = worst.max((x as f64 - w).abs());
        }
    }
    worst
}

#[test]
fn every_metric_per_example_matches_transformerlens() {
    for name in FIXTURES {
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
        let meta: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(refs_dir().join(format!("{name}.json"))).unwrap(),
        )
        .unwrap();
        let refs = candle_core::safetensors::load(
            refs_dir().join(format!("{name}.safetensors")),
            &Device::Cpu,
        )
        .unwrap();
        for (key, r) in meta["receivers"].as_object().unwrap() {
            let receiver =
                Receiver::parse_many(&[r["headhunt"].as_str().unwrap().to_string()]).unwrap();
            for metric in Metric::ALL {
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
                    let out = patching::run(&lm.model, &pairs, &spec, &mut Silent).unwrap();
                    let d = max_diff(&out.matrix, &refs, key, metric.name());
                    assert!(
                        d < 1e-4,
                        "{name} {key} {metric} {}: max |diff| {d:e}",
                        algorithm.name()
                    );
                }
            }
        }
    }
}

/// The means are the per-example values' means, and a result records the metric under names
/// that say which it is, its per-example values beside it and a bootstrap interval per cell
/// that holds the cell's r.
#[test]
fn a_result_names_its_metric_and_keeps_per_example_values_and_intervals() {
    let dir = temp_dir("metric-result");
    let out = dir.join("kl.json");
    let o = std::process::Command::new(bin())
        .args(["patch", "--model"])
        .arg(fixture("tiny-llama"))
        .args(["--data"])
        .arg(fixture("tiny-llama").join("addition.jsonl"))
        .args(["--metric", "kl", "--quiet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(v["metric"], "kl");
    assert!(v.get("normal_kl").is_some() && v.get("patched_kl").is_some());
    assert!(v.get("normal_logit_diff").is_none() && v.get("patched_logit_diff").is_none());
    let rec = headhunt::results::RunRecord::load(&out).unwrap();
    assert_eq!(rec.metric, Metric::Kl);
    assert_eq!(rec.normal_logit_diff, Some(0.0));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("KL_normal"), "{err}");
    // The head lists carry each head's interval.
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("% bootstrap interval of r") && text.contains("% ["),
        "{text}"
    );
    // Per-example values beside it: [examples, layers, heads] and [examples, 2].
    let stem = out.with_extension("");
    let pe = std::fs::read(format!("{}.per_example.npy", stem.display())).unwrap();
    assert!(String::from_utf8_lossy(&pe[..128]).contains("(8, 4, 8)"));
    let b = std::fs::read(format!("{}.baselines.npy", stem.display())).unwrap();
    assert!(String::from_utf8_lossy(&b[..128]).contains("(8, 2)"));
    // An interval per computed cell, around its r.
    let ci = rec.relative_ci.as_ref().expect("intervals");
    let (mut checked, mut straddled) = (0, 0);
    for l in &rec.rows_computed {
        for h in 0..rec.n_heads {
            let r = rec.r(*l, h).unwrap();
            let [lo, hi] = ci[*l].as_ref().unwrap()[h];
            let (lo, hi) = (lo.unwrap(), hi.unwrap());
            assert!(lo <= hi, "{l}.{h}");
            // The bootstrap percentiles straddle the estimate (here, seeded, in every cell).
            if lo - 1e-9 <= r && r <= hi + 1e-9 {
                straddled += 1;
            }
            checked += 1;
        }
    }
    assert!(checked > 0);
    assert_eq!(straddled, checked, "intervals that do not hold their r");
    let boot = &v["bootstrap"];
    assert_eq!(
        (boot["samples"].as_u64(), boot["level"].as_f64()),
        (Some(1000), Some(0.95))
    );
}

/// A file whose baselines are named after another metric than its `metric` says, or of an
/// unknown metric, is refused naming the field.
#[test]
fn a_metric_that_disagrees_with_its_fields_is_refused() {
    let dir = temp_dir("metric-mismatch");
    let made = dir.join("prob.json");
    let o = std::process::Command::new(bin())
        .args(["patch", "--model"])
        .arg(fixture("tiny-gpt2"))
        .args(["--data"])
        .arg(fixture("tiny-gpt2").join("addition.jsonl"))
        .args(["--metric", "prob", "--quiet", "--out"])
        .arg(&made)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&made).unwrap();
    assert!(text.contains("\"normal_prob\"") && text.contains("\"metric\": \"prob\""));
    let p = dir.join("ok.json");
    std::fs::write(&p, &text).unwrap();
    assert_eq!(
        headhunt::results::RunRecord::load(&p).unwrap().metric,
        Metric::Prob
    );
    for (from, to, needle) in [
        ("\"metric\": \"prob\"", "\"metric\": \"kl\"", "normal_prob"),
        ("\"metric\": \"prob\"", "\"metric\": \"odds\"", "`metric`"),
    ] {
        let p = dir.join("bad.json");
        std::fs::write(&p, text.replace(from, to)).unwrap();
        let e = headhunt::results::RunRecord::load(&p)
            .unwrap_err()
            .to_string();
        assert!(e.contains(needle) && e.contains("bad.json"), "{e}");
    }
}

/// A result of another metric says so wherever it is shown: the explorer's readout names its
/// baselines after the metric and gives the cell's interval, and its figure names the metric.
#[test]
fn a_result_of_another_metric_is_named_in_the_explorer_and_the_figure() {
    let dir = temp_dir("metric-views");
    let out = dir.join("logprob.json");
    let o = std::process::Command::new(bin())
        .args(["patch", "--model"])
        .arg(fixture("tiny-llama"))
        .args(["--data"])
        .arg(fixture("tiny-llama").join("addition.jsonl"))
        .args(["--metric", "logprob", "--quiet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rec = headhunt::results::RunRecord::load(&out).unwrap();
    let mut app = headhunt::tui::app::App::new(common::tui::setup("fixture", dir.clone()));
    app.open_record(rec, out.clone());
    app.cursor = (1, 0);
    let text = common::tui::screen(&mut app, 120, 40);
    assert!(text.contains("logp_n") && text.contains("logp_c"), "{text}");
    assert!(!text.contains("LD_n"), "{text}");
    assert!(text.contains("% ["), "no interval in the readout: {text}");
    let svg = dir.join("logprob.svg");
    let o = std::process::Command::new(bin())
        .args(["plot"])
        .arg(&out)
        .arg("--out")
        .arg(&svg)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let figure = std::fs::read_to_string(&svg).unwrap();
    assert!(
        figure.contains("metric logprob"),
        "the figure does not name its metric"
    );
}
