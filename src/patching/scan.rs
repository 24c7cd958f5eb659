//! Activation-patching scans: the usual first look before path patching. One activation of
//! one run (the *source*) is patched into the other run (the *base*), one cell at a time, and
//! the base run is scored by the run's metric at its last position. The cells are those of
//! TransformerLens 2.16's `transformer_lens.patching` module:
//!
//! - `heads`: each head's output (`hook_z`) at every position, [layer][head]
//!   (`get_act_patch_attn_head_out_all_pos`);
//! - `mlp`: each MLP's output (`hook_mlp_out`) at every position, [layer] (one node per MLP,
//!   as path patching's MLP senders are; `generic_activation_patch` over `mlp_out` by layer);
//! - `resid`: each layer's residual stream entering it (`hook_resid_pre`) at one position,
//!   [layer][position] (`get_act_patch_resid_pre`). The whole residual stream of a layer at
//!   every position would replace the whole run (every cell the full effect), so the residual
//!   scan is per position only, and `resid-pos` is another name of the same scan;
//! - `mlp-pos`: each MLP's output at one position, [layer][position] (`get_act_patch_mlp_out`).
//!
//! Directions: `denoising` (the default) runs the contrast prompt with activations of the
//! normal run patched in, as path patching does (TransformerLens: corrupted tokens = contrast,
//! clean cache = normal); `noising` runs the normal prompt with the contrast run's.
//!
//! The score follows path patching's r = (M_patched − M_contrast) / (M_contrast − M_normal)
//! with base and source in the places of contrast and normal:
//! r = (M_patched − M_base) / (M_base − M_source). For denoising that is path patching's r
//! itself; in both directions 0 is no effect and −1 the full effect (the patched run scores as
//! the source run), so a scan reads with the same sign as a path-patching result.
//!
//! Prompt pairs whose two prompts tokenize to different lengths are skipped by the data layer,
//! as for path patching (positions must align to patch one run's activation into the other).
//! A per-position scan also needs every example of one length (positions are its columns):
//! otherwise it is refused, naming the examples. Cells before the first token where a batch's
//! two prompts differ are not run: both runs are the same there, so the patched run is the base
//! run and the cell gets the base run's value (TransformerLens runs them and finds the same).

use std::time::Instant;

use candle_core::Tensor;

use crate::data::TokenizedPair;
use crate::model::{Capture, HookName, HookPoint, Hooks, Model, Patch, RunOptions, Start};

use super::batch::{make_batches, Batch};
use super::metric::{log_softmax, repeat_rows, Metric, Readout};
use super::{Observer, PatchError, PatchEvent, SpecError};

/// What one cell of a scan patches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScanKind {
    Heads,
    Mlp,
    Resid,
    MlpPos,
}

impl ScanKind {
    pub const ALL: [ScanKind; 4] = [
        ScanKind::Heads,
        ScanKind::Mlp,
        ScanKind::Resid,
        ScanKind::MlpPos,
    ];

    /// The name on the command line and in result files.
    pub fn name(self) -> &'static str {
        match self {
            ScanKind::Heads => "heads",
            ScanKind::Mlp => "mlp",
            ScanKind::Resid => "resid",
            ScanKind::MlpPos => "mlp-pos",
        }
    }

    /// A kind by its name; `resid-pos` is another name of `resid` (see the module doc).
    pub fn parse(s: &str) -> Option<ScanKind> {
        if s == "resid-pos" {
            return Some(ScanKind::Resid);
        }
        ScanKind::ALL.into_iter().find(|k| k.name() == s)
    }

    /// Every name `parse` takes, for messages.
    pub const NAMES: &'static str = "heads, mlp, resid (also resid-pos), mlp-pos";

    /// The hook whose activation a cell replaces.
    pub fn hook_point(self) -> HookPoint {
        match self {
            ScanKind::Heads => HookPoint::Z,
            ScanKind::Mlp | ScanKind::MlpPos => HookPoint::MlpOut,
            ScanKind::Resid => HookPoint::ResidPre,
        }
    }

    /// Whether the columns are positions (else heads, or the one MLP column).
    pub fn per_position(self) -> bool {
        matches!(self, ScanKind::Resid | ScanKind::MlpPos)
    }

    /// What a column is, in result files and tables: `head`, `mlp` or `position`.
    pub fn column_name(self) -> &'static str {
        match self {
            ScanKind::Heads => "head",
            ScanKind::Mlp => "mlp",
            ScanKind::Resid | ScanKind::MlpPos => "position",
        }
    }

    /// Columns of the scan of `model` on prompts of `len` tokens.
    pub fn n_columns(self, n_heads: usize, len: usize) -> usize {
        match self {
            ScanKind::Heads => n_heads,
            ScanKind::Mlp => 1,
            ScanKind::Resid | ScanKind::MlpPos => len,
        }
    }

    /// The TransformerLens function whose numbers the scan reproduces.
    pub fn transformer_lens(self) -> &'static str {
        match self {
            ScanKind::Heads => "transformer_lens.patching.get_act_patch_attn_head_out_all_pos",
            ScanKind::Mlp => {
                "transformer_lens.patching.generic_activation_patch (mlp_out, by layer, all positions)"
            }
            ScanKind::Resid => "transformer_lens.patching.get_act_patch_resid_pre",
            ScanKind::MlpPos => "transformer_lens.patching.get_act_patch_mlp_out",
        }
    }
}

impl std::fmt::Display for ScanKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Which run is patched with which run's activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The contrast prompt runs, the normal run's activations are patched in.
    #[default]
    Denoising,
    /// The normal prompt runs, the contrast run's activations are patched in.
    Noising,
}

impl Direction {
    pub const ALL: [Direction; 2] = [Direction::Denoising, Direction::Noising];

    pub fn name(self) -> &'static str {
        match self {
            Direction::Denoising => "denoising",
            Direction::Noising => "noising",
        }
    }

    pub fn parse(s: &str) -> Option<Direction> {
        Direction::ALL.into_iter().find(|d| d.name() == s)
    }

    /// Whether the run patched (the base) is the normal prompt's.
    pub fn base_is_normal(self) -> bool {
        self == Direction::Noising
    }

    /// The score's formula in the result's words.
    pub fn score_formula(self) -> &'static str {
        match self {
            Direction::Denoising => {
                "r = (M_patched - M_contrast) / (M_contrast - M_normal): 0 no effect, -1 the contrast run patched scores as the normal run"
            }
            Direction::Noising => {
                "r = (M_patched - M_normal) / (M_normal - M_contrast): 0 no effect, -1 the normal run patched scores as the contrast run"
            }
        }
    }
}

impl std::fmt::Display for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What to scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanSpec {
    pub kind: ScanKind,
    pub direction: Direction,
    pub metric: Metric,
    /// Prompts per batch (any value gives the same numbers).
    pub batch_size: usize,
}

/// A finished (or cancelled) scan: every cell's metric per example.
#[derive(Debug, Clone)]
pub struct ScanOutcome {
    pub spec: ScanSpec,
    pub n_layers: usize,
    pub n_columns: usize,
    /// Per layer (`None`: not computed, the scan was cancelled), per column, per example (in
    /// the order of the pairs given): the patched run's metric.
    pub each: Vec<Option<Vec<Vec<f32>>>>,
    /// The unpatched runs' metric per example.
    pub normal_each: Vec<f32>,
    pub contrast_each: Vec<f32>,
    /// Per example, the unpatched normal and contrast runs' most likely next token.
    pub top_tokens: Vec<Option<(u32, u32)>>,
    pub complete: bool,
    pub cache_seconds: f64,
    pub scan_seconds: f64,
}

/// The score of a cell: 0 no effect, −1 the patched run scores as the source run.
pub fn score(patched: f64, base: f64, source: f64) -> f64 {
    (patched - base) / (base - source)
}

fn mean(v: &[f32]) -> f64 {
    v.iter().map(|&x| x as f64).sum::<f64>() / v.len().max(1) as f64
}

impl ScanOutcome {
    /// The patched run's per-example baseline: the contrast run's when denoising.
    pub fn base_each(&self) -> &[f32] {
        if self.spec.direction.base_is_normal() {
            &self.normal_each
        } else {
            &self.contrast_each
        }
    }

    /// The run the activations come from.
    pub fn source_each(&self) -> &[f32] {
        if self.spec.direction.base_is_normal() {
            &self.contrast_each
        } else {
            &self.normal_each
        }
    }

    /// Mean patched metric per [layer][column] (`None` rows not computed).
    pub fn patched_means(&self) -> Vec<Option<Vec<f64>>> {
        self.each
            .iter()
            .map(|row| {
                row.as_ref()
                    .map(|cols| cols.iter().map(|v| mean(v)).collect())
            })
            .collect()
    }

    /// r per [layer][column], from the means over examples (as path patching's).
    pub fn relative(&self) -> Vec<Option<Vec<f64>>> {
        let (base, source) = (mean(self.base_each()), mean(self.source_each()));
        self.patched_means()
            .into_iter()
            .map(|row| row.map(|cols| cols.into_iter().map(|p| score(p, base, source)).collect()))
            .collect()
    }
}

/// What one batch's two unpatched runs leave for the scan.
struct Cached {
    /// The base run's resid_pre of every layer [B, T, D]: the cell's run starts from it at
    /// the patched layer (nothing before that layer changes).
    base_resid: Vec<Tensor>,
    /// The source run's activation at the kind's hook, every layer.
    source: Vec<Tensor>,
    m_base: Vec<f32>,
    readout: Readout,
}

/// Rows of one forward pass (cells × prompts): enough to keep matrix products large, small
/// enough that a chunk's activations stay small.
const CHUNK_ROWS: usize = 128;

/// Runs the scan of `spec` on `pairs`; `observer` sees the baselines and each finished layer
/// and may cancel between layers (then only the finished layers hold results).
pub fn run(
    model: &Model,
    pairs: &[TokenizedPair],
    spec: &ScanSpec,
    observer: &mut dyn Observer,
) -> Result<ScanOutcome, PatchError> {
    let every: Vec<usize> = (0..model.n_layers()).rev().collect();
    run_layers(model, pairs, spec, &every, observer)
}

/// The layers of shard `shard` of a scan of an `n_layers` model, from the last down: dealt
/// by cost (a cell patched at layer l runs the layers from l to the end).
pub fn shard_layers(n_layers: usize, shard: super::Shard) -> Vec<usize> {
    let costs: Vec<f64> = (0..n_layers).map(|l| (n_layers - l) as f64 + 1.0).collect();
    let mut mine = super::shard::deal(&costs, shard.count).swap_remove(shard.index);
    mine.reverse();
    mine
}

/// [`run`] of some layers only (a shard's), in the order given; the others stay `None`.
pub fn run_layers(
    model: &Model,
    pairs: &[TokenizedPair],
    spec: &ScanSpec,
    layers: &[usize],
    observer: &mut dyn Observer,
) -> Result<ScanOutcome, PatchError> {
    if let Some(&l) = layers.iter().find(|&&l| l >= model.n_layers()) {
        return Err(PatchError::Invalid(format!(
            "scan layer {l} is not a layer of the model"
        )));
    }
    if spec.batch_size == 0 {
        return Err(SpecError::BatchSize { value: 0 }.into());
    }
    if spec.kind.per_position() {
        check_one_length(pairs, spec.kind)?;
    }
    let started = Instant::now();
    let batches = make_batches(model, pairs, spec.batch_size)?;
    let n_ex = pairs.len();
    let (mut normal_each, mut contrast_each) = (vec![f32::NAN; n_ex], vec![f32::NAN; n_ex]);
    let mut top_tokens = vec![None; n_ex];
    let mut caches = Vec::with_capacity(batches.len());
    for b in &batches {
        let (c, m_n, m_c, tops) = cache(model, b, spec)?;
        for (i, &e) in b.examples.iter().enumerate() {
            normal_each[e] = m_n[i];
            contrast_each[e] = m_c[i];
            top_tokens[e] = Some(tops[i]);
        }
        caches.push(c);
    }
    let cache_seconds = started.elapsed().as_secs_f64();
    observer.event(&PatchEvent::Baselines {
        ld_normal: mean(&normal_each),
        ld_contrast: mean(&contrast_each),
        n_examples: n_ex,
        cache_seconds,
        top_tokens: top_tokens.clone(),
    });
    let n = model.n_layers();
    let n_columns = spec.kind.n_columns(model.n_heads(), batches[0].len);
    let mut outcome = ScanOutcome {
        spec: *spec,
        n_layers: n,
        n_columns,
        each: vec![None; n],
        normal_each,
        contrast_each,
        top_tokens,
        complete: true,
        cache_seconds,
        scan_seconds: 0.0,
    };
    let scan_started = Instant::now();
    let total = layers.len();
    for (done, &l) in layers.iter().enumerate() {
        if observer.cancelled() {
            outcome.complete = false;
            break;
        }
        let mut row = vec![vec![f32::NAN; n_ex]; n_columns];
        for (b, c) in batches.iter().zip(&caches) {
            scan_layer(model, spec, b, c, l, &mut row)?;
        }
        let means: Vec<f64> = row.iter().map(|v| mean(v)).collect();
        outcome.each[l] = Some(row);
        let elapsed = scan_started.elapsed().as_secs_f64();
        observer.event(&PatchEvent::Row {
            layer: l,
            patched: means,
            done: done + 1,
            total,
            elapsed,
            eta: elapsed / (done + 1) as f64 * (total - done - 1) as f64,
        });
    }
    outcome.scan_seconds = scan_started.elapsed().as_secs_f64();
    Ok(outcome)
}

/// A per-position scan's columns are positions: every example must have as many (the error
/// names the first example of another length).
pub fn check_one_length(pairs: &[TokenizedPair], kind: ScanKind) -> Result<(), PatchError> {
    let Some(first) = pairs.first() else {
        return Err(SpecError::NoExamples.into());
    };
    match pairs.iter().find(|p| p.len() != first.len()) {
        Some(p) => Err(PatchError::Invalid(format!(
            "example {} has {} tokens but example {} has {}: a per-position scan (--kind {kind}) needs every prompt of one length, since its columns are positions (--kind heads or mlp take prompts of any lengths)",
            p.index + 1,
            p.len(),
            first.index + 1,
            first.len()
        ))),
        None => Ok(()),
    }
}

/// The two unpatched runs of a batch: what the scan keeps, both runs' metric per prompt and
/// their top next tokens.
type CacheOut = (Cached, Vec<f32>, Vec<f32>, Vec<(u32, u32)>);

fn cache(model: &Model, batch: &Batch, spec: &ScanSpec) -> Result<CacheOut, PatchError> {
    let n = model.n_layers();
    let point = spec.kind.hook_point();
    let names = |p: HookPoint| (0..n).map(move |l| HookName::Layer(l, p));
    let run = |tokens: &Tensor, base: bool| -> Result<(Tensor, Vec<Tensor>), PatchError> {
        let wanted: Vec<HookName> = if base {
            names(HookPoint::ResidPre).collect()
        } else {
            names(point).collect()
        };
        let mut hooks = Hooks::capture(Capture::only(wanted));
        let out = model.run(Start::Tokens(tokens), RunOptions::default(), &mut hooks)?;
        let logits = out.logits.as_ref().expect("full run");
        let last = logits.narrow(1, batch.len - 1, 1)?.squeeze(1)?;
        let p = if base { HookPoint::ResidPre } else { point };
        let acts = (0..n)
            .map(|l| Ok(hooks.cache.require(l, p)?.clone()))
            .collect::<Result<Vec<_>, PatchError>>()?;
        Ok((last, acts))
    };
    let base_is_normal = spec.direction.base_is_normal();
    let (base_tokens, source_tokens) = if base_is_normal {
        (&batch.normal, &batch.contrast)
    } else {
        (&batch.contrast, &batch.normal)
    };
    let (base_last, base_resid) = run(base_tokens, true)?;
    let (source_last, source) = run(source_tokens, false)?;
    let (normal_last, contrast_last) = if base_is_normal {
        (&base_last, &source_last)
    } else {
        (&source_last, &base_last)
    };
    let reference = match spec.metric {
        Metric::Kl => Some(log_softmax(
            &normal_last.to_dtype(candle_core::DType::F32)?,
        )?),
        _ => None,
    };
    let readout = Readout::of_batch(spec.metric, batch, reference.as_ref());
    let m_normal = readout.read_logits(normal_last)?;
    let m_contrast = readout.read_logits(contrast_last)?;
    let top = |x: &Tensor| crate::model::transformer::argmax_last(x);
    let tops = top(normal_last)?
        .into_iter()
        .zip(top(contrast_last)?)
        .collect();
    let m_base = if base_is_normal {
        m_normal.clone()
    } else {
        m_contrast.clone()
    };
    let cached = Cached {
        base_resid,
        source,
        m_base,
        readout,
    };
    Ok((cached, m_normal, m_contrast, tops))
}

/// The cells of layer `l` for one batch, written into `row[column][example]`.
fn scan_layer(
    model: &Model,
    spec: &ScanSpec,
    batch: &Batch,
    cached: &Cached,
    l: usize,
    row: &mut [Vec<f32>],
) -> Result<(), PatchError> {
    let b = batch.size();
    // Positions before the first difference: both runs agree there, the cell is the base run.
    let first = if spec.kind.per_position() {
        batch.first_diff
    } else {
        0
    };
    for values in row.iter_mut().take(first) {
        for (i, &e) in batch.examples.iter().enumerate() {
            values[e] = cached.m_base[i];
        }
    }
    let columns: Vec<usize> = (first..row.len()).collect();
    for chunk in columns.chunks((CHUNK_ROWS / b).max(1)) {
        let values = patched_runs(model, spec, cached, l, chunk, b)?;
        for (j, &col) in chunk.iter().enumerate() {
            for (i, &e) in batch.examples.iter().enumerate() {
                row[col][e] = values[j * b + i];
            }
        }
    }
    Ok(())
}

/// One forward pass for the cells `columns` of layer `l`, each on its own copy of the batch's
/// `b` prompts (cells outermost): the metric of every row.
fn patched_runs(
    model: &Model,
    spec: &ScanSpec,
    cached: &Cached,
    l: usize,
    columns: &[usize],
    b: usize,
) -> Result<Vec<f32>, PatchError> {
    let g = columns.len();
    let hook = HookName::Layer(l, spec.kind.hook_point());
    let value = repeat_rows(&cached.source[l], g)?;
    let mut hooks = Hooks::none();
    for (j, &c) in columns.iter().enumerate() {
        let patch = match spec.kind {
            ScanKind::Heads => Patch::heads(hook, value.clone(), vec![c]),
            ScanKind::Mlp => Patch::whole(hook, value.clone()),
            ScanKind::Resid | ScanKind::MlpPos => {
                Patch::whole(hook, value.clone()).with_positions(vec![c])
            }
        };
        hooks
            .patches
            .push(patch.with_rows((j * b..(j + 1) * b).collect()));
    }
    // The last layer may compute its last position only, unless its own head or MLP outputs
    // are patched (they would then have one position, the patch every one).
    let last_only = l + 1 < model.n_layers() || spec.kind == ScanKind::Resid;
    let out = model.run(
        Start::Resid {
            layer: l,
            resid: repeat_rows(&cached.base_resid[l], g)?,
        },
        RunOptions {
            stop_after: None,
            last_position_only: last_only,
        },
        &mut hooks,
    )?;
    let logits = out.logits.as_ref().expect("full run");
    let t = logits.dim(1)?;
    let last = logits.narrow(1, t - 1, 1)?.squeeze(1)?;
    cached.readout.repeated(g)?.read_logits(&last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_resid_pos_is_resid() {
        for k in ScanKind::ALL {
            assert_eq!(ScanKind::parse(k.name()), Some(k));
            assert_eq!(
                serde_json::to_string(&k).unwrap(),
                format!("\"{}\"", k.name())
            );
        }
        assert_eq!(ScanKind::parse("resid-pos"), Some(ScanKind::Resid));
        assert_eq!(ScanKind::parse("attn"), None);
        for d in Direction::ALL {
            assert_eq!(Direction::parse(d.name()), Some(d));
            assert_eq!(
                serde_json::to_string(&d).unwrap(),
                format!("\"{}\"", d.name())
            );
        }
        assert_eq!(Direction::default(), Direction::Denoising);
    }

    #[test]
    fn the_score_is_zero_without_effect_and_minus_one_at_the_full_effect() {
        // Denoising: base = contrast (−2), source = normal (+3).
        assert_eq!(score(-2.0, -2.0, 3.0), 0.0);
        assert_eq!(score(3.0, -2.0, 3.0), -1.0);
        assert_eq!(score(0.5, -2.0, 3.0), -0.5);
    }
}
