//! `headhunt patch`: a path-patching sweep from the command line, with a progress bar, the text
//! heatmap, the paper's head lists and a saved result file. Ctrl-C stops after the current
//! sender layer and saves the finished rows, marked partial.

use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{DataArgs, ModelArgs};
use crate::patching::{self, Algorithm, Observer, PatchEvent, PatchSpec, Receiver};
use crate::results::text::{self, Thresholds};
use crate::results::RunRecord;

#[derive(Args, Debug)]
pub struct PatchArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// Receiver: `resid_post:LAYER` (also resid_pre, resid_mid; several layers as `resid_post:3,5`)
    /// or a head's input `LAYER.HEAD.q|k|v`; repeat for several heads. Default: the last
    /// layer's resid_post.
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

/// Fails early (before any compute) if the result cannot be written.
pub fn check_writable(path: &Path, force: bool) -> Result<()> {
    if path.is_dir() {
        bail!(
            "--out {}: is a directory, expected a file name",
            path.display()
        );
    }
    if path.exists() && !force {
        bail!(
            "--out {}: file exists; pass --force to overwrite it",
            path.display()
        );
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).with_context(|| {
        format!(
            "--out {}: cannot create folder {}",
            path.display(),
            parent.display()
        )
    })?;
    let probe = parent.join(format!(".headhunt-probe-{}", std::process::id()));
    std::fs::write(&probe, b"").with_context(|| {
        format!(
            "--out {}: folder {} is not writable",
            path.display(),
            parent.display()
        )
    })?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Progress bar and Ctrl-C flag.
struct CliObserver {
    bar: indicatif::ProgressBar,
    stop: Arc<AtomicBool>,
}

impl Observer for CliObserver {
    fn event(&mut self, e: &PatchEvent) {
        match e {
            PatchEvent::Baselines {
                ld_normal,
                ld_contrast,
                n_examples,
                cache_seconds,
            } => {
                self.bar.println(format!(
                    "baselines: LD_normal {ld_normal:+.4}, LD_contrast {ld_contrast:+.4} ({n_examples} examples, caches {cache_seconds:.3} s)"
                ));
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
                    eprintln!("sender layer {layer} done ({done}/{total}), ETA {eta:.1} s");
                }
            }
        }
    }
    fn cancelled(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

pub fn run(a: PatchArgs) -> Result<i32> {
    let receiver_given = !a.receivers.is_empty();
    let receiver_arg = if receiver_given {
        Some(Receiver::parse_many(&a.receivers)?)
    } else {
        None
    };
    if let Some(out) = &a.out {
        check_writable(out, a.force)?;
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
    let out = match &a.out {
        Some(o) => o.clone(),
        None => {
            let o = default_out(&lm.origin.label(), &receiver);
            check_writable(&o, a.force)?;
            o
        }
    };
    let data_spec = a.data.spec()?;
    let tokenized = crate::data::load_and_tokenize(&data_spec, &lm.tokenizer)?;
    if tokenized.pairs.is_empty() {
        bail!("{}: no examples left to patch", data_spec.file.display());
    }
    if !tokenized.skipped.is_empty() {
        eprintln!(
            "note: skipped {} examples whose normal and contrast prompts tokenize to different lengths",
            tokenized.skipped.len()
        );
    }
    if !tokenized.multi_token_answers.is_empty() {
        eprintln!(
            "note: {} examples have answers that span several tokens; the metric reads the {:?} token",
            tokenized.multi_token_answers.len(),
            data_spec.answer_token
        );
    }
    eprintln!(
        "patching {} senders (layers {}..={} × {} heads) → {} on {} examples, {} algorithm",
        spec.n_senders(lm.model.n_heads()),
        spec.begin_layer,
        receiver.max_layer(),
        lm.model.n_heads(),
        receiver,
        tokenized.pairs.len(),
        spec.algorithm.name()
    );

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // A second Ctrl-C while the first is being honoured exits at once.
        let _ = ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
            eprintln!("\ncancelling: finishing the current sender layer, then saving what is done (Ctrl-C again to quit now)");
        });
    }
    let bar = indicatif::ProgressBar::new(spec.sender_layers().len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} sender layers {msg}")
            .expect("valid template"),
    );
    let mut obs = CliObserver { bar, stop };
    let outcome = patching::run(&lm.model, &tokenized.pairs, &spec, &mut obs)?;
    obs.bar.finish_and_clear();

    let record = RunRecord::of_sweep(&outcome, &spec, &lm, &data_spec, &tokenized);
    if !a.quiet {
        print!("{}", text::summary(&record));
        println!();
        print!("{}", text::heatmap(&record));
        println!();
    }
    print!(
        "{}",
        text::head_lists(&record, Thresholds { hi: a.hi, lo: a.lo })
    );
    record.save(&out, a.force)?;
    println!("saved {}", out.display());
    if a.npy {
        for p in record.save_npy(&out, a.force)? {
            println!("saved {}", p.display());
        }
    }
    if !outcome.complete {
        eprintln!(
            "cancelled: saved {} of {} sender layers, marked partial",
            record.rows_computed.len(),
            spec.sender_layers().len()
        );
        return Ok(130);
    }
    Ok(0)
}
