//! Circuit evaluation, head ablation and function vectors against TransformerLens running the
//! paper's analyses on the fixtures (`expected_circuit.json`), and on the demo model.

mod common;

use std::sync::atomic::AtomicBool;

use candle_core::{DType, Device};
use common::*;
use headhunt::analysis::ablation::{digit_tokens, random_groups, Ablator};
use headhunt::analysis::circuit::{greedy_search, Circuit, Evaluator, GreedyOptions, Group};
use headhunt::analysis::function_vectors::{function_vectors, paper_naive_prompts, FvOptions};
use headhunt::analysis::positions::PositionSet;
use headhunt::analysis::Head;
use headhunt::data::{load_and_tokenize, token_roles, DataSpec, TaskKind, TokenRoles, Tokenized};
use headhunt::model;
use serde_json::Value;

const TOL: f64 = 1e-4;

fn load(dir: &std::path::Path) -> model::LoadedModel {
    model::load(dir.to_str().unwrap(), None, &Device::Cpu, DType::F32).unwrap()
}

fn data(
    lm: &model::LoadedModel,
    file: &std::path::Path,
    n: Option<usize>,
) -> (Tokenized, Vec<TokenRoles>) {
    let mut spec = DataSpec::new(file, TaskKind::Addition);
    spec.examples = n;
    let t = load_and_tokenize(&spec, &lm.tokenizer).unwrap();
    let r = token_roles(&spec, &lm.tokenizer, &t).unwrap();
    (t, r)
}

fn heads(v: &Value) -> Vec<Head> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h[0].as_u64().unwrap() as usize,
                h[1].as_u64().unwrap() as usize,
            )
        })
        .collect()
}

fn close(what: &str, got: f64, want: &Value) {
    let want = want.as_f64().unwrap();
    assert!(
        (got - want).abs() <= TOL,
        "{what}: got {got}, TransformerLens {want}"
    );
}

fn expected(name: &str) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(fixture(name).join("expected_circuit.json")).unwrap(),
    )
    .unwrap()
}

/// The fixture's circuit with our position sets: `every '=' token` is @tok:=, `each
/// demonstration's answer token` is @answers.
fn fixture_circuit(lm: &model::LoadedModel, exp: &Value) -> Circuit {
    let mut groups = Vec::new();
    for (name, g) in exp["circuit"].as_object().unwrap() {
        let pos = match g["positions"].as_str().unwrap() {
            "every '=' token" => "tok:=",
            "each demonstration's answer token" => "answers",
            other => panic!("unknown position set {other}"),
        };
        groups.push(Group {
            name: name.clone(),
            heads: heads(&g["heads"]),
            positions: PositionSet::parse(pos, &lm.tokenizer).unwrap(),
        });
    }
    Circuit { groups }
}

fn check_fixture(name: &str) {
    let exp = expected(name);
    let lm = load(&fixture(name));
    let (t, roles) = data(&lm, &fixture(name).join("addition.jsonl"), Some(8));
    // Positions resolve to the fixture's indices.
    let c = fixture_circuit(&lm, &exp);
    for g in &c.groups {
        let key = exp["circuit"][&g.name]["positions"].as_str().unwrap();
        let want: Vec<usize> = serde_json::from_value(exp["positions"][key].clone()).unwrap();
        for (p, r) in t.pairs.iter().zip(&roles) {
            assert_eq!(
                g.positions.resolve(p, Some(r)).unwrap(),
                want,
                "{name} {}",
                g.name
            );
        }
    }
    for bs in [8, 3, 1] {
        let ctx = format!("{name} batch {bs}");
        let mut ev = Evaluator::new(&lm.model, &t.pairs, Some(&roles), bs).unwrap();
        close(&format!("{ctx} LD_normal"), ev.ld_normal, &exp["LD_normal"]);
        close(
            &format!("{ctx} LD_contrast"),
            ev.ld_contrast,
            &exp["LD_contrast"],
        );
        let fc = ev.f(&c).unwrap();
        close(&format!("{ctx} F_C"), fc, &exp["F_C"]);
        close(
            &format!("{ctx} F_M"),
            ev.f(&Circuit::complete(&lm.model)).unwrap(),
            &exp["F_M"],
        );
        close(
            &format!("{ctx} faithfulness"),
            ev.faithfulness(fc),
            &exp["faithfulness"],
        );
        for e in exp["completeness"].as_array().unwrap() {
            let k = heads(&e["K"]);
            let s = ev.completeness(&c, &k).unwrap();
            close(
                &format!("{ctx} F(C\\{k:?})"),
                s.f_c_minus_k,
                &e["F_C_minus_K"],
            );
            close(
                &format!("{ctx} F(M\\{k:?})"),
                s.f_m_minus_k,
                &e["F_M_minus_K"],
            );
            close(&format!("{ctx} gap {k:?}"), s.gap, &e["gap"]);
        }
        let digits = digit_tokens(&lm.tokenizer).unwrap();
        let want_digits: Vec<u32> =
            serde_json::from_value(exp["ablation"]["digit_token_ids"].clone()).unwrap();
        assert_eq!(digits, want_digits);
        let ab = Ablator::new(&lm.model, &t.pairs, Some(&roles), Some(digits.clone()), bs).unwrap();
        for run in exp["ablation"]["runs"].as_array().unwrap() {
            let h = heads(&run["heads"]);
            let r = ab.ablate(&h).unwrap();
            close(
                &format!("{ctx} ablate {h:?} LD"),
                r.logit_diff,
                &run["logit_diff"],
            );
            close(
                &format!("{ctx} ablate {h:?} acc n"),
                r.acc_normal_answer,
                &run["acc_normal_answer"],
            );
            close(
                &format!("{ctx} ablate {h:?} acc c"),
                r.acc_contrast_answer,
                &run["acc_contrast_answer"],
            );
        }
        let fv = &exp["function_vectors"];
        let fv_heads: Vec<Head> = fv["delta"]
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| *k != "all")
            .map(|k| headhunt::analysis::parse_head(k).unwrap())
            .collect();
        let opts = FvOptions {
            batch_size: bs,
            ..FvOptions::default()
        };
        let naive: Vec<String> = serde_json::from_value(fv["naive_prompts"].clone()).unwrap();
        assert_eq!(opts.naive_prompts, naive);
        let res = function_vectors(
            &lm.model,
            &lm.tokenizer,
            &t.pairs,
            Some(&roles),
            &fv_heads,
            &digits,
            &opts,
        )
        .unwrap();
        assert_eq!(res.delta.len(), fv_heads.len() + 1);
        for (key, grid) in &res.delta {
            let want = &fv["delta"][key];
            for i in 0..10 {
                for j in 0..10 {
                    close(
                        &format!("{ctx} FV {key} [{i}][{j}]"),
                        grid[i][j],
                        &want[i][j],
                    );
                }
            }
        }
    }
}

#[test]
fn tiny_llama_matches_transformer_lens() {
    check_fixture("tiny-llama");
}

#[test]
fn tiny_gemma2_matches_transformer_lens() {
    check_fixture("tiny-gemma2");
}

fn demo() -> (model::LoadedModel, Tokenized, Vec<TokenRoles>) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let lm = load(&root.join("assets/demo-model"));
    let (t, r) = data(
        &lm,
        &root.join("data/paper/addition/setting1/addition_nmax9_offset1.jsonl"),
        Some(40),
    );
    (lm, t, r)
}

/// The demo model's documented circuit (assets/demo-model/README.md): function-induction heads
/// (1,3), (1,2), (1,1) read the demonstrations' newlines from the final `=`; the line-summary
/// heads (0,0), (0,3) work at every newline.
fn demo_circuit(lm: &model::LoadedModel) -> Circuit {
    let g = |name: &str, heads: Vec<Head>, pos: &str| Group {
        name: name.into(),
        heads,
        positions: PositionSet::parse(pos, &lm.tokenizer).unwrap(),
    };
    Circuit {
        groups: vec![
            g("fi", vec![(1, 3), (1, 2), (1, 1)], "@last"),
            g("lines", vec![(0, 0), (0, 3)], "@tok:\\n"),
        ],
    }
}

#[test]
fn demo_model_circuit_ablation_and_greedy() {
    let (lm, t, roles) = demo();
    let mut ev = Evaluator::new(&lm.model, &t.pairs, Some(&roles), 16).unwrap();
    let fm = ev.f(&Circuit::complete(&lm.model)).unwrap();
    assert_eq!(fm, ev.ld_contrast, "F(M) must be the plain contrast run");
    assert!(ev.ld_normal > 5.0 && ev.ld_contrast < -5.0);
    let c = demo_circuit(&lm);
    let fc = ev.f(&c).unwrap();
    let faith = ev.faithfulness(fc);
    assert!((0.5..=1.2).contains(&faith), "faithfulness {faith}");
    // Without any head, the contrast run is the normal run: faithfulness 0.
    let empty = ev.f(&Circuit::default()).unwrap();
    assert!(
        (empty - ev.ld_normal).abs() < 1e-3,
        "F(∅) {empty} vs LD_n {}",
        ev.ld_normal
    );

    let digits = digit_tokens(&lm.tokenizer).unwrap();
    let ab = Ablator::new(&lm.model, &t.pairs, Some(&roles), Some(digits), 16).unwrap();
    let base = ab.ablate(&[]).unwrap();
    assert_eq!(base.acc_contrast_answer, 1.0);
    let fi = ab.ablate(&[(1, 3), (1, 2), (1, 1)]).unwrap();
    assert!(
        fi.acc_contrast_answer < 0.1 && fi.acc_normal_answer > 0.9,
        "{fi:?}"
    );
    let groups = random_groups(&lm.model, 5, 3, 42);
    assert_eq!(groups, random_groups(&lm.model, 5, 3, 42), "seeded");
    let mean_acc: f64 = groups
        .iter()
        .map(|g| ab.ablate(g).unwrap().acc_contrast_answer)
        .sum::<f64>()
        / 5.0;
    assert!(
        mean_acc > fi.acc_contrast_answer + 0.3,
        "random groups {mean_acc} vs FI {fi:?}"
    );

    // The greedy search is seeded and cancellable.
    let opts = GreedyOptions {
        rollouts: 2,
        iterations: 2,
        samples: 2,
        seed: 1,
    };
    let mut calls = 0;
    let a = greedy_search(
        &mut ev,
        &c,
        &opts,
        &mut |_| calls += 1,
        &AtomicBool::new(false),
    )
    .unwrap();
    assert!(a.complete && a.sets.len() == 2 && calls == 2);
    let b = greedy_search(&mut ev, &c, &opts, &mut |_| {}, &AtomicBool::new(false)).unwrap();
    assert_eq!(a, b);
    let stopped = greedy_search(&mut ev, &c, &opts, &mut |_| {}, &AtomicBool::new(true)).unwrap();
    assert!(!stopped.complete && stopped.sets.is_empty());
}

#[test]
fn demo_model_function_vectors_batch_invariant() {
    let (lm, t, roles) = demo();
    let digits = digit_tokens(&lm.tokenizer).unwrap();
    let heads = [(1, 3), (1, 2)];
    let run = |bs: usize| {
        let opts = FvOptions {
            batch_size: bs,
            ..FvOptions::default()
        };
        function_vectors(
            &lm.model,
            &lm.tokenizer,
            &t.pairs,
            Some(&roles),
            &heads,
            &digits,
            &opts,
        )
        .unwrap()
    };
    let (a, b) = (run(40), run(3));
    for ((ka, ga), (kb, gb)) in a.delta.iter().zip(&b.delta) {
        assert_eq!(ka, kb);
        for (ra, rb) in ga.iter().zip(gb) {
            for (x, y) in ra.iter().zip(rb) {
                assert!((x - y).abs() < 1e-5, "{ka}: {x} vs {y}");
            }
        }
    }
    assert_eq!(paper_naive_prompts()[0], "9=9\n0=");
    // The previous-token variant: the mean over the demonstration answers, added at −4.
    let opts = FvOptions {
        source: PositionSet::Answers,
        add_at: -4,
        ..FvOptions::default()
    };
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
    assert!(r
        .delta
        .iter()
        .all(|(_, g)| g.len() == 10 && g.iter().all(|row| row.len() == 10)));
}

/// Models without circuit references: identities that hold whatever the weights.
/// - F(M) is the plain contrast run, bit for bit.
/// - F(∅) is LD_normal: with every head's z from the normal run, the last position (the same
///   token `=` in both prompts) sees exactly the normal run.
/// - Ablating H (through `Patch`) equals F(M\H) (through the circuit mask): two code paths,
///   one computation.
/// - Batch size does not change the figures.
#[test]
fn held_out_models_satisfy_the_identities() {
    for name in [
        "tiny-mistral",
        "tiny-qwen2",
        "tiny-gpt2",
        "tiny-pythia",
        "tiny-qwen3",
    ] {
        let lm = load(&fixture(name));
        let (t, roles) = data(&lm, &fixture(name).join("addition.jsonl"), Some(8));
        let mut ev = Evaluator::new(&lm.model, &t.pairs, Some(&roles), 8).unwrap();
        let m = Circuit::complete(&lm.model);
        assert_eq!(ev.f(&m).unwrap(), ev.ld_contrast, "{name}");
        let empty = ev.f(&Circuit::default()).unwrap();
        assert!(
            (empty - ev.ld_normal).abs() < TOL,
            "{name}: F(∅) {empty} vs {}",
            ev.ld_normal
        );
        let h: Vec<Head> = vec![(1, 2), (2, 0), (0, 3)];
        let ab = Ablator::new(&lm.model, &t.pairs, Some(&roles), None, 3).unwrap();
        let f = ev.f(&m.without(&h)).unwrap();
        let r = ab.ablate(&h).unwrap();
        assert!(
            (f - r.logit_diff).abs() < TOL,
            "{name}: F(M\\H) {f} vs ablation {}",
            r.logit_diff
        );
        let c = Circuit {
            groups: vec![Group {
                name: "g".into(),
                heads: h.clone(),
                positions: PositionSet::parse("tok:=", &lm.tokenizer).unwrap(),
            }],
        };
        let a = ev.f(&c).unwrap();
        let mut ev1 = Evaluator::new(&lm.model, &t.pairs, Some(&roles), 1).unwrap();
        assert!(
            (a - ev1.f(&c).unwrap()).abs() < 1e-5,
            "{name}: batch size changed F(C)"
        );
        assert!((ev.ld_normal - ev1.ld_normal).abs() < 1e-5);
    }
}
