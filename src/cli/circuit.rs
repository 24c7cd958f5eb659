//! `headhunt circuit`: evaluates a circuit of head groups (the paper's §4): F(C),
//! faithfulness, knock-out sets, minimality and the greedy completeness search; prints tables
//! and writes JSON. Shared with `ablate` and `fv`: loading the model and data with token roles,
//! head flags, and writing a result file.

use anyhow::{anyhow, bail, Result};
use clap::Args;
use std::path::{Path, PathBuf};

use super::output::{Output, Planned, Report};
use super::{signals, DataArgs, ModelArgs};
use crate::analysis::circuit::{greedy_search, Circuit, Evaluator, GreedyOptions, Group};
use crate::analysis::positions::PositionSet;
use crate::analysis::report::CircuitReport;
use crate::analysis::{check_heads, head_label, parse_heads, Head};
use crate::data::{DataSpec, TokenRoles, Tokenized};
use crate::model::LoadedModel;
use crate::patching::Metric;
use crate::results::analysis::{AnalysisFile, CircuitFile, Meta};
use crate::results::{DataInfo, ModelInfo};

#[derive(Args, Debug)]
pub struct CircuitArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// A group `NAME=L.H,L.H@POSITIONS`, POSITIONS one of `all`, `last`, `tok:TEXT` (every
    /// position whose token is TEXT; `\n` for a newline) or `answers` (each demonstration's
    /// answer); repeat for several groups.
    #[arg(long = "group", required = true)]
    pub groups: Vec<String>,
    /// A knock-out set K, heads joined by `+` (`2.7+3.0`): reports F(C\K), F(M\K) and the
    /// completeness gap; repeat for several.
    #[arg(long = "knockout")]
    pub knockouts: Vec<String>,
    /// Minimality of every head v of the circuit: |F(C\K_v) − F(C\(K_v ∪ {v}))| (K_v empty
    /// unless given with --minimality-set).
    #[arg(long)]
    pub minimality: bool,
    /// K_v of one head for --minimality: `L.H:L.H+L.H`; repeat for several heads.
    #[arg(long = "minimality-set")]
    pub minimality_sets: Vec<String>,
    /// Run the paper's greedy search for knock-out sets with a large completeness gap.
    #[arg(long)]
    pub greedy: bool,
    #[arg(long, default_value_t = 10)]
    pub greedy_rollouts: usize,
    #[arg(long, default_value_t = 5)]
    pub greedy_iterations: usize,
    /// Candidate heads sampled per iteration.
    #[arg(long, default_value_t = 5)]
    pub greedy_samples: usize,
    /// Seed of the greedy search (Python's `random.seed`; the paper's is 202505).
    #[arg(long, default_value_t = 202505)]
    pub seed: u64,
    /// Prompts per forward pass (any value gives the same numbers).
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// What F(X) and the baselines are, at the last prompt position: logit-diff (the
    /// paper's), logprob or prob of the normal answer, or kl (KL(normal run ‖ run)).
    #[arg(long, default_value = "logit-diff", value_parser = parse_metric)]
    pub metric: Metric,
    /// Write the result as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Overwrite an existing --json file.
    #[arg(long)]
    pub force: bool,
}

/// `--metric`: one of the four metrics' names (`circuit`, `ablate`, `fv`).
pub fn parse_metric(s: &str) -> Result<Metric, String> {
    Metric::parse(s).ok_or_else(|| {
        let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
        format!("expected one of {}", names.join(", "))
    })
}

/// How the input check's warning about answers of several tokens begins after the count
/// (`data::checks`), to replace it where the metric scores those answers in full.
const MULTI_TOKEN_WARNING: &str = "have answers of several tokens; the metric reads the";

/// The input check's `warnings`, printed and returned (for the result file), except the one
/// that the metric reads one token of each answer of several tokens when `whole_answer`
/// scores every such example's normal answer in full (teacher-forced, its tokens known from
/// `roles`): a note saying how they are scored is printed instead.
pub fn input_warnings(
    warnings: Vec<String>,
    tok: &Tokenized,
    roles: Option<&[TokenRoles]>,
    whole_answer: Option<Metric>,
) -> Vec<String> {
    let full = |i: &usize| {
        let at = tok.pairs.iter().position(|p| p.index == *i);
        at.zip(roles)
            .and_then(|(k, r)| r[k].normal_continuation.as_ref())
            .is_some_and(|c| c.len() > 1)
    };
    let in_full = whole_answer.filter(|_| tok.multi_token_answers.iter().all(full));
    let mut kept = Vec::new();
    for w in warnings {
        match in_full {
            Some(m) if w.contains(MULTI_TOKEN_WARNING) => super::output::note(&format!(
                "{} of {} examples have answers of several tokens; {m} scores every token of each normal answer (teacher-forced)",
                tok.multi_token_answers.len(),
                tok.pairs.len()
            )),
            _ => {
                super::output::note(&format!("warning: {w}"));
                kept.push(w);
            }
        }
    }
    kept
}

/// A model with its data, tokenized, and the token roles of every example.
pub struct Inputs {
    pub lm: LoadedModel,
    pub spec: DataSpec,
    pub tok: Tokenized,
    pub roles: Vec<TokenRoles>,
    /// The input check's warnings (printed when loading), for the result file.
    pub warnings: Vec<String>,
}

impl Inputs {
    pub fn load(model: &ModelArgs, data: &DataArgs) -> Result<Inputs> {
        Self::load_scoring(model, data, None)
    }

    /// [`Inputs::load`] for a command whose `metric` may score every token of the normal
    /// answer (`ablate --metric logprob|prob`, teacher-forced): where it does for every
    /// example with an answer of several tokens, the input check's warning that the metric
    /// reads one token of each is not true, so a note saying how it is scored replaces it.
    pub fn load_scoring(
        model: &ModelArgs,
        data: &DataArgs,
        whole_answer: Option<Metric>,
    ) -> Result<Inputs> {
        let lm = model.load()?;
        let spec = data.spec()?;
        let checked = crate::data::checks::load_checked(&lm, &spec, &super::checks::WORDS)?;
        let tok = checked.tok;
        let roles = crate::data::token_roles(&spec, &lm.tokenizer, &tok)?;
        let warnings = input_warnings(checked.warnings, &tok, Some(&roles), whole_answer);
        Ok(Inputs {
            lm,
            spec,
            tok,
            roles,
            warnings,
        })
    }

    /// The baseline check (`checks::evaluate_baseline`), printed: run it once the command's
    /// own flags are checked, before its work.
    pub fn baseline(&self, batch_size: usize) -> Result<super::checks::Baseline> {
        super::checks::evaluate_baseline(&self.lm, &self.tok, batch_size)
    }

    /// What a result file records besides the analysis itself.
    pub fn meta(
        &self,
        batch_size: usize,
        seconds: f64,
        baseline: &super::checks::Baseline,
    ) -> Meta {
        Meta {
            model: ModelInfo::of(&self.lm),
            data: DataInfo::of(&self.spec, &self.tok),
            batch_size,
            seconds,
            group: None,
            baseline_accuracy: Some(baseline.accuracy),
            warnings: self
                .warnings
                .iter()
                .chain(&baseline.warning)
                .cloned()
                .collect(),
        }
    }

    /// One line on what was loaded.
    /// The header line of every table. Prompt-pair files have no shots or offset (their
    /// prompts are given whole), so those are only named for the generated tasks.
    pub fn describe(&self) -> String {
        let how = if self.spec.task == crate::data::TaskKind::Pairs {
            String::new()
        } else {
            format!(", {} shots, offset {:+}", self.spec.shots, self.spec.offset)
        };
        format!(
            "model {} · data {} ({}{how}, {} examples)",
            self.lm.origin.label(),
            self.spec.file.display(),
            self.spec.task,
            self.tok.pairs.len()
        )
    }
}

/// Parses a head list for `flag` (`3.1,2.0` with `sep` ','), checked against the model.
pub fn heads_flag(flag: &str, s: &str, sep: char, lm: Option<&LoadedModel>) -> Result<Vec<Head>> {
    let heads = parse_heads(s, sep).map_err(|e| anyhow!("{flag} {s:?}: {e}"))?;
    if let Some(lm) = lm {
        check_heads(&lm.model, &heads).map_err(|e| anyhow!("{flag} {s:?}: {e}"))?;
    }
    Ok(heads)
}

/// `--json PATH`, checked before any work.
pub fn plan_json(path: Option<&Path>, force: bool) -> Result<Option<Planned>> {
    Planned::optional("--json", path, force)
}

/// Saves an analysis result (the same JSON the explorer writes) when the report finishes.
pub fn save_json(r: &mut Report, planned: Option<Planned>, file: &AnalysisFile) {
    if let Some(p) = planned {
        r.save(Output::new(p, file.to_json().into_bytes()));
    }
}

/// Parses `NAME=L.H,L.H@POSITIONS`.
pub fn parse_group(s: &str, lm: &LoadedModel) -> Result<Group> {
    let bad = || {
        anyhow!("--group {s:?}: expected NAME=L.H,L.H@POSITIONS, e.g. fi=3.1,2.0@tok:= (positions: all, last, tok:TEXT, answers)")
    };
    let (name, rest) = s.split_once('=').ok_or_else(bad)?;
    let (heads, pos) = rest.split_once('@').ok_or_else(bad)?;
    if name.trim().is_empty() || heads.trim().is_empty() {
        return Err(bad());
    }
    let heads = parse_heads(heads, ',').map_err(|e| anyhow!("--group {s:?}: {e}"))?;
    check_heads(&lm.model, &heads).map_err(|e| anyhow!("--group {s:?}: {e}"))?;
    let positions =
        PositionSet::parse(pos, &lm.tokenizer).map_err(|e| anyhow!("--group {s:?}: {e}"))?;
    Ok(Group {
        name: name.trim().to_string(),
        heads,
        positions,
    })
}

/// `L.H:L.H+L.H` → (v, K_v).
fn parse_minimality_set(s: &str, lm: &LoadedModel) -> Result<(Head, Vec<Head>)> {
    let (v, k) = s
        .split_once(':')
        .ok_or_else(|| anyhow!("--minimality-set {s:?}: expected L.H:L.H+L.H, e.g. 3.1:2.7+3.0"))?;
    let v = heads_flag("--minimality-set", v, ',', Some(lm))?;
    let k = if k.trim().is_empty() {
        vec![]
    } else {
        heads_flag("--minimality-set", k, '+', Some(lm))?
    };
    match v.as_slice() {
        [v] => Ok((*v, k)),
        _ => bail!("--minimality-set {s:?}: one head before the `:`"),
    }
}

fn fmt_heads(k: &[Head]) -> String {
    if k.is_empty() {
        return "∅".into();
    }
    k.iter().map(head_label).collect::<Vec<_>>().join("+")
}

/// Evaluates the circuit; a signal stops it after the current set (F(C), a knock-out set, a
/// head's minimality, a greedy rollout) and what is finished is saved, marked incomplete.
pub fn run(a: CircuitArgs) -> Result<Report> {
    let json = plan_json(a.json.as_deref(), a.force)?;
    let greedy = greedy_options(&a);
    if a.greedy {
        greedy.validate()?;
    }
    let inp = Inputs::load(&a.model, &a.data)?;
    let lm = &inp.lm;
    let groups = a
        .groups
        .iter()
        .map(|g| parse_group(g, lm))
        .collect::<Result<Vec<_>>>()?;
    let circuit = Circuit { groups };
    let knockouts = a
        .knockouts
        .iter()
        .map(|k| heads_flag("--knockout", k, '+', Some(lm)))
        .collect::<Result<Vec<_>>>()?;
    let msets = a
        .minimality_sets
        .iter()
        .map(|s| parse_minimality_set(s, lm))
        .collect::<Result<Vec<_>>>()?;
    if !msets.is_empty() && !a.minimality {
        bail!("--minimality-set needs --minimality");
    }
    let baseline = inp.baseline(a.batch_size)?;
    let mut r = Report::new();
    let _honour = signals::Honour::start();
    let started = std::time::Instant::now();
    let mut ev = Evaluator::with_metric(
        &lm.model,
        &inp.tok.pairs,
        Some(&inp.roles),
        a.batch_size,
        a.metric,
    )
    .map_err(|e| anyhow!("--batch-size {}: {e}", a.batch_size))?;
    let warnings = ev.validate(&circuit)?;
    for w in &warnings {
        super::output::note(&format!("warning: {w}"));
    }
    let f_c = ev.f(&circuit)?;
    let f_m = ev.f(&Circuit::complete(&lm.model))?;
    let faith = ev.faithfulness(f_c);
    out!(r, "{}", inp.describe());
    let x = a.metric.short();
    if a.metric != Metric::LogitDiff {
        out!(
            r,
            "metric      {} at the last prompt position (F and the baselines)",
            a.metric
        );
    }
    out!(
        r,
        "baselines   {x}_normal {:+.4}   {x}_contrast {:+.4}",
        ev.ld_normal,
        ev.ld_contrast
    );
    if a.metric.ill_conditioned(ev.ld_normal, ev.ld_contrast) {
        super::output::note(&format!(
            "warning: {x}_contrast − {x}_normal is {:+.4} {}, below {}: faithfulness divides by it and is ill-conditioned",
            ev.ld_contrast - ev.ld_normal,
            a.metric.unit(),
            a.metric.small_gap()
        ));
    }
    let gw = width(circuit.groups.iter().map(|g| fmt_heads(&g.heads)), 24);
    for g in &circuit.groups {
        out!(
            r,
            "group       {:<12} {:<gw$} @{}",
            g.name,
            fmt_heads(&g.heads),
            g.positions
        );
    }
    out!(
        r,
        "F(C)        {f_c:+.4}   faithfulness {faith:.4}   F(M) {f_m:+.4} (= {x}_contrast{})",
        if (f_m - ev.ld_contrast).abs() < 1e-4 {
            ""
        } else {
            " NOT: check the engine"
        }
    );
    let completeness = knockout_table(&mut ev, &circuit, &knockouts, &mut r)?;
    let minimality = if a.minimality {
        minimality_table(&mut ev, &circuit, &msets, &mut r)?
    } else {
        Vec::new()
    };
    let greedy = if a.greedy && signals::received().is_none() {
        Some(run_greedy(&mut ev, &circuit, &greedy, &mut r)?)
    } else {
        None
    };
    let seconds = started.elapsed().as_secs_f64();
    out!(
        r,
        "time        {seconds:.2} s ({} circuit passes of batch ≤ {})",
        ev.evaluations,
        a.batch_size
    );
    let stopped = signals::received();
    if let Some(sig) = stopped {
        super::output::note(&format!(
            "stopped by signal {sig}: saving what is finished, marked incomplete"
        ));
    }
    let report = CircuitReport {
        complete: stopped.is_none() && greedy.as_ref().is_none_or(|g| g.complete),
        circuit,
        ld_normal: ev.ld_normal,
        ld_contrast: ev.ld_contrast,
        f_c,
        f_m,
        faithfulness: faith,
        completeness,
        minimality,
        greedy,
        warnings,
    };
    let mut file = CircuitFile::new(&inp.meta(a.batch_size, seconds, &baseline), &report);
    file.metric = a.metric;
    save_json(&mut r, json, &AnalysisFile::Circuit(file));
    r.stopped = stopped;
    Ok(r)
}

/// F(C\\K), F(M\\K) and the gap of every knock-out set, as a table; a signal stops after the
/// current set.
fn knockout_table(
    ev: &mut Evaluator,
    circuit: &Circuit,
    knockouts: &[Vec<Head>],
    r: &mut Report,
) -> Result<Vec<crate::analysis::circuit::Completeness>> {
    let kw = width(knockouts.iter().map(|k| fmt_heads(k)), 28);
    if !knockouts.is_empty() {
        out!(
            r,
            "{:<kw$} {:>10} {:>10} {:>10}",
            "knock-out K",
            "F(C\\K)",
            "F(M\\K)",
            "gap"
        );
    }
    let mut rows = Vec::new();
    for k in knockouts {
        if signals::received().is_some() {
            break;
        }
        let s = ev.completeness(circuit, k)?;
        out!(
            r,
            "{:<kw$} {:>+10.4} {:>+10.4} {:>10.4}",
            fmt_heads(k),
            s.f_c_minus_k,
            s.f_m_minus_k,
            s.gap
        );
        rows.push(s);
    }
    Ok(rows)
}

/// The minimality of every head of the circuit (with its K_v from `msets`), as a table; a
/// signal stops after the current head.
fn minimality_table(
    ev: &mut Evaluator,
    circuit: &Circuit,
    msets: &[(Head, Vec<Head>)],
    r: &mut Report,
) -> Result<Vec<crate::analysis::circuit::Minimality>> {
    let scale = (ev.ld_normal - ev.ld_contrast).abs();
    out!(
        r,
        "{:<8} {:<24} {:>10} {:>10}",
        "head",
        "K_v",
        "minimality",
        "% of gap"
    );
    let mut rows = Vec::new();
    for v in circuit.heads() {
        if signals::received().is_some() {
            break;
        }
        let k = msets
            .iter()
            .find(|(h, _)| *h == v)
            .map(|(_, k)| k.clone())
            .unwrap_or_default();
        let m = ev.minimality(circuit, v, &k)?;
        out!(
            r,
            "{:<8} {:<24} {:>10.4} {:>9.1}%",
            head_label(&v),
            fmt_heads(&k),
            m.value,
            100.0 * m.value / scale
        );
        rows.push(m);
    }
    Ok(rows)
}

/// The greedy search's options from the flags (checked before the model loads).
fn greedy_options(a: &CircuitArgs) -> GreedyOptions {
    GreedyOptions {
        rollouts: a.greedy_rollouts,
        iterations: a.greedy_iterations,
        samples: a.greedy_samples,
        seed: a.seed,
    }
}

/// A table column as wide as its longest label (at least `min`), so that long head sets
/// do not push their row's numbers out of line.
fn width(labels: impl Iterator<Item = String>, min: usize) -> usize {
    labels
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(0)
        .max(min)
}

/// The greedy search with progress on stderr; Ctrl-C stops it after the current set and keeps
/// the finished rollouts.
fn run_greedy(
    ev: &mut Evaluator,
    circuit: &Circuit,
    opts: &GreedyOptions,
    r: &mut Report,
) -> Result<crate::analysis::circuit::GreedyOutcome> {
    let out = greedy_search(
        ev,
        circuit,
        opts,
        &mut |p| {
            super::output::note(&format!(
                "greedy      rollout {}/{} ({} sets evaluated)",
                p.rollouts_done, p.rollouts, p.sets_evaluated
            ))
        },
        signals::stop_flag(),
    )?;
    out!(
        r,
        "greedy      seed {}, {} rollouts × ≤ {} iterations × {} samples{}",
        opts.seed,
        opts.rollouts,
        opts.iterations,
        opts.samples,
        if out.complete { "" } else { " (stopped early)" }
    );
    let kw = width(out.sets.iter().map(|s| fmt_heads(&s.k)), 28);
    out!(
        r,
        "{:<kw$} {:>10} {:>10} {:>10}",
        "greedy K",
        "F(C\\K)",
        "F(M\\K)",
        "gap"
    );
    for s in &out.sets {
        out!(
            r,
            "{:<kw$} {:>+10.4} {:>+10.4} {:>10.4}",
            fmt_heads(&s.k),
            s.f_c_minus_k,
            s.f_m_minus_k,
            s.gap
        );
    }
    Ok(out)
}
