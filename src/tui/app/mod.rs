//! The explorer's state and how keys, mouse clicks and worker events change it. Pure: no
//! terminal here, so the state machine is unit-tested directly. What the app wants done outside
//! (jobs for the worker, cancelling, quitting) comes out as `Effect`s.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};

use crate::data::{AnswerTokenRule, DataFile, TaskChoice};
use crate::model::HeadInput;
use crate::patching::{Algorithm, HeadReceiver, PatchEvent, PatchMatrix, PatchSpec, Receiver};
use crate::plot::number::{fixed, signed};
use crate::results::groups::GroupsFile;
use crate::results::text::Thresholds;
use crate::results::{DataInfo, HeadGroup, ModelInfo, RecordParts, RunRecord, Timing};
use crate::worker::{Event, Job, JobId, ModelRequest, PairPreview};

use super::color::ColorMode;
use super::layout::GridView;

mod attention;
mod circuit;
mod context;
mod events;
mod explorer;
mod figure;
mod files;
mod gallery;
mod input;
mod keys;
mod parts;
pub mod screens;
mod setup;
mod setup_details;

pub use super::layout::{HeatmapGeometry, Orientation, RangeMode};
pub use circuit::{heads_text, AnalysisJob, CircuitField, CircuitView, ReportTab, ShownReport};
pub use context::{record_data_words, record_model_name, short_model_name};
pub use explorer::App;
pub use files::scan_results;
pub use gallery::{EntryKind, Gallery, GalleryEntry};
pub use screens::attention::AttentionView;
pub use screens::runs::run_state_words;
pub use screens::side::{largest, SidePanel, SideView};
pub use screens::{AnyScreen, Component, Screen, Screens};
pub use setup::{Setup, SetupScreen, SETUP_FIELDS};
pub use setup_details::{data_words, detail_rows_shown, setup_detail_rows, setup_max_scroll};

/// What a text prompt is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputPurpose {
    Receiver,
    BeginLayer,
    Crop,
    NewGroup,
    GalleryFilter,
    SetupField(usize),
    Circuit(CircuitField),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub purpose: InputPurpose,
    pub label: String,
    pub buffer: String,
    /// Cursor position, in characters.
    pub cursor: usize,
    /// Still the pre-filled value: the first typed character replaces it.
    pub fresh: bool,
    /// Why the last Enter was refused (shown in the prompt, which stays in edit mode).
    pub error: Option<String>,
}

/// Something the app asks its surroundings to do.
#[derive(Debug, Clone)]
pub enum Effect {
    /// Send a job to the worker under this id.
    Submit(JobId, Job),
    Cancel,
    Quit,
}

/// A run the explorer knows: its receiver and begin layer, and its (possibly partial) result.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RunKey {
    pub receiver: Receiver,
    pub begin_layer: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RunState {
    /// Not run yet.
    Idle,
    Running {
        job: JobId,
        done: usize,
        total: usize,
        elapsed: f64,
        eta: f64,
    },
    Done,
    Cancelled,
    Failed(String),
    /// Opened from a file (gallery).
    Opened(PathBuf),
}

pub struct RunSlot {
    pub key: RunKey,
    pub record: Option<RunRecord>,
    /// Rows received so far while running.
    pub matrix: Option<PatchMatrix>,
    pub state: RunState,
    pub saved_to: Option<PathBuf>,
    /// Where the cursor was when this run was last left, so that `[`/`]` can return there
    /// when the cursor's (layer, head) does not exist in it (another shape).
    pub left_at: Option<(usize, usize)>,
}

/// Loaded data, as the worker described it.
pub struct DataStatus {
    /// Baselines and accuracy, once the worker has measured them.
    pub eval: Option<Evaluation>,
    /// The spec and what tokenizing kept (`n_examples`, `skipped`, `multi_token_answers`).
    pub info: DataInfo,
    pub lengths: Vec<usize>,
    pub preview: Vec<PairPreview>,
}

/// The data's baselines and accuracy (argmax at the last position).
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// How long the evaluation took (for a first ETA).
    pub seconds: f64,
    pub n: usize,
    pub normal_ok: usize,
    pub contrast_ok: usize,
    pub contrast_gives_normal: usize,
    pub ld_normal: f64,
    pub ld_contrast: f64,
    /// The input check's and the baseline accuracy's warnings (one line each).
    pub warnings: Vec<String>,
}

impl Evaluation {
    /// The fraction of prompts whose top token is the scored answer, per side.
    pub fn baseline_accuracy(&self) -> crate::patching::baseline::BaselineAccuracy {
        crate::patching::baseline::BaselineAccuracy::from_counts(
            self.n,
            self.normal_ok,
            self.contrast_ok,
        )
    }

    /// One line: baselines and how often each prompt gets its answer.
    pub fn summary(&self) -> String {
        format!(
            "LD_normal {}, LD_contrast {}; normal answer on {}/{} normal prompts, contrast answer on {}/{} contrast prompts ({} keep the normal one)",
            signed(self.ld_normal, 3), signed(self.ld_contrast, 3), self.normal_ok, self.n, self.contrast_ok, self.n, self.contrast_gives_normal
        )
    }
}

/// Status-bar message.
#[derive(Debug, Clone, PartialEq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

pub struct JobStatus {
    pub id: JobId,
    pub what: String,
    pub started: Instant,
}

/// The help screen's title and lines for a screen, read from its key table.
pub fn help_table(screen: Screen) -> (&'static str, Vec<(&'static str, &'static str)>) {
    match screen {
        Screen::Heatmap => {
            let mut lines = super::keymap::help_lines(super::keymap::HEATMAP);
            lines.extend_from_slice(super::keymap::HEATMAP_NOTES);
            ("heatmap", lines)
        }
        Screen::Setup => ("setup", super::keymap::help_lines(super::keymap::SETUP)),
        Screen::Gallery => ("gallery", super::keymap::help_lines(super::keymap::GALLERY)),
        Screen::Compare => ("compare", super::keymap::help_lines(super::keymap::COMPARE)),
        Screen::Circuit => ("circuit", super::keymap::help_lines(super::keymap::CIRCUIT)),
        _ => Screens::help(screen).expect("a screen is either legacy or a component"),
    }
}

/// Default head groups, after the paper's circuit.
pub fn default_groups() -> Vec<HeadGroup> {
    ["consolidation", "function induction", "previous token"]
        .iter()
        .map(|n| HeadGroup {
            name: n.to_string(),
            heads: Vec::new(),
        })
        .collect()
}

/// The begin layer a new receiver starts from: the one it comes from, lowered to the last
/// layer whose senders reach it (as far as any does).
pub(super) fn begin_for(receiver: &Receiver, begin_layer: usize) -> usize {
    receiver
        .last_sender_layer()
        .map_or(begin_layer, |last| begin_layer.min(last))
}

/// What a finished sweep measured, for the ETA of the next sweep of its kind: the same
/// algorithm, and the same rule for positions (`Receiver::last_position_only`: a head
/// receiver's sweep runs every position, the last layer's resid_post only the last one, so a
/// unit of `PatchSpec::layer_cost` costs another time in each). The cache passes are a fixed
/// cost per run, not one per unit of layer cost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Calibration {
    pub algorithm: Algorithm,
    pub last_position_only: bool,
    pub cache_seconds: f64,
    pub seconds_per_cost: f64,
}

/// A model's head groups and selection.
type Marks = (Vec<HeadGroup>, BTreeSet<(usize, usize)>);

/// What every screen shares: the model and data loaded, the runs and the breadcrumbs, the
/// head groups, the jobs on the worker (queued as `Effect`s), the status line, and which
/// screen is on show. A screen's own state is not here but in its component
/// (`screens`), which reads and changes the session.
pub struct Session {
    pub screen: Screen,
    pub input: Option<Input>,
    pub help: bool,
    /// Key rows the help is scrolled down by (it is cut on small terminals).
    pub help_scroll: usize,
    pub color: ColorMode,
    pub setup: Setup,
    pub setup_screen: SetupScreen,
    pub model: Option<ModelInfo>,
    pub data: Option<DataStatus>,
    pub runs: Vec<RunSlot>,
    /// Breadcrumbs: indices into `runs`.
    pub trail: Vec<usize>,
    pub trail_pos: usize,
    /// (layer, head) under the cursor.
    pub cursor: (usize, usize),
    pub drill_input: HeadInput,
    pub range: RangeMode,
    pub crop: Option<(usize, usize)>,
    pub orientation: Orientation,
    pub groups: Vec<HeadGroup>,
    pub active_group: usize,
    pub selected: BTreeSet<(usize, usize)>,
    pub thresholds: Thresholds,
    pub circuit: CircuitView,
    pub gallery: Gallery,
    pub jobs: Vec<JobStatus>,
    pub status: (Level, String),
    pub effects: Vec<Effect>,
    pub quit: bool,
    /// `q` was pressed with something unsaved: a second `q` quits.
    pub confirm_quit: bool,
    /// Whether the groups as they are now were saved (`S`, or with a run by `s`).
    pub groups_saved: bool,
    /// What the last finished sweep of each kind measured, for the ETAs of the next ones of
    /// that kind (see [`Calibration`]).
    pub calibrations: Vec<Calibration>,
    /// The model whose groups and selection are in `groups` / `selected`, and those of other
    /// models, put aside (see `sync_context`).
    pub context: String,
    stashed: std::collections::HashMap<String, Marks>,
    /// The terminal's size (columns, rows), from which every screen's layout is computed.
    pub viewport: (u16, u16),
    /// Whether the model/data needed for a run are still loading.
    pub loading: bool,
    /// The first error of the last load (model or data), in full, until a load succeeds.
    pub load_error: Option<String>,
    /// Jobs of the load in progress (model, data).
    load_jobs: Vec<JobId>,
    /// Jobs of loads that already failed: their later errors ("no model loaded") are echoes.
    failed_load_jobs: Vec<JobId>,
    /// The last setup that loaded: a failed load goes back to it.
    loaded_setup: Option<Setup>,
    /// A groups file opened at start, applied once the model's heatmap is there.
    pending_groups: Option<(GroupsFile, PathBuf)>,
    /// A folder of shard parts opened at start, merged again as parts land.
    watching: Option<parts::Watch>,
    next_job: JobId,
}

/// The (layers, heads) steps of the arrow keys up, down, left and right: on screen the top
/// row is the highest layer (layers as rows), or head 0 (heads as rows). The heatmap and the
/// comparison move alike.
pub fn arrow_steps(layers_as_rows: bool) -> [(isize, isize); 4] {
    if layers_as_rows {
        [(1, 0), (-1, 0), (0, -1), (0, 1)]
    } else {
        [(0, -1), (0, 1), (-1, 0), (1, 0)]
    }
}

/// `cursor` moved by `(d_layer, d_head)`, kept inside the layers `lo..=hi` and `n_heads`
/// heads (unmoved when there are none).
pub fn step_cursor(
    cursor: (usize, usize),
    (d_layer, d_head): (isize, isize),
    (lo, hi): (usize, usize),
    n_heads: usize,
) -> (usize, usize) {
    if n_heads == 0 {
        return cursor;
    }
    let l = (cursor.0 as isize + d_layer).clamp(lo.min(hi) as isize, hi as isize) as usize;
    let h = (cursor.1 as isize + d_head).clamp(0, n_heads as isize - 1) as usize;
    (l, h)
}

impl Session {
    pub fn new(setup: Setup) -> Self {
        let mut app = Session {
            screen: Screen::Heatmap,
            input: None,
            help: false,
            help_scroll: 0,
            color: ColorMode::detect(),
            setup_screen: SetupScreen::default(),
            model: None,
            data: None,
            runs: Vec::new(),
            trail: Vec::new(),
            trail_pos: 0,
            cursor: (0, 0),
            drill_input: HeadInput::V,
            range: RangeMode::Auto,
            crop: None,
            orientation: Orientation::Auto,
            groups: default_groups(),
            active_group: 0,
            selected: BTreeSet::new(),
            thresholds: Thresholds::default(),
            circuit: CircuitView::default(),
            gallery: Gallery {
                entries: Vec::new(),
                selected: 0,
                marked: None,
                cursor: (0, 0),
                diff: false,
                filter: String::new(),
            },
            jobs: Vec::new(),
            status: (Level::Info, "loading…".into()),
            effects: Vec::new(),
            quit: false,
            confirm_quit: false,
            groups_saved: true,
            calibrations: Vec::new(),
            viewport: (80, 24),
            context: String::new(),
            stashed: Default::default(),
            loading: true,
            load_error: None,
            load_jobs: Vec::new(),
            failed_load_jobs: Vec::new(),
            loaded_setup: None,
            pending_groups: None,
            watching: None,
            next_job: 1,
            setup,
        };
        app.load_setup();
        if let Some(p) = app.setup.open.clone() {
            app.open_at_start(p);
        }
        app
    }

    /// Queues a job for the worker; returns its id.
    pub fn submit(&mut self, job: Job) -> JobId {
        let id = self.next_job;
        self.next_job += 1;
        self.effects.push(Effect::Submit(id, job));
        id
    }

    /// Queues loading the model and data of the setup.
    pub fn load_setup(&mut self) {
        self.load_error = None;
        self.start_load();
    }

    /// Submits the model and data of the setup (a failed data spec is a load error).
    fn start_load(&mut self) {
        self.loading = true;
        let model = self.submit(Job::LoadModel(self.setup.model_request()));
        self.load_jobs = vec![model];
        match self.setup.data.spec() {
            Ok(spec) => {
                let data = self.submit(Job::LoadData(spec));
                self.load_jobs.push(data);
            }
            Err(e) => self.load_failed(format!("data: {e}")),
        }
    }

    /// A load failed: the first error is kept and shown in full; the last setup that loaded
    /// (if any) is loaded back, so a typo never costs the model that was there.
    pub(super) fn load_failed(&mut self, message: String) {
        self.failed_load_jobs.append(&mut self.load_jobs);
        if self.load_error.is_some() {
            return;
        }
        let message = self.keep_typed_setup(message);
        self.set_status(Level::Error, format!("could not load: {message}"));
        self.load_error = Some(message);
        match self.loaded_setup.clone() {
            Some(previous) => {
                self.setup = previous;
                self.start_load();
            }
            None => self.loading = false,
        }
    }

    /// Whether `id` is a job of the load in progress.
    pub(super) fn is_load_job(&self, id: JobId) -> bool {
        self.load_jobs.contains(&id) || self.failed_load_jobs.contains(&id)
    }

    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    pub fn set_status(&mut self, level: Level, text: impl Into<String>) {
        self.status = (level, text.into());
    }

    pub fn n_layers(&self) -> usize {
        self.current_record().map_or_else(
            || self.model.as_ref().map_or(0, |m| m.n_layers),
            |r| r.n_layers,
        )
    }

    pub fn n_heads(&self) -> usize {
        self.current_record().map_or_else(
            || self.model.as_ref().map_or(0, |m| m.n_heads),
            |r| r.n_heads,
        )
    }

    /// The run the heatmap shows.
    pub fn current(&self) -> Option<&RunSlot> {
        self.trail.get(self.trail_pos).map(|&i| &self.runs[i])
    }

    pub fn current_record(&self) -> Option<&RunRecord> {
        self.current().and_then(|s| s.record.as_ref())
    }

    /// Whether a sweep or an analysis of this app is on the worker (a signal waits for its
    /// partial result before saving).
    pub fn busy(&self) -> bool {
        self.running() || self.circuit.job.is_some()
    }

    pub fn running(&self) -> bool {
        self.runs
            .iter()
            .any(|s| matches!(s.state, RunState::Running { .. }))
    }

    /// The slot for `key`, created if new.
    pub(super) fn slot_for(&mut self, key: RunKey) -> usize {
        if let Some(i) = self.runs.iter().position(|s| s.key == key) {
            return i;
        }
        self.runs.push(RunSlot {
            key,
            record: None,
            matrix: None,
            state: RunState::Idle,
            saved_to: None,
            left_at: None,
        });
        self.runs.len() - 1
    }

    /// Moves to `key` in the breadcrumbs (dropping forward history), running it if it was never
    /// run. Runs already done open instantly from the cache.
    pub fn navigate(&mut self, key: RunKey, run: bool) {
        self.remember_cursor();
        let i = self.slot_for(key);
        if self.trail.get(self.trail_pos) != Some(&i) {
            self.trail.truncate(self.trail_pos + 1);
            if self.trail.is_empty() {
                self.trail.push(i);
                self.trail_pos = 0;
            } else {
                self.trail.push(i);
                self.trail_pos = self.trail.len() - 1;
            }
        }
        if run
            && matches!(
                self.runs[i].state,
                RunState::Idle | RunState::Failed(_) | RunState::Cancelled
            )
        {
            self.run_current();
        }
        self.sync_context();
        self.clamp_cursor();
    }

    /// The default receiver for a loaded model.
    pub(super) fn default_key(&self) -> Option<RunKey> {
        let m = self.model.as_ref()?;
        Some(RunKey {
            receiver: self
                .setup
                .receiver
                .clone()
                .unwrap_or_else(|| Receiver::resid_post(m.n_layers - 1)),
            begin_layer: self.setup.begin_layer,
        })
    }

    /// Starts (or restarts) the current run.
    pub fn run_current(&mut self) {
        let Some(&i) = self.trail.get(self.trail_pos) else {
            return;
        };
        let (Some(m), true) = (self.model.as_ref(), self.data.is_some()) else {
            self.set_status(Level::Warn, "model and data are still loading");
            return;
        };
        let key = self.runs[i].key.clone();
        if self.loading {
            self.set_status(Level::Warn, "model and data are still loading");
            return;
        }
        if !key.receiver.reached_from_begin(key.begin_layer) {
            let msg = format!(
                "no sender can reach {}: a head hears only layers below its own, and the senders start at layer {}",
                key.receiver, key.begin_layer
            );
            self.runs[i].state = RunState::Failed(msg.clone());
            self.set_status(Level::Error, msg);
            return;
        }
        if let Err(e) = key.receiver.validate(m.n_layers, m.n_heads) {
            self.runs[i].state = RunState::Failed(e.to_string());
            self.set_status(Level::Error, e.to_string());
            return;
        }
        if key.begin_layer > key.receiver.max_layer() {
            let msg = format!(
                "begin layer {} is after the receiver's last layer {}",
                key.begin_layer,
                key.receiver.max_layer()
            );
            self.runs[i].state = RunState::Failed(msg.clone());
            self.set_status(Level::Error, msg);
            return;
        }
        let spec = self.setup.spec(key.receiver.clone(), key.begin_layer);
        let total = spec.sender_layers().len();
        let eta = self.eta(&spec).unwrap_or(f64::NAN);
        let job = self.submit(Job::Patch(spec));
        self.runs[i].state = RunState::Running {
            job,
            done: 0,
            total,
            elapsed: 0.0,
            eta,
        };
        self.runs[i].matrix = None;
        self.runs[i].record = None;
        self.runs[i].saved_to = None;
        self.set_status(Level::Info, format!("running → {}", key.receiver));
    }

    /// Estimated seconds for a sweep: from the last measured run of its kind ([`Calibration`]),
    /// or before any, roughly, from the time the data's evaluation took (two forward passes
    /// over every example, scaled by the positions the sweep runs).
    pub fn eta(&self, spec: &PatchSpec) -> Option<f64> {
        let m = self.model.as_ref()?;
        let n = m.n_layers;
        let cost = spec.total_cost(n);
        let kind = (spec.algorithm, spec.receiver.last_position_only(n));
        let measured =
            (self.calibrations.iter()).find(|c| (c.algorithm, c.last_position_only) == kind);
        if let Some(c) = measured {
            return Some(c.cache_seconds + c.seconds_per_cost * cost);
        }
        let d = self.data.as_ref()?;
        let eval = d.eval.as_ref()?.seconds;
        let t = d.lengths.iter().copied().max().unwrap_or(1).max(1) as f64;
        if spec.algorithm == Algorithm::Reference {
            // Two full passes per sender and batch: one evaluation's worth per sender.
            return Some(eval * (1.0 + spec.n_senders(m.n_heads) as f64));
        }
        // One unit of `layer_cost` is an MLP on heads × prompts × positions rows; the
        // evaluation ran 2 × layers layer passes on prompts × positions rows.
        let positions = if spec.receiver.last_position_only(n) {
            1.0
        } else {
            t
        };
        let unit = eval * m.n_heads as f64 * positions / (2.0 * n as f64 * t);
        Some(eval + cost * unit)
    }

    /// The current run's spec as it would be submitted.
    pub fn current_spec(&self) -> Option<PatchSpec> {
        let s = self.current()?;
        Some(self.setup.spec(s.key.receiver.clone(), s.key.begin_layer))
    }

    pub(super) fn clamp_cursor(&mut self) {
        let (l, h) = (self.n_layers(), self.n_heads());
        if l > 0 {
            self.cursor.0 = self.cursor.0.min(l - 1);
        }
        if h > 0 {
            self.cursor.1 = self.cursor.1.min(h - 1);
        }
    }

    /// Layers shown, after cropping.
    pub fn layer_range(&self) -> (usize, usize) {
        self.layer_range_of(self.n_layers())
    }

    /// The layers shown of a result with `n` layers: the crop within it, or all of them.
    /// (A compared result can have another shape than the view's context.)
    pub fn layer_range_of(&self, n: usize) -> (usize, usize) {
        if n == 0 {
            return (0, 0);
        }
        match self.crop {
            Some((lo, hi)) => (lo.min(n - 1), hi.min(n - 1)),
            None => (0, n - 1),
        }
    }

    /// Moves the cursor by whole layers / heads.
    pub fn move_cursor(&mut self, d_layer: isize, d_head: isize) {
        let (layers, n_heads) = (self.layer_range(), self.n_heads());
        self.cursor = step_cursor(self.cursor, (d_layer, d_head), layers, n_heads);
    }

    /// Does the heatmap put layers on rows? (Decided by the view from the terminal size in
    /// Auto; remembered in the geometry.)
    pub fn layers_as_rows(&self) -> bool {
        match self.orientation {
            Orientation::LayersAsRows => true,
            Orientation::LayersAsColumns => false,
            Orientation::Auto => self.heatmap_geometry().is_some_and(|g| g.layers_as_rows),
        }
    }

    /// Where the heatmap's cells are at the current terminal size, when it is on screen.
    pub fn heatmap_geometry(&self) -> Option<HeatmapGeometry> {
        if self.screen != Screen::Heatmap {
            return None;
        }
        let rec = self.current_record()?;
        let full = ratatui::layout::Rect::new(0, 0, self.viewport.0, self.viewport.1);
        let areas = super::layout::heatmap_areas(full)?;
        super::layout::plan(
            rec,
            areas.grid,
            Some(self.cursor),
            self.grid_view(rec, true),
        )
    }

    /// How a grid of `rec` is laid out in this view: its orientation, the crop's layers of
    /// it, and whether marks are drawn on it (`marks`: they are this model's).
    pub fn grid_view(&self, rec: &RunRecord, marks: bool) -> GridView {
        GridView {
            orientation: self.orientation,
            layers: self.layer_range_of(rec.n_layers),
            marked: marks && self.any_marked(),
        }
    }

    /// Whether some head is tagged into a group or selected, so that cells need a mark column.
    pub fn any_marked(&self) -> bool {
        !self.selected.is_empty() || self.groups.iter().any(|g| !g.heads.is_empty())
    }

    // ----- keys -----

    /// Drill down: the head under the cursor becomes the receiver.
    pub fn drill(&mut self) {
        let Some(cur) = self.current() else { return };
        let (layer, head) = self.cursor;
        if layer == 0 {
            self.set_status(
                Level::Warn,
                "no senders below layer 0: pick a head in a higher layer",
            );
            return;
        }
        let receiver = Receiver::Heads {
            heads: vec![HeadReceiver {
                layer,
                head,
                input: self.drill_input,
            }],
        };
        let begin = begin_for(&receiver, cur.key.begin_layer);
        if self.is_foreign(cur) {
            return self.drill_foreign(receiver);
        }
        let key = RunKey {
            receiver,
            begin_layer: begin,
        };
        self.navigate(key, true);
    }

    /// Back along the breadcrumbs; the cursor stays on the same (layer, head) where the
    /// result there has it.
    pub fn back(&mut self) {
        if self.trail_pos > 0 {
            self.step_trail(self.trail_pos - 1);
        }
    }

    pub fn forward(&mut self) {
        if self.trail_pos + 1 < self.trail.len() {
            self.step_trail(self.trail_pos + 1);
        }
    }

    /// Moves along the breadcrumbs to `pos`: the cursor keeps its (layer, head) where the
    /// run there has that cell, and otherwise returns to where it was when that run was left.
    fn step_trail(&mut self, pos: usize) {
        self.remember_cursor();
        self.trail_pos = pos;
        self.sync_context();
        let (lo, hi) = self.layer_range();
        let (l, h) = self.cursor;
        let exists = (lo..=hi).contains(&l) && h < self.n_heads();
        if !exists {
            if let Some(c) = self.current().and_then(|s| s.left_at) {
                self.cursor = c;
            }
        }
        self.clamp_cursor();
    }

    /// Notes the cursor in the current run before leaving it.
    pub(super) fn remember_cursor(&mut self) {
        if let Some(&i) = self.trail.get(self.trail_pos) {
            self.runs[i].left_at = Some(self.cursor);
        }
    }

    /// Groups a head belongs to (indices).
    pub fn groups_of(&self, head: (usize, usize)) -> Vec<usize> {
        (0..self.groups.len())
            .filter(|&g| self.groups[g].heads.contains(&head))
            .collect()
    }

    /// Labels of the breadcrumb trail. A run from a begin layer above 0 says so (`from L2`),
    /// and a result opened from a file says `(file)`: the same receiver from two begin
    /// layers, or run here and opened, are two crumbs, and two equal labels side by side
    /// would not tell them apart.
    pub fn breadcrumbs(&self) -> Vec<String> {
        self.trail.iter().map(|&i| self.run_label(i)).collect()
    }

    /// The label of run slot `i`, as the breadcrumbs and the quit prompt name it.
    pub fn run_label(&self, i: usize) -> String {
        let slot = &self.runs[i];
        let mut label = slot.key.receiver.label();
        if slot.key.begin_layer > 0 {
            label.push_str(&format!(" from L{}", slot.key.begin_layer));
        }
        if matches!(slot.state, RunState::Opened(_)) {
            label.push_str(" (file)");
        }
        label
    }
}
