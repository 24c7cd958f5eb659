//! `headhunt patch`: a path-patching sweep from the command line, with a progress bar, the text
//! heatmap, the paper's head lists and a saved result file. Ctrl-C, SIGTERM or SIGHUP stop
//! after the current sender layer and save the finished rows, marked partial. The result is
//! saved before anything is printed, and a result that cannot go where asked goes to a
//! fallback path rather than being lost.

use anyhow::{bail, Result};
use clap::Args;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{signals, DataArgs, ModelArgs};
use crate::data::Tokenized;
use crate::patching::{self, Algorithm, Observer, PatchEvent, PatchSpec, Receiver};
use crate::results::text::{self, Thresholds};
use crate::results::{write, ResultsError, RunRecord};

#[derive(Args, Debug)]
pub struct PatchArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// Receiver: `resid_post:LAYER` (also resid_pre, resid_mid; several layers as `resid_post:3,5`)
    /// or a head's input `LAYER.HEAD.q|k|v`; repeat for several heads, or separate them by
    /// commas (`39.7.v,39.12.q`). Default: the last layer's resid_post.
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
    /// Let sender layers advance together in chunks of at most this many rows (0: one sender
    /// layer at a time, rows stream in). Default: 0 on CPU, 16384 on GPU.
    #[arg(long)]
    pub chunk_rows: Option<usize>,
}

pub use crate::patching::DEFAULT_GPU_CHUNK_ROWS;

pub use crate::results::naming::default_out;

/// Fails early (before any compute) if the result, or with `npy` its companions, could not be
/// written at the end; see `results::write::preflight`.
pub fn check_writable(path: &Path, force: bool, npy: bool) -> Result<()> {
    let mut all = vec![path.to_path_buf()];
    if npy {
        all.extend(crate::results::npy_paths(path));
    }
    for p in &all {
        crate::results::preflight(p, force).map_err(|e| anyhow::anyhow!("--out: {}", word(&e)))?;
    }
    Ok(())
}

/// A results error worded for the command line.
pub(crate) fn word(e: &ResultsError) -> String {
    match e {
        ResultsError::Exists { path } => {
            format!("{path} already exists; pass --force to overwrite it")
        }
        other => other.to_string(),
    }
}

/// The first default name that is free (`-2`, `-3` ... appended).
fn free_default(base: &Path, npy: bool) -> Result<PathBuf> {
    for n in 1..1000 {
        let p = write::numbered(base, n);
        match check_writable(&p, false, npy) {
            Ok(()) => return Ok(p),
            Err(_) if p.exists() => continue,
            Err(e) => return Err(e),
        }
    }
    bail!("--out: no free name like {} is left", base.display())
}

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
                let line = format!(
                    "baselines: LD_normal {ld_normal:+.4}, LD_contrast {ld_contrast:+.4} ({n_examples} examples, caches {cache_seconds:.3} s)"
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

pub fn run(a: PatchArgs) -> Result<i32> {
    let receiver_given = !a.receivers.is_empty();
    let receiver_arg = if receiver_given {
        Some(Receiver::parse_many(&a.receivers)?)
    } else {
        None
    };
    check_thresholds(a.hi, a.lo)?;
    if let Some(out) = &a.out {
        check_writable(out, a.force, a.npy)?;
    }
    let lm = a.model.load()?;
    let receiver = receiver_arg.unwrap_or_else(|| Receiver::resid_post(lm.model.n_layers() - 1));
    let spec = PatchSpec {
        receiver: receiver.clone(),
        begin_layer: a.begin_layer,
        batch_size: a.batch_size,
        algorithm: a.algorithm,
        chunk_rows: a
            .chunk_rows
            .unwrap_or(patching::default_chunk_rows(lm.model.device.is_cpu())),
    };
    spec.validate(&lm.model)?;
    check_reachable(&receiver, a.begin_layer)?;
    let data_spec = a.data.spec()?;
    let (out, default_name) = match &a.out {
        Some(o) => (o.clone(), false),
        None => {
            let base = default_out(&lm.origin.label(), Some(&data_spec.file), &receiver);
            (free_default(&base, a.npy)?, true)
        }
    };
    let checked = super::checks::load_checked(&lm, &data_spec)?;
    let tokenized = checked.tok;
    if tokenized.pairs.is_empty() {
        bail!("{}: no examples left to patch", data_spec.file.display());
    }
    announce(&tokenized, &spec, lm.model.n_heads());

    // From here on a signal stops the sweep after the current step and the rows are saved.
    let honour = signals::Honour::start();
    let bar = indicatif::ProgressBar::new(spec.sender_layers().len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} sender layers {msg}")
            .expect("valid template"),
    );
    let mut obs = CliObserver {
        bar,
        not_finite: None,
        lm: &lm,
        tok: &tokenized,
        baseline: None,
    };
    let outcome = patching::run(&lm.model, &tokenized.pairs, &spec, &mut obs)?;
    obs.bar.finish_and_clear();
    if let Some((n, c)) = obs.not_finite {
        bail!(
            "the model's logit differences are not finite (LD_normal {n}, LD_contrast {c}): its weights hold NaN or Inf, or {} overflows; nothing saved",
            crate::model::source::dtype_name(lm.model.dtype)
        );
    }

    let mut record = RunRecord::of_sweep(&outcome, &spec, &lm, &data_spec, &tokenized);
    record.warnings = checked.warnings;
    // The unpatched runs' top tokens came with the caches: no extra pass.
    if let Some(b) = obs.baseline.take() {
        record.warnings.extend(b.warning);
    }
    // Save before printing anything: a closed stdout must never cost the result.
    let saved = signals::while_saving(|| save(&record, &out, a.force, a.npy, default_name));
    drop(honour);
    let printed = report(&record, &a, &saved);
    let code = exit_code(&saved, printed);
    if !outcome.complete {
        let done = if saved.json.is_some() {
            "saved"
        } else {
            "computed"
        };
        note!(
            "cancelled: {done} {} of {} sender layers, marked partial",
            record.rows_computed.len(),
            spec.sender_layers().len()
        );
        return Ok(signals::received().map_or(130, signals::exit_code));
    }
    Ok(code)
}

/// The notes on stderr before a sweep: skipped examples, multi-token answers, what runs.
fn announce(tokenized: &Tokenized, spec: &PatchSpec, n_heads: usize) {
    note!(
        "patching {} senders (layers {}..={} × {} heads) → {} on {} examples, {} algorithm",
        spec.n_senders(n_heads),
        spec.begin_layer,
        spec.receiver.max_layer(),
        n_heads,
        spec.receiver,
        tokenized.pairs.len(),
        spec.algorithm.name()
    );
}

/// 0, or 2 when the result could not go where asked (or not at all), or 141 / 2 when stdout
/// went away / filled up; a failed save outranks a failed print.
fn exit_code(saved: &Saved, printed: std::io::Result<()>) -> i32 {
    if let Some(e) = &saved.error {
        note!("error: {e}");
        return 2;
    }
    match printed {
        Ok(()) => 0,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => EXIT_BROKEN_PIPE,
        Err(e) => {
            note!("error: cannot print the result to stdout: {e}");
            2
        }
    }
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
fn check_reachable(receiver: &Receiver, begin_layer: usize) -> Result<()> {
    if !receiver.reached_from_begin(begin_layer) {
        bail!(
            "--receiver {receiver}: no sender head comes before it (senders are heads of layers {begin_layer} and up; a head hears only layers below its own, and resid_pre of a layer is before its heads); use a lower --begin-layer, resid_mid or a later layer"
        );
    }
    Ok(())
}

/// The exit status of a command whose reader went away (128 + SIGPIPE), as the shell's
/// `yes | head -1` reports.
pub const EXIT_BROKEN_PIPE: i32 = 141;

/// Where a run's files went, and what failed.
struct Saved {
    json: Option<PathBuf>,
    npy: Vec<PathBuf>,
    error: Option<String>,
}

/// Saves the result at `out` (a default name is numbered if taken meanwhile), or, when that
/// fails, at a fallback path (see `write::fallback_paths`); then the `.npy` companions.
fn save(record: &RunRecord, out: &Path, force: bool, npy: bool, default_name: bool) -> Saved {
    let mut first = None;
    for n in 1..if default_name { 1000 } else { 2 } {
        let p = write::numbered(out, n);
        match record.save(&p, force && !default_name) {
            Ok(()) => return with_npy(record, p, force, npy, None),
            Err(ResultsError::Exists { .. }) if default_name => continue,
            Err(e) => {
                first = Some(word(&e));
                break;
            }
        }
    }
    let why = first.unwrap_or_else(|| format!("{}: no free name", out.display()));
    for p in write::fallback_paths(out) {
        if record.save(&p, false).is_ok() {
            let error = format!(
                "cannot write the result ({why}); saved it to {} instead",
                p.display()
            );
            return with_npy(record, p, false, npy, Some(error));
        }
    }
    Saved {
        json: None,
        npy: Vec::new(),
        error: Some(format!(
            "cannot write the result ({why}), nor at {}",
            write::fallback_paths(out)
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" or ")
        )),
    }
}

/// The `.npy` companions beside a saved JSON; a failure keeps the JSON, which holds the same.
fn with_npy(
    record: &RunRecord,
    json: PathBuf,
    force: bool,
    npy: bool,
    error: Option<String>,
) -> Saved {
    let mut saved = Saved {
        json: Some(json.clone()),
        npy: Vec::new(),
        error,
    };
    if npy {
        match record.save_npy(&json, force) {
            Ok(ps) => saved.npy = ps,
            Err(e) => {
                let msg = format!(
                    "--npy: {} (the JSON is saved; `headhunt show --npy {}` writes them)",
                    word(&e),
                    json.display()
                );
                saved.error = Some(saved.error.map_or(msg.clone(), |x| format!("{x}; {msg}")));
            }
        }
    }
    saved
}

/// The summary, heatmap, head lists and where the files went, on stdout.
fn report(record: &RunRecord, a: &PatchArgs, saved: &Saved) -> std::io::Result<()> {
    let mut o = std::io::stdout().lock();
    if !a.quiet {
        write!(o, "{}", text::summary(record))?;
        writeln!(o)?;
        write!(o, "{}", text::heatmap(record))?;
        writeln!(o)?;
    }
    write!(
        o,
        "{}",
        text::head_lists(record, Thresholds { hi: a.hi, lo: a.lo })
    )?;
    for p in saved.json.iter().chain(&saved.npy) {
        writeln!(o, "saved {}", p.display())?;
    }
    o.flush()
}
