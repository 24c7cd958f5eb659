//! Path patching: senders, receivers, the metric; the literal two-pass algorithm and the fast
//! exact one behind one interface.
//!
//! Senders are every head (l, h) with begin_layer <= l <= the receiver's last layer. For each,
//! the patched logit difference LD_p is the mean over prompts of logit[normal answer] -
//! logit[contrast answer] at the last position after patching; the score is
//! r = (LD_p - LD_c) / (LD_c - LD_n).

pub mod accuracy;
pub mod attention;
pub mod batch;
mod error;
pub mod fast;
pub mod matrix;
pub mod receiver;
pub mod reference;

use std::time::Instant;

use crate::data::TokenizedPair;
use crate::model::Model;

pub use error::{PatchError, SpecError, SpecField, RECEIVER_SYNTAX};
pub use matrix::PatchMatrix;
pub use receiver::{HeadReceiver, Receiver, ResidKind};

/// Which implementation computes the sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// Exact and fast: frozen attention, MLP-only chains, senders of a layer batched.
    #[default]
    Fast,
    /// The paper's literal algorithm: two full forward passes per sender.
    Reference,
}

impl Algorithm {
    /// Every algorithm, in the order the command line lists them.
    pub const ALL: [Algorithm; 2] = [Algorithm::Fast, Algorithm::Reference];

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Fast => "fast",
            Algorithm::Reference => "reference",
        }
    }
}

/// On a GPU, few large kernels beat many small ones: chunks of up to this many pass-1 rows.
pub const DEFAULT_GPU_CHUNK_ROWS: usize = 16384;

/// The default `chunk_rows` for a device: stream one sender layer at a time on the CPU (rows
/// appear as they finish), advance layers together in chunks on a GPU (far faster there).
pub fn default_chunk_rows(on_cpu: bool) -> usize {
    if on_cpu {
        0
    } else {
        DEFAULT_GPU_CHUNK_ROWS
    }
}

/// What to compute.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PatchSpec {
    pub receiver: Receiver,
    pub begin_layer: usize,
    pub batch_size: usize,
    pub algorithm: Algorithm,
    /// Fast algorithm: let sender layers advance through the model together, in chunks of at
    /// most this many pass-1 rows (heads × prompts × positions per layer); 0 streams one sender
    /// layer at a time (rows arrive one by one). Same numbers either way.
    #[serde(default)]
    pub chunk_rows: usize,
}

impl PatchSpec {
    /// Checks the spec against the model.
    pub fn validate(&self, model: &Model) -> Result<(), PatchError> {
        self.receiver.validate(model.n_layers(), model.n_heads())?;
        if self.batch_size == 0 {
            return Err(SpecError::BatchSize { value: 0 }.into());
        }
        let max = self.receiver.max_layer();
        if self.begin_layer > max {
            return Err(SpecError::BeginLayer {
                begin: self.begin_layer,
                max,
            }
            .into());
        }
        Ok(())
    }

    /// Sender layers, in the order they are computed: from the receiver down, so the layers
    /// nearest the receiver (the cheapest, and often the most interesting) arrive first.
    pub fn sender_layers(&self) -> Vec<usize> {
        (self.begin_layer..=self.receiver.max_layer())
            .rev()
            .collect()
    }

    /// The sender layers grouped into chunks that advance together (see `chunk_rows`), from
    /// the receiver down.
    pub fn chunks(&self, model: &Model, batches: &[batch::Batch]) -> Vec<Vec<usize>> {
        let layers = self.sender_layers();
        if self.chunk_rows == 0 || self.algorithm == Algorithm::Reference {
            return layers.into_iter().map(|l| vec![l]).collect();
        }
        let final_resid = matches!(self.receiver, Receiver::Resid { .. })
            && self.receiver.max_layer() == model.n_layers() - 1;
        let positions = if final_resid {
            1
        } else {
            batches
                .iter()
                .map(|b| b.len - b.first_diff)
                .max()
                .unwrap_or(1)
        };
        let prompts = batches.iter().map(|b| b.size()).max().unwrap_or(1);
        let per_layer = (model.n_heads() * prompts * positions).max(1);
        let k = (self.chunk_rows / per_layer).max(1);
        layers.chunks(k).map(|c| c.to_vec()).collect()
    }

    pub fn n_senders(&self, n_heads: usize) -> usize {
        self.sender_layers().len() * n_heads
    }

    /// Relative cost of sender layer `l` (for progress and ETA): the fast chain runs from `l`
    /// to the receiver; the literal algorithm costs the same for every layer.
    pub fn layer_cost(&self, l: usize, n_layers: usize) -> f64 {
        match self.algorithm {
            Algorithm::Reference => 1.0,
            Algorithm::Fast => {
                let chain = (self.receiver.max_layer() + 1).saturating_sub(l) as f64;
                let tail = match &self.receiver {
                    Receiver::Resid { .. } => (n_layers - 1 - self.receiver.max_layer()) as f64,
                    Receiver::Heads { heads } => {
                        (n_layers - heads.iter().map(|h| h.layer).min().unwrap_or(0)) as f64 * 3.0
                    }
                };
                chain + tail + 1.0
            }
        }
    }
}

/// What a running sweep reports.
#[derive(Debug, Clone)]
pub enum PatchEvent {
    /// The cache passes are done: the baselines are known.
    Baselines {
        ld_normal: f64,
        ld_contrast: f64,
        n_examples: usize,
        cache_seconds: f64,
    },
    /// A sender layer is done; `patched` holds its heads' mean patched logit differences.
    Row {
        layer: usize,
        patched: Vec<f64>,
        done: usize,
        total: usize,
        elapsed: f64,
        eta: f64,
    },
}

/// Receives progress and says whether to stop.
pub trait Observer {
    fn event(&mut self, _e: &PatchEvent) {}
    fn cancelled(&self) -> bool {
        false
    }
}

/// An observer that ignores everything.
pub struct Silent;
impl Observer for Silent {}

/// A finished (or cancelled) sweep.
#[derive(Debug, Clone)]
pub struct PatchOutcome {
    pub matrix: PatchMatrix,
    /// False when cancelled: only `matrix.computed` rows hold results.
    pub complete: bool,
    pub cache_seconds: f64,
    pub sweep_seconds: f64,
}

/// Runs path patching of `spec` over `pairs`.
pub fn run(
    model: &Model,
    pairs: &[TokenizedPair],
    spec: &PatchSpec,
    observer: &mut dyn Observer,
) -> Result<PatchOutcome, PatchError> {
    spec.validate(model)?;
    let started = Instant::now();
    let batches = batch::make_batches(model, pairs, spec.batch_size)?;
    let fast = spec.algorithm == Algorithm::Fast;
    if fast && spec.chunk_rows > 0 {
        return run_batch_outer(model, pairs, spec, &batches, observer, started);
    }
    let caches = batches
        .iter()
        .map(|b| {
            let needs = fast.then(|| fast::needs(model, b, &spec.receiver, spec.begin_layer));
            batch::cache_batch(model, b, needs.as_ref())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let n = pairs.len() as f64;
    let ld_normal: f64 = caches
        .iter()
        .flat_map(|c| &c.ld_normal)
        .map(|&x| x as f64)
        .sum::<f64>()
        / n;
    let ld_contrast: f64 = caches
        .iter()
        .flat_map(|c| &c.ld_contrast)
        .map(|&x| x as f64)
        .sum::<f64>()
        / n;
    let cache_seconds = started.elapsed().as_secs_f64();
    observer.event(&PatchEvent::Baselines {
        ld_normal,
        ld_contrast,
        n_examples: pairs.len(),
        cache_seconds,
    });

    let mut matrix = PatchMatrix::new(
        model.n_layers(),
        model.n_heads(),
        ld_normal,
        ld_contrast,
        pairs.len(),
    );
    let layers = spec.sender_layers();
    let total_cost: f64 = layers
        .iter()
        .map(|&l| spec.layer_cost(l, model.n_layers()))
        .sum();
    let mut done_cost = 0.0;
    let mut done = 0;
    let sweep_started = Instant::now();
    let mut complete = true;
    for chunk in spec.chunks(model, &batches) {
        if observer.cancelled() {
            complete = false;
            break;
        }
        let mut sums = vec![vec![0f64; model.n_heads()]; chunk.len()];
        for (b, c) in batches.iter().zip(&caches) {
            let per_layer = match spec.algorithm {
                Algorithm::Fast => fast::sweep_chunk(model, b, c, &spec.receiver, &chunk)?,
                Algorithm::Reference => chunk
                    .iter()
                    .map(|&l| reference::sweep_layer(model, b, c, &spec.receiver, l))
                    .collect::<Result<Vec<_>, _>>()?,
            };
            for (acc, s) in sums.iter_mut().zip(per_layer) {
                for (a, v) in acc.iter_mut().zip(s) {
                    *a += v;
                }
            }
        }
        for (&ls, s) in chunk.iter().zip(sums) {
            let row: Vec<f64> = s.iter().map(|v| v / n).collect();
            matrix.set_row(ls, row.clone());
            done_cost += spec.layer_cost(ls, model.n_layers());
            done += 1;
            let elapsed = sweep_started.elapsed().as_secs_f64();
            observer.event(&PatchEvent::Row {
                layer: ls,
                patched: row,
                done,
                total: layers.len(),
                elapsed,
                eta: elapsed / done_cost * (total_cost - done_cost),
            });
        }
    }
    Ok(PatchOutcome {
        matrix,
        complete,
        cache_seconds,
        sweep_seconds: sweep_started.elapsed().as_secs_f64(),
    })
}

/// The chunked schedule, batch by batch: only one batch's cache is alive at a time (GPU memory
/// stays at the weights plus one batch), and the rows arrive when every batch is done. A
/// cancelled run here returns no rows: a row needs every example.
fn run_batch_outer(
    model: &Model,
    pairs: &[TokenizedPair],
    spec: &PatchSpec,
    batches: &[batch::Batch],
    observer: &mut dyn Observer,
    started: Instant,
) -> Result<PatchOutcome, PatchError> {
    let (n_layers, n_heads) = (model.n_layers(), model.n_heads());
    let chunks = spec.chunks(model, batches);
    let mut sums = vec![vec![0f64; n_heads]; n_layers];
    let (mut ld_n, mut ld_c) = (0f64, 0f64);
    let mut cache_seconds = 0.0;
    let mut complete = true;
    for b in batches {
        if observer.cancelled() {
            complete = false;
            break;
        }
        let t = Instant::now();
        let needs = fast::needs(model, b, &spec.receiver, spec.begin_layer);
        let cache = batch::cache_batch(model, b, Some(&needs))?;
        ld_n += cache.ld_normal.iter().map(|&x| x as f64).sum::<f64>();
        ld_c += cache.ld_contrast.iter().map(|&x| x as f64).sum::<f64>();
        cache_seconds += t.elapsed().as_secs_f64();
        for chunk in &chunks {
            for (&l, s) in
                chunk
                    .iter()
                    .zip(fast::sweep_chunk(model, b, &cache, &spec.receiver, chunk)?)
            {
                for (a, v) in sums[l].iter_mut().zip(s) {
                    *a += v;
                }
            }
        }
    }
    let n = pairs.len() as f64;
    let mut matrix = PatchMatrix::new(n_layers, n_heads, ld_n / n, ld_c / n, pairs.len());
    observer.event(&PatchEvent::Baselines {
        ld_normal: ld_n / n,
        ld_contrast: ld_c / n,
        n_examples: pairs.len(),
        cache_seconds,
    });
    let total = started.elapsed().as_secs_f64();
    if complete {
        let layers = spec.sender_layers();
        for (i, &l) in layers.iter().enumerate() {
            let row: Vec<f64> = sums[l].iter().map(|v| v / n).collect();
            matrix.set_row(l, row.clone());
            observer.event(&PatchEvent::Row {
                layer: l,
                patched: row,
                done: i + 1,
                total: layers.len(),
                elapsed: total - cache_seconds,
                eta: 0.0,
            });
        }
    }
    Ok(PatchOutcome {
        matrix,
        complete,
        cache_seconds,
        sweep_seconds: total - cache_seconds,
    })
}
