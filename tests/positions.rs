//! Position sets (issue #24 item 2): senders patched only at some positions of the contrast
//! prompt, receivers written in pass 2 only at some positions. The fast and the literal
//! algorithm against TransformerLens 2.16.1 (`tests/data/positions`, made by
//! `scripts/fixtures/make_position_refs.py`), per example and metric, on tiny-llama,
//! tiny-pythia (parallel block) and tiny-gpt2: a q receiver at `@last`, head and MLP senders
//! at position -2 only, a residual receiver at each demonstration's answer (`@role:answers`)
//! and `mlp_in:1@last`. Each case is also checked to differ from the same sweep without its
//! positions, so a sweep that ignored them would fail.

mod common;

use candle_core::{Device, Tensor};
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
    let (lm, pairs) = fixture_and_addition(name);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/positions");
    let meta =
        serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap())
            .unwrap();
    let refs =
        candle_core::safetensors::load(dir.join(format!("{name}.safetensors")), &Device::Cpu)
            .unwrap();
    Fixture {
        lm,
        spec: DataSpec::new(fixture(name).join("addition.jsonl"), TaskKind::Addition),
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

/// A fresh directory for this test's files.
fn temp_dir() -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "headhunt-positions-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A prompt-pair file whose lines name roles: `"roles"` as token spans, `"role_chars"` as
/// character spans (BOS comes first in these tokenizers, so character 3 is token 4).
fn pairs_file(dir: &std::path::Path, lines: &[&str]) -> DataSpec {
    let path = dir.join("pairs.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    DataSpec::new(path, TaskKind::Pairs)
}

const LINE_1: &str = r#"{"normal_input": "1+2=3\n2+2=", "normal_output": "4", "contrast_input": "1+2=4\n2+2=", "contrast_output": "5", "roles": {"A": [1, 2]}, "role_chars": {"EQ": [3, 4], "B": {"normal": [6, 7], "contrast": [6, 7]}}}"#;
const LINE_2: &str = r#"{"normal_input": "3+1=4\n1+1=", "normal_output": "2", "contrast_input": "3+1=5\n1+1=", "contrast_output": "3", "roles": {"A": [3, 4]}, "role_chars": {"EQ": [9, 10], "B": {"normal": [6, 7], "contrast": [6, 7]}}}"#;

fn resolve_on(
    spec: &DataSpec,
    lm: &model::LoadedModel,
    set: &str,
) -> Result<Vec<Vec<usize>>, String> {
    let tok = data::load_and_tokenize(spec, &lm.tokenizer).map_err(|e| e.to_string())?;
    let roles = data::token_roles(spec, &lm.tokenizer, &tok).map_err(|e| e.to_string())?;
    let set = PositionSet::parse(set, &lm.tokenizer).map_err(|e| e.to_string())?;
    tok.pairs
        .iter()
        .zip(&roles)
        .map(|(p, r)| set.resolve(p, Some(r)).map_err(|e| e.to_string()))
        .collect()
}

#[test]
fn roles_come_from_prompt_pair_lines() {
    let f = load("tiny-llama");
    let dir = temp_dir();
    let spec = pairs_file(&dir, &[LINE_1, LINE_2]);
    assert_eq!(
        resolve_on(&spec, &f.lm, "role:A").unwrap(),
        vec![vec![1], vec![3]]
    );
    assert_eq!(
        resolve_on(&spec, &f.lm, "role:EQ").unwrap(),
        vec![vec![4], vec![10]]
    );
    assert_eq!(
        resolve_on(&spec, &f.lm, "role:A,EQ").unwrap(),
        vec![vec![1, 4], vec![3, 10]]
    );
    assert_eq!(
        resolve_on(&spec, &f.lm, "role:B").unwrap(),
        vec![vec![7], vec![7]]
    );
    assert_eq!(
        resolve_on(&spec, &f.lm, "pos:-1,0").unwrap(),
        vec![vec![0, 10], vec![0, 10]]
    );
    // Prompt pairs have no demonstration answers unless a line names them.
    let e = resolve_on(&spec, &f.lm, "@answers").unwrap_err();
    assert!(
        e.contains("@answers: example 1 has no known demonstration answers"),
        "{e}"
    );
    let e = resolve_on(&spec, &f.lm, "role:IO").unwrap_err();
    assert!(e.contains("no role \"IO\" (its roles: A, B, EQ)"), "{e}");
    // The paper's tasks: answers and `=` (every `=` of the contrast prompt).
    let eq = resolve_on(&f.spec, &f.lm, "role:=").unwrap();
    assert_eq!(eq[0], vec![4, 10, 16, 22, 28]);
    assert_eq!(
        resolve_on(&f.spec, &f.lm, "answers").unwrap()[0],
        vec![5, 11, 17, 23]
    );
}

/// A role whose spans cover a different number of tokens in the two prompts, or a span
/// outside the prompt, is a one-line error naming the file, the line and the field.
#[test]
fn misaligned_role_spans_are_refused() {
    let f = load("tiny-llama");
    let dir = temp_dir();
    let bad = LINE_2.replace(r#""normal": [6, 7]"#, r#""normal": [6, 8]"#);
    let spec = pairs_file(&dir, &[LINE_1, &bad]);
    let e = resolve_on(&spec, &f.lm, "role:B").unwrap_err();
    assert!(!e.contains('\n'), "{e}");
    assert!(
        e.contains("pairs.jsonl:2:") && e.contains("field `role_chars.B`"),
        "{e}"
    );
    assert!(
        e.contains("2 token(s) in the normal prompt and 1 in the contrast"),
        "{e}"
    );
    let bad = LINE_1.replace(r#""A": [1, 2]"#, r#""A": [5, 40]"#);
    let spec = pairs_file(&dir, &[&bad]);
    let e = resolve_on(&spec, &f.lm, "role:A").unwrap_err();
    assert!(
        e.contains("pairs.jsonl:1:") && e.contains("field `roles.A`"),
        "{e}"
    );
}

/// Roles from the data drive both algorithms to the same numbers (senders at one role,
/// receivers at another), and change them.
#[test]
fn fast_equals_literal_on_data_roles() {
    let f = load("tiny-llama");
    let dir = temp_dir();
    let spec = pairs_file(&dir, &[LINE_1, LINE_2]);
    let m = &f.lm.model;
    let tok = data::load_and_tokenize(&spec, &f.lm.tokenizer).unwrap();
    let roles = data::token_roles(&spec, &f.lm.tokenizer, &tok).unwrap();
    let p = |s: &str| PositionSet::parse(s, &f.lm.tokenizer).unwrap();
    for (text, sender, set) in [
        ("resid_post:1", Some("role:A,EQ"), Some("role:EQ,B")),
        ("mlp_in:1", Some("role:B"), Some("last")),
        ("2.1.k", None, Some("role:A,EQ")),
    ] {
        let r = Receiver::parse_one(text)
            .unwrap()
            .for_block(m.block_shape());
        let sets = vec![set.map(p)];
        let pairs =
            data::with_positions(&tok.pairs, &roles, sender.map(p).as_ref(), &sets).unwrap();
        let s = Senders::HeadsAndMlp;
        let fast = sweep(m, &pairs, &r, s, Metric::LogitDiff, true);
        let lit = sweep(m, &pairs, &r, s, Metric::LogitDiff, false);
        let plain = sweep(m, &tok.pairs, &r, s, Metric::LogitDiff, true);
        let (mut worst, mut moved) = (0f32, 0f32);
        for ((fe, le), pe) in fast.iter().zip(&lit).zip(&plain) {
            for (((fm, fh), (lm, lh)), (pm, ph)) in fe.iter().zip(le).zip(pe) {
                worst = worst
                    .max((fm.unwrap() - lm.unwrap()).abs())
                    .max(max_abs_diff(fh, lh));
                moved = moved
                    .max((fm.unwrap() - pm.unwrap()).abs())
                    .max(max_abs_diff(fh, ph));
            }
        }
        assert!(worst < 1e-4, "{text}: fast vs literal {worst:e}");
        assert!(moved > 1e-4, "{text}: the positions changed nothing");
    }
}

/// `patch --receiver TEXT@SET --sender-positions SET` end to end: the result file records the
/// sets (label `2.1.v`, `sender_positions`, per part `receiver_positions`, a filesystem-safe
/// default name) and its mean patched values are TransformerLens' means.
#[test]
fn the_command_line_records_and_computes_position_sets() {
    let f = load("tiny-llama");
    let dir = temp_dir();
    let data = fixture("tiny-llama").join("addition.jsonl");
    let run = |extra: &[&str], out: &str| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_headhunt"))
            .args(["patch", "--model", fixture("tiny-llama").to_str().unwrap()])
            .args([
                "--data",
                data.to_str().unwrap(),
                "--shots",
                "4",
                "--offset",
                "1",
            ])
            .args([
                "--batch-size",
                "3",
                "--quiet",
                "--senders",
                "heads,mlp",
                "--out",
                out,
            ])
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let text = std::fs::read_to_string(out).unwrap();
        serde_json::from_str::<serde_json::Value>(&text).unwrap()
    };
    let out = dir.join("a.json");
    let args = ["--receiver", "2.1.v", "--sender-positions", "pos:-2"];
    let v = run(&args, out.to_str().unwrap());
    assert_eq!(v["sender_positions"], "pos:-2");
    let shown = std::process::Command::new(env!("CARGO_BIN_EXE_headhunt"))
        .args(["show", out.to_str().unwrap()])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains(") at @pos:-2, algorithm fast"), "{shown}");
    assert!(v.get("receiver_positions").is_none());
    let want = f.refs["sender_pos.logit-diff.head_patched"]
        .to_vec3::<f64>()
        .unwrap();
    let mut worst = 0f64;
    for l in 0..2 {
        for h in 0..8 {
            let mean = (0..8).map(|e| want[e][l][h]).sum::<f64>() / 8.0;
            let ours = v["patched_logit_diff"][l][h].as_f64().unwrap();
            worst = worst.max((ours - mean).abs());
        }
    }
    assert!(worst < 1e-4, "mean patched vs TransformerLens: {worst:e}");
    let out = dir.join("b.json");
    let v = run(
        &["--receiver", "2.1.q@last", "--algorithm", "reference"],
        out.to_str().unwrap(),
    );
    assert_eq!(v["receiver_label"], "2.1.q@last");
    assert_eq!(v["receiver_positions"], serde_json::json!(["last"]));
    let r = Receiver::parse_one("2.1.q").unwrap();
    let slug = r.positioned_slug(&[Some("tok:/".into())]);
    assert_eq!(slug, "2_1_q_at_tok");
    let slug = r.positioned_slug(&[Some("role:S1,IO".into())]);
    assert_eq!(slug, "2_1_q_at_role_S1_IO");
}
