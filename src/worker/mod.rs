//! The inference thread: it owns the model and the device; the UI sends it jobs and receives
//! progress, partial heatmap rows, results and errors over channels, and never blocks on it.
//!
//! One job runs at a time (the device is one). A running job is cancelled through the shared
//! flag `Worker::cancel`, which the sweep checks between sender layers; a cancelled sweep still
//! reports the rows it finished.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::data::{DataSpec, Tokenized};
use crate::model::LoadedModel;
use crate::patching::{self, Observer, PatchEvent, PatchSpec};
use crate::results::{DataInfo, ModelInfo, RunRecord};

pub mod analysis;

pub use analysis::{
    AblationReport, AblationRequest, AnalysisReport, CircuitReport, CircuitRequest, FvReport,
    FvRequest, GroupSpec,
};

pub type JobId = u64;

/// How the explorer's user asks for the answer's first token, in warnings that suggest it.
pub const EXPLORER_WORDS: crate::data::checks::Words = crate::data::checks::Words {
    answer_token_first: "--answer-token first (when starting headhunt)",
};

/// How to load a model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRequest {
    pub model: String,
    pub tokenizer: Option<PathBuf>,
    pub device: String,
    pub dtype: Option<String>,
    /// Load a config with keys headhunt does not read (recorded in results).
    pub allow_unknown_config_keys: bool,
}

pub use crate::patching::attention::{PromptChoice, RunKind};

/// Attention patterns of some heads: mean over the first `prompts` examples, or one example.
#[derive(Debug, Clone, PartialEq)]
pub struct AttentionRequest {
    pub heads: Vec<(usize, usize)>,
    pub run: RunKind,
    /// `Mean(n)`: the mean over the first n examples of the first example's length;
    /// `One(i)`: example i alone.
    pub prompts: PromptChoice,
}

/// Jobs for the worker.
#[derive(Debug, Clone)]
pub enum Job {
    LoadModel(ModelRequest),
    LoadData(DataSpec),
    Patch(PatchSpec),
    Attention(AttentionRequest),
    Circuit(CircuitRequest),
    Ablation(AblationRequest),
    FunctionVectors(FvRequest),
}

/// A tokenized prompt pair, for display.
#[derive(Debug, Clone, PartialEq)]
pub struct PairPreview {
    pub index: usize,
    pub normal_tokens: Vec<String>,
    pub contrast_tokens: Vec<String>,
    pub normal_answer: String,
    pub contrast_answer: String,
}

/// What the worker reports.
#[derive(Debug, Clone)]
pub enum Event {
    Started {
        id: JobId,
        what: String,
    },
    /// A long job's progress (loading a model: layers loaded).
    Progress {
        id: JobId,
        what: String,
        done: usize,
        total: usize,
    },
    ModelLoaded {
        id: JobId,
        info: ModelInfo,
        seconds: f64,
        n_params: usize,
    },
    DataLoaded {
        id: JobId,
        /// The spec and what tokenizing kept (as result files record it).
        info: DataInfo,
        /// Distinct token lengths of the examples.
        lengths: Vec<usize>,
        preview: Vec<PairPreview>,
    },
    /// The loaded data's baselines and accuracy (computed right after loading it).
    Evaluated {
        id: JobId,
        n: usize,
        /// Normal prompts answered with the normal answer, contrast prompts with the contrast
        /// answer, contrast prompts with the normal answer (argmax at the last position).
        normal_ok: usize,
        contrast_ok: usize,
        contrast_gives_normal: usize,
        ld_normal: f64,
        ld_contrast: f64,
        seconds: f64,
        /// What the input check and the baseline accuracy warn about (one line each).
        warnings: Vec<String>,
    },
    /// Progress of a sweep: its baselines, then its rows as sender layers finish.
    Patch {
        id: JobId,
        event: PatchEvent,
    },
    /// A sweep finished (`record.complete`) or was cancelled (partial record).
    PatchDone {
        id: JobId,
        record: Box<RunRecord>,
    },
    Attention {
        id: JobId,
        request: AttentionRequest,
        /// Token texts of the (first) prompt shown.
        tokens: Vec<String>,
        /// Per requested head: [query][key] probabilities.
        patterns: Vec<Vec<Vec<f32>>>,
    },
    /// A circuit, ablation or FV job's result (partial when it was cancelled, after a
    /// `Cancelled` event).
    Analysis {
        id: JobId,
        report: Box<AnalysisReport>,
    },
    Error {
        id: JobId,
        message: String,
    },
    Cancelled {
        id: JobId,
    },
}

/// Handle to the inference thread.
pub struct Worker {
    jobs: mpsc::Sender<(JobId, Job)>,
    pub cancel: Arc<AtomicBool>,
    next_id: AtomicU64,
    handle: Option<JoinHandle<()>>,
}

/// Where events go: a tokio channel for the TUI, a std channel for tests.
pub trait EventSink: Send + 'static {
    fn send(&self, e: Event);
    /// A second handle to the same destination.
    fn clone_box(&self) -> Box<dyn EventSink>;
}

impl EventSink for Box<dyn EventSink> {
    fn send(&self, e: Event) {
        (**self).send(e)
    }
    fn clone_box(&self) -> Box<dyn EventSink> {
        (**self).clone_box()
    }
}

impl EventSink for tokio::sync::mpsc::UnboundedSender<Event> {
    fn send(&self, e: Event) {
        let _ = tokio::sync::mpsc::UnboundedSender::send(self, e);
    }
    fn clone_box(&self) -> Box<dyn EventSink> {
        Box::new(self.clone())
    }
}

impl EventSink for mpsc::Sender<Event> {
    fn send(&self, e: Event) {
        let _ = mpsc::Sender::send(self, e);
    }
    fn clone_box(&self) -> Box<dyn EventSink> {
        Box::new(self.clone())
    }
}

impl Worker {
    /// Starts the inference thread.
    pub fn spawn(events: impl EventSink) -> Worker {
        let (tx, rx) = mpsc::channel::<(JobId, Job)>();
        let cancel = Arc::new(AtomicBool::new(false));
        let c = cancel.clone();
        let handle = std::thread::Builder::new()
            .name("headhunt-worker".into())
            .spawn(move || State::default().serve(rx, events, c))
            .expect("spawn the worker thread");
        Worker {
            jobs: tx,
            cancel,
            next_id: AtomicU64::new(1 << 32),
            handle: Some(handle),
        }
    }

    /// Queues a job; returns its id.
    pub fn submit(&self, job: Job) -> JobId {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.submit_as(id, job);
        id
    }

    /// Queues a job under an id chosen by the caller (the TUI numbers its own jobs).
    pub fn submit_as(&self, id: JobId, job: Job) {
        let _ = self.jobs.send((id, job));
    }

    /// Asks the running job (and any queued sweeps) to stop.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.cancel();
        // Closing the job channel ends the thread once the current job returns; do not wait
        // for a long sweep when the user quits.
        let (dead, _) = mpsc::channel();
        self.jobs = dead;
        if let Some(h) = self.handle.take() {
            if h.is_finished() {
                let _ = h.join();
            }
        }
    }
}

#[derive(Default)]
struct State {
    model: Option<LoadedModel>,
    /// Copies of the model on the further devices of a device list (`cuda:0,cuda:1`): a sweep
    /// runs a worker on each (`patching::run_devices`); everything else runs on `model`.
    copies: Vec<LoadedModel>,
    model_request: Option<ModelRequest>,
    data: Option<(DataSpec, Tokenized)>,
    /// What the input check warned about the loaded data (results record it).
    data_warnings: Vec<String>,
}

struct Forward<'a, S: EventSink> {
    id: JobId,
    sink: &'a S,
    cancel: &'a AtomicBool,
}

impl<S: EventSink> Observer for Forward<'_, S> {
    fn event(&mut self, e: &PatchEvent) {
        self.sink.send(Event::Patch {
            id: self.id,
            event: e.clone(),
        });
    }
    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

impl State {
    fn serve(
        mut self,
        rx: mpsc::Receiver<(JobId, Job)>,
        sink: impl EventSink,
        cancel: Arc<AtomicBool>,
    ) {
        while let Ok((id, job)) = rx.recv() {
            // A cancel aimed at an earlier job must not stop this one.
            cancel.store(false, Ordering::SeqCst);
            let what = match &job {
                Job::LoadModel(r) => format!("loading {}", r.model),
                Job::LoadData(d) => format!("loading {}", d.file.display()),
                Job::Patch(p) => format!("patching → {}", p.receiver),
                Job::Attention(a) => format!("attention of {} heads", a.heads.len()),
                Job::Circuit(_) => "circuit evaluation".into(),
                Job::Ablation(a) => format!("ablation of {} heads", a.heads.len()),
                Job::FunctionVectors(f) => format!("function vectors of {} heads", f.heads.len()),
            };
            sink.send(Event::Started { id, what });
            let result = match job {
                Job::LoadModel(r) => self.load_model(id, r, &sink),
                Job::LoadData(d) => self.load_data(id, d, &sink),
                Job::Patch(p) => self.patch(id, p, &sink, &cancel),
                Job::Attention(a) => self.attention(id, a, &sink),
                Job::Circuit(r) => self.analysis(id, &sink, |inp| {
                    analysis::circuit(id, inp, &r, &sink, &cancel)
                }),
                Job::Ablation(r) => self.analysis(id, &sink, |inp| {
                    analysis::ablation(id, inp, &r, &sink, &cancel)
                }),
                Job::FunctionVectors(r) => {
                    self.analysis(id, &sink, |inp| analysis::fv(id, inp, &r, &sink, &cancel))
                }
            };
            if let Err(e) = result {
                sink.send(Event::Error {
                    id,
                    message: crate::error::one_line_error(&e),
                });
            }
        }
    }

    fn load_model(
        &mut self,
        id: JobId,
        r: ModelRequest,
        sink: &impl EventSink,
    ) -> anyhow::Result<()> {
        if let (Some(lm), true) = (self.model.as_ref(), self.model_request.as_ref() == Some(&r)) {
            sink.send(Event::ModelLoaded {
                id,
                info: ModelInfo::of(lm),
                seconds: lm.load_seconds,
                n_params: lm.model.n_params,
            });
            return Ok(());
        }
        // `cuda:0,cuda:1`: a copy on each; `cuda:0+cuda:1`: one model placed over both.
        let groups = crate::model::source::parse_device_groups(&r.device)?;
        let dtype = crate::model::source::parse_dtype(r.dtype.as_deref(), &groups[0][0])?;
        // Free the old model first: two big models may not fit at once.
        self.model = None;
        self.copies.clear();
        let progress_sink = sink.clone_box();
        let what = format!("loading {}", r.model);
        let mut progress = move |done, total| {
            progress_sink.send(Event::Progress {
                id,
                what: what.clone(),
                done,
                total,
            })
        };
        let opts = crate::model::source::LoadOptions {
            tokenizer: r.tokenizer.clone(),
            allow_unknown_config_keys: r.allow_unknown_config_keys,
        };
        let mut loaded = groups
            .iter()
            .map(|g| {
                crate::model::source::load_with_progress(&r.model, &opts, g, dtype, &mut progress)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let lm = loaded.remove(0);
        self.copies = loaded;
        let mut info = ModelInfo::of(&lm);
        info.device = r.device.clone();
        sink.send(Event::ModelLoaded {
            id,
            info,
            seconds: lm.load_seconds,
            n_params: lm.model.n_params,
        });
        self.model = Some(lm);
        self.model_request = Some(r);
        // Data is tokenized for a model: re-tokenize with the new tokenizer.
        if let Some((spec, _)) = self.data.take() {
            self.load_data(id, spec, sink)?;
        }
        Ok(())
    }

    fn loaded(&self) -> anyhow::Result<&LoadedModel> {
        self.model
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("no model loaded"))
    }

    fn load_data(
        &mut self,
        id: JobId,
        spec: DataSpec,
        sink: &impl EventSink,
    ) -> anyhow::Result<()> {
        let lm = self.loaded()?;
        // The input check every command makes (`data::checks`).
        let checked = crate::data::checks::load_checked(lm, &spec, &EXPLORER_WORDS)?;
        let tok = checked.tok;
        let mut warnings = checked.warnings;
        let preview = tok
            .pairs
            .iter()
            .take(8)
            .map(|p| PairPreview {
                index: p.index,
                normal_tokens: lm.tokenizer.token_texts(&p.normal_ids),
                contrast_tokens: lm.tokenizer.token_texts(&p.contrast_ids),
                normal_answer: lm.tokenizer.token_text(p.normal_answer),
                contrast_answer: lm.tokenizer.token_text(p.contrast_answer),
            })
            .collect();
        let mut lengths: Vec<usize> = tok.pairs.iter().map(|p| p.len()).collect();
        lengths.sort_unstable();
        lengths.dedup();
        sink.send(Event::DataLoaded {
            id,
            info: DataInfo::of(&spec, &tok),
            lengths,
            preview,
        });
        let started = Instant::now();
        let acc = crate::patching::accuracy::evaluate(&lm.model, &tok.pairs, 16)?;
        let top = acc.top_tokens();
        let base = crate::patching::baseline::check(
            &lm.tokenizer,
            &tok,
            &top,
            EXPLORER_WORDS.answer_token_first,
        );
        warnings.extend(base.and_then(|b| b.warning));
        sink.send(Event::Evaluated {
            id,
            n: acc.n,
            normal_ok: acc.normal_prompt_normal_answer,
            contrast_ok: acc.contrast_prompt_contrast_answer,
            contrast_gives_normal: acc.contrast_prompt_normal_answer,
            ld_normal: acc.mean_ld_normal,
            ld_contrast: acc.mean_ld_contrast,
            seconds: started.elapsed().as_secs_f64(),
            warnings: warnings.clone(),
        });
        self.data = Some((spec, tok));
        self.data_warnings = warnings;
        Ok(())
    }

    fn patch(
        &mut self,
        id: JobId,
        spec: PatchSpec,
        sink: &impl EventSink,
        cancel: &AtomicBool,
    ) -> anyhow::Result<()> {
        let lm = self.loaded()?;
        let (data_spec, tok) = self
            .data
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("no data loaded"))?;
        let mut obs = Forward { id, sink, cancel };
        let models: Vec<&crate::model::Model> = std::iter::once(&lm.model)
            .chain(self.copies.iter().map(|c| &c.model))
            .collect();
        let layers = spec.sender_layers();
        let outcome = patching::run_devices(&models, &tok.pairs, &spec, &layers, &mut obs)?;
        let mut record = RunRecord::of_sweep(&outcome, &spec, lm, data_spec, tok);
        if let (Some(m), Some(r)) = (record.model.as_mut(), self.model_request.as_ref()) {
            m.device = r.device.clone();
        }
        record.warnings = self.data_warnings.clone();
        if !outcome.complete {
            sink.send(Event::Cancelled { id });
        }
        sink.send(Event::PatchDone {
            id,
            record: Box::new(record),
        });
        Ok(())
    }

    /// Runs an analysis job on the loaded model and data.
    fn analysis(
        &self,
        id: JobId,
        sink: &impl EventSink,
        run: impl FnOnce(&analysis::Inputs) -> anyhow::Result<AnalysisReport>,
    ) -> anyhow::Result<()> {
        let lm = self.loaded()?;
        let (spec, tok) = self
            .data
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("no data loaded"))?;
        let inp = analysis::Inputs { lm, spec, tok };
        let report = run(&inp)?;
        let complete = match &report {
            AnalysisReport::Circuit(c) => c.complete,
            AnalysisReport::Ablation(a) => a.complete,
            AnalysisReport::Fv(f) => f.complete,
        };
        if !complete {
            sink.send(Event::Cancelled { id });
        }
        sink.send(Event::Analysis {
            id,
            report: Box::new(report),
        });
        Ok(())
    }

    fn attention(
        &mut self,
        id: JobId,
        req: AttentionRequest,
        sink: &impl EventSink,
    ) -> anyhow::Result<()> {
        let lm = self.loaded()?;
        let (_, tok) = self
            .data
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("no data loaded"))?;
        let m = &lm.model;
        let rows = crate::patching::attention::prompt_rows(&tok.pairs, req.run, req.prompts)?;
        let patterns = crate::patching::attention::mean_patterns(m, &rows, &req.heads)?;
        sink.send(Event::Attention {
            id,
            request: req,
            tokens: lm.tokenizer.token_texts(&rows[0]),
            patterns,
        });
        Ok(())
    }
}
