//! Circuit evaluation, head ablation and function vectors on the fixtures without circuit
//! references (`expected_circuit.json` covers tiny-llama and tiny-gemma2, tests/circuit.rs):
//! identities that hold whatever the weights, so that every architecture family is checked.
//! - F(M) is the plain contrast run and F(∅) the normal run (with every head's z from the
//!   normal run, the last position — the same token `=` in both prompts — sees exactly the
//!   normal run), so faithfulness(F(M)) = 1 and faithfulness(F(∅)) = 0.
//! - Ablating no head is the plain contrast run; ablating every head is the normal run.
//! - Function vectors of real heads give finite Δ; a zero vector gives Δ = 0 exactly.

mod common;

use candle_core::{DType, Device};
use common::*;
use headhunt::analysis::ablation::{digit_tokens, Ablator};
use headhunt::analysis::circuit::{Circuit, Evaluator};
use headhunt::analysis::function_vectors::{deltas, function_vectors, FvOptions};
use headhunt::analysis::Head;
use headhunt::data::{load_and_tokenize, token_roles, DataSpec, TaskKind, TokenRoles, Tokenized};
use headhunt::model;

const TOL: f64 = 1e-5;

/// Fixtures without circuit references, with the addition data each runs on (tiny-gemma2-window
/// has none of its own; its tokenizer is tiny-gemma2's and the data are numbers).
const HELD_OUT: &[(&str, &str)] = &[
    ("tiny-gemma2-window", "tiny-gemma2"),
    ("tiny-gpt2", "tiny-gpt2"),
    ("tiny-mistral", "tiny-mistral"),
    ("tiny-pythia", "tiny-pythia"),
    ("tiny-qwen2", "tiny-qwen2"),
    ("tiny-qwen3", "tiny-qwen3"),
];

/// Few examples keep the test fast: the identities hold example by example.
const EXAMPLES: usize = 4;

fn load(name: &str, data_from: &str) -> (model::LoadedModel, Tokenized, Vec<TokenRoles>) {
    let lm = model::load(
        fixture(name).to_str().unwrap(),
        None,
        &Device::Cpu,
        DType::F32,
    )
    .unwrap();
    let mut spec = DataSpec::new(
        fixture(data_from).join("addition.jsonl"),
        TaskKind::Addition,
    );
    spec.examples = Some(EXAMPLES);
    let t = load_and_tokenize(&spec, &lm.tokenizer).unwrap();
    let r = token_roles(&spec, &lm.tokenizer, &t).unwrap();
    (lm, t, r)
}

fn near(what: &str, got: f64, want: f64) {
    assert!(
        (got - want).abs() <= TOL,
        "{what}: got {got}, want {want} (diff {})",
        (got - want).abs()
    );
}

fn all_heads(m: &model::Model) -> Vec<Head> {
    (0..m.n_layers())
        .flat_map(|l| (0..m.n_heads()).map(move |h| (l, h)))
        .collect()
}

#[test]
fn circuit_identities_on_every_held_out_fixture() {
    for &(name, data_from) in HELD_OUT {
        let (lm, t, roles) = load(name, data_from);
        let mut ev = Evaluator::new(&lm.model, &t.pairs, Some(&roles), EXAMPLES).unwrap();
        // The identities below say nothing if the two runs agree.
        assert!(
            (ev.ld_contrast - ev.ld_normal).abs() > 1e-3,
            "{name}: LD_n {} and LD_c {} too close to test anything",
            ev.ld_normal,
            ev.ld_contrast
        );
        let fm = ev.f(&Circuit::complete(&lm.model)).unwrap();
        near(&format!("{name} F(M) vs LD_contrast"), fm, ev.ld_contrast);
        near(&format!("{name} faithfulness(M)"), ev.faithfulness(fm), 1.0);
        let empty = ev.f(&Circuit::default()).unwrap();
        near(&format!("{name} F(∅) vs LD_normal"), empty, ev.ld_normal);
        near(
            &format!("{name} faithfulness(∅)"),
            ev.faithfulness(empty),
            0.0,
        );
    }
}

#[test]
fn ablation_identities_on_every_held_out_fixture() {
    for &(name, data_from) in HELD_OUT {
        let (lm, t, roles) = load(name, data_from);
        let ev = Evaluator::new(&lm.model, &t.pairs, Some(&roles), EXAMPLES).unwrap();
        let digits = digit_tokens(&lm.tokenizer).unwrap();
        let ab = Ablator::new(&lm.model, &t.pairs, Some(&roles), Some(digits), EXAMPLES).unwrap();
        let none = ab.ablate(&[]).unwrap();
        near(
            &format!("{name} ablate ∅ vs LD_contrast"),
            none.logit_diff,
            ev.ld_contrast,
        );
        let all = ab.ablate(&all_heads(&lm.model)).unwrap();
        near(
            &format!("{name} ablate every head vs LD_normal"),
            all.logit_diff,
            ev.ld_normal,
        );
        for r in [&none, &all] {
            for acc in [
                r.acc_normal_answer,
                r.acc_contrast_answer,
                r.acc_normal_answer_full_vocab,
                r.acc_contrast_answer_full_vocab,
            ] {
                assert!((0.0..=1.0).contains(&acc), "{name}: accuracy {acc}");
            }
        }
    }
}

#[test]
fn function_vector_identities_on_every_held_out_fixture() {
    for &(name, data_from) in HELD_OUT {
        let (lm, t, roles) = load(name, data_from);
        let digits = digit_tokens(&lm.tokenizer).unwrap();
        let heads = all_heads(&lm.model);
        let opts = FvOptions::default();
        let r = function_vectors(
            &lm.model,
            &lm.tokenizer,
            &t.pairs,
            Some(&roles),
            &heads,
            &digits,
            &opts,
        )
        .unwrap();
        assert_eq!(r.delta.len(), heads.len() + 1, "{name}");
        let mut moved = false;
        for (key, grid) in &r.delta {
            assert_eq!(grid.len(), 10, "{name} {key}");
            for row in grid {
                assert_eq!(row.len(), 10, "{name} {key}");
                assert!(row.iter().all(|x| x.is_finite()), "{name} {key}: {row:?}");
                moved |= row.iter().any(|x| x.abs() > 1e-6);
            }
        }
        assert!(moved, "{name}: no function vector changed any logit");
        let zero = vec![vec![0.0; lm.model.cfg.d_head]; heads.len()];
        let z = deltas(&lm.model, &lm.tokenizer, &heads, &zero, &digits, &opts).unwrap();
        assert_eq!(z.baseline, r.baseline, "{name}: baseline");
        for (key, grid) in &z.delta {
            assert!(
                grid.iter().flatten().all(|&x| x == 0.0),
                "{name} {key}: a zero vector changed logits: {grid:?}"
            );
        }
    }
}

/// Batch size never changes the numbers: circuit F, ablation and FV Δ at batch 1 and at one
/// batch of every example agree within 1e-6 on every held-out fixture (FV Δ: see `fv_tol`) (tests/circuit.rs checks batches 8, 3, 1 against
/// TransformerLens within 1e-4 on tiny-llama and tiny-gemma2).
#[test]
fn batch_size_never_changes_the_numbers() {
    for &(name, data_from) in HELD_OUT {
        // FV Δ of tiny-gemma2-window and tiny-qwen2 differ between batch 1 and 4 by ~1.4e-6
        // (f32 rounding of logits near 1): 1e-5 there, 1e-6 where it holds.
        let fv_tol = if matches!(name, "tiny-gpt2" | "tiny-qwen3") {
            1e-6
        } else {
            1e-5
        };
        let (lm, t, roles) = load(name, data_from);
        let digits = digit_tokens(&lm.tokenizer).unwrap();
        let heads: Vec<Head> = vec![(1, 2), (2, 0), (0, 3)];
        let c = Circuit::complete(&lm.model).without(&heads[..1]);
        let mut f = Vec::new();
        let mut fv = Vec::new();
        for bs in [1, EXAMPLES] {
            let mut ev = Evaluator::new(&lm.model, &t.pairs, Some(&roles), bs).unwrap();
            let ab =
                Ablator::new(&lm.model, &t.pairs, Some(&roles), Some(digits.clone()), bs).unwrap();
            let r = ab.ablate(&heads).unwrap();
            f.push([
                ev.ld_normal,
                ev.ld_contrast,
                ev.f(&c).unwrap(),
                r.logit_diff,
                r.acc_normal_answer,
                r.acc_contrast_answer,
            ]);
            let opts = FvOptions {
                batch_size: bs,
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
            fv.push(res.delta);
        }
        for (i, (a, b)) in f[0].iter().zip(&f[1]).enumerate() {
            assert!(
                (a - b).abs() <= 1e-6,
                "{name} figure {i}: batch 1 {a}, batch N {b}"
            );
        }
        for ((ka, ga), (_, gb)) in fv[0].iter().zip(&fv[1]) {
            for (x, y) in ga.iter().flatten().zip(gb.iter().flatten()) {
                assert!(
                    (x - y).abs() <= fv_tol,
                    "{name} FV {ka}: batch 1 {x}, batch N {y}"
                );
            }
        }
    }
}

/// The restricted accuracy's token set follows the task, as the paper's §7 scripts count it:
/// the ten digits for addition, the whole vocabulary for base-k addition and the cipher, and
/// for prompt-pair files exactly the data's own answer tokens (normal and contrast) — so the
/// restricted accuracy is never below the full-vocabulary one (the answer is in the set).
#[test]
fn the_answer_set_follows_the_task() {
    use headhunt::analysis::ablation::task_answer_tokens;
    use headhunt::analysis::report::AnswerSet;
    let (lm, t, _) = load("tiny-llama", "tiny-llama");
    let tok = &lm.tokenizer;
    let (set, ids) = task_answer_tokens(TaskKind::Addition, tok, &t.pairs, None).unwrap();
    assert_eq!(
        (set, ids),
        (AnswerSet::Digits, Some(digit_tokens(tok).unwrap()))
    );
    for task in [TaskKind::Base, TaskKind::Cipher] {
        let (set, ids) = task_answer_tokens(task, tok, &t.pairs, None).unwrap();
        assert_eq!((set, ids), (AnswerSet::FullVocabulary, None), "{task:?}");
    }
    // A prompt-pair file: x=x vs x=x+1 with answers 3..7.
    let dir = temp_dir("answer-set");
    let path = dir.join("pairs.jsonl");
    let lines: Vec<String> = (2..7)
        .map(|x| {
            format!(
                r#"{{"normal_input": "1=1\n{x}=", "normal_output": "{x}", "contrast_input": "1=2\n{x}=", "contrast_output": "{}"}}"#,
                x + 1
            )
        })
        .collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let spec = DataSpec::new(&path, TaskKind::Pairs);
    let pt = load_and_tokenize(&spec, tok).unwrap();
    let roles = token_roles(&spec, tok, &pt).unwrap();
    let mut want: Vec<u32> = pt
        .pairs
        .iter()
        .flat_map(|p| [p.normal_answer, p.contrast_answer])
        .collect();
    want.sort_unstable();
    want.dedup();
    assert_eq!(want.len(), 6, "answers 2..7 are six tokens");
    let (set, ids) = task_answer_tokens(TaskKind::Pairs, tok, &pt.pairs, Some(&roles)).unwrap();
    assert_eq!((set, ids.clone()), (AnswerSet::DataAnswers(6), Some(want)));
    let ab = Ablator::new(&lm.model, &pt.pairs, Some(&roles), ids, 8).unwrap();
    let base = ab.ablate(&[]).unwrap();
    assert!(base.acc_normal_answer >= base.acc_normal_answer_full_vocab);
    assert!(base.acc_contrast_answer >= base.acc_contrast_answer_full_vocab);
    // one answer token for the whole file: no restriction is meaningful
    let same = r#"{"normal_input": "1=1\n2=", "normal_output": "2", "contrast_input": "1=2\n2=", "contrast_output": "2"}"#;
    std::fs::write(&path, format!("{same}\n{same}\n")).unwrap();
    let pt = load_and_tokenize(&spec, tok).unwrap();
    let (set, ids) = task_answer_tokens(TaskKind::Pairs, tok, &pt.pairs, None).unwrap();
    assert_eq!((set, ids), (AnswerSet::FullVocabulary, None));
}
