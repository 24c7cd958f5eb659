//! The explorer's state and how keys, mouse clicks and worker events change it. Pure: no
//! terminal here, so the state machine is unit-tested directly. What the app wants done outside
//! (jobs for the worker, cancelling, quitting) comes out as `Effect`s.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};

use crate::data::commands::{DataArgs, TaskArg};
use crate::data::{AnswerTokenRule, DataSpec};
use crate::model::HeadInput;
use crate::patching::{Algorithm, HeadReceiver, PatchEvent, PatchMatrix, PatchSpec, Receiver};
use crate::results::text::Thresholds;
use crate::results::{DataInfo, HeadGroup, ModelInfo, RecordParts, RunRecord, Timing};
use crate::worker::{
    AttentionRequest, Event, Job, JobId, ModelRequest, PairPreview, PromptChoice, RunKind,
};

use super::color::ColorMode;

/// Which full-screen view is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Heatmap,
    Attention,
    Setup,
    Gallery,
    Compare,
}

/// What a text prompt is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputPurpose {
    Receiver,
    BeginLayer,
    Crop,
    NewGroup,
    SetupField(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub purpose: InputPurpose,
    pub label: String,
    pub buffer: String,
}

/// Something the app asks its surroundings to do.
#[derive(Debug, Clone)]
pub enum Effect {
    /// Send a job to the worker under this id.
    Submit(JobId, Job),
    Cancel,
    Quit,
}

/// Colour range of the heatmap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeMode {
    /// ± the largest |r| shown.
    Auto,
    /// ±20%, as the paper's cropped figures.
    Fixed20,
}

/// How layers and heads map to the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Orientation {
    /// Whichever fits the terminal (layers as columns, like the paper, when it fits).
    Auto,
    LayersAsRows,
    LayersAsColumns,
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
}

/// The attention view's settings and data.
pub struct AttentionView {
    pub heads: Vec<(usize, usize)>,
    pub current: usize,
    pub run: RunKind,
    /// Mean over the first n prompts, or one prompt.
    pub prompts: PromptChoice,
    /// Query row shown in the bar view (default: the last position).
    pub query: Option<usize>,
    pub bars: bool,
    pub tokens: Vec<String>,
    pub patterns: Vec<Vec<Vec<f32>>>,
    pub waiting: Option<JobId>,
}

/// One saved result in the gallery.
pub struct GalleryEntry {
    pub path: PathBuf,
    pub label: String,
    pub record: Result<RunRecord, String>,
}

pub struct Gallery {
    pub entries: Vec<GalleryEntry>,
    pub selected: usize,
    pub marked: Option<usize>,
    pub diff: bool,
}

/// The user's choices of model, data and run parameters (the setup form).
#[derive(Debug, Clone)]
pub struct Setup {
    pub model: String,
    pub tokenizer: Option<PathBuf>,
    pub device: String,
    pub dtype: Option<String>,
    pub data: DataArgs,
    pub batch_size: usize,
    pub begin_layer: usize,
    pub algorithm: Algorithm,
    /// Initial receiver; `None` = the last layer's resid_post.
    pub receiver: Option<Receiver>,
    pub results_dir: PathBuf,
    /// Extra folders the gallery lists (e.g. the paper's results).
    pub gallery_dirs: Vec<PathBuf>,
}

/// Labels of the setup form's editable fields, in order.
pub const SETUP_FIELDS: &[&str] = &[
    "model",
    "tokenizer",
    "device",
    "dtype",
    "data file",
    "task",
    "shots",
    "offset",
    "examples",
    "batch size",
    "begin layer",
    "answer token",
    "algorithm",
];

impl Setup {
    /// Current text of a form field.
    pub fn field(&self, i: usize) -> String {
        match i {
            0 => self.model.clone(),
            1 => self
                .tokenizer
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            2 => self.device.clone(),
            3 => self.dtype.clone().unwrap_or_else(|| "auto".into()),
            4 => self.data.data.display().to_string(),
            5 => format!("{:?}", self.data.task).to_lowercase(),
            6 => self.data.shots.to_string(),
            7 => self.data.offset.map_or("default".into(), |o| o.to_string()),
            8 => self.data.examples.map_or("all".into(), |n| n.to_string()),
            9 => self.batch_size.to_string(),
            10 => self.begin_layer.to_string(),
            11 => match self.data.answer_token {
                AnswerTokenRule::Last => "last".into(),
                AnswerTokenRule::First => "first".into(),
            },
            12 => self.algorithm.name().into(),
            _ => String::new(),
        }
    }

    /// Sets a form field from text; errors say what was expected.
    pub fn set_field(&mut self, i: usize, v: &str) -> Result<(), String> {
        let v = v.trim();
        let num = |name: &str| -> Result<usize, String> {
            v.parse::<usize>()
                .map_err(|_| format!("{name}: expected a whole number, got {v:?}"))
        };
        match i {
            0 if v.is_empty() => return Err("model: give a directory, .gguf file or hub id".into()),
            0 => self.model = v.to_string(),
            1 => self.tokenizer = (!v.is_empty()).then(|| PathBuf::from(v)),
            2 => {
                if !(v == "cpu" || v == "cuda" || v.starts_with("cuda:")) {
                    return Err(format!("device: expected cpu, cuda or cuda:N, got {v:?}"));
                }
                self.device = v.to_string()
            }
            3 => {
                self.dtype = match v {
                    "" | "auto" => None,
                    "f32" | "bf16" | "f16" => Some(v.to_string()),
                    _ => return Err(format!("dtype: expected f32, bf16, f16 or auto, got {v:?}")),
                }
            }
            4 if v.is_empty() => return Err("data file: give a path".into()),
            4 => self.data.data = PathBuf::from(v),
            5 => {
                self.data.task = match v {
                    "auto" => TaskArg::Auto,
                    "addition" => TaskArg::Addition,
                    "base" => TaskArg::Base,
                    "cipher" => TaskArg::Cipher,
                    "pairs" => TaskArg::Pairs,
                    _ => {
                        return Err(format!(
                            "task: expected auto, addition, base, cipher or pairs, got {v:?}"
                        ))
                    }
                }
            }
            6 => self.data.shots = num("shots")?,
            7 => {
                self.data.offset = match v {
                    "" | "default" => None,
                    _ => Some(
                        v.parse()
                            .map_err(|_| format!("offset: expected an integer, got {v:?}"))?,
                    ),
                }
            }
            8 => {
                self.data.examples = match v {
                    "" | "all" => None,
                    _ => match num("examples")? {
                        0 => return Err("examples: expected at least 1".into()),
                        n => Some(n),
                    },
                }
            }
            9 => match num("batch size")? {
                0 => return Err("batch size: expected at least 1".into()),
                n => self.batch_size = n,
            },
            10 => self.begin_layer = num("begin layer")?,
            11 => {
                self.data.answer_token = match v {
                    "last" => AnswerTokenRule::Last,
                    "first" => AnswerTokenRule::First,
                    _ => return Err(format!("answer token: expected last or first, got {v:?}")),
                }
            }
            12 => {
                self.algorithm = match v {
                    "fast" => Algorithm::Fast,
                    "reference" => Algorithm::Reference,
                    _ => return Err(format!("algorithm: expected fast or reference, got {v:?}")),
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Streams sender layers one by one on CPU (rows appear as they finish); on a GPU lets
    /// them advance together in chunks (far faster there; rows arrive at the end).
    pub fn chunk_rows(&self) -> usize {
        if self.device == "cpu" {
            0
        } else {
            crate::cli::patch::DEFAULT_GPU_CHUNK_ROWS
        }
    }

    pub fn model_request(&self) -> ModelRequest {
        ModelRequest {
            model: self.model.clone(),
            tokenizer: self.tokenizer.clone(),
            device: self.device.clone(),
            dtype: self.dtype.clone(),
        }
    }
}

/// Loaded data, as the worker described it.
pub struct DataStatus {
    /// Baselines and accuracy, once the worker has measured them.
    pub eval: Option<Evaluation>,
    pub spec: DataSpec,
    pub n_examples: usize,
    pub skipped: Vec<usize>,
    pub multi_token_answers: Vec<usize>,
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
}

impl Evaluation {
    /// One line: baselines and how often each prompt gets its answer.
    pub fn summary(&self) -> String {
        format!(
            "LD_normal {:+.3}, LD_contrast {:+.3}; normal answer on {}/{} normal prompts, contrast answer on {}/{} contrast prompts ({} keep the normal one)",
            self.ld_normal, self.ld_contrast, self.normal_ok, self.n, self.contrast_ok, self.n, self.contrast_gives_normal
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

pub struct App {
    pub screen: Screen,
    pub input: Option<Input>,
    pub help: bool,
    pub color: ColorMode,
    pub setup: Setup,
    pub setup_row: usize,
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
    pub attention: AttentionView,
    pub gallery: Gallery,
    pub jobs: Vec<JobStatus>,
    pub status: (Level, String),
    pub effects: Vec<Effect>,
    pub quit: bool,
    /// Measured sweep seconds per unit of `PatchSpec::layer_cost`, for ETAs.
    pub seconds_per_cost: Option<f64>,
    /// Where the heatmap's cells were drawn last (for mouse clicks): origin, cell size,
    /// orientation, first layer/head shown.
    pub heatmap_geometry: Option<HeatmapGeometry>,
    /// Whether the model/data needed for a run are still loading.
    pub loading: bool,
    next_job: JobId,
}

/// Where the last heatmap frame put its cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeatmapGeometry {
    pub x: u16,
    pub y: u16,
    pub cell_w: u16,
    pub layers_as_rows: bool,
    /// Layers / heads shown, in screen order along each axis.
    pub n_rows: u16,
    pub n_cols: u16,
    /// Index (layer or head) of the first row and first column.
    pub row_first: usize,
    pub col_first: usize,
    /// Rows count down (top = highest layer).
    pub rows_descending: bool,
}

impl App {
    pub fn new(setup: Setup) -> Self {
        let mut app = App {
            screen: Screen::Heatmap,
            input: None,
            help: false,
            color: ColorMode::detect(),
            setup_row: 0,
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
            attention: AttentionView {
                heads: Vec::new(),
                current: 0,
                run: RunKind::Contrast,
                prompts: PromptChoice::Mean(4),
                query: None,
                bars: false,
                tokens: Vec::new(),
                patterns: Vec::new(),
                waiting: None,
            },
            gallery: Gallery {
                entries: Vec::new(),
                selected: 0,
                marked: None,
                diff: false,
            },
            jobs: Vec::new(),
            status: (Level::Info, "loading…".into()),
            effects: Vec::new(),
            quit: false,
            seconds_per_cost: None,
            heatmap_geometry: None,
            loading: true,
            next_job: 1,
            setup,
        };
        app.load_setup();
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
        self.loading = true;
        self.submit(Job::LoadModel(self.setup.model_request()));
        match self.setup.data.spec() {
            Ok(spec) => {
                self.submit(Job::LoadData(spec));
            }
            Err(e) => self.set_status(Level::Error, format!("data: {e}")),
        }
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

    pub fn running(&self) -> bool {
        self.runs
            .iter()
            .any(|s| matches!(s.state, RunState::Running { .. }))
    }

    /// The slot for `key`, created if new.
    fn slot_for(&mut self, key: RunKey) -> usize {
        if let Some(i) = self.runs.iter().position(|s| s.key == key) {
            return i;
        }
        self.runs.push(RunSlot {
            key,
            record: None,
            matrix: None,
            state: RunState::Idle,
            saved_to: None,
        });
        self.runs.len() - 1
    }

    /// Moves to `key` in the breadcrumbs (dropping forward history), running it if it was never
    /// run. Runs already done open instantly from the cache.
    pub fn navigate(&mut self, key: RunKey, run: bool) {
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
        self.clamp_cursor();
    }

    /// The default receiver for a loaded model.
    fn default_key(&self) -> Option<RunKey> {
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
        let spec = PatchSpec {
            receiver: key.receiver.clone(),
            begin_layer: key.begin_layer,
            batch_size: self.setup.batch_size,
            algorithm: self.setup.algorithm,
            chunk_rows: self.setup.chunk_rows(),
        };
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

    /// Estimated seconds for a sweep: from the last measured run, or before any run, roughly,
    /// from the time the data's evaluation took (two forward passes over every example).
    pub fn eta(&self, spec: &PatchSpec) -> Option<f64> {
        let m = self.model.as_ref()?;
        let n = m.n_layers;
        let cost: f64 = spec
            .sender_layers()
            .iter()
            .map(|&l| spec.layer_cost(l, n))
            .sum();
        if let Some(s) = self.seconds_per_cost {
            return Some(s * cost);
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
        let positions = match spec.receiver {
            Receiver::Resid { .. } if spec.receiver.max_layer() == n - 1 => 1.0,
            _ => t,
        };
        let unit = eval * m.n_heads as f64 * positions / (2.0 * n as f64 * t);
        Some(eval + cost * unit)
    }

    /// The current run's spec as it would be submitted.
    pub fn current_spec(&self) -> Option<PatchSpec> {
        let s = self.current()?;
        Some(PatchSpec {
            receiver: s.key.receiver.clone(),
            begin_layer: s.key.begin_layer,
            batch_size: self.setup.batch_size,
            algorithm: self.setup.algorithm,
            chunk_rows: self.setup.chunk_rows(),
        })
    }

    fn clamp_cursor(&mut self) {
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
        let n = self.n_layers();
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
        let (lo, hi) = self.layer_range();
        let n_heads = self.n_heads();
        if n_heads == 0 {
            return;
        }
        let l = (self.cursor.0 as isize + d_layer).clamp(lo as isize, hi as isize) as usize;
        let h = (self.cursor.1 as isize + d_head).clamp(0, n_heads as isize - 1) as usize;
        self.cursor = (l, h);
    }

    /// Does the heatmap put layers on rows? (Decided by the view from the terminal size in
    /// Auto; remembered in the geometry.)
    pub fn layers_as_rows(&self) -> bool {
        match self.orientation {
            Orientation::LayersAsRows => true,
            Orientation::LayersAsColumns => false,
            Orientation::Auto => self.heatmap_geometry.is_some_and(|g| g.layers_as_rows),
        }
    }

    // ----- keys -----

    pub fn on_key(&mut self, key: KeyEvent) {
        if key.kind == crossterm::event::KeyEventKind::Release {
            return;
        }
        if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
            self.effects.push(Effect::Cancel);
            self.effects.push(Effect::Quit);
            self.quit = true;
            return;
        }
        if self.input.is_some() {
            self.on_input_key(key);
            return;
        }
        if self.help {
            if matches!(
                key.code,
                KeyCode::Esc | KeyCode::Char('q') | KeyCode::Char('?')
            ) {
                self.help = false;
            }
            return;
        }
        if key.code == KeyCode::Char('?') {
            self.help = true;
            return;
        }
        match self.screen {
            Screen::Heatmap => self.on_heatmap_key(key),
            Screen::Attention => self.on_attention_key(key),
            Screen::Setup => self.on_setup_key(key),
            Screen::Gallery => self.on_gallery_key(key),
            Screen::Compare => {
                if matches!(key.code, KeyCode::Esc | KeyCode::Char('q')) {
                    self.screen = Screen::Gallery;
                } else if key.code == KeyCode::Char('d') {
                    self.gallery.diff = !self.gallery.diff;
                }
            }
        }
    }

    fn quit_now(&mut self) {
        if self.running() {
            self.effects.push(Effect::Cancel);
        }
        self.effects.push(Effect::Quit);
        self.quit = true;
    }

    fn open_input(&mut self, purpose: InputPurpose, label: &str, initial: String) {
        self.input = Some(Input {
            purpose,
            label: label.to_string(),
            buffer: initial,
        });
    }

    fn on_heatmap_key(&mut self, key: KeyEvent) {
        let rows = self.layers_as_rows();
        // On screen the top row is the highest layer; up moves to a higher layer.
        let (up, down, left, right) = if rows {
            ((1, 0), (-1, 0), (0, -1), (0, 1))
        } else {
            ((0, -1), (0, 1), (-1, 0), (1, 0))
        };
        match key.code {
            KeyCode::Char('q') | KeyCode::Esc => {
                if key.code == KeyCode::Esc && !self.selected.is_empty() {
                    self.selected.clear();
                } else {
                    self.quit_now();
                }
            }
            KeyCode::Up | KeyCode::Char('k') => self.move_cursor(up.0, up.1),
            KeyCode::Down | KeyCode::Char('j') => self.move_cursor(down.0, down.1),
            KeyCode::Left | KeyCode::Char('h') => self.move_cursor(left.0, left.1),
            KeyCode::Right | KeyCode::Char('l') => self.move_cursor(right.0, right.1),
            KeyCode::PageUp => self.move_cursor(8 * up.0, 8 * up.1),
            KeyCode::PageDown => self.move_cursor(8 * down.0, 8 * down.1),
            KeyCode::Home => {
                let (_, hi) = self.layer_range();
                self.cursor = (hi, 0);
            }
            KeyCode::End => {
                let (lo, _) = self.layer_range();
                self.cursor = (lo, self.n_heads().saturating_sub(1));
            }
            KeyCode::Char('r') => self.run_current(),
            KeyCode::Char('R') => {
                if let Some(key) = self.default_key() {
                    self.navigate(key, true);
                }
            }
            KeyCode::Char('c') if self.running() => {
                self.effects.push(Effect::Cancel);
                self.set_status(Level::Info, "cancelling after the current sender layer…");
            }
            KeyCode::Enter => self.drill(),
            KeyCode::Char('i') => {
                self.drill_input = match self.drill_input {
                    HeadInput::V => HeadInput::Q,
                    HeadInput::Q => HeadInput::K,
                    HeadInput::K => HeadInput::V,
                };
                self.set_status(
                    Level::Info,
                    format!(
                        "Enter drills into the head's {} input",
                        self.drill_input.letter()
                    ),
                );
            }
            KeyCode::Char('[') | KeyCode::Backspace => self.back(),
            KeyCode::Char(']') => self.forward(),
            KeyCode::Char(':') | KeyCode::Char('e') => {
                let initial = self
                    .current()
                    .map(|s| s.key.receiver.cli_text())
                    .unwrap_or_default();
                self.open_input(
                    InputPurpose::Receiver,
                    "receiver (resid_post:L | resid_pre:L | resid_mid:L | L.H.v [L.H.q ...])",
                    initial,
                );
            }
            KeyCode::Char('b') => {
                let initial = self.current().map_or(0, |s| s.key.begin_layer).to_string();
                self.open_input(
                    InputPurpose::BeginLayer,
                    "begin layer (first sender layer)",
                    initial,
                );
            }
            KeyCode::Char('a') => self.open_attention(),
            KeyCode::Char(' ') => {
                let c = self.cursor;
                if !self.selected.remove(&c) {
                    self.selected.insert(c);
                }
            }
            KeyCode::Char('t') => self.toggle_tag(),
            KeyCode::Char('g') => {
                self.active_group = (self.active_group + 1) % self.groups.len().max(1);
                self.set_status(
                    Level::Info,
                    format!(
                        "tagging into group {:?}",
                        self.groups[self.active_group].name
                    ),
                );
            }
            KeyCode::Char('G') => {
                self.open_input(InputPurpose::NewGroup, "new group name", String::new())
            }
            KeyCode::Char('f') => {
                self.range = match self.range {
                    RangeMode::Auto => RangeMode::Fixed20,
                    RangeMode::Fixed20 => RangeMode::Auto,
                }
            }
            KeyCode::Char('z') => {
                let (lo, hi) = self.layer_range();
                self.open_input(
                    InputPurpose::Crop,
                    "show layers LO-HI",
                    format!("{lo}-{hi}"),
                );
            }
            KeyCode::Char('Z') => {
                self.crop = None;
                self.clamp_cursor();
            }
            KeyCode::Char('o') => {
                self.orientation = if self.layers_as_rows() {
                    Orientation::LayersAsColumns
                } else {
                    Orientation::LayersAsRows
                }
            }
            KeyCode::Char('s') => self.save_current(),
            KeyCode::Char('S') => self.save_groups(),
            KeyCode::Char('m') => self.screen = Screen::Setup,
            KeyCode::Char('w') => self.open_gallery(),
            KeyCode::Char('>') => self.thresholds.hi = (self.thresholds.hi + 0.01).min(1.0),
            KeyCode::Char('<') => {
                self.thresholds.hi = (self.thresholds.hi - 0.01).max(self.thresholds.lo + 0.005)
            }
            _ => {}
        }
    }

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
        let begin = cur.key.begin_layer.min(layer - 1);
        let key = RunKey {
            receiver: Receiver::Heads {
                heads: vec![HeadReceiver {
                    layer,
                    head,
                    input: self.drill_input,
                }],
            },
            begin_layer: begin,
        };
        self.navigate(key, true);
    }

    pub fn back(&mut self) {
        if self.trail_pos > 0 {
            self.trail_pos -= 1;
            self.clamp_cursor();
        }
    }

    pub fn forward(&mut self) {
        if self.trail_pos + 1 < self.trail.len() {
            self.trail_pos += 1;
            self.clamp_cursor();
        }
    }

    fn toggle_tag(&mut self) {
        if self.groups.is_empty() {
            return;
        }
        let c = self.cursor;
        let g = &mut self.groups[self.active_group];
        if let Some(p) = g.heads.iter().position(|&h| h == c) {
            g.heads.remove(p);
            let msg = format!("H{}.{} removed from {}", c.0, c.1, g.name);
            self.set_status(Level::Info, msg);
        } else {
            g.heads.push(c);
            g.heads.sort_unstable_by(|a, b| b.cmp(a));
            let msg = format!("H{}.{} tagged {}", c.0, c.1, g.name);
            self.set_status(Level::Info, msg);
        }
    }

    /// Groups a head belongs to (indices).
    pub fn groups_of(&self, head: (usize, usize)) -> Vec<usize> {
        (0..self.groups.len())
            .filter(|&g| self.groups[g].heads.contains(&head))
            .collect()
    }

    fn open_attention(&mut self) {
        if self.model.is_none() || self.data.is_none() {
            self.set_status(Level::Warn, "model and data are still loading");
            return;
        }
        let heads: Vec<(usize, usize)> = if self.selected.is_empty() {
            vec![self.cursor]
        } else {
            self.selected.iter().rev().copied().collect()
        };
        self.attention.heads = heads;
        self.attention.current = 0;
        self.attention.query = None;
        self.screen = Screen::Attention;
        self.request_attention();
    }

    fn request_attention(&mut self) {
        self.attention.patterns.clear();
        let req = AttentionRequest {
            heads: self.attention.heads.clone(),
            run: self.attention.run,
            prompts: self.attention.prompts,
        };
        let id = self.submit(Job::Attention(req));
        self.attention.waiting = Some(id);
    }

    fn on_attention_key(&mut self, key: KeyEvent) {
        let n_prompts = self.data.as_ref().map_or(1, |d| d.n_examples);
        let len = self.attention.tokens.len();
        match key.code {
            KeyCode::Esc | KeyCode::Char('q') => self.screen = Screen::Heatmap,
            KeyCode::Char('n') => {
                self.attention.run = match self.attention.run {
                    RunKind::Normal => RunKind::Contrast,
                    RunKind::Contrast => RunKind::Normal,
                };
                self.request_attention();
            }
            KeyCode::Char('+') | KeyCode::Char('=') => {
                let n = match self.attention.prompts {
                    PromptChoice::Mean(n) => (n + 1).min(n_prompts),
                    PromptChoice::One(_) => 1,
                };
                self.attention.prompts = PromptChoice::Mean(n);
                self.request_attention();
            }
            KeyCode::Char('-') => {
                let n = match self.attention.prompts {
                    PromptChoice::Mean(n) => n.saturating_sub(1).max(1),
                    PromptChoice::One(_) => 1,
                };
                self.attention.prompts = PromptChoice::Mean(n);
                self.request_attention();
            }
            KeyCode::Char('p') => {
                let i = match self.attention.prompts {
                    PromptChoice::One(i) => (i + 1) % n_prompts.max(1),
                    PromptChoice::Mean(_) => 0,
                };
                self.attention.prompts = PromptChoice::One(i);
                self.request_attention();
            }
            KeyCode::Char('P') => {
                self.attention.prompts = PromptChoice::Mean(4.min(n_prompts));
                self.request_attention();
            }
            KeyCode::Char('b') => self.attention.bars = !self.attention.bars,
            KeyCode::Up | KeyCode::Char('k') if len > 0 => {
                let q = self.attention.query.unwrap_or(len - 1);
                self.attention.query = Some(q.saturating_sub(1));
            }
            KeyCode::Down | KeyCode::Char('j') if len > 0 => {
                let q = self.attention.query.unwrap_or(len - 1);
                self.attention.query = Some((q + 1).min(len - 1));
            }
            KeyCode::Tab | KeyCode::Right | KeyCode::Char('l')
                if !self.attention.heads.is_empty() =>
            {
                self.attention.current = (self.attention.current + 1) % self.attention.heads.len();
            }
            KeyCode::BackTab | KeyCode::Left | KeyCode::Char('h') => {
                let n = self.attention.heads.len();
                if n > 0 {
                    self.attention.current = (self.attention.current + n - 1) % n;
                }
            }
            _ => {}
        }
    }

    fn on_setup_key(&mut self, key: KeyEvent) {
        match key.code {
            KeyCode::Esc | KeyCode::Char('q') => self.screen = Screen::Heatmap,
            KeyCode::Up | KeyCode::Char('k') => self.setup_row = self.setup_row.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => {
                self.setup_row = (self.setup_row + 1).min(SETUP_FIELDS.len() - 1)
            }
            KeyCode::Enter => {
                let i = self.setup_row;
                let label = SETUP_FIELDS[i];
                let initial = self.setup.field(i);
                self.open_input(InputPurpose::SetupField(i), label, initial);
            }
            KeyCode::Char('L') | KeyCode::Char('l') => {
                // Results of another model or dataset are kept in the gallery once saved; the
                // cache of this session's runs is for the new setup only.
                self.runs.clear();
                self.trail.clear();
                self.trail_pos = 0;
                self.model = None;
                self.data = None;
                self.load_setup();
                self.screen = Screen::Heatmap;
            }
            _ => {}
        }
    }

    pub fn open_gallery(&mut self) {
        let mut dirs = vec![self.setup.results_dir.clone()];
        dirs.extend(self.setup.gallery_dirs.iter().cloned());
        self.gallery.entries = scan_results(&dirs);
        self.gallery.selected = self
            .gallery
            .selected
            .min(self.gallery.entries.len().saturating_sub(1));
        self.screen = Screen::Gallery;
        if self.gallery.entries.is_empty() {
            self.set_status(
                Level::Info,
                "no saved results yet: press s on a heatmap to save one",
            );
        }
    }

    fn on_gallery_key(&mut self, key: KeyEvent) {
        let n = self.gallery.entries.len();
        match key.code {
            KeyCode::Esc | KeyCode::Char('q') => self.screen = Screen::Heatmap,
            KeyCode::Up | KeyCode::Char('k') => self.gallery.selected = self.gallery.selected.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') if n > 0 => self.gallery.selected = (self.gallery.selected + 1).min(n - 1),
            KeyCode::Char('r') => self.open_gallery(),
            KeyCode::Char('m') if n > 0 => {
                self.gallery.marked = if self.gallery.marked == Some(self.gallery.selected) {
                    None
                } else {
                    Some(self.gallery.selected)
                };
            }
            KeyCode::Char('c') | KeyCode::Char('d') if n > 0 => match self.gallery.marked {
                Some(m) if m != self.gallery.selected => {
                    let (a, b) = (&self.gallery.entries[m].record, &self.gallery.entries[self.gallery.selected].record);
                    match (a, b) {
                        (Ok(a), Ok(b)) if a.n_layers == b.n_layers && a.n_heads == b.n_heads => {
                            self.gallery.diff = key.code == KeyCode::Char('d');
                            self.screen = Screen::Compare;
                        }
                        (Ok(_), Ok(_)) => self.set_status(Level::Warn, "the two results have different shapes"),
                        _ => self.set_status(Level::Error, "cannot compare a file that did not load"),
                    }
                }
                _ => self.set_status(Level::Info, "mark one result with m, then select another and press c (side by side) or d (difference)"),
            },
            KeyCode::Enter if n > 0 => {
                let e = &self.gallery.entries[self.gallery.selected];
                match &e.record {
                    Ok(rec) => {
                        let rec = rec.clone();
                        let path = e.path.clone();
                        self.open_record(rec, path);
                    }
                    Err(msg) => {
                        let msg = msg.clone();
                        self.set_status(Level::Error, msg)
                    }
                }
            }
            _ => {}
        }
    }

    /// Shows a saved record as a run (breadcrumbs included).
    pub fn open_record(&mut self, rec: RunRecord, path: PathBuf) {
        let key = RunKey {
            receiver: rec.receiver.clone(),
            begin_layer: rec.begin_layer,
        };
        // A loaded file must not overwrite a run of this session with the same receiver.
        self.runs.push(RunSlot {
            key,
            record: Some(rec.clone()),
            matrix: None,
            state: RunState::Opened(path.clone()),
            saved_to: Some(path.clone()),
        });
        let i = self.runs.len() - 1;
        self.trail.truncate(self.trail_pos + 1);
        self.trail.push(i);
        self.trail_pos = self.trail.len() - 1;
        for g in &rec.groups {
            if let Some(existing) = self.groups.iter_mut().find(|x| x.name == g.name) {
                for h in &g.heads {
                    if !existing.heads.contains(h) {
                        existing.heads.push(*h);
                    }
                }
            } else {
                self.groups.push(g.clone());
            }
        }
        self.screen = Screen::Heatmap;
        self.clamp_cursor();
        self.set_status(Level::Info, format!("opened {}", path.display()));
    }

    fn on_input_key(&mut self, key: KeyEvent) {
        let Some(input) = self.input.as_mut() else {
            return;
        };
        match key.code {
            KeyCode::Esc => self.input = None,
            KeyCode::Backspace => {
                input.buffer.pop();
            }
            KeyCode::Char(ch) => input.buffer.push(ch),
            KeyCode::Enter => {
                let input = self.input.take().unwrap();
                if let Err(e) = self.apply_input(&input) {
                    self.set_status(Level::Error, e);
                    // Keep the prompt open with the text so it can be fixed.
                    self.input = Some(input);
                }
            }
            _ => {}
        }
    }

    fn apply_input(&mut self, input: &Input) -> Result<(), String> {
        let text = input.buffer.trim();
        match input.purpose {
            InputPurpose::Receiver => {
                let values: Vec<String> = text.split_whitespace().map(str::to_string).collect();
                let receiver = Receiver::parse_many(&values).map_err(|e| e.to_string())?;
                if let Some(m) = &self.model {
                    receiver
                        .validate(m.n_layers, m.n_heads)
                        .map_err(|e| e.to_string())?;
                }
                let begin = self
                    .current()
                    .map_or(self.setup.begin_layer, |s| s.key.begin_layer)
                    .min(receiver.max_layer());
                self.navigate(
                    RunKey {
                        receiver,
                        begin_layer: begin,
                    },
                    true,
                );
            }
            InputPurpose::BeginLayer => {
                let b: usize = text
                    .parse()
                    .map_err(|_| format!("begin layer: expected a number, got {text:?}"))?;
                let Some(cur) = self.current() else {
                    return Ok(());
                };
                let receiver = cur.key.receiver.clone();
                if b > receiver.max_layer() {
                    return Err(format!(
                        "begin layer {b} is after the receiver's last layer {}",
                        receiver.max_layer()
                    ));
                }
                self.navigate(
                    RunKey {
                        receiver,
                        begin_layer: b,
                    },
                    true,
                );
            }
            InputPurpose::Crop => {
                let (lo, hi) = text
                    .split_once('-')
                    .and_then(|(a, b)| {
                        Some((
                            a.trim().parse::<usize>().ok()?,
                            b.trim().parse::<usize>().ok()?,
                        ))
                    })
                    .ok_or_else(|| format!("crop: expected LO-HI, got {text:?}"))?;
                let n = self.n_layers();
                if lo > hi || hi >= n.max(1) {
                    return Err(format!("crop: expected 0 <= LO <= HI < {n}"));
                }
                self.crop = Some((lo, hi));
                self.cursor.0 = self.cursor.0.clamp(lo, hi);
            }
            InputPurpose::NewGroup => {
                if text.is_empty() {
                    return Err("group name: empty".into());
                }
                if let Some(i) = self.groups.iter().position(|g| g.name == text) {
                    self.active_group = i;
                } else {
                    self.groups.push(HeadGroup {
                        name: text.to_string(),
                        heads: Vec::new(),
                    });
                    self.active_group = self.groups.len() - 1;
                }
                self.set_status(
                    Level::Info,
                    format!("tagging into group {text:?} (t tags the head under the cursor)"),
                );
            }
            InputPurpose::SetupField(i) => {
                self.setup.set_field(i, text)?;
                self.set_status(Level::Info, "press L to load with the new setup");
            }
        }
        Ok(())
    }

    // ----- mouse -----

    pub fn on_mouse(&mut self, m: MouseEvent) {
        if self.input.is_some() || self.help || self.screen != Screen::Heatmap {
            return;
        }
        match m.kind {
            MouseEventKind::Down(MouseButton::Left) => {
                if let Some(cell) = self.cell_at(m.column, m.row) {
                    self.cursor = cell;
                }
            }
            MouseEventKind::ScrollUp => self.move_cursor(1, 0),
            MouseEventKind::ScrollDown => self.move_cursor(-1, 0),
            _ => {}
        }
    }

    /// The (layer, head) drawn at a screen position, if any.
    pub fn cell_at(&self, x: u16, y: u16) -> Option<(usize, usize)> {
        let g = self.heatmap_geometry?;
        if x < g.x || y < g.y {
            return None;
        }
        let col = ((x - g.x) / g.cell_w.max(1)) as usize;
        let row = (y - g.y) as usize;
        if col >= g.n_cols as usize || row >= g.n_rows as usize {
            return None;
        }
        let row_index = if g.rows_descending {
            g.row_first.checked_sub(row)?
        } else {
            g.row_first + row
        };
        let col_index = g.col_first + col;
        Some(if g.layers_as_rows {
            (row_index, col_index)
        } else {
            (col_index, row_index)
        })
    }

    // ----- saving -----

    /// Saves the current run (with the tagged groups) to the results folder.
    pub fn save_current(&mut self) {
        let Some(&i) = self.trail.get(self.trail_pos) else {
            return;
        };
        let groups: Vec<HeadGroup> = self
            .groups
            .iter()
            .filter(|g| !g.heads.is_empty())
            .cloned()
            .collect();
        let slot = &mut self.runs[i];
        let Some(rec) = slot.record.as_mut() else {
            self.set_status(Level::Warn, "nothing to save yet: press r to run");
            return;
        };
        if matches!(slot.state, RunState::Running { .. }) {
            self.set_status(
                Level::Warn,
                "the run is still going: save when it is done (or cancel with c)",
            );
            return;
        }
        rec.groups = groups;
        let label = rec
            .model
            .as_ref()
            .map_or_else(|| "paper".to_string(), |m| m.label.clone());
        let mut path = crate::cli::patch::default_out(&label, &rec.receiver);
        path = self.setup.results_dir.join(path.file_name().unwrap());
        // Never overwrite: add a counter if the name is taken.
        let mut n = 1;
        while path.exists() {
            let stem = path.file_stem().unwrap().to_string_lossy().to_string();
            path = path.with_file_name(format!(
                "{}-{n}.json",
                stem.trim_end_matches(&format!("-{}", n - 1))
            ));
            n += 1;
        }
        match rec.save(&path, false) {
            Ok(()) => {
                slot.saved_to = Some(path.clone());
                self.set_status(Level::Info, format!("saved {}", path.display()));
            }
            Err(e) => self.set_status(Level::Error, format!("save failed: {e}")),
        }
    }

    /// Saves the head groups on their own (for later analyses).
    pub fn save_groups(&mut self) {
        let model = self
            .model
            .as_ref()
            .map_or_else(|| "model".into(), |m| m.label.clone());
        let value = serde_json::json!({
            "format": "headhunt-head-groups",
            "model": model,
            "created": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "groups": self.groups,
            "selected": self.selected.iter().collect::<Vec<_>>(),
        });
        let name = std::path::Path::new(&model)
            .file_name()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "model".into());
        let path = self.setup.results_dir.join(format!(
            "groups-{name}-{}.json",
            chrono::Local::now().format("%Y%m%d-%H%M%S")
        ));
        let text = serde_json::to_string_pretty(&value).unwrap() + "\n";
        match crate::results::write_atomic(&path, text.as_bytes(), false) {
            Ok(()) => self.set_status(Level::Info, format!("saved {}", path.display())),
            Err(e) => self.set_status(Level::Error, format!("save failed: {e}")),
        }
    }

    // ----- worker events -----

    pub fn on_worker(&mut self, e: Event) {
        match e {
            Event::Started { id, what } => {
                self.jobs.push(JobStatus {
                    id,
                    what,
                    started: Instant::now(),
                });
            }
            Event::ModelLoaded {
                id,
                info,
                seconds,
                n_params,
            } => {
                self.set_status(
                    Level::Info,
                    format!(
                        "loaded {} ({} layers × {} heads, {:.1} M parameters) in {seconds:.2} s",
                        info.label,
                        info.n_layers,
                        info.n_heads,
                        n_params as f64 / 1e6
                    ),
                );
                self.model = Some(info);
                self.jobs.retain(|j| j.id != id);
                self.maybe_ready();
            }
            Event::DataLoaded {
                id,
                spec,
                n_examples,
                skipped,
                multi_token_answers,
                lengths,
                preview,
                ..
            } => {
                let mut msg = format!("{} examples from {}", n_examples, spec.file.display());
                if !skipped.is_empty() {
                    msg.push_str(&format!(", {} skipped (length mismatch)", skipped.len()));
                }
                if !multi_token_answers.is_empty() {
                    msg.push_str(&format!(
                        ", {} multi-token answers",
                        multi_token_answers.len()
                    ));
                }
                self.set_status(Level::Info, msg);
                self.data = Some(DataStatus {
                    eval: None,
                    spec,
                    n_examples,
                    skipped,
                    multi_token_answers,
                    lengths,
                    preview,
                });
                self.jobs.retain(|j| j.id != id);
                self.maybe_ready();
            }
            Event::Progress {
                id,
                what,
                done,
                total,
            } => {
                if let Some(j) = self.jobs.iter_mut().find(|j| j.id == id) {
                    j.what = format!("{what}: {done}/{total} layers");
                }
            }
            Event::Evaluated {
                n,
                normal_ok,
                contrast_ok,
                contrast_gives_normal,
                ld_normal,
                ld_contrast,
                seconds,
                ..
            } => {
                let e = Evaluation {
                    seconds,
                    n,
                    normal_ok,
                    contrast_ok,
                    contrast_gives_normal,
                    ld_normal,
                    ld_contrast,
                };
                let ill = (ld_contrast - ld_normal).abs() < crate::patching::matrix::SMALL_GAP;
                if ill {
                    self.set_status(
                        Level::Warn,
                        format!(
                            "baselines only {:.2} apart: r will be ill-conditioned (the model barely tells the prompts apart) · {}",
                            (ld_contrast - ld_normal).abs(),
                            e.summary()
                        ),
                    );
                }
                if let Some(d) = self.data.as_mut() {
                    d.eval = Some(e);
                }
            }
            Event::Patch { id, event } => {
                let Some(i) = self.slot_of_job(id) else {
                    return;
                };
                match event {
                    PatchEvent::Baselines {
                        ld_normal,
                        ld_contrast,
                        n_examples,
                        ..
                    } => {
                        let (n_layers, n_heads) = self
                            .model
                            .as_ref()
                            .map_or((0, 0), |m| (m.n_layers, m.n_heads));
                        self.runs[i].matrix = Some(PatchMatrix::new(
                            n_layers,
                            n_heads,
                            ld_normal,
                            ld_contrast,
                            n_examples,
                        ));
                    }
                    PatchEvent::Row {
                        layer,
                        patched,
                        done,
                        total,
                        elapsed,
                        eta,
                    } => {
                        if let Some(m) = self.runs[i].matrix.as_mut() {
                            m.set_row(layer, patched);
                        }
                        self.runs[i].state = RunState::Running {
                            job: id,
                            done,
                            total,
                            elapsed,
                            eta,
                        };
                    }
                }
                self.rebuild_record(i, false);
            }
            Event::PatchDone { id, record } => {
                if let Some(i) = self.slot_of_job(id) {
                    let complete = record.complete;
                    if let (Some(t), true) = (record.timing, complete) {
                        let spec = PatchSpec {
                            receiver: record.receiver.clone(),
                            begin_layer: record.begin_layer,
                            batch_size: self.setup.batch_size,
                            algorithm: self.setup.algorithm,
                            chunk_rows: self.setup.chunk_rows(),
                        };
                        let n = record.n_layers;
                        let cost: f64 = spec
                            .sender_layers()
                            .iter()
                            .map(|&l| spec.layer_cost(l, n))
                            .sum();
                        if cost > 0.0 {
                            self.seconds_per_cost =
                                Some((t.sweep_seconds + t.cache_seconds) / cost);
                        }
                    }
                    self.runs[i].record = Some(*record);
                    self.runs[i].state = if complete {
                        RunState::Done
                    } else {
                        RunState::Cancelled
                    };
                    let msg = if complete {
                        let t = self.runs[i]
                            .record
                            .as_ref()
                            .and_then(|r| r.timing)
                            .unwrap_or_default();
                        format!(
                            "done: {} in {:.2} s (caches {:.2} s + sweep {:.2} s) — s saves it",
                            self.runs[i].key.receiver,
                            t.cache_seconds + t.sweep_seconds,
                            t.cache_seconds,
                            t.sweep_seconds
                        )
                    } else {
                        "cancelled: the finished rows are kept (s saves them, marked partial)"
                            .to_string()
                    };
                    self.set_status(Level::Info, msg);
                }
                self.jobs.retain(|j| j.id != id);
            }
            Event::Attention {
                id,
                tokens,
                patterns,
                request,
            } => {
                self.jobs.retain(|j| j.id != id);
                if self.attention.waiting == Some(id)
                    || (self.attention.waiting.is_none() && request.heads == self.attention.heads)
                {
                    self.attention.tokens = tokens;
                    self.attention.patterns = patterns;
                    self.attention.waiting = None;
                    let n = self.attention.tokens.len();
                    if self.attention.query.is_some_and(|q| q >= n) {
                        self.attention.query = None;
                    }
                }
            }
            Event::Error { id, message } => {
                if let Some(i) = self.slot_of_job(id) {
                    self.runs[i].state = RunState::Failed(message.clone());
                }
                if self.attention.waiting == Some(id) {
                    self.attention.waiting = None;
                }
                self.jobs.retain(|j| j.id != id);
                self.set_status(Level::Error, message);
            }
            Event::Cancelled { .. } => {}
        }
    }

    /// Once model and data are in, open the default receiver.
    fn maybe_ready(&mut self) {
        if self.model.is_some() && self.data.is_some() && self.loading {
            self.loading = false;
            if self.trail.is_empty() {
                if let Some(key) = self.default_key() {
                    self.navigate(key, false);
                    let (_, hi) = self.layer_range();
                    self.cursor = (hi, 0);
                }
            }
            let spec = self.current_spec();
            let eta = spec.as_ref().and_then(|s| self.eta(s));
            let senders = spec.as_ref().map_or(0, |s| s.n_senders(self.n_heads()));
            self.set_status(
                Level::Info,
                format!(
                    "ready: r runs {} senders → {}{} · ? shows every key",
                    senders,
                    spec.map(|s| s.receiver.label()).unwrap_or_default(),
                    eta.map(|e| format!(" (ETA {e:.1} s)")).unwrap_or_default()
                ),
            );
        }
    }

    fn slot_of_job(&self, id: JobId) -> Option<usize> {
        self.runs
            .iter()
            .position(|s| matches!(s.state, RunState::Running { job, .. } if job == id))
    }

    /// Rebuilds a running slot's record from its partial matrix.
    fn rebuild_record(&mut self, i: usize, complete: bool) {
        let (Some(model), Some(data)) = (self.model.clone(), self.data.as_ref()) else {
            return;
        };
        let slot = &self.runs[i];
        let Some(m) = slot.matrix.as_ref() else {
            return;
        };
        let rec = RunRecord::from_run(RecordParts {
            matrix: m,
            complete,
            receiver: &slot.key.receiver,
            begin_layer: slot.key.begin_layer,
            algorithm: self.setup.algorithm,
            batch_size: self.setup.batch_size,
            model,
            data: Some(DataInfo {
                spec: data.spec.clone(),
                n_examples: data.n_examples,
                skipped: data.skipped.clone(),
                multi_token_answers: data.multi_token_answers.clone(),
            }),
            timing: Timing::default(),
        });
        self.runs[i].record = Some(rec);
    }

    /// Labels of the breadcrumb trail.
    pub fn breadcrumbs(&self) -> Vec<String> {
        self.trail
            .iter()
            .map(|&i| self.runs[i].key.receiver.label())
            .collect()
    }
}

/// Every result file in `dirs` (recursively, newest first within a folder).
pub fn scan_results(dirs: &[PathBuf]) -> Vec<GalleryEntry> {
    let mut files: Vec<PathBuf> = Vec::new();
    fn walk(d: &std::path::Path, out: &mut Vec<PathBuf>, depth: usize) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        entries.sort();
        for p in entries {
            if p.is_dir() && depth < 3 {
                walk(&p, out, depth + 1);
            } else if p.extension().is_some_and(|e| e == "json")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("groups-"))
            {
                out.push(p);
            }
        }
    }
    for d in dirs {
        walk(d, &mut files, 0);
    }
    files
        .into_iter()
        .map(|path| {
            let record = RunRecord::load(&path).map_err(|e| e.to_string());
            let label = match &record {
                Ok(r) => format!(
                    "{:<28} {:<22} {}",
                    path.file_stem().unwrap_or_default().to_string_lossy(),
                    r.receiver_label,
                    r.model
                        .as_ref()
                        .map_or_else(|| r.note.clone().unwrap_or_default(), |m| m.label.clone())
                ),
                Err(_) => format!("{} (unreadable)", path.display()),
            };
            GalleryEntry {
                path,
                label,
                record,
            }
        })
        .collect()
}
