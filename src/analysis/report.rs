//! What an analysis is asked for and what it found, as plain data: the worker runs the
//! requests, the explorer builds them, and `results::analysis` writes the reports. They live
//! here, below the worker and the results, so that both can name them.

use super::ablation::{check_random_groups, AblationRun};
use super::circuit::{Circuit, Completeness, GreedyOptions, GreedyOutcome, Group, Minimality};
use super::function_vectors::{FvOptions, FvResult};
use super::positions::PositionSet;
use super::{check_distinct, invalid, AnalysisError, Head};
use crate::model::Tokenizer;

/// A circuit group as the explorer knows it: its positions still as text (`all`, `last`,
/// `tok:=`, `answers`), because a `tok:` set needs the model's tokenizer, which only the
/// worker holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSpec {
    pub name: String,
    pub heads: Vec<Head>,
    pub positions: String,
}

impl GroupSpec {
    /// The group with its positions parsed by `tok`; errors name the group.
    pub fn resolve(&self, tok: &Tokenizer) -> Result<Group, AnalysisError> {
        let positions = PositionSet::parse(self.positions.trim(), tok)
            .map_err(|e| invalid(format!("group {:?}: {e}", self.name)))?;
        if self.heads.is_empty() {
            return Err(invalid(format!("group {:?} has no heads", self.name)));
        }
        Ok(Group {
            name: self.name.clone(),
            heads: self.heads.clone(),
            positions,
        })
    }
}

/// The circuit of some group specs (see [`GroupSpec::resolve`]).
pub fn resolve_circuit(groups: &[GroupSpec], tok: &Tokenizer) -> Result<Circuit, AnalysisError> {
    if groups.is_empty() {
        return Err(invalid("no groups: a circuit needs at least one"));
    }
    let groups = groups
        .iter()
        .map(|g| g.resolve(tok))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Circuit { groups })
}

/// A circuit to evaluate: F(C), F(M), the knock-out sets, optionally minimality per head
/// (K_v empty) and the greedy search.
#[derive(Debug, Clone, PartialEq)]
pub struct CircuitRequest {
    pub groups: Vec<GroupSpec>,
    pub knockouts: Vec<Vec<Head>>,
    pub minimality: bool,
    pub greedy: Option<GreedyOptions>,
    pub batch_size: usize,
}

impl CircuitRequest {
    /// Checks what needs no model before any work: the groups' heads (each group's distinct,
    /// none empty), the knock-out sets' (distinct), the greedy counts
    /// ([`GreedyOptions::validate`]) and the batch size. The explorer calls it before it
    /// submits the job; the model-dependent checks follow in `Evaluator::validate`.
    pub fn validate(&self) -> Result<(), AnalysisError> {
        if self.groups.is_empty() {
            return Err(invalid("no groups: a circuit needs at least one"));
        }
        for g in &self.groups {
            if g.heads.is_empty() {
                return Err(invalid(format!("group {:?} has no heads", g.name)));
            }
            check_distinct(&g.heads).map_err(|e| invalid(format!("group {:?}: {e}", g.name)))?;
        }
        for k in &self.knockouts {
            check_distinct(k).map_err(|e| invalid(format!("knock-out set: {e}")))?;
        }
        if let Some(g) = &self.greedy {
            g.validate()?;
        }
        check_batch_size(self.batch_size)
    }
}

/// What a circuit job found; `complete` is false when it was cancelled (the fields after
/// the cancel are empty).
#[derive(Debug, Clone, PartialEq)]
pub struct CircuitReport {
    /// The circuit evaluated (the groups with their resolved positions).
    pub circuit: Circuit,
    pub ld_normal: f64,
    pub ld_contrast: f64,
    pub f_c: f64,
    pub f_m: f64,
    pub faithfulness: f64,
    pub completeness: Vec<Completeness>,
    pub minimality: Vec<Minimality>,
    pub greedy: Option<GreedyOutcome>,
    pub complete: bool,
    /// What `Evaluator::validate` warned about (a group's `tok:` positions that occur in some
    /// prompts only), for the result's `warnings`.
    pub warnings: Vec<String>,
}

/// Heads to ablate, against `random_groups` random groups of the same size (seeded).
#[derive(Debug, Clone, PartialEq)]
pub struct AblationRequest {
    pub heads: Vec<Head>,
    pub random_groups: usize,
    pub seed: u64,
    pub batch_size: usize,
}

impl AblationRequest {
    /// Checks the request before any work: heads distinct and at least one, the number of
    /// random groups bounded ([`check_random_groups`]: they are drawn up front), the batch
    /// size. The explorer calls it before it submits the job.
    pub fn validate(&self) -> Result<(), AnalysisError> {
        if self.heads.is_empty() {
            return Err(invalid("no heads to ablate"));
        }
        check_distinct(&self.heads)?;
        check_random_groups(self.random_groups, self.heads.len())?;
        check_batch_size(self.batch_size)
    }
}

fn check_batch_size(n: usize) -> Result<(), AnalysisError> {
    if n == 0 {
        return Err(invalid("batch size 0: expected at least 1"));
    }
    Ok(())
}

/// Which tokens an ablation's restricted accuracy ranges over
/// (`ablation::task_answer_tokens` chooses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerSet {
    /// The ten digits (the paper's off-by-k addition).
    Digits,
    /// The data's own answer tokens (prompt-pair files), this many of them.
    DataAnswers(usize),
    /// Every token: the restricted accuracy is the full-vocabulary one.
    FullVocabulary,
}

impl AnswerSet {
    /// How result files name it (`answer_tokens`): "digits", "data answers (10 tokens)",
    /// "full vocabulary".
    pub fn describe(&self) -> String {
        match self {
            AnswerSet::Digits => "digits".into(),
            AnswerSet::DataAnswers(n) => format!("data answers ({n} tokens)"),
            AnswerSet::FullVocabulary => "full vocabulary".into(),
        }
    }

    /// How tables say it, after "argmax over": "the ten digits", "the data's 10 answer
    /// tokens", "the full vocabulary".
    pub fn phrase(&self) -> String {
        match self {
            AnswerSet::Digits => "the ten digits".into(),
            AnswerSet::DataAnswers(n) => format!("the data's {n} answer tokens"),
            AnswerSet::FullVocabulary => "the full vocabulary".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AblationReport {
    /// The contrast run with nothing ablated.
    pub baseline: AblationRun,
    pub heads: AblationRun,
    /// The random groups ablated before a cancel (all of them when `complete`).
    pub random: Vec<AblationRun>,
    pub seed: u64,
    /// The tokens the restricted accuracy takes its argmax over.
    pub answer_set: AnswerSet,
    pub complete: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FvRequest {
    pub heads: Vec<Head>,
    pub options: FvOptions,
}

/// A function-vector job's result with the options it ran with.
#[derive(Debug, Clone, PartialEq)]
pub struct FvReport {
    pub options: FvOptions,
    pub result: FvResult,
    /// False when cancelled: `result.delta` then holds the grids finished before the cancel.
    pub complete: bool,
}

/// One analysis job's result.
#[derive(Debug, Clone, PartialEq)]
pub enum AnalysisReport {
    Circuit(CircuitReport),
    Ablation(AblationReport),
    Fv(FvReport),
}
