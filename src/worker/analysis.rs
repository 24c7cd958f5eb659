//! Circuit evaluation, head ablation and function vectors as worker jobs: the same
//! `analysis` calls as `headhunt circuit|ablate|fv`, with progress events between evaluations
//! and the shared cancel flag polled there (a cancelled job reports what it finished).

use std::sync::atomic::{AtomicBool, Ordering};

use crate::analysis::ablation::{random_groups, task_answer_tokens, Ablator};
use crate::analysis::circuit::{greedy_search, Circuit, Evaluator};
use crate::analysis::function_vectors::{deltas_with, mean_z, readout_tokens};
pub use crate::analysis::report::{
    AblationReport, AblationRequest, AnalysisReport, CircuitReport, CircuitRequest, FvReport,
    FvRequest, GroupSpec,
};
use crate::data::{DataSpec, TokenRoles, Tokenized};
use crate::model::LoadedModel;

use super::{Event, EventSink, JobId};

/// The loaded model and data an analysis runs on.
pub(super) struct Inputs<'a> {
    pub lm: &'a LoadedModel,
    pub spec: &'a DataSpec,
    pub tok: &'a Tokenized,
}

impl Inputs<'_> {
    fn roles(&self) -> anyhow::Result<Vec<TokenRoles>> {
        Ok(crate::data::token_roles(
            self.spec,
            &self.lm.tokenizer,
            self.tok,
        )?)
    }
}

/// Sends progress events of one job.
struct Steps<'a, S: EventSink> {
    id: JobId,
    sink: &'a S,
    what: &'static str,
    done: usize,
    total: usize,
}

impl<S: EventSink> Steps<'_, S> {
    fn step(&mut self) {
        self.done += 1;
        self.sink.send(Event::Progress {
            id: self.id,
            what: self.what.into(),
            done: self.done,
            total: self.total,
        });
    }
}

pub(super) fn circuit(
    id: JobId,
    inp: &Inputs,
    req: &CircuitRequest,
    sink: &impl EventSink,
    cancel: &AtomicBool,
) -> anyhow::Result<AnalysisReport> {
    req.validate()?;
    let roles = inp.roles()?;
    let m = &inp.lm.model;
    let circuit = crate::analysis::report::resolve_circuit(&req.groups, &inp.lm.tokenizer)?;
    let mut ev = Evaluator::new(m, &inp.tok.pairs, Some(&roles), req.batch_size)?;
    let warnings = ev.validate(&circuit)?;
    let heads = circuit.heads();
    let total = 2 + req.knockouts.len() + if req.minimality { heads.len() } else { 0 };
    let mut steps = Steps {
        id,
        sink,
        what: "circuit",
        done: 0,
        total,
    };
    let f_c = ev.f(&circuit)?;
    steps.step();
    let f_m = ev.f(&Circuit::complete(m))?;
    steps.step();
    let mut r = CircuitReport {
        circuit: circuit.clone(),
        ld_normal: ev.ld_normal,
        ld_contrast: ev.ld_contrast,
        f_c,
        f_m,
        faithfulness: ev.faithfulness(f_c),
        completeness: vec![],
        minimality: vec![],
        greedy: None,
        complete: false,
        warnings,
    };
    let stop = || cancel.load(Ordering::Relaxed);
    for k in &req.knockouts {
        if stop() {
            return Ok(AnalysisReport::Circuit(r));
        }
        r.completeness.push(ev.completeness(&circuit, k)?);
        steps.step();
    }
    if req.minimality {
        for &v in &heads {
            if stop() {
                return Ok(AnalysisReport::Circuit(r));
            }
            r.minimality.push(ev.minimality(&circuit, v, &[])?);
            steps.step();
        }
    }
    if let Some(g) = &req.greedy {
        let mut progress = |p: &crate::analysis::circuit::GreedyProgress| {
            sink.send(Event::Progress {
                id,
                what: "greedy search".into(),
                done: p.rollouts_done,
                total: p.rollouts,
            })
        };
        let out = greedy_search(&mut ev, &circuit, g, &mut progress, cancel)?;
        let done = out.complete;
        r.greedy = Some(out);
        if !done {
            return Ok(AnalysisReport::Circuit(r));
        }
    }
    r.complete = !stop();
    Ok(AnalysisReport::Circuit(r))
}

pub(super) fn ablation(
    id: JobId,
    inp: &Inputs,
    req: &AblationRequest,
    sink: &impl EventSink,
    cancel: &AtomicBool,
) -> anyhow::Result<AnalysisReport> {
    req.validate()?;
    let roles = inp.roles()?;
    let m = &inp.lm.model;
    let (answer_set, ids) = task_answer_tokens(
        inp.spec.task,
        &inp.lm.tokenizer,
        &inp.tok.pairs,
        Some(&roles),
    )?;
    let ab = Ablator::new(m, &inp.tok.pairs, Some(&roles), ids, req.batch_size)?;
    let mut steps = Steps {
        id,
        sink,
        what: "ablation",
        done: 0,
        total: 2 + req.random_groups,
    };
    let baseline = ab.ablate(&[])?;
    steps.step();
    let heads = ab.ablate(&req.heads)?;
    steps.step();
    let mut r = AblationReport {
        baseline,
        heads,
        random: vec![],
        seed: req.seed,
        answer_set,
        complete: false,
    };
    for g in random_groups(m, req.random_groups, req.heads.len(), req.seed) {
        if cancel.load(Ordering::Relaxed) {
            return Ok(AnalysisReport::Ablation(r));
        }
        r.random.push(ab.ablate(&g)?);
        steps.step();
    }
    r.complete = true;
    Ok(AnalysisReport::Ablation(r))
}

/// Function vectors: the mean contrast z of every head, then the naive prompts' baseline and
/// one Δ grid per head and for all of them; progress after each, cancel polled between.
pub(super) fn fv(
    id: JobId,
    inp: &Inputs,
    req: &FvRequest,
    sink: &impl EventSink,
    cancel: &AtomicBool,
) -> anyhow::Result<AnalysisReport> {
    let roles = inp.roles()?;
    let digits = readout_tokens(&inp.lm.tokenizer, inp.spec.task, &req.options)?;
    let m = &inp.lm.model;
    let mut steps = Steps {
        id,
        sink,
        what: "function vectors",
        done: 0,
        total: req.heads.len() + 3,
    };
    let o = &req.options;
    let means = mean_z(
        m,
        &inp.tok.pairs,
        Some(&roles),
        &req.heads,
        &o.source,
        o.batch_size,
    )?;
    steps.step();
    let mut step = || {
        steps.step();
        !cancel.load(Ordering::Relaxed)
    };
    let tok = &inp.lm.tokenizer;
    let (result, complete) = deltas_with(m, tok, &req.heads, &means, &digits, o, &mut step)?;
    Ok(AnalysisReport::Fv(FvReport {
        options: req.options.clone(),
        result,
        complete,
    }))
}
