//! Path patching: senders, receivers, the metric; the literal two-pass algorithm and the fast
//! exact one behind one interface.
//!
//! Senders are every head (l, h) with begin_layer <= l <= the receiver's last layer. For each,
//! the patched metric M_p is the mean over prompts of the metric at the last position after
//! patching (`metric.rs`: by default the paper's logit difference logit[normal answer] -
//! logit[contrast answer]); the score is r = (M_p - M_c) / (M_c - M_n).

pub mod accuracy;
pub mod attention;
pub mod baseline;
pub mod batch;
pub mod bootstrap;
mod error;
pub mod fast;
pub mod forced;
pub mod matrix;
pub mod memory;
pub mod metric;
pub mod parallel;
pub mod receiver;
pub mod reference;
pub mod scan;
pub mod senders;
pub mod shard;
pub mod sweep;

use crate::model::Model;

pub use error::{PatchError, SpecError, SpecField, RECEIVER_SYNTAX};
pub use matrix::PatchMatrix;
pub use metric::Metric;
pub use parallel::run_devices;
pub use receiver::{HeadReceiver, Receiver, ResidKind};
pub use senders::{ChunkValues, Senders};
pub use shard::Shard;
pub use sweep::{run, run_layers, run_with, RowValues, Sweep};

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
    /// What the patched runs are scored by (default: the paper's logit difference).
    #[serde(default)]
    pub metric: Metric,
    /// Which senders are patched: each sender layer's heads (the paper's), its MLP, or both.
    #[serde(default)]
    pub senders: Senders,
}

impl PatchSpec {
    /// Checks the spec against the model.
    pub fn validate(&self, model: &Model) -> Result<(), PatchError> {
        self.receiver.validate(model.n_layers(), model.n_heads())?;
        if self.receiver != self.receiver.clone().for_block(model.block_shape()) {
            return Err(PatchError::Invalid(format!(
                "receiver {}: set up for another block shape than the model's \
                 (Receiver::for_block was not called)",
                self.receiver.cli_text()
            )));
        }
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

    /// Sender layers, in the order they are computed: from the last one that reaches the
    /// receiver ([`Receiver::last_sender_layer`], the one reachability rule) down, so the
    /// layers nearest the receiver (the cheapest, and often the most interesting) arrive
    /// first. Rows no sender reaches (a `resid_pre:L` receiver's layer L, a head receiver's
    /// own layer) are never computed: their r is 0 by construction.
    pub fn sender_layers(&self) -> Vec<usize> {
        match self.receiver.last_sender_layer() {
            Some(last) => (self.begin_layer..=last).rev().collect(),
            None => Vec::new(),
        }
    }

    /// The sender layers grouped into chunks that advance together (see `chunk_rows`), from
    /// the receiver down.
    pub fn chunks(&self, model: &Model, batches: &[batch::Batch]) -> Vec<Vec<usize>> {
        self.chunks_of(model, batches, &self.sender_layers())
    }

    /// [`PatchSpec::chunks`] of some sender layers only (a shard's, a worker's), in the order
    /// given.
    pub fn chunks_of(
        &self,
        model: &Model,
        batches: &[batch::Batch],
        layers: &[usize],
    ) -> Vec<Vec<usize>> {
        if self.chunk_rows == 0 || !self.algorithm.sweep().advances_layers_together() {
            return layers.iter().map(|&l| vec![l]).collect();
        }
        let positions = if self.receiver.last_position_only(model.n_layers()) {
            1
        } else {
            batches
                .iter()
                .map(|b| b.len - b.first_diff)
                .max()
                .unwrap_or(1)
        };
        let prompts = batches.iter().map(|b| b.size()).max().unwrap_or(1);
        let per_layer = (self.groups_per_layer(model.n_heads()) * prompts * positions).max(1);
        let k = (self.chunk_rows / per_layer).max(1);
        layers.chunks(k).map(|c| c.to_vec()).collect()
    }

    /// Senders per sender layer (pass-1 row groups): its heads, its MLP, or both.
    pub fn groups_per_layer(&self, n_heads: usize) -> usize {
        usize::from(self.senders.heads()) * n_heads + usize::from(self.senders.mlp())
    }

    pub fn n_senders(&self, n_heads: usize) -> usize {
        self.sender_layers().len() * self.groups_per_layer(n_heads)
    }

    /// Relative cost of sender layer `l` (for progress and ETA): the algorithm's
    /// [`Sweep::layer_cost`] (the fast chain runs from `l` to the receiver; the literal
    /// algorithm costs the same for every layer).
    pub fn layer_cost(&self, l: usize, n_layers: usize) -> f64 {
        self.algorithm.sweep().layer_cost(self, l, n_layers)
    }

    /// The cost of the whole sweep, in units of [`PatchSpec::layer_cost`].
    pub fn total_cost(&self, n_layers: usize) -> f64 {
        self.sender_layers()
            .iter()
            .map(|&l| self.layer_cost(l, n_layers))
            .sum()
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
        /// Per example, the unpatched normal and contrast runs' top next token (the baseline
        /// accuracy, known before the first row: a warning can come before hours of sweeping).
        top_tokens: Vec<Option<(u32, u32)>>,
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
    /// Per example (in the order given), the unpatched normal and contrast runs' most likely
    /// next token; `None` for examples a cancelled run never reached.
    pub top_tokens: Vec<Option<(u32, u32)>>,
}
