//! Command-line interface: the TUI (default) and headless commands for the same jobs.

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use std::io::Write as _;
use std::path::PathBuf;

use crate::model::source::{dtype_name, parse_device, parse_dtype};
use crate::model::tokenizer::printable;

/// `out!(report, "...")`: a line of a command's stdout, gathered in its `output::Report` until
/// its files are saved (see `output`).
macro_rules! out {
    ($r:expr) => {{ $r.text.push('\n'); }};
    ($r:expr, $($t:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($r.text, $($t)*);
    }};
}

pub mod ablate;
pub mod attention;
pub mod bench;
pub mod check;
pub mod checks;
pub mod circuit;
pub mod data;
pub mod eval;
pub mod fv;
pub mod merge;
pub mod output;
pub mod patch;
pub mod patch_each;
pub mod plot;
pub mod scan;
pub mod show;
pub mod signals;
pub mod train_demo;
pub mod tui;
pub mod values;
pub mod wording;

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
    /// Activation-patching scan: each head, MLP or residual position patched from one run into
    /// the other (TransformerLens' `patching` scans), scored by the metric; saves the result.
    Scan(scan::ScanArgs),
    /// Merge the shard parts of one sweep (`patch --shard`) into one result.
    Merge(merge::MergeArgs),
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
    Data(data::DataCommand),
    /// The terminal explorer (the default when no command is given).
    Tui(tui::TuiArgs),
    /// Evaluate a circuit of head groups: F(C), faithfulness, completeness, minimality.
    Circuit(circuit::CircuitArgs),
    /// Ablate heads (z from the normal run): logit difference and accuracy vs random groups.
    Ablate(ablate::AblateArgs),
    /// Function vectors: add heads' mean contrast z to naive prompts; Δ of the digit logits.
    Fv(fv::FvArgs),
    /// Open a saved result (or a head-groups file) in the explorer.
    Open(tui::OpenArgs),
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
    /// cpu, cuda or cuda:N; `patch` also takes a list (`cuda:0,cuda:1`, `cpu,cpu`): one copy
    /// of the model per device, sender layers handed to whichever is free. With `--place
    /// layers` a list holds one model, its layers split over the devices; `cuda:0+cuda:1`
    /// says the same per copy (`cuda:0+cuda:1,cuda:2+cuda:3`: two copies over two cards each).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// How a list of devices holds the model: `copies` (one whole copy per device), `layers`
    /// (one copy, its layers split over all of them, for a model larger than one device), or
    /// `layers:N` (one copy per group of N devices, its layers split within the group).
    #[arg(long, default_value = "copies")]
    pub place: String,
    /// f32, bf16 or f16 (default: f32 on cpu, bf16 on cuda).
    #[arg(long)]
    pub dtype: Option<String>,
    /// Load a config.json (or GGUF metadata) with keys headhunt does not read; they may change
    /// the model's numbers, and results record them as a warning.
    #[arg(long)]
    pub allow_unknown_config_keys: bool,
}

impl ModelArgs {
    /// The model on the one device of `--device`, or placed over its list with `--place
    /// layers` (several copies are for the commands that run on several: [`ModelArgs::load_each`]).
    pub fn load(&self) -> Result<crate::model::LoadedModel> {
        let groups = self.device_groups()?;
        if groups.len() > 1 {
            anyhow::bail!(
                "--device {}: this command runs one model; several copies (a list) are for patch, and --place layers puts one model over the list",
                self.device
            );
        }
        self.load_on(&groups[0])
    }

    /// One copy of the model per device of `--device` (`cpu`, `cuda:0,cuda:1`, `cpu,cpu`), or per
    /// group of devices with `--place layers[:N]`, each loaded from the same source: one
    /// sweep's workers.
    pub fn load_each(&self) -> Result<Vec<crate::model::LoadedModel>> {
        self.device_groups()?
            .iter()
            .map(|g| self.load_on(g))
            .collect()
    }

    /// The devices of each model copy: `--device` split by `--place`, or by its own `+`
    /// groups (`cuda:0+cuda:1,cuda:2+cuda:3`, as results record placed models).
    fn device_groups(&self) -> Result<Vec<Vec<String>>> {
        let groups = crate::model::source::device_groups(&self.device)?;
        if groups.iter().any(|g| g.len() > 1) {
            if self.place != "copies" {
                anyhow::bail!(
                    "--device {}: `+` already places each model over its devices; leave out --place {}",
                    self.device,
                    self.place
                );
            }
            return Ok(groups);
        }
        let devices: Vec<String> = groups.into_iter().flatten().collect();
        let per = match self.place.as_str() {
            "copies" => 1,
            "layers" => devices.len(),
            other => match other.strip_prefix("layers:").map(str::parse::<usize>) {
                Some(Ok(n)) if n >= 1 && devices.len().is_multiple_of(n) => n,
                Some(Ok(n)) => anyhow::bail!(
                    "--place {other}: groups of {n} do not divide the {} devices of --device {}",
                    devices.len(),
                    self.device
                ),
                _ => anyhow::bail!(
                    "--place {other:?}: expected copies, layers or layers:N (devices per model copy)"
                ),
            },
        };
        Ok(devices.chunks(per).map(<[String]>::to_vec).collect())
    }

    fn load_on(&self, group: &[String]) -> Result<crate::model::LoadedModel> {
        let devices = group
            .iter()
            .map(|d| Ok(parse_device(d)?))
            .collect::<Result<Vec<_>>>()?;
        let device = &devices[0];
        let dtype = parse_dtype(self.dtype.as_deref(), device)?;
        let tokenizer = match &self.tokenizer {
            // A model folder given for its tokenizer: use the tokenizer.json in it.
            Some(t) if t.is_dir() => {
                let file = t.join("tokenizer.json");
                if !file.is_file() {
                    anyhow::bail!(
                        "--tokenizer {}: is a folder without tokenizer.json; give a tokenizer.json file",
                        t.display()
                    );
                }
                Some(file)
            }
            other => other.clone(),
        };
        let opts = crate::model::source::LoadOptions {
            tokenizer,
            allow_unknown_config_keys: self.allow_unknown_config_keys,
        };
        let lm = crate::model::source::load_with_progress(
            &self.model,
            &opts,
            &devices,
            dtype,
            &mut |_, _| {},
        )?;
        for k in &lm.model.cfg.ignored_keys {
            let _ = writeln!(
                std::io::stderr(),
                "warning: config key {k} is not read by headhunt (--allow-unknown-config-keys); it may change the numbers"
            );
        }
        Ok(lm)
    }
}

pub use data::{DataArgs, DataOptionArgs};

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
    /// Overwrite an existing --save-logits file.
    #[arg(long)]
    pub force: bool,
}

/// Runs the CLI and returns the process exit code: 0 on success, 2 on any error (bad input,
/// missing files ...), with the error printed on one line, worded with the flags' names.
pub fn main() -> i32 {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => output::EXIT_BROKEN_PIPE,
        Err(e) => {
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "error: {}",
                crate::error::one_line_error_worded(&e, wording::flag_words)
            );
            2
        }
    }
}

pub use crate::error::one_line_error;

/// Whether an error is a write to a reader that went away (`| head`): a normal end.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn dispatch(cli: Cli) -> Result<i32> {
    match cli.command {
        Some(Command::Info(a)) => info(a).map(output::Report::finish),
        // Commands that compute and save: through the one output path (`output::Report`).
        Some(Command::Run(a)) => run(a).map(output::Report::finish),
        Some(Command::Patch(a)) => patch::run(a).map(output::Report::finish),
        Some(Command::Scan(a)) => scan::run(a).map(output::Report::finish),
        Some(Command::Merge(a)) => merge::run(a).map(output::Report::finish),
        Some(Command::Show(a)) => show::run(a).map(output::Report::finish),
        Some(Command::Plot(a)) => plot::run(a).map(output::Report::finish),
        Some(Command::Bench(a)) => bench::run(a).map(|_| 0),
        Some(Command::Check(a)) => check::run(a),
        Some(Command::Eval(a)) => eval::run(a).map(output::Report::finish),
        Some(Command::Attention(a)) => attention::run(a).map(output::Report::finish),
        Some(Command::Data(a)) => data::run(a).map(output::Report::finish),
        Some(Command::Tui(a)) => tui::run(a),
        Some(Command::Circuit(a)) => circuit::run(a).map(output::Report::finish),
        Some(Command::Ablate(a)) => ablate::run(a).map(output::Report::finish),
        Some(Command::Fv(a)) => fv::run(a).map(output::Report::finish),
        Some(Command::Open(a)) => tui::open(a),
        Some(Command::TrainDemo(a)) => train_demo::run(a),
        None => tui::run(cli.tui),
    }
}

fn info(a: InfoArgs) -> Result<output::Report> {
    let mut r = output::Report::new();
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
    out!(r, "model       {}", lm.origin.label());
    out!(r, "family      {}", c.family);
    out!(r, "layers      {}", c.n_layers);
    out!(r, "heads       {}", c.n_heads);
    out!(r, "kv heads    {}", c.n_kv_heads);
    out!(r, "d_model     {}", c.d_model);
    out!(r, "d_head      {}", c.d_head);
    out!(r, "d_mlp       {}", c.d_mlp);
    out!(r, "vocab       {}", c.vocab_size);
    out!(
        r,
        "dtype       {}{}",
        dtype_name(m.dtype),
        c.checkpoint_dtype
            .as_ref()
            .map(|d| format!(" (checkpoint {d})"))
            .unwrap_or_default()
    );
    if let Some(q) = &m.quantization {
        out!(
            r,
            "quantized   {q} (dequantized to {})",
            dtype_name(m.dtype)
        );
    }
    out!(
        r,
        "tokenizer   {}{}",
        lm.tokenizer.path,
        lm.tokenizer
            .bos
            .map(|b| format!(" (adds BOS {b})"))
            .unwrap_or_default()
    );
    out!(r, "device      {}", a.model.device);
    if m.device_map().is_split() {
        out!(r, "placement   {}", placement_line(m));
    }
    out!(
        r,
        "parameters  {} ({:.2} M)",
        m.n_params,
        m.n_params as f64 / 1e6
    );
    match (c.sliding_window, sliding.is_empty()) {
        (Some(w), false) => out!(
            r,
            "sliding     window {w} on layers {}",
            compact_list(&sliding)
        ),
        _ => out!(r, "sliding     none"),
    }
    if let Some(cap) = c.attn_softcap {
        out!(
            r,
            "softcaps    attention {cap}, final {}",
            c.final_softcap.map_or("none".into(), |f| f.to_string())
        );
    }
    let scaling = |r: &crate::model::config::RopeConfig| match &r.scaling {
        crate::model::config::RopeScaling::None => String::new(),
        s => format!(", {s:?}"),
    };
    match (&c.rope_local, c.rotary_dim) {
        (_, 0) => out!(r, "rope        none (learned positions)"),
        (Some(local), _) => out!(
            r,
            "rope theta  {}{} (sliding layers {}{})",
            c.rope_global.theta,
            scaling(&c.rope_global),
            local.theta,
            scaling(local)
        ),
        (None, _) => out!(
            r,
            "rope theta  {}{}",
            c.rope_global.theta,
            scaling(&c.rope_global)
        ),
    }
    for k in &c.ignored_keys {
        out!(r, "ignored     {k} (--allow-unknown-config-keys)");
    }
    out!(r, "load time   {:.3} s", lm.load_seconds);
    out!(r, "memory      {}", memory_line(m));
    Ok(r)
}

/// Which layers each device of a placed model holds, and its weights (`layers 0-13 on cuda
/// (4.10 GiB, with the embeddings), 14-27 on cuda (3.80 GiB)`).
fn placement_line(m: &crate::model::Model) -> String {
    use crate::patching::memory::{gib, ModelShape};
    let map = m.device_map();
    let bytes = ModelShape::of(m).split_weight_bytes(map.devices().len());
    map.ranges()
        .iter()
        .map(|&(d, first, last)| {
            let name = crate::model::source::device_name(&map.devices()[d]);
            let with = if d == 0 { ", with the embeddings" } else { "" };
            format!("layers {first}-{last} on {name} ({}{with})", gib(bytes[d]))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The estimated peak of `headhunt patch` with its defaults on this device (the last layer's
/// resid_post, batch 4, the fast algorithm) over 100 prompts of 32 tokens (the paper's dataset
/// at 4 shots is about that), and what the device has free: whether a sweep fits, before one.
fn memory_line(m: &crate::model::Model) -> String {
    use crate::patching::memory::{self, gib, DataShape, ModelShape, Placement};
    let on_cpu = m.device.is_cpu();
    let spec = crate::patching::PatchSpec {
        receiver: crate::patching::Receiver::resid_post(m.n_layers() - 1),
        begin_layer: 0,
        batch_size: 4,
        algorithm: crate::patching::Algorithm::Fast,
        chunk_rows: crate::patching::default_chunk_rows(on_cpu),
        metric: Default::default(),
        senders: Default::default(),
    };
    let data = DataShape {
        n_prompts: 100,
        seq_len: 32,
        first_diff: 0,
    };
    let devices = m.device_map().devices();
    let split = !on_cpu && devices.len() > 1;
    let place = Placement {
        devices: if split { devices.len() } else { 1 },
        split_layers: split,
        on_cpu,
    };
    let estimates = memory::estimate(&ModelShape::of(m), &spec, data, place);
    let line = |e: &memory::Estimate, d: &candle_core::Device| {
        let free = memory::available(d).map_or("unknown".into(), gib);
        format!(
            "~{} peak for patch's defaults (100 prompts of 32 tokens; weights {}, caches {}, working {}); {free} free",
            gib(e.peak()),
            gib(e.weights),
            gib(e.caches),
            gib(e.working)
        )
    };
    match split {
        false => line(&estimates[0], &m.device),
        true => estimates
            .iter()
            .zip(devices)
            .enumerate()
            .map(|(i, (e, d))| format!("device {i}: {}", line(e, d)))
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// "0,2,4,...": at most 12 items, then an ellipsis and the count.
fn compact_list(items: &[String]) -> String {
    if items.len() <= 12 {
        items.join(",")
    } else {
        format!("{},... ({} layers)", items[..12].join(","), items.len())
    }
}

/// The logits file is saved before anything is printed (see `output`).
fn run(a: RunArgs) -> Result<output::Report> {
    let planned = output::Planned::optional("--save-logits", a.save_logits.as_deref(), a.force)?;
    let mut r = output::Report::new();
    let lm = a.model.load()?;
    checks::check_text_len(&lm, &a.prompt, "--prompt")?;
    let ids = lm.tokenizer.encode(&a.prompt)?;
    if ids.is_empty() {
        anyhow::bail!("--prompt: the text tokenizes to nothing");
    }
    checks::check_prompt(&lm, &ids, "--prompt")?;
    let tokens = lm.model.tokens_tensor(std::slice::from_ref(&ids))?;
    let started = std::time::Instant::now();
    let logits = lm.model.forward(&tokens).context("forward pass")?;
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(planned) = planned {
        let all: Vec<f64> = logits
            .flatten_all()?
            .to_dtype(candle_core::DType::F64)?
            .to_vec1::<f64>()?;
        let bytes = crate::results::npy::encode_f64(&all, &[ids.len(), lm.model.cfg.vocab_size]);
        r.save(output::Output::new(planned, bytes));
    }
    let last = logits
        .narrow(1, ids.len() - 1, 1)?
        .flatten_all()?
        .to_dtype(candle_core::DType::F32)?
        .to_vec1::<f32>()?;
    if let Some(bad) = last.iter().find(|x| !x.is_finite()) {
        let _ = writeln!(
            std::io::stderr(),
            "warning: the model's logits are not finite ({bad}): its weights hold NaN or Inf, or {} overflows",
            dtype_name(lm.model.dtype)
        );
    }
    out!(r, "tokens ({}):", ids.len());
    for (i, id) in ids.iter().enumerate() {
        out!(
            r,
            "  {i:>4}  {id:>7}  {}",
            printable(&lm.tokenizer.token_text(*id))
        );
    }
    let max = last.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let z: f64 = last.iter().map(|&x| ((x - max) as f64).exp()).sum();
    let mut order: Vec<usize> = (0..last.len()).collect();
    order.sort_by(|&i, &j| last[j].total_cmp(&last[i]));
    out!(r, "next token (top {}):", a.top.min(order.len()));
    out!(
        r,
        "  {:>4}  {:>7}  {:>10}  {:>8}  text",
        "rank",
        "id",
        "logit",
        "prob"
    );
    for (rank, &i) in order.iter().take(a.top).enumerate() {
        let p = ((last[i] - max) as f64).exp() / z;
        out!(
            r,
            "  {:>4}  {:>7}  {:>10.4}  {:>8.4}  {}",
            rank + 1,
            i,
            last[i],
            p,
            printable(&lm.tokenizer.token_text(i as u32))
        );
    }
    out!(r, "forward {:.3} s", elapsed);
    Ok(r)
}
