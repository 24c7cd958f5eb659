//! `headhunt` (no arguments) and `headhunt tui`: the terminal explorer.

use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;

use super::DataOptionArgs;
use crate::data::{DataFile, DataOptions};
use crate::patching::{Algorithm, Receiver};
use crate::tui::app::Setup;

#[derive(Args, Debug)]
pub struct TuiArgs {
    /// Model directory, .gguf file or hub id (default: the bundled demo model).
    #[arg(long, short = 'm')]
    pub model: Option<String>,
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    #[arg(long, default_value = "cpu")]
    pub device: String,
    #[arg(long)]
    pub dtype: Option<String>,
    /// Load a config.json (or GGUF metadata) with keys headhunt does not read; they may change
    /// the model's numbers, and results record them as a warning.
    #[arg(long)]
    pub allow_unknown_config_keys: bool,
    /// Dataset (default: the paper's setting1, nmax 9, offset +1 addition).
    #[arg(long, short = 'd')]
    pub data: Option<PathBuf>,
    #[command(flatten)]
    pub data_options: DataOptionArgs,
    #[arg(long, default_value_t = 4)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 0)]
    pub begin_layer: usize,
    /// Initial receiver (default: the last layer's resid_post).
    #[arg(long = "receiver", short = 'r')]
    pub receivers: Vec<String>,
    #[arg(long, value_enum, default_value_t = Algorithm::Fast)]
    pub algorithm: Algorithm,
    /// Where results are saved and the gallery looks.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    /// A saved result to open at start, or a head-groups file to apply (as `headhunt open FILE`).
    #[arg(long, value_name = "FILE")]
    pub open: Option<PathBuf>,
}

/// `headhunt open FILE [FILE …]`: the explorer, opened on a saved result, or on several
/// results side by side.
#[derive(Args, Debug)]
pub struct OpenArgs {
    /// A result file (`headhunt patch --out`, `s` in the explorer, the paper's results), or a
    /// head-groups file (`S` in the explorer): its groups and selection are applied to the
    /// loaded model's heatmap when the shape matches. Two or more result files open side by
    /// side, of any models and shapes, on a depth-normalized layer axis. A folder of shard
    /// parts (`patch --shard`) opens merged, and fills in as more parts land.
    #[arg(required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub tui: TuiArgs,
}

pub fn open(a: OpenArgs) -> Result<i32> {
    let mut tui = a.tui;
    let mut files = a.files;
    if files.len() == 1 {
        tui.open = files.pop();
        return run(tui);
    }
    // Every file must be a result: an error before the full-screen view starts.
    for p in &files {
        match crate::results::SavedFile::load(p)? {
            crate::results::SavedFile::Run(_) => {}
            _ => bail!(
                "{}: not a path-patching result (several files open side by side, results only)",
                p.display()
            ),
        }
    }
    let mut setup = setup(tui)?;
    setup.side_by_side = files;
    run_setup(setup)
}

pub fn setup(a: TuiArgs) -> Result<Setup> {
    let model = match a.model {
        Some(m) => m,
        None => {
            let dir = crate::demo::model_dir();
            if !dir.join("config.json").is_file() {
                bail!(
                    "no --model given and the bundled demo model is not at {}",
                    dir.display()
                );
            }
            dir.display().to_string()
        }
    };
    let data = match a.data {
        Some(d) => d,
        None => {
            let file = crate::demo::dataset();
            if !file.is_file() {
                bail!(
                    "no --data given and the bundled dataset is not at {}",
                    file.display()
                );
            }
            file
        }
    };
    let receiver = if a.receivers.is_empty() {
        None
    } else {
        Some(Receiver::parse_many(&a.receivers)?)
    };
    // Default: the paper's interactive demo size (12), or the whole file if smaller.
    let mut options = DataOptions::from(a.data_options);
    options.examples = match options.examples {
        Some(0) => None,
        Some(n) => Some(n),
        None => match crate::data::count_examples(&data) {
            Ok(n) if n <= 12 => None,
            _ => Some(12),
        },
    };
    let data = DataFile { data, options };
    // Fail on bad data flags before the terminal switches to the full-screen view.
    data.spec()?;
    if a.batch_size == 0 {
        bail!("--batch-size 0: expected at least 1");
    }
    // A file that cannot be opened is an error before the full-screen view starts.
    // A folder holds shard parts (it may hold none yet: an array job that has not started).
    match &a.open {
        Some(p) if p.is_dir() => drop(crate::results::shard::find_parts(std::slice::from_ref(p))?),
        Some(p) => drop(crate::results::SavedFile::load(p)?),
        None => {}
    }
    let mut gallery_dirs = Vec::new();
    let paper = crate::demo::locate("data/paper/results");
    if paper.is_dir() {
        gallery_dirs.push(paper);
    }
    Ok(Setup {
        model,
        tokenizer: a.tokenizer,
        device: a.device,
        dtype: a.dtype,
        allow_unknown_config_keys: a.allow_unknown_config_keys,
        data,
        batch_size: a.batch_size,
        begin_layer: a.begin_layer,
        algorithm: a.algorithm,
        receiver,
        results_dir: a.results,
        gallery_dirs,
        open: a.open,
        side_by_side: Vec::new(),
    })
}

/// The explorer, with SIGTERM, SIGHUP and `kill -INT` honoured: the first one makes it save
/// what is unsaved and end (exit status 128 + the signal, as `patch` does); a second one ends
/// the process at once. (Ctrl-C typed in the explorer is a key, not a signal: it is `q`.)
pub fn run(a: TuiArgs) -> Result<i32> {
    run_setup(setup(a)?)
}

/// The explorer on `setup` (see [`run`]).
fn run_setup(setup: Setup) -> Result<i32> {
    let _honour = super::signals::Honour::start();
    let hooks = crate::tui::SignalHooks {
        stopped: || super::signals::received().is_some(),
        while_saving: |f| super::signals::while_saving(f),
    };
    let stopped = crate::tui::run(setup, hooks)?;
    Ok(match super::signals::received() {
        Some(sig) if stopped => super::signals::exit_code(sig),
        _ => 0,
    })
}
