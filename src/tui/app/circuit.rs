//! The circuit screen's state: the heatmap's tagged groups with a position set each, the
//! options of the three analyses (`headhunt circuit|ablate|fv` on the worker), the job in
//! flight and the reports it brought back, kept as result records (`results::analysis`) so
//! that a live report and one opened from a file are drawn, and saved, the same way.

use super::*;
use crate::analysis::circuit::GreedyOptions;
use crate::analysis::function_vectors::FvOptions;
use crate::analysis::report::GroupSpec;
use crate::results::analysis::{AnalysisFile, Meta};
use crate::tui::keymap::{self, CircuitAction, HeatmapAction};
use crate::worker::{AblationRequest, CircuitRequest, FvRequest};

/// Which report the screen shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportTab {
    Circuit,
    Ablation,
    Fv,
}

impl ReportTab {
    pub const ALL: [ReportTab; 3] = [ReportTab::Circuit, ReportTab::Ablation, ReportTab::Fv];

    pub fn label(self) -> &'static str {
        match self {
            ReportTab::Circuit => "circuit",
            ReportTab::Ablation => "ablation",
            ReportTab::Fv => "function vectors",
        }
    }

    fn of(file: &AnalysisFile) -> ReportTab {
        match file {
            AnalysisFile::Circuit(_) => ReportTab::Circuit,
            AnalysisFile::Ablation(_) => ReportTab::Ablation,
            AnalysisFile::Fv(_) => ReportTab::Fv,
        }
    }
}

/// What a text prompt of the circuit screen edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitField {
    /// The position set of group i.
    Positions(usize),
    Knockouts,
    Random,
}

/// A report on screen, and where it is saved (if it is).
#[derive(Debug, Clone, PartialEq)]
pub struct ShownReport {
    pub file: AnalysisFile,
    pub saved_to: Option<PathBuf>,
}

/// The analysis job in flight.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalysisJob {
    pub id: JobId,
    pub tab: ReportTab,
    pub started: Instant,
    pub batch_size: usize,
    /// The group an ablation or FV ran on.
    pub group: Option<String>,
}

pub struct CircuitView {
    /// The heatmap's non-empty groups, each with its positions (text, parsed by the worker).
    pub groups: Vec<GroupSpec>,
    pub row: usize,
    pub minimality: bool,
    pub greedy: bool,
    /// Chosen knock-out sets; empty: one per group and one per head of the circuit.
    pub knockouts: Vec<Vec<(usize, usize)>>,
    pub random_groups: usize,
    pub seed: u64,
    pub tab: ReportTab,
    /// The FV grid shown (index into the file's keys).
    pub fv_panel: usize,
    /// Report lines scrolled off the top (the view stops at the last page).
    pub scroll: u16,
    /// Per tab (circuit, ablation, FV).
    pub reports: [Option<ShownReport>; 3],
    pub job: Option<AnalysisJob>,
    /// Set when the reports come from a file whose model is not the loaded one: they are
    /// shown, nothing runs.
    pub read_only: Option<String>,
    /// Every report saved this session, so that saving the same result twice says where.
    pub saved: Vec<(AnalysisFile, PathBuf)>,
}

impl Default for CircuitView {
    fn default() -> Self {
        CircuitView {
            groups: Vec::new(),
            row: 0,
            minimality: true,
            greedy: false,
            knockouts: Vec::new(),
            random_groups: 5,
            seed: 42,
            tab: ReportTab::Circuit,
            fv_panel: 0,
            scroll: 0,
            reports: [None, None, None],
            job: None,
            read_only: None,
            saved: Vec::new(),
        }
    }
}

impl CircuitView {
    pub fn report(&self, tab: ReportTab) -> Option<&ShownReport> {
        self.reports[tab as usize].as_ref()
    }

    /// The knock-out sets a circuit evaluation runs: the chosen ones, or one per group and
    /// one per head of the circuit.
    pub fn knockout_sets(&self) -> Vec<Vec<(usize, usize)>> {
        if !self.knockouts.is_empty() {
            return self.knockouts.clone();
        }
        let mut out: Vec<Vec<(usize, usize)>> =
            self.groups.iter().map(|g| g.heads.clone()).collect();
        for h in self.groups.iter().flat_map(|g| &g.heads) {
            if !out.contains(&vec![*h]) {
                out.push(vec![*h]);
            }
        }
        out
    }
}

impl Session {
    /// Opens the circuit screen on the heatmap's tagged groups (positions kept by name).
    pub fn open_circuit(&mut self) {
        let c = &mut self.circuit;
        if c.read_only.take().is_some() {
            c.reports = [None, None, None];
        }
        let old = std::mem::take(&mut c.groups);
        c.groups = self
            .groups
            .iter()
            .filter(|g| !g.heads.is_empty())
            .map(|g| GroupSpec {
                name: g.name.clone(),
                heads: g.heads.clone(),
                positions: old
                    .iter()
                    .find(|o| o.name == g.name)
                    .map_or_else(|| "all".into(), |o| o.positions.clone()),
            })
            .collect();
        c.row = c.row.min(c.groups.len().saturating_sub(1));
        self.screen = Screen::Circuit;
        if self.circuit.groups.is_empty() {
            let msg = "no tagged groups: tag heads on the heatmap with t (g, G choose the group)";
            self.set_status(Level::Warn, msg);
        }
    }

    pub(super) fn on_circuit_key(&mut self, key: KeyEvent) {
        if let Some(action) = keymap::lookup(keymap::CIRCUIT, key.code) {
            self.update_circuit(action);
        }
    }

    /// Does what a circuit-screen action asks.
    pub fn update_circuit(&mut self, action: CircuitAction) {
        use CircuitAction as A;
        let n = self.circuit.groups.len();
        match action {
            A::Up => self.circuit.row = self.circuit.row.saturating_sub(1),
            A::Down => self.circuit.row = (self.circuit.row + 1).min(n.saturating_sub(1)),
            A::ToggleMinimality => self.circuit.minimality = !self.circuit.minimality,
            A::ToggleGreedy => self.circuit.greedy = !self.circuit.greedy,
            A::NextReport => {
                self.circuit.tab = ReportTab::ALL[(self.circuit.tab as usize + 1) % 3];
                self.circuit.scroll = 0;
            }
            A::ScrollUp => self.circuit.scroll = self.circuit.scroll.saturating_sub(10),
            A::ScrollDown => self.circuit.scroll = (self.circuit.scroll + 10).min(1000),
            A::PrevPanel => self.circuit.fv_panel = self.circuit.fv_panel.saturating_sub(1),
            A::NextPanel => self.circuit.fv_panel += 1,
            A::Help => {
                self.help = true;
                self.help_scroll = 0;
            }
            A::Back => self.screen = Screen::Heatmap,
            A::Quit => self.update_heatmap(HeatmapAction::Quit),
            A::Cancel => self.cancel_analysis(),
            A::Save => self.save_analyses(),
            A::EditPositions | A::EditKnockouts | A::EditRandom => self.edit_circuit(action),
            A::Evaluate | A::Ablate | A::FunctionVectors => self.run_analysis(action),
        }
    }

    fn cancel_analysis(&mut self) {
        if self.circuit.job.is_some() {
            self.effects.push(Effect::Cancel);
            self.set_status(Level::Info, "cancelling after the current evaluation…");
        } else {
            self.set_status(Level::Info, "nothing is running");
        }
    }

    fn edit_circuit(&mut self, action: CircuitAction) {
        let c = &self.circuit;
        let (field, label, initial) = match action {
            CircuitAction::EditPositions => {
                let Some(g) = c.groups.get(c.row) else {
                    return self.set_status(Level::Warn, "no group to edit");
                };
                let label = format!("positions of {}: all, last, tok:TEXT, answers", g.name);
                (CircuitField::Positions(c.row), label, g.positions.clone())
            }
            CircuitAction::EditKnockouts => {
                let sets: Vec<String> = c.knockouts.iter().map(|k| heads_text(k, "+")).collect();
                let label = "knock-out sets, e.g. 3.1+2.0 1.2 (empty: per group and per head)";
                (CircuitField::Knockouts, label.into(), sets.join(" "))
            }
            _ => {
                let label = "random groups and seed: N SEED";
                let initial = format!("{} {}", c.random_groups, c.seed);
                (CircuitField::Random, label.into(), initial)
            }
        };
        self.open_input(InputPurpose::Circuit(field), &label, initial);
    }

    /// Applies a circuit-screen prompt; errors keep the prompt open.
    pub(super) fn apply_circuit_input(
        &mut self,
        f: CircuitField,
        text: &str,
    ) -> Result<(), String> {
        let c = &mut self.circuit;
        match f {
            CircuitField::Positions(i) => {
                let p = text.strip_prefix('@').unwrap_or(text).to_string();
                let ok = ["all", "last", "answers"].contains(&p.as_str())
                    || p.strip_prefix("tok:").is_some_and(|t| !t.is_empty());
                if !ok {
                    return Err(format!(
                        "positions {text:?}: expected all, last, tok:TEXT or answers"
                    ));
                }
                if let Some(g) = c.groups.get_mut(i) {
                    g.positions = p;
                }
            }
            CircuitField::Knockouts => {
                let sets = text
                    .split_whitespace()
                    .map(|s| crate::analysis::parse_heads(s, '+').map_err(|e| e.to_string()))
                    .collect::<Result<Vec<_>, _>>()?;
                c.knockouts = sets;
            }
            CircuitField::Random => {
                let bad = || format!("random groups: expected N SEED, e.g. 5 42, got {text:?}");
                let mut it = text.split_whitespace().map(|w| w.parse::<u64>());
                let (Some(Ok(n)), Some(Ok(seed)), None) = (it.next(), it.next(), it.next()) else {
                    return Err(bad());
                };
                // The count sizes memory (the groups are drawn up front): the core's bound,
                // for the largest group an ablation may run on.
                let n = usize::try_from(n).map_err(|_| bad())?;
                let size = c.groups.iter().map(|g| g.heads.len()).max().unwrap_or(1);
                crate::analysis::ablation::check_random_groups(n, size)
                    .map_err(|e| e.to_string())?;
                c.random_groups = n;
                c.seed = seed;
            }
        }
        Ok(())
    }

    /// Why nothing can run from the screen now, if so.
    fn analysis_blocked(&self) -> Option<String> {
        if let Some(why) = &self.circuit.read_only {
            return Some(format!("read-only: {why}"));
        }
        if self.loading || self.model.is_none() || self.data.is_none() {
            return Some("model and data are still loading".into());
        }
        if self.running() || self.circuit.job.is_some() {
            return Some("a job is running: wait for it or cancel it with c".into());
        }
        if self.circuit.groups.is_empty() {
            return Some("no tagged groups: tag heads on the heatmap with t".into());
        }
        None
    }

    /// Submits the analysis an action asks for, built from the groups.
    fn run_analysis(&mut self, action: CircuitAction) {
        if let Some(why) = self.analysis_blocked() {
            return self.set_status(Level::Warn, why);
        }
        let c = &self.circuit;
        let batch_size = self.setup.batch_size;
        let g = &c.groups[c.row.min(c.groups.len() - 1)];
        let (job, tab, group) = match action {
            CircuitAction::Evaluate => {
                let req = CircuitRequest {
                    groups: c.groups.clone(),
                    knockouts: c.knockout_sets(),
                    minimality: c.minimality,
                    greedy: c.greedy.then(GreedyOptions::default),
                    batch_size,
                };
                (Job::Circuit(req), ReportTab::Circuit, None)
            }
            CircuitAction::Ablate => {
                let req = AblationRequest {
                    heads: g.heads.clone(),
                    random_groups: c.random_groups,
                    seed: c.seed,
                    batch_size,
                };
                (
                    Job::Ablation(req),
                    ReportTab::Ablation,
                    Some(g.name.clone()),
                )
            }
            _ => {
                let options = FvOptions {
                    batch_size,
                    ..FvOptions::default()
                };
                let req = FvRequest {
                    heads: g.heads.clone(),
                    options,
                };
                (
                    Job::FunctionVectors(req),
                    ReportTab::Fv,
                    Some(g.name.clone()),
                )
            }
        };
        // The counts and heads are checked here, before the job is queued, as the command line
        // checks them before loading the model.
        let checked = match &job {
            Job::Circuit(r) => r.validate(),
            Job::Ablation(r) => r.validate(),
            _ => Ok(()),
        };
        if let Err(e) = checked {
            return self.set_status(Level::Error, e.to_string());
        }
        let id = self.submit(job);
        let what = format!("{} running (c cancels)", tab.label());
        self.circuit.job = Some(AnalysisJob {
            id,
            tab,
            started: Instant::now(),
            batch_size,
            group,
        });
        self.circuit.tab = tab;
        self.set_status(Level::Info, what);
    }

    /// An analysis event from the worker (`Cancelled` comes before the partial report).
    pub(super) fn on_analysis_event(&mut self, e: Event) {
        let Some(job) = self.circuit.job.clone() else {
            return;
        };
        match e {
            Event::Cancelled { id } if id == job.id => {
                self.set_status(Level::Info, "cancelled: the finished part is kept");
            }
            Event::Analysis { id, report } if id == job.id => {
                self.circuit.job = None;
                self.jobs.retain(|j| j.id != id);
                let (Some(model), Some(data)) = (self.model.clone(), self.data.as_ref()) else {
                    return;
                };
                let meta = Meta {
                    model,
                    data: data.info.clone(),
                    batch_size: job.batch_size,
                    seconds: job.started.elapsed().as_secs_f64(),
                    group: job.group,
                    baseline_accuracy: data.eval.as_ref().map(|e| e.baseline_accuracy()),
                    warnings: data
                        .eval
                        .as_ref()
                        .map_or(Vec::new(), |e| e.warnings.clone()),
                };
                let file = AnalysisFile::from_report(&report, &meta);
                let done = file.common().complete;
                self.show_report(file, None);
                let msg = if done {
                    "done — s saves it"
                } else {
                    "partial (cancelled) — s saves it"
                };
                self.set_status(Level::Info, format!("{}: {msg}", job.tab.label()));
            }
            _ => {}
        }
    }

    /// A job failed or vanished: the screen no longer waits for it.
    pub(super) fn forget_waiting(&mut self, id: JobId) {
        if self.circuit.job.as_ref().is_some_and(|j| j.id == id) {
            self.circuit.job = None;
        }
    }

    /// Puts a report on the screen, in its own tab.
    fn show_report(&mut self, file: AnalysisFile, saved_to: Option<PathBuf>) {
        let tab = ReportTab::of(&file);
        self.circuit.reports[tab as usize] = Some(ShownReport { file, saved_to });
        self.circuit.tab = tab;
        self.circuit.scroll = 0;
        if tab == ReportTab::Fv {
            self.circuit.fv_panel = 0;
        }
    }

    /// Shows a saved analysis file on the circuit screen; read-only when its model is not
    /// the loaded one.
    pub fn open_analysis(&mut self, file: AnalysisFile, path: PathBuf) {
        let m = &file.common().model;
        let loaded = self.is_loaded_model(m);
        let label = m.label.clone();
        if let AnalysisFile::Circuit(f) = &file {
            self.circuit.groups = f
                .groups
                .iter()
                .map(|g| GroupSpec {
                    name: g.name.clone(),
                    heads: g.heads.clone(),
                    positions: g.positions.clone(),
                })
                .collect();
            self.circuit.row = 0;
        }
        self.circuit.read_only = (!loaded).then(|| format!("its model {label} is not loaded"));
        self.show_report(file, Some(path.clone()));
        self.screen = Screen::Circuit;
        let note = match &self.circuit.read_only {
            Some(why) => format!(" (read-only: {why})"),
            None => String::new(),
        };
        self.set_status(Level::Info, format!("opened {}{note}", path.display()));
    }

    /// Whether `m` (the model a saved analysis names) is the model loaded now.
    fn is_loaded_model(&self, m: &ModelInfo) -> bool {
        self.model.as_ref().is_some_and(|l| {
            l.label == m.label && l.n_layers == m.n_layers && l.n_heads == m.n_heads
        })
    }

    /// Redoes the read-only check once a model has loaded: `headhunt open` shows the file
    /// before its model finishes loading, and the check made then would otherwise stay.
    pub(super) fn recheck_read_only(&mut self) {
        if self.circuit.read_only.is_none() {
            return;
        }
        let reports = self.circuit.reports.iter().flatten();
        let mut models = reports.map(|r| &r.file.common().model).peekable();
        if models.peek().is_none() || !models.all(|m| self.is_loaded_model(m)) {
            return;
        }
        self.circuit.read_only = None;
        if self.screen == Screen::Circuit {
            let said = format!(
                "{} · its model is loaded: the reports can be rerun",
                self.status.1
            );
            self.set_status(self.status.0.clone(), said);
        }
    }

    /// Saves every report on the screen that is not saved yet into the results folder.
    pub fn save_analyses(&mut self) {
        let mut said = Vec::new();
        for tab in ReportTab::ALL {
            if self.circuit.report(tab).is_some() {
                said.push(self.save_report(tab));
            }
        }
        if said.is_empty() {
            return self.set_status(
                Level::Warn,
                "nothing to save yet: e, a or f runs an analysis",
            );
        }
        let error = said.iter().any(|s| s.starts_with("save failed"));
        let level = if error { Level::Error } else { Level::Info };
        self.set_status(level, said.join(" · "));
    }

    /// Saves one report (never over another file); says where it went or already is.
    pub(super) fn save_report(&mut self, tab: ReportTab) -> String {
        let Some(shown) = self.circuit.reports[tab as usize].as_ref() else {
            return String::new();
        };
        let earlier = shown.saved_to.clone().or_else(|| {
            let same = |(f, _): &&(AnalysisFile, PathBuf)| f.same_result(&shown.file);
            self.circuit.saved.iter().find(same).map(|(_, p)| p.clone())
        });
        if let Some(p) = earlier {
            return format!("{} already saved as {}", tab.label(), p.display());
        }
        let file = shown.file.clone();
        let c = file.common();
        let group = match &file {
            AnalysisFile::Ablation(f) => f.group.clone(),
            AnalysisFile::Fv(f) => f.group.clone(),
            AnalysisFile::Circuit(_) => None,
        };
        let name = crate::results::naming::analysis_file_name(
            file.kind(),
            &c.model.label,
            Some(c.data.spec.file.as_path()),
            group.as_deref(),
        );
        let base = self.setup.results_dir.join(name);
        let mut n = 1;
        let path = loop {
            let p = crate::results::write::numbered(&base, n);
            if !p.exists() && std::fs::symlink_metadata(&p).is_err() {
                break p;
            }
            n += 1;
        };
        match super::files::save_recovering(&path, &mut |p, ow| file.save(p, ow)) {
            Ok((path, said)) => {
                self.circuit.saved.push((file.clone(), path.clone()));
                if let Some(r) = self.circuit.reports[tab as usize].as_mut() {
                    r.saved_to = Some(path);
                }
                said
            }
            Err(e) => e,
        }
    }
}

/// `3.1+2.0` (heads joined by `sep`).
pub fn heads_text(heads: &[(usize, usize)], sep: &str) -> String {
    heads
        .iter()
        .map(|(l, h)| format!("{l}.{h}"))
        .collect::<Vec<_>>()
        .join(sep)
}
