//! One interface for the two algorithms, and everything around it written once.
//!
//! An algorithm ([`Sweep`]) says what the cache passes must keep, how to compute the patched
//! sums of a chunk of sender layers on one batch, and what a sender layer costs. The schedule
//! around it — batching, the baselines, row events with ETAs, cancellation — is [`run`]'s, the
//! same for both: the literal algorithm (`reference.rs`) is the fast one's (`fast.rs`) test, so
//! they must not differ in anything but the sweep itself.

use std::time::Instant;

use crate::data::TokenizedPair;
use crate::model::Model;

use super::batch::{self, Batch, BatchCache, Needs};
use super::{
    fast, reference, Algorithm, Observer, PatchError, PatchEvent, PatchMatrix, PatchOutcome,
    PatchSpec, Receiver,
};

/// A path-patching algorithm: the part that differs between the literal and the fast one.
pub trait Sweep {
    /// What the cache passes of `batch` keep; `None` keeps every layer's full z and reads full
    /// logits (what the literal algorithm needs, as TransformerLens' `run_with_cache`).
    fn needs(&self, model: &Model, batch: &Batch, spec: &PatchSpec) -> Option<Needs>;

    /// Sums over the batch's prompts of the patched logit difference, per sender layer of
    /// `layers` (in the order given) and head.
    fn sweep_chunk(
        &self,
        model: &Model,
        batch: &Batch,
        cache: &BatchCache,
        receiver: &Receiver,
        layers: &[usize],
    ) -> Result<Vec<Vec<f64>>, PatchError>;

    /// Relative cost of sender layer `l` (for progress and ETAs).
    fn layer_cost(&self, spec: &PatchSpec, l: usize, n_layers: usize) -> f64;

    /// Whether several sender layers can advance through the model together (then
    /// `PatchSpec::chunk_rows` applies; otherwise every chunk is one layer).
    fn advances_layers_together(&self) -> bool;
}

/// The paper's literal algorithm (`reference.rs`): two full forward passes per sender.
pub struct Literal;

/// The exact fast algorithm (`fast.rs`): frozen attention, MLP-only chains.
pub struct Fast;

impl Algorithm {
    /// The algorithm's implementation.
    pub fn sweep(self) -> &'static dyn Sweep {
        match self {
            Algorithm::Fast => &Fast,
            Algorithm::Reference => &Literal,
        }
    }
}

impl Sweep for Literal {
    fn needs(&self, _: &Model, _: &Batch, _: &PatchSpec) -> Option<Needs> {
        None
    }
    fn sweep_chunk(
        &self,
        model: &Model,
        batch: &Batch,
        cache: &BatchCache,
        receiver: &Receiver,
        layers: &[usize],
    ) -> Result<Vec<Vec<f64>>, PatchError> {
        layers
            .iter()
            .map(|&l| reference::sweep_layer(model, batch, cache, receiver, l))
            .collect()
    }
    /// Two full passes per sender, whatever its layer.
    fn layer_cost(&self, _: &PatchSpec, _: usize, _: usize) -> f64 {
        1.0
    }
    fn advances_layers_together(&self) -> bool {
        false
    }
}

impl Sweep for Fast {
    fn needs(&self, model: &Model, batch: &Batch, spec: &PatchSpec) -> Option<Needs> {
        Some(fast::needs(model, batch, &spec.receiver, spec.begin_layer))
    }
    fn sweep_chunk(
        &self,
        model: &Model,
        batch: &Batch,
        cache: &BatchCache,
        receiver: &Receiver,
        layers: &[usize],
    ) -> Result<Vec<Vec<f64>>, PatchError> {
        fast::sweep_chunk(model, batch, cache, receiver, layers)
    }
    /// The MLP chain from `l` to the receiver, then the rest of the model (three passes per
    /// receiver head's layer onwards for a head receiver), then the readout.
    fn layer_cost(&self, spec: &PatchSpec, l: usize, n_layers: usize) -> f64 {
        let max = spec.receiver.max_layer();
        let chain = (max + 1).saturating_sub(l) as f64;
        let tail = match &spec.receiver {
            Receiver::Resid { .. } => (n_layers - 1 - max) as f64,
            Receiver::Heads { heads } => {
                (n_layers - heads.iter().map(|h| h.layer).min().unwrap_or(0)) as f64 * 3.0
            }
        };
        chain + tail + 1.0
    }
    fn advances_layers_together(&self) -> bool {
        true
    }
}

/// Per-example logit differences summed in example order, so that the baselines are the same
/// numbers whichever schedule visits the batches.
#[derive(Default)]
struct Baselines {
    normal: f64,
    contrast: f64,
    /// Per example (index into the pairs), the unpatched runs' top tokens.
    top: Vec<Option<(u32, u32)>>,
}

impl Baselines {
    fn new(n_examples: usize) -> Self {
        Baselines {
            top: vec![None; n_examples],
            ..Default::default()
        }
    }
    fn add(&mut self, batch: &Batch, cache: &BatchCache) {
        for &x in &cache.ld_normal {
            self.normal += x as f64;
        }
        for &x in &cache.ld_contrast {
            self.contrast += x as f64;
        }
        for (i, &ex) in batch.examples.iter().enumerate() {
            self.top[ex] = Some((cache.top_normal[i], cache.top_contrast[i]));
        }
    }
}

/// Writes finished rows into the matrix and reports them: done counts, and the ETA from the
/// sender layers' costs.
struct Rows {
    n_layers: usize,
    total: usize,
    total_cost: f64,
    done: usize,
    done_cost: f64,
    started: Instant,
}

impl Rows {
    fn new(spec: &PatchSpec, n_layers: usize) -> Self {
        Rows {
            n_layers,
            total: spec.sender_layers().len(),
            total_cost: spec.total_cost(n_layers),
            done: 0,
            done_cost: 0.0,
            started: Instant::now(),
        }
    }

    /// Row `layer` from the sums over all `n` examples. `at_end`: the rows are reported once
    /// the whole sweep is done, which took that many seconds (nothing is left: no ETA).
    fn finish(
        &mut self,
        spec: &PatchSpec,
        matrix: &mut PatchMatrix,
        observer: &mut dyn Observer,
        (layer, sums, n): (usize, &[f64], f64),
        at_end: Option<f64>,
    ) {
        let row: Vec<f64> = sums.iter().map(|v| v / n).collect();
        matrix.set_row(layer, row.clone());
        self.done_cost += spec.layer_cost(layer, self.n_layers);
        self.done += 1;
        let elapsed = at_end.unwrap_or_else(|| self.started.elapsed().as_secs_f64());
        let left = match at_end {
            Some(_) => 0.0,
            None => (self.total_cost - self.done_cost).max(0.0),
        };
        observer.event(&PatchEvent::Row {
            layer,
            patched: row,
            done: self.done,
            total: self.total,
            elapsed,
            eta: if left == 0.0 {
                0.0
            } else {
                elapsed / self.done_cost * left
            },
        });
    }
}

/// Adds the per-layer sums of one batch to `acc` (indexed by position in `chunk`).
fn accumulate(acc: &mut [Vec<f64>], per_layer: Vec<Vec<f64>>) {
    for (a, s) in acc.iter_mut().zip(per_layer) {
        for (x, v) in a.iter_mut().zip(s) {
            *x += v;
        }
    }
}

/// Runs path patching of `spec` over `pairs`.
///
/// Two schedules, the same numbers: sender layers outside, every batch's cache kept (rows
/// stream in, a cancel keeps the finished rows); or, when layers advance together in chunks,
/// batches outside, one batch's cache alive at a time (GPU memory stays at the weights plus one
/// batch; the rows arrive when every batch is done, and a cancel returns none, since a row
/// needs every example).
pub fn run(
    model: &Model,
    pairs: &[TokenizedPair],
    spec: &PatchSpec,
    observer: &mut dyn Observer,
) -> Result<PatchOutcome, PatchError> {
    run_with(model, pairs, spec, spec.algorithm.sweep(), observer)
}

/// [`run`] with a given implementation of the sweep (`spec.algorithm` then only names it in
/// the spec; the chunk schedule follows `sweep`).
pub fn run_with(
    model: &Model,
    pairs: &[TokenizedPair],
    spec: &PatchSpec,
    sweep: &dyn Sweep,
    observer: &mut dyn Observer,
) -> Result<PatchOutcome, PatchError> {
    spec.validate(model)?;
    let started = Instant::now();
    let batches = batch::make_batches(model, pairs, spec.batch_size)?;
    if spec.chunk_rows > 0 && sweep.advances_layers_together() {
        run_batch_outer(model, pairs, spec, sweep, &batches, observer, started)
    } else {
        run_layer_outer(model, pairs, spec, sweep, &batches, observer, started)
    }
}

fn baselines_event(b: &Baselines, n_examples: usize, cache_seconds: f64) -> PatchEvent {
    let n = n_examples as f64;
    PatchEvent::Baselines {
        ld_normal: b.normal / n,
        ld_contrast: b.contrast / n,
        n_examples,
        cache_seconds,
        top_tokens: b.top.clone(),
    }
}

fn run_layer_outer(
    model: &Model,
    pairs: &[TokenizedPair],
    spec: &PatchSpec,
    sweep: &dyn Sweep,
    batches: &[Batch],
    observer: &mut dyn Observer,
    started: Instant,
) -> Result<PatchOutcome, PatchError> {
    let caches = batches
        .iter()
        .map(|b| batch::cache_batch(model, b, sweep.needs(model, b, spec).as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut base = Baselines::new(pairs.len());
    batches
        .iter()
        .zip(&caches)
        .for_each(|(b, c)| base.add(b, c));
    let n = pairs.len() as f64;
    let cache_seconds = started.elapsed().as_secs_f64();
    observer.event(&baselines_event(&base, pairs.len(), cache_seconds));
    let (n_layers, n_heads) = (model.n_layers(), model.n_heads());
    let mut matrix = PatchMatrix::new(
        n_layers,
        n_heads,
        base.normal / n,
        base.contrast / n,
        pairs.len(),
    );
    matrix.fill_unreached(&spec.receiver, spec.begin_layer);
    let mut rows = Rows::new(spec, n_layers);
    let mut complete = true;
    let chunks = if sweep.advances_layers_together() {
        spec.chunks(model, batches)
    } else {
        spec.sender_layers().into_iter().map(|l| vec![l]).collect()
    };
    for chunk in chunks {
        if observer.cancelled() {
            complete = false;
            break;
        }
        let mut sums = vec![vec![0f64; n_heads]; chunk.len()];
        for (b, c) in batches.iter().zip(&caches) {
            accumulate(
                &mut sums,
                sweep.sweep_chunk(model, b, c, &spec.receiver, &chunk)?,
            );
        }
        for (&l, s) in chunk.iter().zip(&sums) {
            rows.finish(spec, &mut matrix, observer, (l, s, n), None);
        }
    }
    Ok(PatchOutcome {
        matrix,
        complete,
        cache_seconds,
        sweep_seconds: rows.started.elapsed().as_secs_f64(),
        top_tokens: base.top,
    })
}

fn run_batch_outer(
    model: &Model,
    pairs: &[TokenizedPair],
    spec: &PatchSpec,
    sweep: &dyn Sweep,
    batches: &[Batch],
    observer: &mut dyn Observer,
    started: Instant,
) -> Result<PatchOutcome, PatchError> {
    let (n_layers, n_heads) = (model.n_layers(), model.n_heads());
    let chunks = spec.chunks(model, batches);
    let mut sums = vec![vec![0f64; n_heads]; n_layers];
    let mut base = Baselines::new(pairs.len());
    let mut cache_seconds = 0.0;
    let mut complete = true;
    for b in batches {
        if observer.cancelled() {
            complete = false;
            break;
        }
        let t = Instant::now();
        let cache = batch::cache_batch(model, b, sweep.needs(model, b, spec).as_ref())?;
        base.add(b, &cache);
        cache_seconds += t.elapsed().as_secs_f64();
        for chunk in &chunks {
            let per_layer = sweep.sweep_chunk(model, b, &cache, &spec.receiver, chunk)?;
            for (&l, s) in chunk.iter().zip(per_layer) {
                accumulate(std::slice::from_mut(&mut sums[l]), vec![s]);
            }
        }
    }
    let n = pairs.len() as f64;
    let mut matrix = PatchMatrix::new(
        n_layers,
        n_heads,
        base.normal / n,
        base.contrast / n,
        pairs.len(),
    );
    matrix.fill_unreached(&spec.receiver, spec.begin_layer);
    observer.event(&baselines_event(&base, pairs.len(), cache_seconds));
    let sweep_seconds = started.elapsed().as_secs_f64() - cache_seconds;
    if complete {
        let mut rows = Rows::new(spec, n_layers);
        for l in spec.sender_layers() {
            rows.finish(
                spec,
                &mut matrix,
                observer,
                (l, &sums[l], n),
                Some(sweep_seconds),
            );
        }
    }
    Ok(PatchOutcome {
        matrix,
        complete,
        cache_seconds,
        sweep_seconds,
        top_tokens: base.top,
    })
}
