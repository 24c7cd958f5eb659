//! One sweep over several devices: a worker per device, each with its own copy of the model,
//! taking chunks of sender layers from one queue as it finishes the last, so a slow device
//! takes fewer. Rows stream to the caller's observer from whichever worker finishes them, in
//! the order they finish; a cancel (the observer's, or a worker's error) stops every worker
//! after its current chunk and keeps every finished row.
//!
//! The numbers are the single-device ones: every worker computes the same caches of the same
//! batches (the baselines are one worker's; the others' are the same computation), and a row
//! is a pure function of its sender layer and those caches. Only the schedule differs.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::data::TokenizedPair;
use crate::model::Model;

use super::batch;
use super::sweep::{baselines_event, check_layers, new_matrix, Baselines, RowValues, Rows, Work};
use super::{Observer, PatchError, PatchOutcome, PatchSpec};

/// What a worker tells the coordinator.
enum Msg {
    /// Its caches are done (the baselines, and how long the caches took).
    Baselines(Box<Baselines>, f64),
    /// A chunk of sender layers is done: per layer, its senders' per-example values.
    Rows(Vec<usize>, Vec<RowValues>),
    Failed(PatchError),
}

/// Runs path patching of `spec` over `pairs` on every model of `models` (one per device, the
/// same weights), computing sender `layers`. One model is [`super::run_layers`] itself.
pub fn run_devices(
    models: &[&Model],
    pairs: &[TokenizedPair],
    spec: &PatchSpec,
    layers: &[usize],
    observer: &mut dyn Observer,
) -> Result<PatchOutcome, PatchError> {
    let sweep = spec.algorithm.sweep();
    match models {
        [] => Err(PatchError::Invalid("no device to run on".into())),
        [one] => super::run_layers(one, pairs, spec, sweep, layers, observer),
        _ => {
            for m in models {
                spec.validate(m)?;
            }
            check_same_shape(models)?;
            check_layers(spec, layers)?;
            coordinate(models, pairs, spec, layers, observer)
        }
    }
}

/// The copies must be of one model: the same shape (the weights' equality is the caller's,
/// who loaded them from one source).
fn check_same_shape(models: &[&Model]) -> Result<(), PatchError> {
    let shape = |m: &Model| (m.n_layers(), m.n_heads(), m.cfg.d_model, m.cfg.vocab_size);
    if models.iter().any(|m| shape(m) != shape(models[0])) {
        return Err(PatchError::Invalid(
            "the devices hold models of different shapes".into(),
        ));
    }
    Ok(())
}

/// The chunks of the sweep, dearest first: handed out in this order, the long ones start
/// early and the cheap ones fill in at the end (so workers finish together).
fn queue(
    model: &Model,
    spec: &PatchSpec,
    layers: &[usize],
    pairs: &[TokenizedPair],
) -> Vec<Vec<usize>> {
    let batches = batch::make_batches(model, pairs, spec.batch_size).unwrap_or_default();
    let mut chunks = spec.chunks_of(model, &batches, layers);
    let n = model.n_layers();
    let cost = |c: &Vec<usize>| c.iter().map(|&l| spec.layer_cost(l, n)).sum::<f64>();
    chunks.sort_by(|a, b| cost(b).total_cmp(&cost(a)));
    chunks
}

/// Starts the workers and turns their messages into the outcome and the observer's events.
fn coordinate(
    models: &[&Model],
    pairs: &[TokenizedPair],
    spec: &PatchSpec,
    layers: &[usize],
    observer: &mut dyn Observer,
) -> Result<PatchOutcome, PatchError> {
    let started = Instant::now();
    let chunks = queue(models[0], spec, layers, pairs);
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<Msg>();
    std::thread::scope(|s| {
        for model in models {
            let tx = tx.clone();
            let (chunks, next, stop) = (&chunks, &next, &stop);
            s.spawn(move || {
                if let Err(e) = worker(model, pairs, spec, chunks, next, stop, &tx) {
                    stop.store(true, Ordering::SeqCst);
                    let _ = tx.send(Msg::Failed(e));
                }
            });
        }
        drop(tx);
        let mut c = Collect::new(models[0], pairs, spec, layers, started);
        let outcome = c.receive(&rx, &stop, observer);
        stop.store(true, Ordering::SeqCst);
        outcome
    })
}

/// One device's work: its batches and caches, then chunks from the queue until it is empty
/// or the sweep stops.
fn worker(
    model: &Model,
    pairs: &[TokenizedPair],
    spec: &PatchSpec,
    chunks: &[Vec<usize>],
    next: &AtomicUsize,
    stop: &AtomicBool,
    tx: &mpsc::Sender<Msg>,
) -> Result<(), PatchError> {
    let t = Instant::now();
    let batches = batch::make_batches(model, pairs, spec.batch_size)?;
    let work = Work {
        pairs,
        spec,
        sweep: spec.algorithm.sweep(),
        batches: &batches,
        layers: &[],
    };
    let caches = work.caches(model)?;
    let mut base = Baselines::new(pairs.len());
    batches
        .iter()
        .zip(&caches)
        .for_each(|(b, c)| base.add(b, c));
    let _ = tx.send(Msg::Baselines(Box::new(base), t.elapsed().as_secs_f64()));
    while !stop.load(Ordering::SeqCst) {
        let Some(chunk) = chunks.get(next.fetch_add(1, Ordering::SeqCst)) else {
            break;
        };
        let each = work.chunk_values(model, &caches, chunk)?;
        if tx.send(Msg::Rows(chunk.clone(), each)).is_err() {
            break;
        }
    }
    Ok(())
}

/// The coordinator's state: the matrix filling in, the rows' progress.
struct Collect<'a> {
    model: &'a Model,
    pairs: &'a [TokenizedPair],
    spec: &'a PatchSpec,
    layers: &'a [usize],
    started: Instant,
    base: Option<Baselines>,
    cache_seconds: f64,
    matrix: Option<super::PatchMatrix>,
    rows: Option<Rows>,
    /// Rows that came before the baselines were announced (kept, reported after them).
    early: Vec<(usize, RowValues)>,
    done: usize,
}

impl<'a> Collect<'a> {
    fn new(
        model: &'a Model,
        pairs: &'a [TokenizedPair],
        spec: &'a PatchSpec,
        layers: &'a [usize],
        started: Instant,
    ) -> Self {
        Collect {
            model,
            pairs,
            spec,
            layers,
            started,
            base: None,
            cache_seconds: 0.0,
            matrix: None,
            rows: None,
            early: Vec::new(),
            done: 0,
        }
    }

    /// Receives until every worker is done; the observer's cancel stops them all.
    fn receive(
        &mut self,
        rx: &mpsc::Receiver<Msg>,
        stop: &AtomicBool,
        observer: &mut dyn Observer,
    ) -> Result<PatchOutcome, PatchError> {
        let mut failed = None;
        loop {
            if observer.cancelled() {
                stop.store(true, Ordering::SeqCst);
            }
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(Msg::Baselines(b, secs)) => self.baselines(*b, secs, observer),
                Ok(Msg::Rows(chunk, each)) => self.rows(chunk, each, observer),
                Ok(Msg::Failed(e)) => {
                    failed.get_or_insert(e);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        if let Some(e) = failed {
            return Err(e);
        }
        self.outcome()
    }

    /// The first worker's baselines are the run's (every worker computes the same ones).
    fn baselines(&mut self, b: Baselines, secs: f64, observer: &mut dyn Observer) {
        if self.base.is_some() {
            return;
        }
        self.cache_seconds = secs;
        observer.event(&baselines_event(&b, self.pairs.len(), secs));
        self.matrix = Some(new_matrix(self.model, self.spec, &b));
        self.rows = Some(Rows::new(self.spec, self.model.n_layers(), self.layers));
        self.base = Some(b);
        for (l, e) in std::mem::take(&mut self.early) {
            self.row(l, e, observer);
        }
    }

    fn rows(&mut self, chunk: Vec<usize>, each: Vec<RowValues>, obs: &mut dyn Observer) {
        for (l, e) in chunk.into_iter().zip(each) {
            if self.base.is_none() {
                self.early.push((l, e));
            } else {
                self.row(l, e, obs);
            }
        }
    }

    fn row(&mut self, layer: usize, each: RowValues, observer: &mut dyn Observer) {
        let (Some(rows), Some(matrix)) = (self.rows.as_mut(), self.matrix.as_mut()) else {
            return;
        };
        rows.finish(self.spec, matrix, observer, (layer, each), None);
        self.done += 1;
    }

    fn outcome(&mut self) -> Result<PatchOutcome, PatchError> {
        let (Some(base), Some(matrix)) = (self.base.take(), self.matrix.take()) else {
            return Err(PatchError::Invalid(
                "cancelled before any device finished its caches".into(),
            ));
        };
        Ok(PatchOutcome {
            matrix,
            complete: self.done == self.layers.len(),
            cache_seconds: self.cache_seconds,
            sweep_seconds: self.started.elapsed().as_secs_f64() - self.cache_seconds,
            top_tokens: base.top,
        })
    }
}
