//! `headhunt train-demo`: trains the demo model (few-shot off-by-k addition) and writes it as a
//! Hugging Face model directory. The defaults reproduce the shipped `assets/demo-model`.

use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;

use crate::demo::train::{train, TrainConfig};
use crate::model::source::parse_device;

#[derive(Args, Debug)]
pub struct TrainDemoArgs {
    /// Output model directory.
    #[arg(long, short = 'o', default_value = crate::demo::MODEL_DIR)]
    pub out: PathBuf,
    /// Overwrite a model already in --out.
    #[arg(long)]
    pub force: bool,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    #[arg(long)]
    pub steps: Option<usize>,
    /// Tokens per step (sequences per step = this / (6 × lines)).
    #[arg(long)]
    pub batch_tokens: Option<usize>,
    /// Peak learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    #[arg(long)]
    pub seed: Option<u64>,
    #[arg(long)]
    pub layers: Option<usize>,
    #[arg(long)]
    pub heads: Option<usize>,
    #[arg(long)]
    pub d_model: Option<usize>,
    #[arg(long)]
    pub d_mlp: Option<usize>,
    /// The k values, comma-separated (e.g. -2,-1,0,1,2).
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    pub offsets: Option<Vec<i64>>,
    /// Lines per training sequence, comma-separated choices, one drawn per step (trains
    /// 1 ..= longest-1 shots).
    #[arg(long, value_delimiter = ',')]
    pub lines: Option<Vec<usize>>,
    /// Held-out evaluation every N steps (0: only at the end).
    #[arg(long)]
    pub eval_every: Option<usize>,
    /// Stop early after this many minutes (the model is still saved).
    #[arg(long)]
    pub max_minutes: Option<f64>,
    /// Folder of the paper's setting1 files (held-out evaluation; default: data/paper/addition/setting1).
    #[arg(long)]
    pub paper_dir: Option<PathBuf>,
}

/// Every file `train` writes into `--out`.
pub const MODEL_FILES: [&str; 4] = [
    "model.safetensors",
    "config.json",
    "tokenizer.json",
    "training.json",
];

/// Before minutes of training: `--out` is (or can be made) a writable folder, and none of the
/// files it would write is there already unless `--force` (then only regular files).
fn check_out(a: &TrainDemoArgs) -> Result<()> {
    if a.out.exists() && !a.out.is_dir() {
        bail!("--out {}: not a folder", a.out.display());
    }
    let taken: Vec<&str> = MODEL_FILES
        .iter()
        .copied()
        .filter(|f| std::fs::symlink_metadata(a.out.join(f)).is_ok())
        .collect();
    if !taken.is_empty() && !a.force {
        bail!(
            "--out {}: a model is already there ({}); pass --force to overwrite it",
            a.out.display(),
            taken.join(", ")
        );
    }
    for f in MODEL_FILES {
        crate::results::preflight(&a.out.join(f), a.force)
            .map_err(|e| anyhow::anyhow!("--out: {e}"))?;
    }
    Ok(())
}

pub fn run(a: TrainDemoArgs) -> Result<i32> {
    check_out(&a)?;
    let mut cfg = TrainConfig::default();
    let set = |dst: &mut usize, v: Option<usize>| {
        if let Some(v) = v {
            *dst = v;
        }
    };
    set(&mut cfg.steps, a.steps);
    set(&mut cfg.batch_tokens, a.batch_tokens);
    set(&mut cfg.net.n_layers, a.layers);
    set(&mut cfg.net.n_heads, a.heads);
    set(&mut cfg.net.d_model, a.d_model);
    set(&mut cfg.net.d_mlp, a.d_mlp);
    if let Some(l) = a.lines {
        cfg.lines = l;
    }
    set(&mut cfg.eval_every, a.eval_every);
    if let Some(lr) = a.lr {
        cfg.lr = lr;
    }
    if let Some(s) = a.seed {
        cfg.seed = s;
    }
    if let Some(o) = a.offsets {
        if o.is_empty() || o.iter().any(|k| k.abs() > 9) {
            bail!("--offsets: give one or more k with |k| <= 9");
        }
        cfg.offsets = o;
    }
    cfg.max_minutes = a.max_minutes;
    cfg.warmup = cfg.warmup.min(cfg.steps / 4);
    let device = parse_device(&a.device)?;
    let paper_dir = a.paper_dir.unwrap_or_else(crate::demo::paper_dir);
    // A signal ends training early; the model so far is saved (exit 128 + the signal).
    let honour = super::signals::Honour::start();
    let summary = train(&cfg, &paper_dir, &a.out, &device, &|| {
        super::signals::received().is_some()
    })?;
    drop(honour);
    if summary.recovered_to.is_some() {
        return Ok(2);
    }
    Ok(super::signals::received().map_or(0, super::signals::exit_code))
}
