//! `headhunt patch`: a path-patching sweep from the command line, with a progress bar, the text
//! heatmap, the paper's head lists and a saved result file. Ctrl-C, SIGTERM or SIGHUP stop
//! after the current sender layer and save the finished rows, marked partial. The result is
//! saved before anything is printed, and a result that cannot go where asked goes to a
//! fallback path rather than being lost.

use anyhow::{bail, Result};
use clap::Args;
use std::path::{Path, PathBuf};

use super::output::{Output, Planned, Report};
use super::{signals, DataArgs, ModelArgs};
use crate::data::Tokenized;
use crate::patching::{self, Algorithm, Observer, PatchEvent, PatchSpec, Receiver, Shard};
use crate::results::shard::{fingerprint, ShardInfo};
use crate::results::text::{self, Thresholds};
use crate::results::RunRecord;

#[derive(Args, Debug)]
pub struct PatchArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// Receiver: `resid_post:LAYER` (also resid_pre, resid_mid; several layers as `resid_post:3,5`),
    /// a layer's MLP input `mlp_in:LAYER`, or a head's input `LAYER.HEAD.q|k|v`; repeat for
    /// several heads, or separate them by commas (`39.7.v,39.12.q`). Default: the last layer's
    /// resid_post.
    #[arg(long = "receiver", short = 'r')]
    pub receivers: Vec<String>,
    /// First sender layer.
    #[arg(long, default_value_t = 0)]
    pub begin_layer: usize,
    /// Prompts per batch (any value gives the same numbers; larger is faster until memory runs out).
    #[arg(long, default_value_t = 4)]
    pub batch_size: usize,
    #[arg(long, value_enum, default_value_t = Algorithm::Fast)]
    pub algorithm: Algorithm,
    /// Result file (JSON). Default: results/<model>-<receiver>-<time>.json
    #[arg(long, short = 'o')]
    pub out: Option<PathBuf>,
    /// Overwrite an existing result file.
    #[arg(long)]
    pub force: bool,
    /// Also write the matrices as .npy beside the result file.
    #[arg(long)]
    pub npy: bool,
    /// Threshold of the first head list (|r| above it).
    #[arg(long, default_value_t = 0.05)]
    pub hi: f64,
    /// Threshold of the second head list (between it and --hi).
    #[arg(long, default_value_t = 0.02)]
    pub lo: f64,
    /// Do not print the heatmap.
    #[arg(long)]
    pub quiet: bool,
    /// What a patched run is scored by, at the last position: logit-diff (the paper's:
    /// logit[normal answer] - logit[contrast answer]), logprob or prob (of the normal answer),
    /// kl (KL of the normal run's next-token distribution to the run's).
    #[arg(long, default_value = "logit-diff", value_parser = parse_metric)]
    pub metric: crate::patching::Metric,
    /// Let sender layers advance together in chunks of at most this many rows (0: one sender
    /// layer at a time, rows stream in). Default: 0 on CPU, 16384 on GPU.
    #[arg(long)]
    pub chunk_rows: Option<usize>,
    /// Compute only shard K of N (`K/N`, K from 0) of the sender layers, split by cost, and
    /// save it as a part for `headhunt merge`; `slurm` takes K and N from the Slurm array task
    /// (SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT).
    #[arg(long)]
    pub shard: Option<String>,
    /// One sweep per receiver head input listed (`--receiver 9.1.q,9.1.k`; `9.1` stands for its
    /// q, k and v), each saved as `--out DIR/<receiver>.json`: a drill-down level's head
    /// receivers, and with `--shard` a share of them per array task.
    #[arg(long)]
    pub each: bool,
    /// Refuse a sweep whose estimated peak exceeds this (`24GiB`, `512MiB`) on any device,
    /// before its caches are made; default: what each device has free. On a shared box, leave
    /// the others their part.
    #[arg(long, value_parser = parse_size)]
    pub max_memory: Option<u64>,
    /// Which senders to patch: `heads` (the paper's), `mlp` (each sender layer's MLP output,
    /// `hook_mlp_out`) or `heads,mlp`. MLPs are saved as `mlp_relative` beside `relative`;
    /// with `mlp` alone the head rows stay uncomputed (`null`).
    #[arg(long, default_value = "heads")]
    pub senders: String,
    /// Patch the senders only at these positions of the contrast prompt (elsewhere a sender
    /// stays frozen to the contrast run like every other head): all, last, pos:I[,J...]
    /// (negative from the end), tok:TEXT, role:NAME[,NAME...] (the data's roles; the paper's
    /// tasks have answers and =). A receiver takes its own set as `--receiver 39.7.q@last`.
    #[arg(long, value_name = "SET")]
    pub sender_positions: Option<String>,
}

/// `24GiB`, `512MiB`, `1.5GiB`, `64KiB` or a number of bytes.
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, unit) = match t.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => t.split_at(i),
        None => (t, ""),
    };
    let scale: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        _ => return Err("expected a size such as 24GiB, 512MiB or a number of bytes".into()),
    };
    match num.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok((x * scale as f64) as u64),
        _ => Err("expected a positive size such as 24GiB, 512MiB or a number of bytes".into()),
    }
}

pub use crate::patching::DEFAULT_GPU_CHUNK_ROWS;

pub use crate::results::naming::default_out;

fn parse_metric(s: &str) -> Result<crate::patching::Metric, String> {
    crate::patching::Metric::parse(s).ok_or_else(|| {
        let names: Vec<&str> = crate::patching::Metric::ALL
            .iter()
            .map(|m| m.name())
            .collect();
        format!("expected one of {}", names.join(", "))
    })
}

/// `--senders`, checked (a one-line error naming the flag).
pub(super) fn parse_senders(s: &str) -> Result<crate::patching::Senders> {
    crate::patching::Senders::parse(s)
        .ok_or_else(|| anyhow::anyhow!("--senders {s:?}: expected heads, mlp or heads,mlp"))
}

/// `--out` (or the first free default name), its per-example `.npy` files and with `npy` the
/// matrices' `.npy` files, checked before any compute.
pub(super) fn plan_out(
    out: Option<&Path>,
    base: impl FnOnce() -> PathBuf,
    force: bool,
    npy: bool,
) -> Result<Planned> {
    let companions = move |p: &Path| {
        let mut all = crate::results::per_example_paths(p).to_vec();
        // Checked whatever the senders: a stale MLP file must never sit beside a new run.
        all.push(crate::results::mlp_per_example_path(p));
        if npy {
            all.extend(crate::results::npy_paths(p));
        }
        all
    };
    let Some(out) = out else {
        return Planned::default_name("--out", &base(), &companions);
    };
    let planned = Planned::given("--out", out, force)?;
    for p in companions(out) {
        crate::results::preflight(&p, force)
            .map_err(|e| anyhow::anyhow!("--out (its .npy files) {}", word(&e)))?;
    }
    Ok(planned)
}

use super::output::word;

/// Writes to stderr; a closed or full stderr never stops a run.
macro_rules! note {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

/// Progress bar; a signal (Ctrl-C, SIGTERM, SIGHUP) cancels after the current step.
struct CliObserver<'a> {
    bar: indicatif::ProgressBar,
    /// Baselines that are NaN or infinite: every score would be too, so the sweep stops.
    not_finite: Option<(f64, f64)>,
    lm: &'a crate::model::LoadedModel,
    tok: &'a Tokenized,
    /// The baseline check, printed as soon as the caches are done (before the rows).
    baseline: Option<super::checks::Baseline>,
    metric: crate::patching::Metric,
}

impl Observer for CliObserver<'_> {
    fn event(&mut self, e: &PatchEvent) {
        match e {
            PatchEvent::Baselines {
                ld_normal,
                ld_contrast,
                n_examples,
                cache_seconds,
                top_tokens,
            } => {
                if !(ld_normal.is_finite() && ld_contrast.is_finite()) {
                    self.not_finite = Some((*ld_normal, *ld_contrast));
                }
                let x = self.metric.short();
                let line = format!(
                    "baselines: {x}_normal {ld_normal:+.4}, {x}_contrast {ld_contrast:+.4} ({n_examples} examples, caches {cache_seconds:.3} s)"
                );
                if self.bar.is_hidden() {
                    note!("{line}");
                } else {
                    self.bar.println(line);
                }
                let (lm, tok) = (self.lm, self.tok);
                self.baseline = self
                    .bar
                    .suspend(|| super::checks::baseline(lm, tok, top_tokens));
            }
            PatchEvent::Row {
                layer,
                done,
                total,
                eta,
                ..
            } => {
                self.bar.set_position(*done as u64);
                self.bar
                    .set_message(format!("layer {layer} done, ETA {eta:.1} s"));
                // Without a terminal the bar is hidden: log a line per layer instead.
                if self.bar.is_hidden() {
                    note!("sender layer {layer} done ({done}/{total}), ETA {eta:.1} s");
                }
            }
        }
    }
    fn cancelled(&self) -> bool {
        signals::received().is_some() || self.not_finite.is_some()
    }
}

pub fn run(a: PatchArgs) -> Result<Report> {
    check_thresholds(a.hi, a.lo)?;
    parse_senders(&a.senders)?;
    let shard = a
        .shard
        .as_deref()
        .map(|s| Shard::parse(s, |k| std::env::var(k).ok()))
        .transpose()
        .map_err(|e| anyhow::anyhow!("--shard {e}"))?;
    if a.each {
        if a.sender_positions.is_some() {
            bail!(
                "--sender-positions does not apply to --each runs yet; run one receiver at a time"
            );
        }
        return super::patch_each::run(a, shard);
    }
    let (receiver_arg, sets) = if a.receivers.is_empty() {
        (None, Vec::new())
    } else {
        let (r, sets) = Receiver::parse_positioned(&a.receivers)?;
        (Some(r), sets)
    };
    let given = a
        .out
        .as_deref()
        .map(|o| plan_out(Some(o), PathBuf::new, a.force, a.npy))
        .transpose()?;
    let copies = a.model.load_each()?;
    let lm = &copies[0];
    let receiver = receiver_arg.unwrap_or_else(|| Receiver::resid_post(lm.model.n_layers() - 1));
    let mut spec = spec_of(&a, receiver, lm)?;
    let routed = route_positions(&mut spec, &sets);
    let data_spec = a.data.spec()?;
    let planned = match given {
        Some(p) => p,
        None => plan_out(
            None,
            || {
                let base = default_out(&lm.origin.label(), Some(&data_spec.file), &spec.receiver);
                let base =
                    positioned_out(base, &spec.receiver, &sets, a.sender_positions.as_deref());
                shard_name(base, shard)
            },
            false,
            a.npy,
        )?,
    };
    let mut data = Data::load(lm, data_spec, a.metric)?;
    let sender = a.sender_positions.as_deref();
    resolve_positions(&mut data, lm, &sets, sender, a.metric)?;
    let layers = match shard {
        Some(s) => {
            let layers = s.layers(&spec, lm.model.n_layers());
            note!("shard {}: sender layers {layers:?}", s.label());
            layers
        }
        None => spec.sender_layers(),
    };
    let honour = signals::Honour::start();
    let (mut record, complete) = sweep(&copies, &data, &spec, &layers, a.max_memory)?;
    record.set_positions(a.sender_positions.clone(), &sets);
    record.warnings.extend(routed);
    if let Some(s) = shard {
        mark_shard(&mut record, s, layers.clone(), &data.tok, &spec);
    }
    drop(honour);
    let mut r = Report::new();
    report(&mut r, &record, &a);
    save(&mut r, planned, &record, a.npy);
    if !complete {
        note!(
            "cancelled: {} of {} sender layers computed; saving them, marked partial",
            record.rows_computed.len(),
            layers.len()
        );
        r.stopped = Some(signals::received().unwrap_or(signal_hook::consts::SIGINT));
    }
    Ok(r)
}

/// Position sets the fast algorithm cannot compute exactly (a residual receiver at several
/// layers, restricted to some positions: `patching::fast::supports`) go to the literal
/// algorithm, loudly: the note is printed and returned as a warning for the result file.
fn route_positions(spec: &mut PatchSpec, sets: &[Option<String>]) -> Option<String> {
    let restricted = sets.iter().any(|s| s.is_some());
    let several = matches!(&spec.receiver, Receiver::Resid { layers, .. } if layers.len() > 1);
    if !(restricted && several && spec.algorithm == patching::Algorithm::Fast) {
        return None;
    }
    spec.algorithm = patching::Algorithm::Reference;
    spec.chunk_rows = 0;
    let why = format!(
        "receiver {}: a residual receiver at several layers restricted to positions runs the \
         literal algorithm (the fast one computes it only at one layer)",
        spec.receiver.positioned_text(sets)
    );
    note!("{why}");
    Some(why)
}

/// The default result path with the position sets in its name (`..._at_last`,
/// `..._senders_at_pos_-2`), filesystem-safe.
fn positioned_out(
    base: PathBuf,
    receiver: &Receiver,
    sets: &[Option<String>],
    sender: Option<&str>,
) -> PathBuf {
    let name = base
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let mut slug = receiver.positioned_slug(sets);
    if let Some(s) = sender {
        let safe: String = s
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        slug = format!("{slug}_senders_at_{safe}");
    }
    base.with_file_name(name.replacen(&receiver.slug(), &slug, 1))
}

/// Resolves the position sets on every example (`TokenizedPair::positions`): the sets are
/// parsed with the model's tokenizer, roles read from the data.
fn resolve_positions(
    data: &mut Data,
    lm: &crate::model::LoadedModel,
    sets: &[Option<String>],
    sender: Option<&str>,
    metric: patching::Metric,
) -> Result<()> {
    if sender.is_none() && sets.iter().all(|s| s.is_none()) {
        return Ok(());
    }
    use crate::data::PositionSet;
    let parse = |flag: &str, s: &str| {
        PositionSet::parse(s, &lm.tokenizer).map_err(|e| anyhow::anyhow!("{flag}: {e}"))
    };
    let sender = sender.map(|s| parse("--sender-positions", s)).transpose()?;
    let sets: Vec<Option<PositionSet>> = sets
        .iter()
        .map(|s| s.as_deref().map(|s| parse("--receiver", s)).transpose())
        .collect::<Result<_>>()?;
    let roles = match &data.roles {
        Some(r) => r.clone(),
        None => crate::data::token_roles(&data.spec, &lm.tokenizer, &data.tok)?,
    };
    // Teacher-forced prefixes (answers of several tokens scored in full) are longer than the
    // prompts the sets were resolved on: refused rather than patched at shifted positions.
    if data.roles.is_some()
        && patching::forced::Forced::plan(&data.tok.pairs, &roles, metric).is_some()
    {
        bail!(
            "position sets with answers of several tokens scored in full (--metric {}) are \
             not supported; use --answer-token first or another metric",
            metric
        );
    }
    data.tok.pairs = crate::data::with_positions(&data.tok.pairs, &roles, sender.as_ref(), &sets)
        .map_err(|e| anyhow::anyhow!("{}: {e}", data.spec.file.display()))?;
    Ok(())
}

/// The sweep `a` asks for, to `receiver`, checked against the model.
pub(super) fn spec_of(
    a: &PatchArgs,
    receiver: Receiver,
    lm: &crate::model::LoadedModel,
) -> Result<PatchSpec> {
    let spec = PatchSpec {
        receiver: receiver.for_block(lm.model.block_shape()),
        begin_layer: a.begin_layer,
        batch_size: a.batch_size,
        algorithm: a.algorithm,
        chunk_rows: a
            .chunk_rows
            .unwrap_or(patching::default_chunk_rows(lm.model.device.is_cpu())),
        metric: a.metric,
        senders: parse_senders(&a.senders)?,
    };
    spec.validate(&lm.model)?;
    check_reachable(&spec.receiver, a.begin_layer)?;
    Ok(spec)
}

/// The examples, tokenized and checked once for every sweep of the command.
pub(super) struct Data {
    pub spec: crate::data::DataSpec,
    pub tok: Tokenized,
    pub warnings: Vec<String>,
    /// The token roles, for a metric that scores answers of several tokens in full
    /// (`patching::forced`); `None` for the others.
    pub roles: Option<Vec<crate::data::TokenRoles>>,
}

impl Data {
    /// The examples, checked; `metric` says whether the answers' tokens are needed (the
    /// warning that the metric reads one token of each is then replaced where it does not).
    pub(super) fn load(
        lm: &crate::model::LoadedModel,
        spec: crate::data::DataSpec,
        metric: crate::patching::Metric,
    ) -> Result<Data> {
        let checked = crate::data::checks::load_checked(lm, &spec, &super::checks::WORDS)?;
        let whole = patching::forced::scores_whole_answers(metric);
        let roles = whole
            .then(|| crate::data::token_roles(&spec, &lm.tokenizer, &checked.tok))
            .transpose()?;
        let warnings = super::circuit::input_warnings(
            checked.warnings,
            &checked.tok,
            roles.as_deref(),
            whole.then_some(metric),
        );
        if checked.tok.pairs.is_empty() {
            bail!("{}: no examples left to patch", spec.file.display());
        }
        Ok(Data {
            spec,
            tok: checked.tok,
            warnings,
            roles,
        })
    }
}

/// One sweep of sender `layers` on every copy of the model, with a progress bar: its record
/// and whether every row was computed (a signal stops it after the current step).
pub(super) fn sweep(
    copies: &[crate::model::LoadedModel],
    data: &Data,
    spec: &PatchSpec,
    layers: &[usize],
    max_memory: Option<u64>,
) -> Result<(RunRecord, bool)> {
    let lm = &copies[0];
    announce(&data.tok, spec, lm.model.n_heads());
    let bar = indicatif::ProgressBar::new(layers.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} sender layers {msg}")
            .expect("valid template"),
    );
    let mut obs = CliObserver {
        bar,
        not_finite: None,
        lm,
        tok: &data.tok,
        baseline: None,
        metric: spec.metric,
    };
    check_memory(copies, spec, data, max_memory)?;
    let models: Vec<&crate::model::Model> = copies.iter().map(|c| &c.model).collect();
    // Answers of several tokens scored in full (logprob, prob) run teacher-forced.
    let (outcome, forced) = patching::forced::run_devices(
        &models,
        &data.tok.pairs,
        data.roles.as_deref(),
        spec,
        layers,
        &mut obs,
    )?;
    obs.bar.finish_and_clear();
    if let Some((n, c)) = obs.not_finite {
        bail!(
            "the model's {} baselines are not finite (normal {n}, contrast {c}): its weights hold NaN or Inf, or {} overflows; nothing saved",
            spec.metric,
            crate::model::source::dtype_name(lm.model.dtype)
        );
    }
    let mut record = RunRecord::of_sweep(&outcome, spec, lm, &data.spec, &data.tok);
    record.warnings = data.warnings.clone();
    record.warnings.extend(forced);
    // The unpatched runs' top tokens came with the caches: no extra pass.
    if let Some(b) = obs.baseline.take() {
        record.warnings.extend(b.warning);
    }
    record_devices(&mut record, copies);
    Ok((record, outcome.complete))
}

/// The sweep fits in what the devices have free, before its caches are made (not hours into
/// it). The models are loaded already, so what is free now plus their weights is what the
/// estimate, which counts the weights, is held to.
fn check_memory(
    copies: &[crate::model::LoadedModel],
    spec: &PatchSpec,
    data: &Data,
    max_memory: Option<u64>,
) -> Result<()> {
    use crate::patching::memory::{self, DataShape, ModelShape, Placement};
    let shape = ModelShape::of(&copies[0].model);
    let on_cpu = copies[0].model.device.is_cpu();
    // On the host a placement changes nothing (one pool holds every layer); on GPUs each
    // device of a copy's group holds its layers, the first the caches too.
    let group = copies[0].model.device_map().devices().len();
    let place = Placement {
        devices: if on_cpu { copies.len() } else { group },
        split_layers: !on_cpu && group > 1,
        on_cpu,
    };
    // CPU copies share the host's memory: every copy's weights are out of MemAvailable now.
    let resident = |d: &candle_core::Device| match on_cpu {
        true => shape.weight_bytes() * copies.len() as u64,
        false => weights_on(copies, d),
    };
    // What each device has free for the sweep (its own weights count as free: the estimate
    // holds them), read once; `--max-memory` caps it.
    let free: Vec<(String, Option<u64>)> = copies
        .iter()
        .flat_map(|c| c.model.device_map().devices().iter())
        .map(|d| {
            let free = memory::available(d).map(|f| f + resident(d));
            (crate::model::source::device_name(d), free)
        })
        .collect();
    let capped = max_memory.is_some_and(|m| free[0].1.is_none_or(|f| m <= f));
    let available: Vec<(String, Option<u64>)> = free
        .into_iter()
        .map(|(name, free)| match (free, max_memory) {
            (Some(f), Some(m)) => (name, Some(f.min(m))),
            (f, m) => (name, f.or(m)),
        })
        .collect();
    memory::check(
        &shape,
        spec,
        // Teacher-forced sweeps run more and longer prompts (patching::forced).
        DataShape::of(&patching::forced::engine_pairs(
            &data.tok.pairs,
            data.roles.as_deref(),
            spec.metric,
        )),
        place,
        &available,
    )
    .map_err(|e| anyhow::anyhow!(super::wording::memory(&e, capped)))?;
    Ok(())
}

/// Bytes of weights the copies hold on device `d` now (a GPU's free memory is what is left
/// after them).
fn weights_on(copies: &[crate::model::LoadedModel], d: &candle_core::Device) -> u64 {
    use crate::patching::memory::ModelShape;
    copies
        .iter()
        .map(|c| {
            let map = c.model.device_map();
            let split = ModelShape::of(&c.model).split_weight_bytes(map.devices().len());
            map.devices()
                .iter()
                .zip(split)
                .filter(|(x, _)| x.same_device(d))
                .map(|(_, b)| b)
                .sum::<u64>()
        })
        .sum()
}

/// Puts a record (and its per-example files, with `npy` its matrices) on the report's files.
pub(super) fn save(r: &mut Report, planned: Planned, record: &RunRecord, npy: bool) {
    let mut output = Output::new(planned, record.to_json().into_bytes());
    let rec = record.clone();
    output.companions = Some(Box::new(move |p: &Path| {
        let mut files = rec.per_example_files(p);
        if npy {
            files.extend(rec.npy_files(p));
        }
        files
    }));
    r.save(output);
}

/// The devices a run used (its workers', in `--device` order).
fn record_devices(record: &mut RunRecord, copies: &[crate::model::LoadedModel]) {
    let devices: Vec<String> = copies
        .iter()
        .map(|c| crate::model::source::devices_label(&c.model))
        .collect();
    if let Some(m) = record.model.as_mut() {
        m.device = devices.join(",");
    }
}

/// Marks a record as shard `s` of its sweep, holding sender `layers`: a part is complete only
/// when it holds every sender row (`merge` makes the whole).
fn mark_shard(
    record: &mut RunRecord,
    s: Shard,
    layers: Vec<usize>,
    tok: &Tokenized,
    spec: &PatchSpec,
) {
    let Some(model) = record.model.as_ref() else {
        return;
    };
    let fingerprint = fingerprint(model, &tok.pairs, spec);
    record.complete &= layers.len() == spec.sender_layers().len();
    record.shard = Some(ShardInfo::new(s, layers, fingerprint));
}

/// The default file name of a shard part: `NAME.shard-K-of-N.json`.
fn shard_name(path: PathBuf, shard: Option<Shard>) -> PathBuf {
    let Some(s) = shard else { return path };
    let stem = path.with_extension("");
    PathBuf::from(format!(
        "{}.shard-{}-of-{}.json",
        stem.display(),
        s.index,
        s.count
    ))
}

/// The notes on stderr before a sweep: skipped examples, multi-token answers, what runs.
fn announce(tokenized: &Tokenized, spec: &PatchSpec, n_heads: usize) {
    note!(
        "patching {} senders (layers {}..={} × {}) → {} on {} examples, {} algorithm",
        spec.n_senders(n_heads),
        spec.begin_layer,
        // The receiver's own layer sends nothing to it (see `Receiver::last_sender_layer`).
        spec.receiver
            .last_sender_layer()
            .unwrap_or(spec.begin_layer),
        match spec.senders {
            crate::patching::Senders::Heads => format!("{n_heads} heads"),
            crate::patching::Senders::Mlp => "the MLP".to_string(),
            crate::patching::Senders::HeadsAndMlp => format!("{n_heads} heads and the MLP"),
        },
        spec.receiver,
        tokenized.pairs.len(),
        spec.algorithm.name()
    );
}

/// `--hi` and `--lo` are numbers with lo <= hi (a NaN threshold lists nothing, silently).
pub fn check_thresholds(hi: f64, lo: f64) -> Result<()> {
    if hi.is_nan() || lo.is_nan() || lo > hi {
        bail!("--hi {hi} --lo {lo}: expected two numbers with --lo <= --hi");
    }
    Ok(())
}

/// Senders are heads from `--begin-layer` up, and only those below a receiver head (or below
/// the layer of a `resid_pre`) reach it (`Receiver::reached_from_begin`, the rule the explorer
/// uses too): without any, every row would read as a computed zero.
pub(super) fn check_reachable(receiver: &Receiver, begin_layer: usize) -> Result<()> {
    if !receiver.reached_from_begin(begin_layer) {
        bail!(
            "--receiver {receiver}: no sender head comes before it (senders are heads of layers {begin_layer} and up; a head hears only layers below its own, and resid_pre of a layer is before its heads); use a lower --begin-layer, resid_mid or a later layer"
        );
    }
    Ok(())
}

/// The summary, heatmap and head lists (where the files went follows them).
pub(super) fn report(r: &mut Report, record: &RunRecord, a: &PatchArgs) {
    if !a.quiet {
        r.push(&text::summary(record));
        out!(r);
        r.push(&text::heatmap(record));
        out!(r);
    }
    r.push(&text::head_lists(record, Thresholds { hi: a.hi, lo: a.lo }));
}
