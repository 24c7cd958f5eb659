//! Circuit, ablation and FV jobs on the worker: progress arrives, cancel stops early and says
//! so, and the numbers equal a direct `analysis` call exactly.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use candle_core::{DType, Device};
use common::*;
use headhunt::analysis::ablation::{digit_tokens, random_groups, Ablator};
use headhunt::analysis::circuit::{Circuit, Evaluator, Group};
use headhunt::analysis::function_vectors::{function_vectors, FvOptions};
use headhunt::analysis::positions::PositionSet;
use headhunt::data::{load_and_tokenize, token_roles, DataSpec, TaskKind};
use headhunt::worker::{
    AblationRequest, AnalysisReport, CircuitRequest, Event, FvRequest, GroupSpec, Job, Worker,
};

fn next(rx: &mpsc::Receiver<Event>) -> Event {
    rx.recv_timeout(Duration::from_secs(120))
        .expect("the worker answers")
}

fn spec() -> DataSpec {
    let mut s = DataSpec::new(
        fixture("tiny-llama").join("addition.jsonl"),
        TaskKind::Addition,
    );
    s.examples = Some(6);
    s
}

fn start() -> (Worker, mpsc::Receiver<Event>) {
    let (tx, rx) = mpsc::channel();
    let worker = Worker::spawn(tx);
    worker.submit(Job::LoadModel(cpu_model_request(
        fixture("tiny-llama").to_str().unwrap(),
    )));
    worker.submit(Job::LoadData(spec()));
    loop {
        match next(&rx) {
            Event::Evaluated { .. } => break,
            Event::Error { message, .. } => panic!("{message}"),
            _ => {}
        }
    }
    (worker, rx)
}

/// Runs a job to its result; counts progress events; cancels at the first one when asked.
fn run(
    worker: &Worker,
    rx: &mpsc::Receiver<Event>,
    job: Job,
    cancel: bool,
) -> (AnalysisReport, usize, bool) {
    let id = worker.submit(job);
    let (mut progress, mut cancelled) = (0, false);
    loop {
        match next(rx) {
            Event::Progress {
                id: i, done, total, ..
            } if i == id => {
                assert!(done <= total);
                progress += 1;
                if cancel && progress == 1 {
                    worker.cancel();
                }
            }
            Event::Cancelled { id: i } if i == id => cancelled = true,
            Event::Analysis { id: i, report } if i == id => return (*report, progress, cancelled),
            Event::Error { message, .. } => panic!("{message}"),
            _ => {}
        }
    }
}

fn circuit(tok: &headhunt::model::Tokenizer) -> Circuit {
    Circuit {
        groups: vec![
            Group {
                name: "a".into(),
                heads: vec![(1, 2), (2, 0)],
                positions: PositionSet::parse("tok:=", tok).unwrap(),
            },
            Group {
                name: "b".into(),
                heads: vec![(0, 3)],
                positions: PositionSet::All,
            },
        ],
    }
}

/// The fixture the jobs run on, loaded as the worker loads it (f32 on the CPU).
fn tiny_llama() -> headhunt::model::LoadedModel {
    let dir = fixture("tiny-llama");
    headhunt::model::load(dir.to_str().unwrap(), None, &Device::Cpu, DType::F32).unwrap()
}

#[test]
fn analysis_jobs_match_direct_runs_and_cancel() {
    let lm = tiny_llama();
    let t = load_and_tokenize(&spec(), &lm.tokenizer).unwrap();
    let roles = token_roles(&spec(), &lm.tokenizer, &t).unwrap();
    let c = circuit(&lm.tokenizer);
    let knockouts = vec![vec![(1, 2)], vec![(2, 0), (0, 3)]];
    let (worker, rx) = start();

    // Circuit: every figure equal to the Evaluator's.
    let groups = vec![
        GroupSpec {
            name: "a".into(),
            heads: vec![(1, 2), (2, 0)],
            positions: "tok:=".into(),
        },
        GroupSpec {
            name: "b".into(),
            heads: vec![(0, 3)],
            positions: "all".into(),
        },
    ];
    let req = CircuitRequest {
        groups,
        knockouts: knockouts.clone(),
        minimality: true,
        greedy: None,
        batch_size: 4,
    };
    let (rep, progress, cancelled) = run(&worker, &rx, Job::Circuit(req.clone()), false);
    let AnalysisReport::Circuit(r) = rep else {
        panic!("a circuit report")
    };
    assert!(r.complete && !cancelled && progress == 2 + 2 + 3);
    assert_eq!(r.circuit, c, "the group specs resolve to the same circuit");
    let mut ev = Evaluator::new(&lm.model, &t.pairs, Some(&roles), 4).unwrap();
    let f_c = ev.f(&c).unwrap();
    assert_eq!(r.f_c, f_c);
    assert_eq!(r.f_m, ev.ld_contrast);
    assert_eq!(r.faithfulness, ev.faithfulness(f_c));
    for (got, k) in r.completeness.iter().zip(&knockouts) {
        assert_eq!(got, &ev.completeness(&c, k).unwrap());
    }
    assert_eq!(r.minimality.len(), 3);
    assert_eq!(r.minimality[0], ev.minimality(&c, (1, 2), &[]).unwrap());

    // Cancelled after F(C): says so, and keeps what it finished.
    let (rep, _, cancelled) = run(&worker, &rx, Job::Circuit(req), true);
    let AnalysisReport::Circuit(r) = rep else {
        panic!("a circuit report")
    };
    assert!(cancelled && !r.complete);
    assert!(r.completeness.len() < 2 && r.minimality.is_empty());
    assert_eq!(r.f_c, f_c);

    // Ablation against random groups.
    let heads = vec![(1, 2), (2, 0)];
    let areq = AblationRequest {
        heads: heads.clone(),
        random_groups: 50,
        seed: 7,
        batch_size: 4,
    };
    let three = AblationRequest {
        random_groups: 3,
        ..areq.clone()
    };
    let (rep, progress, _) = run(&worker, &rx, Job::Ablation(three), false);
    let AnalysisReport::Ablation(a) = rep else {
        panic!("an ablation report")
    };
    let digits = digit_tokens(&lm.tokenizer).unwrap();
    let ab = Ablator::new(&lm.model, &t.pairs, Some(&roles), Some(digits.clone()), 4).unwrap();
    assert!(
        a.complete
            && progress == 5
            && a.answer_set == headhunt::analysis::report::AnswerSet::Digits
            && a.seed == 7
    );
    assert_eq!(a.baseline, ab.ablate(&[]).unwrap());
    assert_eq!(a.heads, ab.ablate(&heads).unwrap());
    for (got, g) in a.random.iter().zip(random_groups(&lm.model, 3, 2, 7)) {
        assert_eq!(got, &ab.ablate(&g).unwrap());
    }
    let (rep, _, cancelled) = run(&worker, &rx, Job::Ablation(areq), true);
    let AnalysisReport::Ablation(a) = rep else {
        panic!("an ablation report")
    };
    assert!(cancelled && !a.complete && a.random.len() < 50);

    // Function vectors.
    let opts = FvOptions {
        batch_size: 4,
        ..FvOptions::default()
    };
    let (rep, progress, cancelled) = run(
        &worker,
        &rx,
        Job::FunctionVectors(FvRequest {
            heads: heads.clone(),
            options: opts.clone(),
        }),
        false,
    );
    let AnalysisReport::Fv(f) = rep else {
        panic!("an FV report")
    };
    // the mean z, the baseline, one grid per head and "all"
    assert_eq!(progress, heads.len() + 3);
    assert!(f.complete && !cancelled);
    let want = function_vectors(
        &lm.model,
        &lm.tokenizer,
        &t.pairs,
        Some(&roles),
        &heads,
        &digits,
        &opts,
    )
    .unwrap();
    assert_eq!(f.result, want);
    assert_eq!(f.options, opts);
}

/// A stopped FV computation keeps the grids it finished: `deltas_with` stops when its step
/// callback says so (the worker's cancel point), and says it stopped.
#[test]
fn function_vectors_stop_between_grids() {
    use headhunt::analysis::function_vectors::{deltas, deltas_with, mean_z};
    let lm = tiny_llama();
    let s = spec();
    let t = load_and_tokenize(&s, &lm.tokenizer).unwrap();
    let roles = token_roles(&s, &lm.tokenizer, &t).unwrap();
    let heads = vec![(3, 1), (2, 0), (1, 2)];
    let opts = FvOptions::default();
    let digits = digit_tokens(&lm.tokenizer).unwrap();
    let fv = mean_z(&lm.model, &t.pairs, Some(&roles), &heads, &opts.source, 4).unwrap();
    let full = deltas(&lm.model, &lm.tokenizer, &heads, &fv, &digits, &opts).unwrap();
    for allowed in 0..=heads.len() + 1 {
        let mut calls = 0;
        let mut step = || {
            calls += 1;
            calls <= allowed
        };
        let (part, complete) = deltas_with(
            &lm.model,
            &lm.tokenizer,
            &heads,
            &fv,
            &digits,
            &opts,
            &mut step,
        )
        .unwrap();
        // a step after the baseline and after each grid; false stops before the next grid
        let grids = allowed.min(heads.len() + 1);
        assert_eq!(part.delta.len(), grids, "allowed {allowed}");
        assert_eq!(complete, allowed > heads.len(), "allowed {allowed}");
        assert_eq!(part.delta[..], full.delta[..grids]);
        assert_eq!(part.baseline, full.baseline);
    }
}
