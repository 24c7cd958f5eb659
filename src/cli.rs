//! Command-line interface: the TUI (default) and headless commands for the same jobs.

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

use crate::model::source::{dtype_name, parse_device, parse_dtype};
use crate::model::tokenizer::printable;

pub mod attention;
pub mod bench;
pub mod check;
pub mod eval;
pub mod patch;
pub mod plot;
pub mod show;
pub mod train_demo;
pub mod tui;

#[derive(Parser, Debug)]
#[command(
    name = "headhunt",
    version,
    about = "Path patching for LLMs: find the attention heads that carry a behaviour",
    long_about = "Path patching for LLMs: find the attention heads that carry a behaviour.\n\nWithout a command, opens the terminal explorer (on the bundled demo model unless --model is given); the explorer's options may be given directly, e.g. `headhunt --model DIR --data FILE`.",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// Options of the explorer, when no command is given.
    #[command(flatten)]
    pub tui: tui::TuiArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Show a model's architecture, size and load time.
    Info(InfoArgs),
    /// Run a prompt: its tokens and the most likely next tokens.
    Run(RunArgs),
    /// Path-patch every sender head to a receiver and save the result.
    Patch(patch::PatchArgs),
    /// Print a saved result (headhunt's or one of the paper's result files).
    Show(show::ShowArgs),
    /// Draw a saved result as a figure (SVG or PNG): heatmaps, attention, analyses.
    Plot(plot::PlotArgs),
    /// Time the fast and the literal algorithm on the same inputs.
    Bench(bench::BenchArgs),
    /// Check this build on this device against the reference fixtures.
    Check(check::CheckArgs),
    /// Accuracy: how often the next token is the normal or the contrast answer, on both prompts.
    Eval(eval::EvalArgs),
    /// Where heads attend: a query row (sorted key tokens) or the whole grid.
    Attention(attention::AttentionArgs),
    /// Datasets: generate the paper's files, show prompt pairs and their tokens.
    Data(crate::data::commands::DataCommand),
    /// The terminal explorer (the default when no command is given).
    Tui(tui::TuiArgs),
    /// Train the demo model (few-shot off-by-k addition) into a model directory.
    TrainDemo(train_demo::TrainDemoArgs),
}

/// Options shared by every command that loads a model.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// Model: a local Hugging Face directory, a .gguf file, or a hub id `org/name[@revision]`.
    #[arg(long, short = 'm')]
    pub model: String,
    /// tokenizer.json to use instead of the model's own.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// f32, bf16 or f16 (default: f32 on cpu, bf16 on cuda).
    #[arg(long)]
    pub dtype: Option<String>,
}

impl ModelArgs {
    pub fn load(&self) -> Result<crate::model::LoadedModel> {
        let device = parse_device(&self.device)?;
        let dtype = parse_dtype(self.dtype.as_deref(), &device)?;
        Ok(crate::model::load(
            &self.model,
            self.tokenizer.as_deref(),
            &device,
            dtype,
        )?)
    }
}

pub use crate::data::commands::DataArgs;

#[derive(Args, Debug)]
pub struct InfoArgs {
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The text to run.
    #[arg(long, short = 'p')]
    pub prompt: String,
    /// How many next-token candidates to show.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Also write the logits of every position, [tokens, vocab] float64, as .npy (for
    /// comparisons with other implementations).
    #[arg(long)]
    pub save_logits: Option<PathBuf>,
}

/// Runs the CLI and returns the process exit code: 0 on success, 2 on any error (bad input,
/// missing files ...), with the error printed on one line.
pub fn main() -> i32 {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", one_line_error(&e));
            2
        }
    }
}

/// `a: b: c` on one line, whatever the error chain holds.
pub fn one_line_error(e: &anyhow::Error) -> String {
    let parts: Vec<String> = e
        .chain()
        .map(|c| crate::model::error::one_line(&c.to_string()))
        .collect();
    // anyhow contexts often repeat their source's text: keep each piece once.
    let mut out: Vec<String> = Vec::new();
    for p in parts {
        if !out.iter().any(|o| o.contains(&p)) {
            out.push(p);
        }
    }
    out.join(": ")
}

fn dispatch(cli: Cli) -> Result<i32> {
    match cli.command {
        Some(Command::Info(a)) => info(a).map(|_| 0),
        Some(Command::Run(a)) => run(a).map(|_| 0),
        Some(Command::Patch(a)) => patch::run(a),
        Some(Command::Show(a)) => show::run(a).map(|_| 0),
        Some(Command::Plot(a)) => plot::run(a).map(|_| 0),
        Some(Command::Bench(a)) => bench::run(a).map(|_| 0),
        Some(Command::Check(a)) => check::run(a),
        Some(Command::Eval(a)) => eval::run(a).map(|_| 0),
        Some(Command::Attention(a)) => attention::run(a).map(|_| 0),
        Some(Command::Data(a)) => crate::data::commands::run(a).map(|_| 0),
        Some(Command::Tui(a)) => tui::run(a).map(|_| 0),
        Some(Command::TrainDemo(a)) => train_demo::run(a).map(|_| 0),
        None => tui::run(cli.tui).map(|_| 0),
    }
}

fn info(a: InfoArgs) -> Result<()> {
    let lm = a.model.load()?;
    let m = &lm.model;
    let c = &m.cfg;
    let sliding: Vec<String> = c
        .layer_sliding
        .iter()
        .enumerate()
        .filter(|(_, s)| **s)
        .map(|(l, _)| l.to_string())
        .collect();
    println!("model       {}", lm.origin.label());
    println!("family      {}", c.family);
    println!("layers      {}", c.n_layers);
    println!("heads       {}", c.n_heads);
    println!("kv heads    {}", c.n_kv_heads);
    println!("d_model     {}", c.d_model);
    println!("d_head      {}", c.d_head);
    println!("d_mlp       {}", c.d_mlp);
    println!("vocab       {}", c.vocab_size);
    println!(
        "dtype       {}{}",
        dtype_name(m.dtype),
        c.checkpoint_dtype
            .as_ref()
            .map(|d| format!(" (checkpoint {d})"))
            .unwrap_or_default()
    );
    if let Some(q) = &m.quantization {
        println!("quantized   {q} (dequantized to {})", dtype_name(m.dtype));
    }
    println!(
        "tokenizer   {}{}",
        lm.tokenizer.path,
        lm.tokenizer
            .bos
            .map(|b| format!(" (adds BOS {b})"))
            .unwrap_or_default()
    );
    println!("device      {}", a.model.device);
    println!(
        "parameters  {} ({:.2} M)",
        m.n_params,
        m.n_params as f64 / 1e6
    );
    match (c.sliding_window, sliding.is_empty()) {
        (Some(w), false) => println!(
            "sliding     window {w} on layers {}",
            compact_list(&sliding)
        ),
        _ => println!("sliding     none"),
    }
    if let Some(cap) = c.attn_softcap {
        println!(
            "softcaps    attention {cap}, final {}",
            c.final_softcap.map_or("none".into(), |f| f.to_string())
        );
    }
    match &c.rope_local {
        Some(local) => println!(
            "rope theta  {} (sliding layers {})",
            c.rope_global.theta, local.theta
        ),
        None => println!("rope theta  {}", c.rope_global.theta),
    }
    println!("load time   {:.3} s", lm.load_seconds);
    Ok(())
}

/// "0,2,4,...": at most 12 items, then an ellipsis and the count.
fn compact_list(items: &[String]) -> String {
    if items.len() <= 12 {
        items.join(",")
    } else {
        format!("{},... ({} layers)", items[..12].join(","), items.len())
    }
}

fn run(a: RunArgs) -> Result<()> {
    let lm = a.model.load()?;
    let ids = lm.tokenizer.encode(&a.prompt)?;
    if ids.is_empty() {
        anyhow::bail!("--prompt: the text tokenizes to nothing");
    }
    let tokens = lm.model.tokens_tensor(std::slice::from_ref(&ids))?;
    let started = std::time::Instant::now();
    let logits = lm.model.forward(&tokens).context("forward pass")?;
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(path) = &a.save_logits {
        let all: Vec<f64> = logits
            .flatten_all()?
            .to_dtype(candle_core::DType::F64)?
            .to_vec1::<f64>()?;
        let bytes = crate::results::npy::encode_f64(&all, &[ids.len(), lm.model.cfg.vocab_size]);
        std::fs::write(path, bytes)
            .with_context(|| format!("--save-logits {}: cannot write", path.display()))?;
    }
    let last = logits
        .narrow(1, ids.len() - 1, 1)?
        .flatten_all()?
        .to_dtype(candle_core::DType::F32)?
        .to_vec1::<f32>()?;
    println!("tokens ({}):", ids.len());
    for (i, id) in ids.iter().enumerate() {
        println!(
            "  {i:>4}  {id:>7}  {}",
            printable(&lm.tokenizer.token_text(*id))
        );
    }
    let max = last.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let z: f64 = last.iter().map(|&x| ((x - max) as f64).exp()).sum();
    let mut order: Vec<usize> = (0..last.len()).collect();
    order.sort_by(|&i, &j| last[j].total_cmp(&last[i]));
    println!("next token (top {}):", a.top.min(order.len()));
    println!(
        "  {:>4}  {:>7}  {:>10}  {:>8}  text",
        "rank", "id", "logit", "prob"
    );
    for (rank, &i) in order.iter().take(a.top).enumerate() {
        let p = ((last[i] - max) as f64).exp() / z;
        println!(
            "  {:>4}  {:>7}  {:>10.4}  {:>8.4}  {}",
            rank + 1,
            i,
            last[i],
            p,
            printable(&lm.tokenizer.token_text(i as u32))
        );
    }
    println!("forward {:.3} s", elapsed);
    Ok(())
}
