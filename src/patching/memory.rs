//! Memory before work: each device's peak bytes for a sweep, estimated from the model's shape
//! and the request before anything loads, and a check against what the device has free.
//!
//! A sweep that runs out of memory after an hour of caches is worse than a refusal up front
//! that names the setting which would fit (a smaller batch, chunked sender layers, more
//! devices). The estimate is an upper bound by design: it counts every tensor the algorithm
//! keeps (`batch.rs`'s caches, as `fast::needs` trims them) at the size it has, and the
//! transient working set of one forward pass with generous factors (`tests/memory.rs` measures
//! the real peak of `headhunt patch` and holds the estimate to within a stated factor of it).

use candle_core::Device;

use crate::data::TokenizedPair;
use crate::model::config::ModelConfig;
use crate::model::Model;

use super::receiver::{Receiver, ResidKind};
use super::{Algorithm, PatchSpec};

const MIB: u64 = 1 << 20;

/// What a CPU process holds besides tensors and the tokenizer: the binary, its libraries,
/// thread stacks, the allocator's arenas, the dataset (measured: 20–28 MiB on the fixtures).
pub const CPU_RUNTIME_BYTES: u64 = 40 * MIB;

/// The tokenizer's bytes per vocabulary entry (its maps and merges; measured as the rest of
/// the resident set: 1.1 KiB per entry for SmolLM2's 49 k, 1.3 KiB for Qwen2.5's 152 k).
pub const TOKENIZER_BYTES_PER_TOKEN: u64 = 1536;

/// What a CUDA device holds besides tensors: the context and cuBLAS' workspaces.
pub const CUDA_RUNTIME_BYTES: u64 = 768 * MIB;

/// The model's shape, as the estimate needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelShape {
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub d_model: usize,
    pub d_head: usize,
    pub d_mlp: usize,
    pub vocab: usize,
    pub n_params: u64,
    /// Bytes per element of the weights and activations on the device (the model's dtype;
    /// quantized checkpoints are dequantized to it on load).
    pub dtype_bytes: u64,
    /// Bytes of the checkpoint file(s) that loading maps and reads: resident on the host while
    /// the weights are built from them. `None`: estimated from `source_bits`.
    pub source_bytes: Option<u64>,
    /// Bits per parameter in the checkpoint (GGUF quantization, or the checkpoint's dtype).
    pub source_bits: f64,
    /// Parameters outside the blocks (embedding, unembedding, final norm): a layer placement
    /// keeps them on the first device.
    pub global_params: u64,
}

impl ModelShape {
    /// The shape of a loaded model (source bytes estimated from its quantization or dtype).
    pub fn of(model: &Model) -> Self {
        let c = &model.cfg;
        let dtype_bytes = model.dtype.size_in_bytes() as u64;
        let source_bits = model
            .quantization
            .as_deref()
            .or(c.checkpoint_dtype.as_deref())
            .and_then(bits_per_param)
            .unwrap_or(dtype_bytes as f64 * 8.0);
        ModelShape {
            n_layers: c.n_layers,
            n_heads: c.n_heads,
            n_kv_heads: c.n_kv_heads,
            d_model: c.d_model,
            d_head: c.d_head,
            d_mlp: c.d_mlp,
            vocab: c.vocab_size,
            n_params: model.n_params as u64,
            dtype_bytes,
            source_bytes: None,
            source_bits,
            global_params: c.param_counts().1 as u64,
        }
    }

    /// The shape from a config alone, before any weights load: the parameters counted from
    /// the config's matrices (`model.n_params` after loading; `tests/memory.rs` holds the two
    /// equal on every fixture), `dtype_bytes` the dtype it will load in.
    pub fn of_config(c: &ModelConfig, dtype_bytes: u64, source_bytes: Option<u64>) -> Self {
        let (d, h, kv, dh) = (c.d_model, c.n_heads, c.n_kv_heads, c.d_head);
        let (per_layer, globals) = c.param_counts();
        let n_params = c.n_layers * per_layer + globals;
        let source_bits = c
            .checkpoint_dtype
            .as_deref()
            .and_then(bits_per_param)
            .unwrap_or(dtype_bytes as f64 * 8.0);
        ModelShape {
            n_layers: c.n_layers,
            n_heads: h,
            n_kv_heads: kv,
            d_model: d,
            d_head: dh,
            d_mlp: c.d_mlp,
            vocab: c.vocab_size,
            n_params: n_params as u64,
            dtype_bytes,
            source_bytes,
            source_bits,
            global_params: globals as u64,
        }
    }

    /// Bytes of one copy of the weights on the device.
    pub fn weight_bytes(&self) -> u64 {
        self.n_params * self.dtype_bytes
    }

    /// Bytes of each device's weights when the layers are split over `devices` as a load
    /// places them ([`crate::model::placement::split_counts`]): the first device also holds the
    /// embedding and unembedding.
    pub fn split_weight_bytes(&self, devices: usize) -> Vec<u64> {
        let globals = self.global_params.min(self.n_params);
        let in_layers = (self.n_params - globals) as u128;
        let n = self.n_layers.max(1);
        let counts = crate::model::placement::split_counts(
            n,
            devices.clamp(1, n),
            globals as f64 * n as f64 / in_layers.max(1) as f64,
        );
        // Layers `a..b` hold params in_layers·b/n − in_layers·a/n: the parts sum exactly.
        let upto = |layers: usize| (in_layers * layers as u128 / n as u128) as u64;
        let mut first = 0;
        (0..devices)
            .map(|d| {
                let last = first + counts.get(d).copied().unwrap_or(0);
                let params = upto(last) - upto(first) + if d == 0 { globals } else { 0 };
                first = last;
                params * self.dtype_bytes
            })
            .collect()
    }

    fn source(&self) -> u64 {
        self.source_bytes
            .unwrap_or((self.n_params as f64 * self.source_bits / 8.0).ceil() as u64)
    }
}

/// Bits per parameter of a checkpoint's storage: GGUF quantizations by name (`Q4_K_M`,
/// `q8_0` ...; the block scales included, rounded up) and dtypes (`bfloat16`, `f32` ...).
pub fn bits_per_param(name: &str) -> Option<f64> {
    let n = name.to_ascii_lowercase();
    let bits = match n.as_str() {
        "f32" | "float32" => 32.0,
        "f16" | "bf16" | "float16" | "bfloat16" => 16.0,
        _ if n.starts_with("q8") => 8.5,
        _ if n.starts_with("q6") => 6.6,
        _ if n.starts_with("q5") => 6.0,
        _ if n.starts_with("q4") => 5.0,
        _ if n.starts_with("q3") => 4.5,
        _ if n.starts_with("q2") => 3.5,
        _ => return None,
    };
    Some(bits)
}

/// How the devices share the work: one model copy per device (sender layers handed out), or
/// the layers split over them (pipeline placement).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    pub devices: usize,
    pub split_layers: bool,
    pub on_cpu: bool,
}

/// The data a sweep runs on: how many prompt pairs, their (longest) token length, and the
/// first position where a normal prompt differs from its contrast (0 when unknown: the bound
/// then holds every position).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataShape {
    pub n_prompts: usize,
    pub seq_len: usize,
    pub first_diff: usize,
}

impl DataShape {
    /// The shape of tokenized pairs: their count, the longest prompt, the earliest difference.
    pub fn of(pairs: &[TokenizedPair]) -> Self {
        DataShape {
            n_prompts: pairs.len(),
            seq_len: pairs.iter().map(|p| p.len()).max().unwrap_or(1),
            first_diff: pairs
                .iter()
                .map(|p| p.first_difference())
                .min()
                .unwrap_or(0),
        }
    }
}

/// One device's peak, in bytes, and what it is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    /// The model's weights on this device.
    pub weights: u64,
    /// The checkpoint mapped while loading (host; 0 on a GPU).
    pub loading: u64,
    /// The caches the sweep keeps alive at once.
    pub caches: u64,
    /// The largest transient working set: a cache pass or one step of the sweep.
    pub working: u64,
    /// Runtime besides tensors (the process and its tokenizer, or the CUDA context).
    pub runtime: u64,
}

impl Estimate {
    /// The peak: loading (weights plus the mapped checkpoint), or the sweep (weights, caches
    /// and the working set), whichever is larger.
    pub fn peak(&self) -> u64 {
        let load = self.weights + self.loading;
        let sweep = self.weights + self.caches + self.working;
        load.max(sweep) + self.runtime
    }
}

/// Each device's peak for `spec` over `data` (one entry per device, in order).
pub fn estimate(
    shape: &ModelShape,
    spec: &PatchSpec,
    data: DataShape,
    place: Placement,
) -> Vec<Estimate> {
    let devices = place.devices.max(1);
    let runtime = if place.on_cpu {
        CPU_RUNTIME_BYTES + shape.vocab as u64 * TOKENIZER_BYTES_PER_TOKEN
    } else {
        CUDA_RUNTIME_BYTES
    };
    let one = Estimate {
        weights: shape.weight_bytes(),
        loading: if place.on_cpu { shape.source() } else { 0 },
        caches: caches(shape, spec, data),
        working: working(shape, spec, data),
        runtime,
    };
    if !place.split_layers {
        return vec![one; devices];
    }
    // A placed model keeps its caches and every operation's results on the first device
    // (`model::placement`); the others hold their layers and one layer's working set.
    let total = shape.weight_bytes().max(1);
    shape
        .split_weight_bytes(devices)
        .into_iter()
        .enumerate()
        .map(|(d, weights)| Estimate {
            weights,
            loading: (one.loading as u128 * weights as u128 / total as u128) as u64,
            caches: if d == 0 { one.caches } else { 0 },
            ..one
        })
        .collect()
}

/// Whether every batch's caches stay alive for the whole sweep (sender layers outside, as
/// `sweep::run_layer_outer` schedules) rather than one batch's at a time.
fn keeps_every_batch(spec: &PatchSpec) -> bool {
    spec.chunk_rows == 0 || !spec.algorithm.sweep().advances_layers_together()
}

/// Bytes the caches of the sweep hold at once.
pub fn caches(shape: &ModelShape, spec: &PatchSpec, data: DataShape) -> u64 {
    let prompts = if keeps_every_batch(spec) {
        data.n_prompts
    } else {
        spec.batch_size.min(data.n_prompts)
    };
    prompts as u64 * cache_per_prompt(shape, spec, data)
}

/// Positions the fast algorithm keeps per prompt, and whether only the last one matters.
fn kept_positions(shape: &ModelShape, spec: &PatchSpec, data: DataShape) -> (usize, bool) {
    let at_end = spec.receiver.last_position_only(shape.n_layers);
    let t = data.seq_len.max(1);
    match at_end {
        true => (1, true),
        false => (t - data.first_diff.min(t - 1), false),
    }
}

/// Bytes one prompt pair adds to the caches (`batch::cache_batch`, trimmed by `fast::needs`).
fn cache_per_prompt(shape: &ModelShape, spec: &PatchSpec, data: DataShape) -> u64 {
    let s = shape.dtype_bytes;
    let (h, dh, d, t) = (shape.n_heads, shape.d_head, shape.d_model, data.seq_len);
    // Baselines, top tokens and answers: a few numbers; KL keeps the normal run's log-probs.
    let readout = 64
        + if spec.metric.needs_vocab() {
            shape.vocab as u64 * 4
        } else {
            0
        };
    if spec.algorithm == Algorithm::Reference {
        // Every layer's full z of both runs (and with MLP senders every layer's normal MLP
        // output).
        let mlp = if spec.senders.mlp() {
            shape.n_layers * t * d
        } else {
            0
        };
        return (2 * shape.n_layers * t * h * dh + mlp) as u64 * s + readout;
    }
    let max = spec.receiver.max_layer();
    let (p, at_end) = kept_positions(shape, spec, data);
    let z_layers = (max + 1).saturating_sub(spec.begin_layer);
    let stop = match &spec.receiver {
        Receiver::Resid { kind, .. } => match kind {
            ResidKind::ResidPre => max.saturating_sub(1),
            ResidKind::ResidMid | ResidKind::ResidPost => max,
        },
        Receiver::Heads { .. } | Receiver::MlpIn { .. } => max,
    };
    let resid_layers = (stop + 1).saturating_sub(spec.begin_layer);
    let full_layers = match &spec.receiver {
        _ if at_end => 0,
        Receiver::Resid { .. } | Receiver::MlpIn { .. } => 1,
        Receiver::Heads { heads } => {
            let mut layers: Vec<usize> = heads.iter().map(|x| x.layer).collect();
            layers.sort_unstable();
            layers.dedup();
            layers.len()
        }
    };
    let z = 2 * z_layers * p * h * dh;
    let resid = 2 * resid_layers * p * d;
    let full = 2 * full_layers * t * d;
    // MLP senders: the normal run's MLP output of every sender layer.
    let mlp = if spec.senders.mlp() {
        z_layers * p * d
    } else {
        0
    };
    (z + resid + full + mlp) as u64 * s + readout
}

/// The working set of one forward pass of `rows` prompts of `t` tokens through one layer:
/// residual stream and norms, q/k/v and z, the attention scores and probabilities (f32), the
/// MLP's hidden states, with room for the copies the hooks and concatenations make.
fn forward_bytes(shape: &ModelShape, rows: usize, t: usize) -> u64 {
    let s = shape.dtype_bytes;
    let (h, kv, dh) = (shape.n_heads, shape.n_kv_heads, shape.d_head);
    let per_token = 8 * shape.d_model + 3 * h * dh + 4 * kv * dh + 4 * shape.d_mlp;
    let scores = 3 * h * t * t * 4;
    rows as u64 * (t * per_token) as u64 * s + rows as u64 * scores as u64
}

/// The largest transient working set: a cache pass, or one step of the sweep.
pub fn working(shape: &ModelShape, spec: &PatchSpec, data: DataShape) -> u64 {
    let b = spec.batch_size.min(data.n_prompts).max(1);
    let t = data.seq_len.max(1);
    let logits = |rows: usize, positions: usize| (rows * positions * shape.vocab) as u64 * 8;
    if spec.algorithm == Algorithm::Reference {
        // Each pass runs B prompts and reads full logits [B, T, vocab] (f32, and a copy).
        return forward_bytes(shape, b, t) + logits(b, t) + 2 * (b * t * shape.d_model) as u64;
    }
    // The cache pass: normal and contrast prompts as one batch of 2B.
    let cache_pass = forward_bytes(shape, 2 * b, t) + logits(2 * b, 1);
    let (p, at_end) = kept_positions(shape, spec, data);
    let h = shape.n_heads;
    let senders = spec.sender_layers().len().max(1);
    let layers = if keeps_every_batch(spec) {
        1
    } else {
        (spec.chunk_rows / (h * b * p).max(1)).clamp(1, senders)
    };
    let g = layers * h;
    // Pass 1: the MLP chain over G × B × P rows (state, copies, the MLP's hidden states).
    let rows = (g * b * p) as u64;
    let chain = rows * (6 * shape.d_model + 4 * shape.d_mlp) as u64 * shape.dtype_bytes;
    let rest = match at_end {
        true => logits(g * b, 1),
        // Pass 2: the assembled sequences of G × B rows through the rest of the model.
        false => {
            forward_bytes(shape, g * b, t)
                + 3 * (g * b * t * shape.d_model) as u64 * shape.dtype_bytes
                + logits(g * b, 1)
        }
    };
    cache_pass.max(chain + rest)
}

/// A setting that would make the sweep fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// This many prompts per batch.
    BatchSize(usize),
    /// Sender layers advancing in chunks of at most this many pass-1 rows (one batch's caches
    /// alive at a time).
    ChunkRows(usize),
    /// The layers split over this many devices.
    Devices(usize),
}

impl std::fmt::Display for Fit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fit::BatchSize(b) => write!(f, "batch size {b}"),
            Fit::ChunkRows(c) => write!(f, "chunk rows {c}"),
            Fit::Devices(n) => write!(f, "the layers split over {n} devices"),
        }
    }
}

/// A sweep that would not fit: the device, the numbers, and a setting that would fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{device}: the sweep needs about {} at its peak (weights {}, caches {}, working set {}, runtime {}), {} available; {}",
    gib(estimate.peak()), gib(estimate.weights), gib(estimate.caches), gib(estimate.working),
    gib(estimate.runtime), gib(*available),
    fit.map_or("no batch size, chunk size or device count tried fits".to_string(),
        |f| format!("{f} would need about {}", gib(*fit_peak)))
)]
pub struct MemoryError {
    pub device: String,
    pub estimate: Estimate,
    pub available: u64,
    pub fit: Option<Fit>,
    /// The peak with `fit` applied.
    pub fit_peak: u64,
}

/// Bytes as GiB with two decimals ("1.25 GiB").
pub fn gib(bytes: u64) -> String {
    format!("{:.2} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// Checks that the sweep fits in what the devices have free: `available` names each device
/// and its free bytes ([`available`]; `None`: unknown, then nothing is refused). CPU devices
/// are one pool, the host's: their copies are summed against the first entry's bytes; each
/// GPU must fit its own estimate (checked against the smallest free). Returns the estimates.
pub fn check(
    shape: &ModelShape,
    spec: &PatchSpec,
    data: DataShape,
    place: Placement,
    available: &[(String, Option<u64>)],
) -> Result<Vec<Estimate>, MemoryError> {
    let est = estimate(shape, spec, data, place);
    let need = |e: &[Estimate]| -> u64 {
        match place.on_cpu {
            // CPU devices are one pool: every copy counts once, the runtime once.
            true => {
                let runtime = e.first().map_or(0, |x| x.runtime);
                e.iter().map(|x| x.peak() - x.runtime).sum::<u64>() + runtime
            }
            false => e.iter().map(Estimate::peak).max().unwrap_or(0),
        }
    };
    let Some((device, Some(free))) = available.first().cloned() else {
        return Ok(est);
    };
    let free = match place.on_cpu {
        true => free,
        false => available
            .iter()
            .filter_map(|(_, a)| *a)
            .min()
            .unwrap_or(free),
    };
    if need(&est) <= free {
        return Ok(est);
    }
    let fit = suggest(shape, spec, data, place, &|e: &[Estimate]| need(e) <= free);
    Err(MemoryError {
        device,
        estimate: est[0],
        available: free,
        fit: fit.map(|(f, _)| f),
        fit_peak: fit.map_or(0, |(_, p)| p),
    })
}

/// The first setting that fits, in the order that costs least: a smaller batch, sender layers
/// in chunks (one batch's caches at a time), then the layers split over more devices.
fn suggest(
    shape: &ModelShape,
    spec: &PatchSpec,
    data: DataShape,
    place: Placement,
    fits: &dyn Fn(&[Estimate]) -> bool,
) -> Option<(Fit, u64)> {
    let try_spec = |s: &PatchSpec, p: Placement| {
        let e = estimate(shape, s, data, p);
        fits(&e).then(|| e[0].peak())
    };
    let mut b = spec.batch_size;
    while b > 1 {
        b /= 2;
        let s = PatchSpec {
            batch_size: b,
            ..spec.clone()
        };
        if let Some(p) = try_spec(&s, place) {
            return Some((Fit::BatchSize(b), p));
        }
    }
    if spec.algorithm == Algorithm::Fast && spec.chunk_rows == 0 {
        let rows = (shape.n_heads * spec.batch_size.max(1)).max(1);
        let s = PatchSpec {
            chunk_rows: rows,
            ..spec.clone()
        };
        if let Some(p) = try_spec(&s, place) {
            return Some((Fit::ChunkRows(rows), p));
        }
    }
    if !place.on_cpu {
        for n in 2..=64 {
            let p = Placement {
                devices: n,
                split_layers: true,
                ..place
            };
            if let Some(peak) = try_spec(spec, p) {
                return Some((Fit::Devices(n), peak));
            }
        }
    }
    None
}

/// `MemAvailable` of a /proc/meminfo text, in bytes.
pub fn meminfo_available(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Bytes free on `device` now: the host's MemAvailable for the CPU, the driver's free memory
/// for a CUDA device; `None` when it cannot be read (then nothing is refused).
pub fn available(device: &Device) -> Option<u64> {
    match device {
        Device::Cpu => meminfo_available(&std::fs::read_to_string("/proc/meminfo").ok()?),
        #[cfg(feature = "cuda")]
        Device::Cuda(d) => d
            .cuda_stream()
            .context()
            .mem_get_info()
            .ok()
            .map(|(free, _)| free as u64),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}
