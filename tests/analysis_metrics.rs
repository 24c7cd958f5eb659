//! `circuit` and `ablate` scored by every metric, against TransformerLens
//! (`tests/data/analysis_metrics`, made by `scripts/fixtures/make_analysis_metric_refs.py`):
//! F(C), F(M), the baselines, faithfulness and the completeness pairs of the fixtures'
//! circuit, and head ablation on answers of one token and of two (teacher-forced `logprob` and
//! `prob`), within 1e-4. Then the result files: the metric and its fields named after it, and a
//! file whose names disagree with its `metric` refused.

mod common;

use candle_core::{DType, Device};
use common::*;
use headhunt::analysis::ablation::Ablator;
use headhunt::analysis::circuit::{Circuit, Evaluator, Group};
use headhunt::analysis::positions::PositionSet;
use headhunt::analysis::Head;
use headhunt::data::{load_and_tokenize, token_roles, DataSpec, TaskKind, TokenRoles, Tokenized};
use headhunt::model;
use headhunt::patching::Metric;
use serde_json::Value;

const TOL: f64 = 1e-4;

fn refs(name: &str) -> Value {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/analysis_metrics")
        .join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn data(lm: &model::LoadedModel, file: &std::path::Path) -> (Tokenized, Vec<TokenRoles>) {
    let mut spec = DataSpec::new(file, TaskKind::Addition);
    spec.examples = Some(8);
    let t = load_and_tokenize(&spec, &lm.tokenizer).unwrap();
    let r = token_roles(&spec, &lm.tokenizer, &t).unwrap();
    (t, r)
}

fn heads(v: &Value) -> Vec<Head> {
    serde_json::from_value(v.clone()).unwrap()
}

fn close(what: &str, got: f64, want: &Value) {
    let want = want.as_f64().unwrap();
    assert!(
        (got - want).abs() <= TOL,
        "{what}: got {got}, TransformerLens {want}"
    );
}

fn circuit(lm: &model::LoadedModel, r: &Value) -> Circuit {
    let groups = r["circuit_groups"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, g)| {
            let pos = match g["positions"].as_str().unwrap() {
                "every '=' token" => "tok:=",
                _ => "answers",
            };
            Group {
                name: name.clone(),
                heads: heads(&g["heads"]),
                positions: PositionSet::parse(pos, &lm.tokenizer).unwrap(),
            }
        })
        .collect();
    Circuit { groups }
}

fn check_circuit(name: &str, metric: Metric, bs: usize) {
    let r = refs(name);
    let lm = model::load(
        fixture(name).to_str().unwrap(),
        None,
        &Device::Cpu,
        DType::F32,
    )
    .unwrap();
    let (t, roles) = data(&lm, &fixture(name).join("addition.jsonl"));
    let c = circuit(&lm, &r);
    let m = metric.name();
    let want = &r["circuit"];
    let ctx = format!("{name} {m} batch {bs}");
    let mut ev = Evaluator::with_metric(&lm.model, &t.pairs, Some(&roles), bs, metric).unwrap();
    close(&format!("{ctx} normal"), ev.ld_normal, &want["normal"][m]);
    close(
        &format!("{ctx} contrast"),
        ev.ld_contrast,
        &want["contrast"][m],
    );
    let fc = ev.f(&c).unwrap();
    close(&format!("{ctx} F_C"), fc, &want["F_C"][m]);
    let fm = ev.f(&Circuit::complete(&lm.model)).unwrap();
    close(&format!("{ctx} F_M"), fm, &want["F_M"][m]);
    // Faithfulness divides by M_c − M_n: compare it scaled by that gap.
    let gap = (ev.ld_contrast - ev.ld_normal).abs().max(1e-3);
    let want_faith = want["faithfulness"][m].as_f64().unwrap();
    assert!(
        (ev.faithfulness(fc) - want_faith).abs() * gap <= TOL,
        "{ctx} faithfulness {} vs {want_faith}",
        ev.faithfulness(fc)
    );
    for e in want["completeness"].as_array().unwrap() {
        let k = heads(&e["K"]);
        let s = ev.completeness(&c, &k).unwrap();
        close(
            &format!("{ctx} F(C\\{k:?})"),
            s.f_c_minus_k,
            &e["F_C_minus_K"][m],
        );
        close(
            &format!("{ctx} F(M\\{k:?})"),
            s.f_m_minus_k,
            &e["F_M_minus_K"][m],
        );
        close(&format!("{ctx} gap {k:?}"), s.gap, &e["gap"][m]);
    }
}

fn check_ablation(name: &str, metric: Metric, two_tokens: bool, bs: usize) {
    let r = refs(name);
    let lm = model::load(
        fixture(name).to_str().unwrap(),
        None,
        &Device::Cpu,
        DType::F32,
    )
    .unwrap();
    let (file, key) = if two_tokens {
        (
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/data/analysis_metrics/addition_2digit.jsonl"),
            "ablation_two_token",
        )
    } else {
        (fixture(name).join("addition.jsonl"), "ablation")
    };
    let (t, roles) = data(&lm, &file);
    if two_tokens {
        let want: Vec<Vec<u32>> = serde_json::from_value(r[key]["answer_tokens"].clone()).unwrap();
        let got: Vec<Vec<u32>> = roles
            .iter()
            .map(|r| r.normal_continuation.clone().unwrap())
            .collect();
        assert_eq!(got, want, "{name}: the normal answers' tokens");
    }
    let ab = Ablator::with_metric(&lm.model, &t.pairs, Some(&roles), None, bs, metric).unwrap();
    let m = metric.name();
    for run in r[key]["runs"].as_array().unwrap() {
        let h = heads(&run["heads"]);
        let got = ab.ablate(&h).unwrap().logit_diff;
        close(
            &format!("{name} {key} {m} batch {bs} heads {h:?}"),
            got,
            &run["metrics"][m],
        );
    }
}

#[test]
fn circuit_every_metric_matches_transformer_lens() {
    for name in ["tiny-llama", "tiny-gemma2"] {
        for metric in Metric::ALL {
            check_circuit(name, metric, 8);
        }
        check_circuit(name, Metric::Kl, 3);
    }
}

#[test]
fn ablation_every_metric_matches_transformer_lens() {
    for name in ["tiny-llama", "tiny-gemma2"] {
        for metric in Metric::ALL {
            check_ablation(name, metric, false, 8);
            check_ablation(name, metric, true, 8);
        }
        check_ablation(name, Metric::Logprob, true, 3);
    }
}

fn cli(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(bin())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn read(p: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// `circuit --metric kl` and `ablate --metric logprob` (answers of two tokens) write the
/// metric, name their fields after it and match the references; `show` reads them back, and
/// refuses a file whose field names say another metric than its `metric`.
#[test]
fn cli_files_name_their_metric() {
    let dir = temp_dir("analysis-metrics");
    let f = fixture("tiny-llama");
    let r = refs("tiny-llama");
    let model = f.to_str().unwrap();
    let fixture_data = f.join("addition.jsonl");
    let two = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/analysis_metrics/addition_2digit.jsonl");
    let common = |data: &std::path::Path| -> Vec<String> {
        [
            "--model",
            model,
            "--data",
            data.to_str().unwrap(),
            "--shots",
            "4",
            "--offset",
            "1",
            "--examples",
            "8",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let c = dir.join("c.json");
    let mut args = vec!["circuit".to_string()];
    args.extend(common(&fixture_data));
    args.extend(
        [
            "--group",
            "fi=3.1,2.0@tok:=",
            "--group",
            "pt=2.7,1.2@answers",
            "--group",
            "cons=3.0@tok:=",
            "--metric",
            "kl",
            "--json",
            c.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let (code, stdout, err) = cli(&a);
    assert_eq!(code, 0, "{err}");
    assert!(
        stdout.contains("KL_normal") && stdout.contains("KL_contrast"),
        "{stdout}"
    );
    let v = read(&c);
    assert_eq!(v["metric"], "kl");
    assert!(
        v.get("LD_normal").is_none() && v.get("LD_contrast").is_none(),
        "{v}"
    );
    close(
        "normal_kl",
        v["normal_kl"].as_f64().unwrap(),
        &r["circuit"]["normal"]["kl"],
    );
    close(
        "contrast_kl",
        v["contrast_kl"].as_f64().unwrap(),
        &r["circuit"]["contrast"]["kl"],
    );
    close(
        "F_C",
        v["F_C"].as_f64().unwrap(),
        &r["circuit"]["F_C"]["kl"],
    );
    let (code, _, err) = cli(&["show", c.to_str().unwrap()]);
    assert!(code != 0 && err.contains("a circuit result"), "{err}");
    // The same numbers under another metric's name: refused, naming the field.
    let text = std::fs::read_to_string(&c).unwrap();
    std::fs::write(&c, text.replace("\"normal_kl\"", "\"normal_logprob\"")).unwrap();
    let (code, _, err) = cli(&["show", c.to_str().unwrap()]);
    assert!(
        code != 0
            && err.contains(
                "field `normal_logprob` is of the metric logprob, but the file's `metric` is kl"
            )
            && err.trim().lines().count() == 1,
        "{err}"
    );
    std::fs::write(&c, text.replace("  \"metric\": \"kl\",\n", "")).unwrap();
    let (_, _, err) = cli(&["show", c.to_str().unwrap()]);
    assert!(
        err.contains(
            "field `normal_kl` is of the metric kl, but the file's `metric` is logit-diff"
        ),
        "{err}"
    );

    let ab = dir.join("a.json");
    let mut args = vec!["ablate".to_string()];
    args.extend(common(&two));
    args.extend(
        [
            "--heads",
            "3.1,2.0",
            "--metric",
            "logprob",
            "--json",
            ab.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let (code, stdout, err) = cli(&a);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("the metric reads the last token"), "{err}");
    assert!(stdout.contains("logp"), "{stdout}");
    let v = read(&ab);
    assert_eq!(v["metric"], "logprob");
    assert!(
        v.get("logit_diff").is_none() && v["baseline"].get("logit_diff").is_none(),
        "{v}"
    );
    let runs = &r["ablation_two_token"]["runs"];
    close(
        "ablate logprob",
        v["logprob"].as_f64().unwrap(),
        &runs[1]["metrics"]["logprob"],
    );
    close(
        "baseline logprob",
        v["baseline"]["logprob"].as_f64().unwrap(),
        &runs[0]["metrics"]["logprob"],
    );
    let (code, _, err) = cli(&["show", ab.to_str().unwrap()]);
    assert!(code != 0 && err.contains("a ablation result"), "{err}");
}

/// Function vectors' Δ of each digit's log-probability and probability; `kl` is refused.
#[test]
fn function_vector_metrics_match_transformer_lens() {
    use headhunt::analysis::ablation::digit_tokens;
    use headhunt::analysis::function_vectors::{function_vectors, FvOptions};
    for name in ["tiny-llama", "tiny-gemma2"] {
        let r = refs(name);
        let fv = &r["function_vectors"];
        let lm = model::load(
            fixture(name).to_str().unwrap(),
            None,
            &Device::Cpu,
            DType::F32,
        )
        .unwrap();
        let (t, roles) = data(&lm, &fixture(name).join("addition.jsonl"));
        let digits = digit_tokens(&lm.tokenizer).unwrap();
        let heads: Vec<Head> = fv["heads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| headhunt::analysis::parse_head(k.as_str().unwrap()).unwrap())
            .collect();
        for metric in [Metric::LogitDiff, Metric::Logprob, Metric::Prob] {
            let m = metric.name();
            let opts = FvOptions {
                metric,
                ..FvOptions::default()
            };
            let res = function_vectors(
                &lm.model,
                &lm.tokenizer,
                &t.pairs,
                Some(&roles),
                &heads,
                &digits,
                &opts,
            )
            .unwrap();
            for (i, row) in res.baseline.iter().enumerate() {
                for (j, &x) in row.iter().enumerate() {
                    if metric != Metric::LogitDiff {
                        close(
                            &format!("{name} {m} baseline [{i}][{j}]"),
                            x,
                            &fv["baseline"][m][i][j],
                        );
                    }
                }
            }
            for (key, grid) in &res.delta {
                for (i, row) in grid.iter().enumerate() {
                    for (j, &x) in row.iter().enumerate() {
                        let want = &fv["delta"][key][m][i][j];
                        close(&format!("{name} {m} FV {key} [{i}][{j}]"), x, want);
                    }
                }
            }
        }
        let opts = FvOptions {
            metric: Metric::Kl,
            ..FvOptions::default()
        };
        let e = function_vectors(
            &lm.model,
            &lm.tokenizer,
            &t.pairs,
            Some(&roles),
            &heads,
            &digits,
            &opts,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("the metric kl is one number per prompt"), "{e}");
    }
}

/// `fv --metric logprob` names its grids after the metric and `show` reads them back; the same
/// grids under the logit's names with `metric: logprob` are refused; `--metric kl` is refused
/// before any work.
#[test]
fn fv_files_name_their_metric() {
    let dir = temp_dir("fv-metrics");
    let f = fixture("tiny-llama");
    let out = dir.join("fv.json");
    let data = f.join("addition.jsonl");
    let args = |metric: &str| -> Vec<String> {
        [
            "fv",
            "--model",
            f.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--heads",
            "3.1,2.0",
            "--metric",
            metric,
            "--json",
            out.to_str().unwrap(),
            "--force",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let run = |metric: &str| {
        let a = args(metric);
        cli(&a.iter().map(|s| s.as_str()).collect::<Vec<_>>())
    };
    let (code, _, err) = run("kl");
    assert!(
        code == 2 && err.contains("--metric kl: function vectors read each read-out token"),
        "{err}"
    );
    let (code, _, err) = run("logprob");
    assert_eq!(code, 0, "{err}");
    let v = read(&out);
    assert_eq!(v["metric"], "logprob");
    assert!(
        v.get("delta").is_none() && v.get("baseline").is_none(),
        "{v}"
    );
    assert!(v["delta_logprob"]["3.1"].is_array() && v["baseline_logprob"].is_array());
    let (_, _, err) = cli(&["show", out.to_str().unwrap()]);
    assert!(err.contains("a fv result"), "{err}");
    let text = std::fs::read_to_string(&out).unwrap();
    std::fs::write(&out, text.replace("\"delta_logprob\"", "\"delta\"")).unwrap();
    let (_, _, err) = cli(&["show", out.to_str().unwrap()]);
    assert!(
        err.contains(
            "field `delta` is of the metric logit-diff, but the file's `metric` is logprob"
        ),
        "{err}"
    );
}
