//! The setup form: model, data and run parameters, as editable text fields.

use super::*;
use crate::tui::keymap::{self, SetupAction};

/// The user's choices of model, data and run parameters (the setup form).
#[derive(Debug, Clone)]
pub struct Setup {
    pub model: String,
    pub tokenizer: Option<PathBuf>,
    pub device: String,
    pub dtype: Option<String>,
    /// `--allow-unknown-config-keys`.
    pub allow_unknown_config_keys: bool,
    pub data: DataFile,
    pub batch_size: usize,
    pub begin_layer: usize,
    pub algorithm: Algorithm,
    /// Initial receiver; `None` = the last layer's resid_post.
    pub receiver: Option<Receiver>,
    pub results_dir: PathBuf,
    /// Extra folders the gallery lists (e.g. the paper's results).
    pub gallery_dirs: Vec<PathBuf>,
    /// A saved result to show at start (`headhunt open FILE`).
    pub open: Option<PathBuf>,
    /// Results to show side by side at start (`headhunt open A B …`).
    pub side_by_side: Vec<PathBuf>,
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
    "paper setting",
    "paper nmax",
    "skip mismatched",
];

/// The parts of a path to one of the paper's addition files,
/// `…/addition/<setting>/addition_nmax<N>_offset<K>.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaperAddition {
    pub root: PathBuf,
    pub setting: String,
    pub nmax: u32,
    pub offset: i64,
}

impl PaperAddition {
    pub fn parse(path: &std::path::Path) -> Option<Self> {
        let name = path.file_name()?.to_str()?;
        let rest = name.strip_prefix("addition_nmax")?.strip_suffix(".jsonl")?;
        let (nmax, offset) = rest.split_once("_offset")?;
        let setting_dir = path.parent()?;
        let root = setting_dir.parent()?;
        if root.file_name()?.to_str()? != "addition" {
            return None;
        }
        Some(PaperAddition {
            root: root.to_path_buf(),
            setting: setting_dir.file_name()?.to_str()?.to_string(),
            nmax: nmax.parse().ok()?,
            offset: offset.parse().ok()?,
        })
    }

    pub fn path(&self) -> PathBuf {
        self.root.join(&self.setting).join(format!(
            "addition_nmax{}_offset{}.jsonl",
            self.nmax, self.offset
        ))
    }

    /// The file with one part changed, if the paper has it.
    fn with(&self, f: impl FnOnce(&mut Self)) -> Result<PathBuf, String> {
        let mut next = self.clone();
        f(&mut next);
        let p = next.path();
        if p.is_file() {
            Ok(p)
        } else {
            Err(format!("the paper has no file {}", p.display()))
        }
    }
}

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
            5 => format!("{:?}", self.data.options.task).to_lowercase(),
            6 => self.data.options.shots.to_string(),
            7 => self
                .data
                .options
                .offset
                .map_or("default".into(), |o| o.to_string()),
            8 => self
                .data
                .options
                .examples
                .map_or("all".into(), |n| n.to_string()),
            9 => self.batch_size.to_string(),
            10 => self.begin_layer.to_string(),
            11 => match self.data.options.answer_token {
                AnswerTokenRule::Last => "last".into(),
                AnswerTokenRule::First => "first".into(),
            },
            12 => self.algorithm.name().into(),
            13 => PaperAddition::parse(&self.data.data).map_or("-".into(), |p| p.setting),
            14 => PaperAddition::parse(&self.data.data).map_or("-".into(), |p| p.nmax.to_string()),
            15 => if self.data.options.skip_mismatched {
                "yes"
            } else {
                "no"
            }
            .into(),
            _ => String::new(),
        }
    }

    /// Sets a form field from text; errors say what was expected.
    pub fn set_field(&mut self, i: usize, v: &str) -> Result<(), String> {
        let v = v.trim();
        match i {
            0..=4 => self.set_source_field(i, v),
            5..=8 => self.set_data_field(i, v),
            9..=12 => self.set_run_field(i, v),
            13 | 14 => self.set_paper_field(i, v),
            15 => {
                self.data.options.skip_mismatched = match v {
                    "yes" => true,
                    "no" => false,
                    _ => return Err(format!("skip mismatched: expected yes or no, got {v:?}")),
                };
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Fields 0-4: model, tokenizer, device, dtype, data file.
    fn set_source_field(&mut self, i: usize, v: &str) -> Result<(), String> {
        match i {
            0 if v.is_empty() => return Err("model: give a directory, .gguf file or hub id".into()),
            0 => self.model = v.to_string(),
            1 => self.tokenizer = (!v.is_empty()).then(|| PathBuf::from(v)),
            2 => {
                // `,` separates model copies, `+` one model's devices (layers placed over them).
                crate::model::source::device_groups(v).map_err(|e| e.to_string())?;
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
            _ => self.data.data = PathBuf::from(v),
        }
        Ok(())
    }

    /// Fields 5-8: task, shots, offset, examples.
    fn set_data_field(&mut self, i: usize, v: &str) -> Result<(), String> {
        match i {
            5 => {
                self.data.options.task = match TaskChoice::ALL.into_iter().find(|t| t.name() == v) {
                    Some(t) => t,
                    None => {
                        return Err(format!(
                            "task: expected auto, addition, base, cipher or pairs, got {v:?}"
                        ))
                    }
                }
            }
            6 => self.data.options.shots = whole_number("shots", v)?,
            7 => {
                self.data.options.offset = match v {
                    "" | "default" => None,
                    _ => Some(
                        v.parse()
                            .map_err(|_| format!("offset: expected an integer, got {v:?}"))?,
                    ),
                };
                // The paper samples each offset's file so that a+b+k stays in range: follow it.
                if let (Some(k), Some(p)) = (
                    self.data.options.offset,
                    PaperAddition::parse(&self.data.data),
                ) {
                    if let Ok(file) = p.with(|p| p.offset = k) {
                        self.data.data = file;
                    }
                }
            }
            _ => {
                self.data.options.examples = match v {
                    "" | "all" => None,
                    _ => match whole_number("examples", v)? {
                        0 => return Err("examples: expected at least 1".into()),
                        n => Some(n),
                    },
                }
            }
        }
        Ok(())
    }

    /// Fields 9-12: batch size, begin layer, answer token, algorithm.
    fn set_run_field(&mut self, i: usize, v: &str) -> Result<(), String> {
        match i {
            9 => match whole_number("batch size", v)? {
                0 => return Err("batch size: expected at least 1".into()),
                n => self.batch_size = n,
            },
            10 => self.begin_layer = whole_number("begin layer", v)?,
            11 => {
                self.data.options.answer_token = match v {
                    "last" => AnswerTokenRule::Last,
                    "first" => AnswerTokenRule::First,
                    _ => return Err(format!("answer token: expected last or first, got {v:?}")),
                }
            }
            _ => {
                self.algorithm = match v {
                    "fast" => Algorithm::Fast,
                    "reference" => Algorithm::Reference,
                    _ => return Err(format!("algorithm: expected fast or reference, got {v:?}")),
                }
            }
        }
        Ok(())
    }

    /// Fields 13-14: the paper's addition setting and nmax (they pick another of its files).
    fn set_paper_field(&mut self, i: usize, v: &str) -> Result<(), String> {
        let p = PaperAddition::parse(&self.data.data).ok_or_else(|| {
            "paper setting / nmax: the data file is not one of the paper's addition files (data/paper/addition/...)".to_string()
        })?;
        self.data.data = if i == 13 {
            if !["normal", "setting1", "setting2"].contains(&v) {
                return Err(format!(
                    "paper setting: expected normal, setting1 or setting2, got {v:?}"
                ));
            }
            p.with(|p| p.setting = v.to_string())?
        } else {
            let n: u32 = v
                .parse()
                .ok()
                .filter(|n| [9, 99, 999].contains(n))
                .ok_or_else(|| format!("paper nmax: expected 9, 99 or 999, got {v:?}"))?;
            p.with(|p| p.nmax = n)?
        };
        Ok(())
    }

    /// Streams sender layers one by one on CPU (rows appear as they finish); on a GPU lets
    /// them advance together in chunks (far faster there; rows arrive at the end).
    pub fn chunk_rows(&self) -> usize {
        // A list of CPU devices streams rows as one CPU does.
        crate::patching::default_chunk_rows(
            self.device.split([',', '+']).all(|d| d.trim() == "cpu"),
        )
    }

    /// The sweep these choices ask for, toward `receiver` from `begin_layer`: the one place the
    /// explorer turns its setup into a [`PatchSpec`].
    pub fn spec(&self, receiver: Receiver, begin_layer: usize) -> PatchSpec {
        PatchSpec {
            receiver,
            begin_layer,
            batch_size: self.batch_size,
            algorithm: self.algorithm,
            chunk_rows: self.chunk_rows(),
            metric: Default::default(),
            senders: Default::default(),
        }
    }

    pub fn model_request(&self) -> ModelRequest {
        ModelRequest {
            model: self.model.clone(),
            tokenizer: self.tokenizer.clone(),
            device: self.device.clone(),
            dtype: self.dtype.clone(),
            allow_unknown_config_keys: self.allow_unknown_config_keys,
        }
    }
}

/// A setup field's whole number, or why it is not one.
fn whole_number(name: &str, v: &str) -> Result<usize, String> {
    v.parse::<usize>()
        .map_err(|_| format!("{name}: expected a whole number, got {v:?}"))
}

/// The setup screen's own state; the settings themselves are `App::setup`, which every
/// screen reads.
#[derive(Debug, Default, Clone)]
pub struct SetupScreen {
    /// The field under the cursor.
    pub row: usize,
    /// Rows the details beside the form are scrolled down by (a long error or prompt pair
    /// does not fit at 80×24).
    pub scroll: usize,
    /// Which of the data's preview pairs the details show.
    pub example: usize,
    /// The setup as typed when its load failed: the previous setup is loaded back (so a
    /// typo never costs the model that was there), but the form keeps what was typed, to be
    /// corrected rather than typed again. `L` loads it.
    pub draft: Option<Setup>,
}

/// A setup load error as the setup screen can act on it: the data checks advise skipping
/// mismatched examples, which this screen does with its own field.
fn setup_words(message: String) -> String {
    message.replace(
        "(skip mismatched examples to go on without them)",
        "(set the setup's skip mismatched to yes to go on without them)",
    )
}

impl Session {
    pub(super) fn on_setup_key(&mut self, key: KeyEvent) {
        if let Some(action) = keymap::lookup(keymap::SETUP, key.code) {
            self.update_setup(action);
        }
    }

    pub fn update_setup(&mut self, action: SetupAction) {
        match action {
            SetupAction::Back => self.screen = Screen::Heatmap,
            SetupAction::Help => self.open_help(),
            SetupAction::Up => self.setup_screen.row = self.setup_screen.row.saturating_sub(1),
            SetupAction::Down => {
                self.setup_screen.row = (self.setup_screen.row + 1).min(SETUP_FIELDS.len() - 1)
            }
            SetupAction::Edit => {
                let i = self.setup_screen.row;
                let initial = self.setup_form().field(i);
                self.open_input(InputPurpose::SetupField(i), SETUP_FIELDS[i], initial);
            }
            // The loaded model and its runs stay until the new ones are in (a failed load goes
            // back to them). Stay here: an error is shown in full on this screen; once loaded,
            // the heatmap opens.
            SetupAction::Load => {
                if let Some(typed) = self.setup_screen.draft.take() {
                    self.setup = typed;
                }
                self.setup_screen.scroll = 0;
                self.load_setup()
            }
            SetupAction::ScrollUp => {
                self.setup_screen.scroll = self.setup_screen.scroll.saturating_sub(SCROLL_STEP)
            }
            SetupAction::ScrollDown => {
                let max = setup_max_scroll(self);
                self.setup_screen.scroll = (self.setup_screen.scroll + SCROLL_STEP).min(max)
            }
            SetupAction::NextExample | SetupAction::PreviousExample => {
                let n = self.data.as_ref().map_or(0, |d| d.preview.len());
                let e = &mut self.setup_screen.example;
                *e = match action {
                    _ if n == 0 => 0,
                    SetupAction::NextExample => (*e + 1) % n,
                    _ => (*e + n - 1) % n,
                };
            }
        }
    }

    /// The setup the form shows and edits: what was typed when its load failed, else the
    /// setup in force.
    pub fn setup_form(&self) -> &Setup {
        self.setup_screen.draft.as_ref().unwrap_or(&self.setup)
    }

    /// Sets field `i` of the form (see [`App::setup_form`]) from text.
    pub(super) fn set_setup_field(&mut self, i: usize, text: &str) -> Result<(), String> {
        match self.setup_screen.draft.as_mut() {
            Some(typed) => typed.set_field(i, text),
            None => self.setup.set_field(i, text),
        }
    }

    /// A load failed with `message`: the setup as typed stays in the form, the message is
    /// put in this screen's words.
    pub(super) fn keep_typed_setup(&mut self, message: String) -> String {
        if self.loaded_setup.is_some() && self.setup_screen.draft.is_none() {
            self.setup_screen.draft = Some(self.setup.clone());
        }
        setup_words(message)
    }
}

/// Rows one PgUp / PgDn scrolls the setup's details by.
const SCROLL_STEP: usize = 5;
