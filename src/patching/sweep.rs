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
use super::senders::{ChunkValues, Senders};
use super::{
    fast, reference, Algorithm, Observer, PatchError, PatchEvent, PatchMatrix, PatchOutcome,
    PatchSpec, Receiver,
};

/// A path-patching algorithm: the part that differs between the literal and the fast one.
pub trait Sweep {
    /// What the cache passes of `batch` keep; `None` keeps every layer's full z and reads full
    /// logits (what the literal algorithm needs, as TransformerLens' `run_with_cache`).
    fn needs(&self, model: &Model, batch: &Batch, spec: &PatchSpec) -> Option<Needs>;

    /// The patched metric of each of the batch's prompts for the senders of `layers` (in the
    /// order given) that `senders` asks for: [layer][head][prompt] for heads, [layer][prompt]
    /// for MLPs; a kind not asked for is `None`. The cache holds the normal MLP outputs when
    /// MLP senders are asked for (the schedule caches with `senders.mlp()`).
    fn sweep_chunk(
        &self,
        model: &Model,
        batch: &Batch,
        cache: &BatchCache,
        receiver: &Receiver,
        layers: &[usize],
        senders: Senders,
    ) -> Result<ChunkValues, PatchError>;

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
        senders: Senders,
    ) -> Result<ChunkValues, PatchError> {
        reference::sweep_chunk_senders(model, batch, cache, receiver, layers, senders)
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
        let mut needs = fast::needs(model, batch, &spec.receiver, spec.begin_layer);
        needs.mlp = spec.senders.mlp();
        Some(needs)
    }
    fn sweep_chunk(
        &self,
        model: &Model,
        batch: &Batch,
        cache: &BatchCache,
        receiver: &Receiver,
        layers: &[usize],
        senders: Senders,
    ) -> Result<ChunkValues, PatchError> {
        fast::sweep_chunk_senders(model, batch, cache, receiver, layers, senders)
    }
    /// The MLP chain from `l` to the receiver, then the rest of the model (three passes per
    /// receiver head's layer onwards for a head receiver), then the readout.
    fn layer_cost(&self, spec: &PatchSpec, l: usize, n_layers: usize) -> f64 {
        let max = spec.receiver.max_layer();
        let chain = (max + 1).saturating_sub(l) as f64;
        let tail = match &spec.receiver {
            Receiver::Resid { .. } | Receiver::MlpIn { .. } => (n_layers - 1 - max) as f64,
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

/// The baselines per example (in the order given), so that their means are the same numbers
/// whichever schedule visits the batches.
#[derive(Default, Clone)]
pub(super) struct Baselines {
    normal: Vec<f32>,
    contrast: Vec<f32>,
    /// Which examples a batch has reached (a cancelled run leaves some out).
    seen: Vec<bool>,
    /// Per example (index into the pairs), the unpatched runs' top tokens.
    pub(super) top: Vec<Option<(u32, u32)>>,
}

impl Baselines {
    pub(super) fn new(n_examples: usize) -> Self {
        Baselines {
            normal: vec![f32::NAN; n_examples],
            contrast: vec![f32::NAN; n_examples],
            seen: vec![false; n_examples],
            top: vec![None; n_examples],
        }
    }
    pub(super) fn add(&mut self, batch: &Batch, cache: &BatchCache) {
        for (i, &ex) in batch.examples.iter().enumerate() {
            self.normal[ex] = cache.m_normal[i];
            self.contrast[ex] = cache.m_contrast[i];
            self.seen[ex] = true;
            self.top[ex] = Some((cache.top_normal[i], cache.top_contrast[i]));
        }
    }
    /// The means over the examples reached (a NaN value, of a model that overflows, stays
    /// NaN: it must never read as a number).
    fn means(&self) -> (f64, f64) {
        let reached = |v: &[f32]| -> Vec<f32> {
            v.iter()
                .zip(&self.seen)
                .filter(|(_, &s)| s)
                .map(|(&x, _)| x)
                .collect()
        };
        (mean(&reached(&self.normal)), mean(&reached(&self.contrast)))
    }
}

/// The mean, summed in example order (so every schedule gives the same number).
fn mean(v: &[f32]) -> f64 {
    v.iter().map(|&x| x as f64).sum::<f64>() / v.len().max(1) as f64
}

/// Writes finished rows into the matrix and reports them: done counts, and the ETA from the
/// sender layers' costs.
pub(super) struct Rows {
    n_layers: usize,
    total: usize,
    total_cost: f64,
    done: usize,
    done_cost: f64,
    pub(super) started: Instant,
}

impl Rows {
    /// The rows of sender `layers` (every sender layer of the spec, or a shard's).
    pub(super) fn new(spec: &PatchSpec, n_layers: usize, layers: &[usize]) -> Self {
        Rows {
            n_layers,
            total: layers.len(),
            total_cost: layers.iter().map(|&l| spec.layer_cost(l, n_layers)).sum(),
            done: 0,
            done_cost: 0.0,
            started: Instant::now(),
        }
    }

    /// Row `layer` from its per-example values (heads [head][example], MLP [example]).
    /// `at_end`: the rows are reported once the whole sweep is done, which took that many
    /// seconds (no ETA). The row event carries the heads' means (empty when only MLP senders
    /// are swept: there is no head row to draw).
    pub(super) fn finish(
        &mut self,
        spec: &PatchSpec,
        matrix: &mut PatchMatrix,
        observer: &mut dyn Observer,
        (layer, each): (usize, RowValues),
        at_end: Option<f64>,
    ) {
        let mut row: Vec<f64> = Vec::new();
        if let Some(heads) = each.heads {
            row = heads.iter().map(|v| mean(v)).collect();
            matrix.set_row(layer, row.clone());
            matrix.set_row_each(layer, heads);
        }
        if let Some(mlp) = each.mlp {
            matrix.set_mlp(layer, mean(&mlp), mlp);
        }
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

/// Per-example values of one sender layer, by kind of sender: its heads [head][example], its
/// MLP [example]; a kind not swept is `None`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RowValues {
    pub heads: Option<Vec<Vec<f32>>>,
    pub mlp: Option<Vec<f32>>,
}

/// Per-example values of a sender row, NaN until filled batch by batch.
pub(super) fn empty_rows(n_heads: usize, n_examples: usize, senders: Senders) -> RowValues {
    RowValues {
        heads: senders
            .heads()
            .then(|| vec![vec![f32::NAN; n_examples]; n_heads]),
        mlp: senders.mlp().then(|| vec![f32::NAN; n_examples]),
    }
}

/// Puts one batch's values [prompt] at its examples' places in `row` [example].
fn scatter_one(row: &mut [f32], batch: &Batch, values: Vec<f32>) {
    for (&ex, x) in batch.examples.iter().zip(values) {
        row[ex] = x;
    }
}

/// Puts one chunk's values of one batch (as [`Sweep::sweep_chunk`] returns them) at their
/// layers' and examples' places in `each` (one [`RowValues`] per layer of `chunk`, or per
/// layer of the model when `by_layer`). A kind asked for but not returned is an error: a row
/// must never be left NaN silently.
pub(super) fn scatter(
    each: &mut [RowValues],
    chunk: &[usize],
    by_layer: bool,
    batch: &Batch,
    values: ChunkValues,
) -> Result<(), PatchError> {
    let missing =
        |kind: &str| PatchError::Invalid(format!("internal: the sweep returned no {kind} values"));
    let slot = |i: usize| if by_layer { chunk[i] } else { i };
    if each.first().is_some_and(|r| r.heads.is_some()) {
        let heads = values.heads.ok_or_else(|| missing("head"))?;
        for (i, v) in heads.into_iter().enumerate() {
            let rows = each[slot(i)]
                .heads
                .as_mut()
                .ok_or_else(|| missing("head"))?;
            for (row, x) in rows.iter_mut().zip(v) {
                scatter_one(row, batch, x);
            }
        }
    }
    if each.first().is_some_and(|r| r.mlp.is_some()) {
        let mlp = values.mlp.ok_or_else(|| missing("MLP"))?;
        for (i, v) in mlp.into_iter().enumerate() {
            let row = each[slot(i)].mlp.as_mut().ok_or_else(|| missing("MLP"))?;
            scatter_one(row, batch, v);
        }
    }
    Ok(())
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
    run_layers(model, pairs, spec, sweep, &spec.sender_layers(), observer)
}

/// [`run_with`] of some sender `layers` only (a shard's; every other row stays uncomputed).
pub fn run_layers(
    model: &Model,
    pairs: &[TokenizedPair],
    spec: &PatchSpec,
    sweep: &dyn Sweep,
    layers: &[usize],
    observer: &mut dyn Observer,
) -> Result<PatchOutcome, PatchError> {
    spec.validate(model)?;
    check_layers(spec, layers)?;
    let started = Instant::now();
    let batches = batch::make_batches(model, pairs, spec.batch_size)?;
    let work = Work {
        pairs,
        spec,
        sweep,
        batches: &batches,
        layers,
    };
    if spec.chunk_rows > 0 && sweep.advances_layers_together() {
        run_batch_outer(model, &work, observer, started)
    } else {
        run_layer_outer(model, &work, observer, started)
    }
}

/// Every layer asked for must be a sender layer of the spec, once.
pub(super) fn check_layers(spec: &PatchSpec, layers: &[usize]) -> Result<(), PatchError> {
    let all = spec.sender_layers();
    let mut seen = std::collections::BTreeSet::new();
    for &l in layers {
        if !all.contains(&l) || !seen.insert(l) {
            return Err(PatchError::Invalid(format!(
                "sender layer {l} asked for twice or not a sender layer of {}",
                spec.receiver.label()
            )));
        }
    }
    Ok(())
}

/// What one sweep computes: shared by the schedules.
pub(super) struct Work<'a> {
    pub pairs: &'a [TokenizedPair],
    pub spec: &'a PatchSpec,
    pub sweep: &'a dyn Sweep,
    pub batches: &'a [Batch],
    /// The sender layers to compute, in order.
    pub layers: &'a [usize],
}

impl Work<'_> {
    /// The chunks of `layers` that advance together (single layers when the sweep cannot).
    pub(super) fn chunks(&self, model: &Model) -> Vec<Vec<usize>> {
        if self.sweep.advances_layers_together() {
            self.spec.chunks_of(model, self.batches, self.layers)
        } else {
            self.layers.iter().map(|&l| vec![l]).collect()
        }
    }

    /// Every batch's cache, for the layer-outer schedule.
    pub(super) fn caches(&self, model: &Model) -> Result<Vec<BatchCache>, PatchError> {
        self.batches
            .iter()
            .map(|b| {
                let needs = self.sweep.needs(model, b, self.spec);
                self.cache(model, b, needs.as_ref())
            })
            .collect()
    }

    /// One batch's cache, keeping the normal MLP outputs when MLP senders are swept.
    pub(super) fn cache(
        &self,
        model: &Model,
        b: &Batch,
        needs: Option<&Needs>,
    ) -> Result<BatchCache, PatchError> {
        let mlp = self.spec.senders.mlp();
        batch::cache_batch_with(model, b, needs, self.spec.metric, mlp)
    }

    /// One chunk's per-example values over every batch, one per layer of the chunk.
    pub(super) fn chunk_values(
        &self,
        model: &Model,
        caches: &[BatchCache],
        chunk: &[usize],
    ) -> Result<Vec<RowValues>, PatchError> {
        let senders = self.spec.senders;
        let empty = empty_rows(model.n_heads(), self.pairs.len(), senders);
        let mut each = vec![empty; chunk.len()];
        for (b, c) in self.batches.iter().zip(caches) {
            let values =
                self.sweep
                    .sweep_chunk(model, b, c, &self.spec.receiver, chunk, senders)?;
            scatter(&mut each, chunk, false, b, values)?;
        }
        Ok(each)
    }
}

pub(super) fn baselines_event(b: &Baselines, n_examples: usize, cache_seconds: f64) -> PatchEvent {
    let (normal, contrast) = b.means();
    PatchEvent::Baselines {
        ld_normal: normal,
        ld_contrast: contrast,
        n_examples,
        cache_seconds,
        top_tokens: b.top.clone(),
    }
}

/// The matrix of a sweep, with its baselines (per example and their means) and the rows no
/// sender reaches filled in.
pub(super) fn new_matrix(model: &Model, spec: &PatchSpec, base: &Baselines) -> PatchMatrix {
    let (normal, contrast) = base.means();
    let mut matrix = PatchMatrix::new(
        model.n_layers(),
        model.n_heads(),
        normal,
        contrast,
        base.normal.len(),
    );
    matrix.metric = spec.metric;
    matrix.normal_each = base.normal.clone();
    matrix.contrast_each = base.contrast.clone();
    matrix.fill_unreached(&spec.receiver, spec.begin_layer);
    if spec.senders.mlp() {
        matrix.add_mlp(&spec.receiver, spec.begin_layer);
    }
    matrix
}

fn run_layer_outer(
    model: &Model,
    w: &Work,
    observer: &mut dyn Observer,
    started: Instant,
) -> Result<PatchOutcome, PatchError> {
    let caches = w.caches(model)?;
    let mut base = Baselines::new(w.pairs.len());
    w.batches
        .iter()
        .zip(&caches)
        .for_each(|(b, c)| base.add(b, c));
    let cache_seconds = started.elapsed().as_secs_f64();
    observer.event(&baselines_event(&base, w.pairs.len(), cache_seconds));
    let mut matrix = new_matrix(model, w.spec, &base);
    let mut rows = Rows::new(w.spec, model.n_layers(), w.layers);
    let mut complete = true;
    for chunk in w.chunks(model) {
        if observer.cancelled() {
            complete = false;
            break;
        }
        let each = w.chunk_values(model, &caches, &chunk)?;
        for (&l, e) in chunk.iter().zip(each) {
            rows.finish(w.spec, &mut matrix, observer, (l, e), None);
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
    w: &Work,
    observer: &mut dyn Observer,
    started: Instant,
) -> Result<PatchOutcome, PatchError> {
    let (n_layers, n_heads) = (model.n_layers(), model.n_heads());
    let chunks = w.chunks(model);
    let senders = w.spec.senders;
    let mut each = vec![empty_rows(n_heads, w.pairs.len(), senders); n_layers];
    let mut base = Baselines::new(w.pairs.len());
    let mut cache_seconds = 0.0;
    let mut complete = true;
    for b in w.batches {
        if observer.cancelled() {
            complete = false;
            break;
        }
        let t = Instant::now();
        let needs = w.sweep.needs(model, b, w.spec);
        let cache = w.cache(model, b, needs.as_ref())?;
        base.add(b, &cache);
        cache_seconds += t.elapsed().as_secs_f64();
        for chunk in &chunks {
            let values = w
                .sweep
                .sweep_chunk(model, b, &cache, &w.spec.receiver, chunk, senders)?;
            scatter(&mut each, chunk, true, b, values)?;
        }
    }
    let mut matrix = new_matrix(model, w.spec, &base);
    observer.event(&baselines_event(&base, w.pairs.len(), cache_seconds));
    let sweep_seconds = started.elapsed().as_secs_f64() - cache_seconds;
    if complete {
        let mut rows = Rows::new(w.spec, n_layers, w.layers);
        for &l in w.layers {
            let e = std::mem::take(&mut each[l]);
            rows.finish(w.spec, &mut matrix, observer, (l, e), Some(sweep_seconds));
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
