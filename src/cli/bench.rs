//! `headhunt bench`: times the fast and the literal algorithm on the same inputs and prints
//! seconds, their ratio and peak memory. Works on a real model (`--model`) or on random weights
//! of a real model's shape (`--random-weights gemma-2-9b`, no download).

use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;
use std::time::Instant;

use crate::data::TokenizedPair;
use crate::model::presets::{preset, PRESETS};
use crate::model::source::{device_name, dtype_name, parse_device, parse_dtype};
use crate::model::{HeadInput, Model};
use crate::patching::{self, Algorithm, PatchSpec, Receiver, Silent};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// A model directory, .gguf file or hub id (or use --random-weights).
    #[arg(long, short = 'm', conflicts_with = "random_weights")]
    pub model: Option<String>,
    /// Random weights of a real architecture: gemma-2-9b, llama-3-8b, mistral-7b, llama-2-7b, gemma-2-2b.
    #[arg(long)]
    pub random_weights: Option<String>,
    /// Override the layer count of --random-weights (e.g. to fit a small machine).
    #[arg(long)]
    pub layers: Option<usize>,
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// cpu, cuda or cuda:N; a list (`cuda:0,cuda:1`) with `--place layers`.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// `layers`: the model's layers split over the devices of `--device` (pipeline placement).
    #[arg(long)]
    pub place: Option<String>,
    #[arg(long)]
    pub dtype: Option<String>,
    /// Prompt pairs to patch on (default: synthetic pairs of the paper's 4-shot length, 29 tokens).
    #[arg(long)]
    pub data: Option<PathBuf>,
    #[arg(long, default_value_t = 4)]
    pub shots: usize,
    #[arg(long, default_value_t = 1, allow_hyphen_values = true)]
    pub offset: i64,
    /// Prompt pairs in the first measurement.
    #[arg(long, default_value_t = 12)]
    pub examples: usize,
    /// Prompt pairs in the second measurement (0 to skip it).
    #[arg(long, default_value_t = 100)]
    pub large: usize,
    /// Prompts per batch (default: all of them in one batch).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Head receiver of the second sweep, `L.H.v` (default: a head three layers from the top).
    #[arg(long)]
    pub head_receiver: Option<String>,
    /// Sender layers the literal algorithm runs (the rest is extrapolated). Default: all of
    /// them for models under 100M parameters, else 2.
    #[arg(long)]
    pub reference_layers: Option<usize>,
    /// Skip the literal algorithm.
    #[arg(long)]
    pub no_reference: bool,
    /// Pass-1 rows per chunk of sender layers advancing together (0: one layer at a time).
    /// Default: 0 on CPU, 16384 on GPU.
    #[arg(long)]
    pub chunk_rows: Option<usize>,
    /// Timed repetitions of each fast measurement (the minimum is reported).
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Measure only these parts, comma-separated (default: all). A head-receiver sweep of a
    /// 0.5B model on a CPU takes minutes per 12 prompts, so timing just the circuit
    /// evaluation of 100 prompts needs a way to leave the sweeps out.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<Part>,
}

/// One measurement of `headhunt bench`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The fast sweep to the last layer's resid_post.
    Resid,
    /// The fast sweep to a head receiver.
    Head,
    /// The literal (reference) algorithm to the last layer's resid_post.
    Reference,
    /// One circuit evaluation F(C).
    Circuit,
    /// The fast sweep to the last layer's resid_post with heads and MLPs as senders
    /// (`--senders heads,mlp`), and its ratio to heads only.
    Mlp,
    /// The fast head-receiver sweep restricted to positions: senders and the receiver at the
    /// last position (`--sender-positions last --receiver L.H.v@last`), and its ratio to the
    /// unrestricted one.
    Positions,
}

impl BenchArgs {
    fn wants(&self, part: Part) -> bool {
        (self.only.is_empty() || self.only.contains(&part))
            && !(part == Part::Reference && self.no_reference)
    }
}

/// Synthetic prompt pairs shaped like the paper's n-shot single-digit addition: BOS, then n
/// lines `a + b = c \n`, then `a + b =` (6n + 5 tokens); the contrast prompt differs in every c.
fn synthetic_pairs(vocab: usize, bos: u32, shots: usize, n: usize) -> Vec<TokenizedPair> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = |m: usize| -> u32 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (10 + (state % (m as u64 - 10))) as u32
    };
    let (plus, eq, nl) = (next(vocab), next(vocab), next(vocab));
    (0..n)
        .map(|i| {
            let mut normal = vec![bos];
            let mut contrast = vec![bos];
            for _ in 0..shots {
                let (a, b, c, c1) = (next(vocab), next(vocab), next(vocab), next(vocab));
                normal.extend([a, plus, b, eq, c, nl]);
                contrast.extend([a, plus, b, eq, c1, nl]);
            }
            let (a, b) = (next(vocab), next(vocab));
            normal.extend([a, plus, b, eq]);
            contrast.extend([a, plus, b, eq]);
            TokenizedPair {
                index: i,
                normal_ids: normal,
                contrast_ids: contrast,
                normal_answer: next(vocab),
                contrast_answer: next(vocab),
                normal_output: String::new(),
                contrast_output: String::new(),
                positions: None,
            }
        })
        .collect()
}

/// Peak memory while measuring: device memory in use on CUDA (sampled), the process's peak
/// resident set on CPU.
struct PeakMemory {
    /// One sampler per device a placed model uses (one for a model on one GPU).
    #[cfg(feature = "cuda")]
    samplers: Vec<crate::model::cuda_memory::PeakSampler>,
}

impl PeakMemory {
    fn start(_model: &Model) -> Self {
        PeakMemory {
            #[cfg(feature = "cuda")]
            samplers: _model
                .device_map()
                .devices()
                .iter()
                .filter_map(crate::model::cuda_memory::PeakSampler::start)
                .collect(),
        }
    }

    fn finish(self, model: &Model) -> String {
        let weights =
            model.n_params as f64 * model.dtype.size_in_bytes() as f64 / (1u64 << 30) as f64;
        #[cfg(feature = "cuda")]
        if !self.samplers.is_empty() {
            let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
            let split = crate::patching::memory::ModelShape::of(model)
                .split_weight_bytes(self.samplers.len());
            let one = self.samplers.len() == 1;
            let parts: Vec<String> = self
                .samplers
                .into_iter()
                .zip(split)
                .enumerate()
                .map(|(i, (s, w))| {
                    let peak = gib(s.finish() as u64);
                    let on = if one {
                        "the device".to_string()
                    } else {
                        format!("device {i}")
                    };
                    format!(
                        "{peak:.2} GiB peak on {on} (weights {:.2} GiB, so weights + {:.2} GiB)",
                        gib(w),
                        peak - gib(w)
                    )
                })
                .collect();
            return parts.join("; ");
        }
        format!("{}, weights {weights:.2} GiB", cpu_peak())
    }
}

/// The process's peak resident set.
fn cpu_peak() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|k| k.parse::<f64>().ok());
    match hwm {
        Some(kb) => format!("{:.2} GiB peak resident (CPU)", kb / 1024.0 / 1024.0),
        None => "unknown".into(),
    }
}

fn sync(model: &Model) -> Result<()> {
    for d in model.device_map().devices() {
        d.synchronize()?;
    }
    Ok(())
}

/// The head-receiver sweep with senders and receiver at the last position, beside the same
/// sweep at every position (`all_s` seconds; the "position-restricted receivers"
/// figure): the masks cost little, the caches are the same.
fn time_positioned(
    model: &Model,
    pairs: &[TokenizedPair],
    head: &Receiver,
    spec: &PatchSpec,
    all_s: f64,
    repeat: usize,
) -> Result<()> {
    use crate::data::PositionSet;
    let last = vec![Some(PositionSet::Last); head.parts()];
    let at_last = crate::data::with_positions(pairs, &[], Some(&PositionSet::Last), &last)?;
    let (s, cache) = time_fast(model, &at_last, spec, repeat)?;
    println!(
        "fast        {:<22} {:>9.4} s  (cache passes {:.4} s + sweep {:.4} s, {} senders at the last position)",
        format!("{}@last", head.label()),
        s,
        cache,
        s - cache,
        spec.n_senders(model.n_heads())
    );
    println!(
        "ratio       @last / every position, {}: {:.2}x ({all_s:.4} s at every position)",
        head.label(),
        s / all_s
    );
    Ok(())
}

/// Best-of-`repeat` seconds of a fast sweep (caches included) and its cache time.
fn time_fast(
    model: &Model,
    pairs: &[TokenizedPair],
    spec: &PatchSpec,
    repeat: usize,
) -> Result<(f64, f64)> {
    let mut best = (f64::INFINITY, 0.0);
    for _ in 0..repeat.max(1) {
        sync(model)?;
        let t = Instant::now();
        let out = patching::run(model, pairs, spec, &mut Silent)?;
        sync(model)?;
        let s = t.elapsed().as_secs_f64();
        if s < best.0 {
            best = (s, out.cache_seconds);
        }
    }
    Ok(best)
}

/// The devices of `--device`: one, or a list placed with `--place layers`.
fn bench_devices(a: &BenchArgs) -> Result<Vec<candle_core::Device>> {
    let names: Vec<&str> = a.device.split(',').map(str::trim).collect();
    match a.place.as_deref() {
        None if names.len() > 1 => bail!(
            "--device {}: bench times one model; --place layers splits its layers over the list",
            a.device
        ),
        None | Some("layers") => {}
        Some(other) => bail!("--place {other:?}: bench takes layers (one model over the devices)"),
    }
    names.iter().map(|d| Ok(parse_device(d)?)).collect()
}

pub fn run(a: BenchArgs) -> Result<()> {
    let devices = bench_devices(&a)?;
    let device = devices[0].clone();
    let dtype = parse_dtype(a.dtype.as_deref(), &device)?;
    let started = Instant::now();
    let (model, tokenizer, label) = match (&a.model, &a.random_weights) {
        (Some(m), _) => {
            let opts = crate::model::source::LoadOptions {
                tokenizer: a.tokenizer.clone(),
                allow_unknown_config_keys: false,
            };
            let lm = crate::model::source::load_with_progress(
                m,
                &opts,
                &devices,
                dtype,
                &mut |_, _| {},
            )?;
            (lm.model, Some(lm.tokenizer), lm.origin.label())
        }
        (None, Some(arch)) => {
            let cfg = preset(arch, a.layers)?;
            (
                Model::random_placed(cfg, &devices, dtype)?,
                None,
                format!("{arch} (random weights)"),
            )
        }
        (None, None) => bail!("give --model or --random-weights ({})", PRESETS.join(", ")),
    };
    sync(&model)?;
    let load_s = started.elapsed().as_secs_f64();
    let (n_layers, n_heads) = (model.n_layers(), model.n_heads());
    let make_pairs = |n: usize| -> Result<Vec<TokenizedPair>> {
        match (&a.data, &tokenizer) {
            (Some(file), Some(tok)) => {
                let spec = crate::data::DataOptions {
                    shots: a.shots,
                    offset: Some(a.offset),
                    examples: Some(n),
                    skip_mismatched: true,
                    ..Default::default()
                }
                .spec(file)?;
                Ok(crate::data::load_and_tokenize(&spec, tok)?.pairs)
            }
            (Some(_), None) => bail!("--data needs a model with a tokenizer"),
            (None, _) => Ok(synthetic_pairs(
                model.cfg.vocab_size,
                model.cfg.bos_token_id.unwrap_or(2),
                a.shots,
                n,
            )),
        }
    };
    let head = match &a.head_receiver {
        Some(h) => Receiver::parse_one(h)?,
        // Near the top like the paper's 39.7 of 42 layers; mid-model for tiny ones.
        None => Receiver::head(
            n_layers.saturating_sub(3).max(n_layers / 2),
            7.min(n_heads - 1),
            HeadInput::V,
        ),
    };
    let resid = Receiver::resid_post(n_layers - 1);
    let ref_layers = a
        .reference_layers
        .unwrap_or(if model.n_params < 100_000_000 {
            n_layers
        } else {
            2
        })
        .clamp(1, n_layers);

    println!(
        "model       {label}: {n_layers} layers × {n_heads} heads, d_model {}, {} parameters, {} on {}",
        model.cfg.d_model,
        if model.n_params >= 1_000_000_000 {
            format!("{:.2} B", model.n_params as f64 / 1e9)
        } else {
            format!("{:.2} M", model.n_params as f64 / 1e6)
        },
        dtype_name(dtype),
        device_name(&device)
    );
    if model.device_map().is_split() {
        println!("placement   {}", super::placement_line(&model));
    }
    println!("load/init   {load_s:.2} s");
    let mut sizes = vec![a.examples];
    if a.large > 0 && a.large != a.examples {
        sizes.push(a.large);
    }
    for n in sizes {
        let pairs = make_pairs(n)?;
        if pairs.is_empty() {
            bail!("no prompt pairs to benchmark on");
        }
        // Default: every prompt in one batch; head receivers keep every position of every
        // layer in the cache, so at most 32 prompts a batch bound their memory.
        let batch_size = a.batch_size.unwrap_or(pairs.len()).max(1);
        let head_batch = a.batch_size.unwrap_or(pairs.len().min(32)).max(1);
        let len = pairs[0].len();
        println!();
        println!(
            "== {} prompt pairs of {len} tokens, batch size {batch_size} ({head_batch} for the head receiver)",
            pairs.len()
        );
        let memory = PeakMemory::start(&model);
        let spec = |receiver: &Receiver, begin: usize, algorithm: Algorithm| PatchSpec {
            receiver: receiver.clone(),
            begin_layer: begin,
            batch_size,
            algorithm,
            chunk_rows: a
                .chunk_rows
                .unwrap_or(crate::patching::default_chunk_rows(model.device.is_cpu())),
            metric: Default::default(),
            senders: Default::default(),
        };
        let fast_resid = spec(&resid, 0, Algorithm::Fast);
        // The fast resid sweep is the reference's yardstick (its ratio).
        let mut fast_s = None;
        if a.wants(Part::Resid) {
            let (s, cache) = time_fast(&model, &pairs, &fast_resid, a.repeat)?;
            println!(
                "fast        {:<22} {:>9.4} s  (cache passes {:.4} s + sweep {:.4} s, {} senders)",
                resid.label(),
                s,
                cache,
                s - cache,
                fast_resid.n_senders(n_heads)
            );
            fast_s = Some(s);
        }
        let fast_head = PatchSpec {
            batch_size: head_batch,
            ..spec(&head, 0, Algorithm::Fast)
        };
        // The whole head sweep, when timed, is also the yardstick of the restricted one.
        let mut head_s = None;
        if a.wants(Part::Head) {
            let (hs, hcache) = time_fast(&model, &pairs, &fast_head, a.repeat)?;
            println!(
                "fast        {:<22} {:>9.4} s  (cache passes {:.4} s + sweep {:.4} s, {} senders)",
                head.label(),
                hs,
                hcache,
                hs - hcache,
                fast_head.n_senders(n_heads)
            );
            head_s = Some(hs);
        }
        if a.wants(Part::Positions) {
            let all_s = match head_s {
                Some(s) => s,
                None => time_fast(&model, &pairs, &fast_head, a.repeat)?.0,
            };
            time_positioned(&model, &pairs, &head, &fast_head, all_s, a.repeat)?;
        }
        if a.wants(Part::Mlp) {
            let with_mlp = PatchSpec {
                senders: crate::patching::Senders::HeadsAndMlp,
                ..fast_resid.clone()
            };
            let (ms, mcache) = time_fast(&model, &pairs, &with_mlp, a.repeat)?;
            println!(
                "fast        {:<22} {:>9.4} s  (cache passes {:.4} s + sweep {:.4} s, {} senders: heads and MLPs)",
                resid.label(),
                ms,
                mcache,
                ms - mcache,
                with_mlp.n_senders(n_heads)
            );
            if let Some(s) = fast_s {
                println!(
                    "ratio       heads,mlp / heads, {}: {:.2}x",
                    resid.label(),
                    ms / s
                );
            }
        }
        if a.wants(Part::Reference) {
            let reference = spec(&resid, n_layers - ref_layers, Algorithm::Reference);
            time_reference(&model, &pairs, &reference, ref_layers, fast_s)?;
        }
        if a.wants(Part::Circuit) {
            time_circuit(&model, &pairs, batch_size, a.repeat)?;
        }
        println!("memory      {}", memory.finish(&model));
    }
    Ok(())
}

/// Times the literal algorithm on the top `ref_layers` sender layers and extrapolates to all
/// of them (its cost per sender layer is the same for every layer); the ratio to the fast
/// sweep when that was measured too.
fn time_reference(
    model: &Model,
    pairs: &[TokenizedPair],
    reference: &PatchSpec,
    ref_layers: usize,
    fast_s: Option<f64>,
) -> Result<()> {
    let (n_layers, n_heads) = (model.n_layers(), model.n_heads());
    sync(model)?;
    let t = Instant::now();
    let out = patching::run(model, pairs, reference, &mut Silent)?;
    sync(model)?;
    let total = t.elapsed().as_secs_f64();
    let per_layer = (total - out.cache_seconds) / ref_layers as f64;
    let full = out.cache_seconds + per_layer * n_layers as f64;
    let how = if ref_layers == n_layers {
        "measured".to_string()
    } else {
        format!("extrapolated from {ref_layers} of {n_layers} sender layers")
    };
    let label = reference.receiver.label();
    println!(
        "reference   {label:<22} {full:>9.4} s  ({how}; {:.4} s per sender)",
        per_layer / n_heads as f64
    );
    if let Some(s) = fast_s {
        println!("ratio       reference / fast, {label}: {:.1}x", full / s);
    }
    Ok(())
}

/// Best-of-`repeat` seconds of one circuit evaluation F(C) (the paper's §4) on these pairs: the cache passes (normal run
/// with z, contrast run) plus one circuit pass. The circuit stands in for the paper's: the top
/// three layers' first two heads at every position and the middle layer's first two at the
/// last position (the cost does not depend on which positions are kept).
fn time_circuit(
    model: &Model,
    pairs: &[TokenizedPair],
    batch_size: usize,
    repeat: usize,
) -> Result<()> {
    use crate::analysis::circuit::{Circuit, Evaluator, Group};
    use crate::analysis::positions::PositionSet;
    let (nl, nh) = (model.n_layers(), model.n_heads().min(2));
    let group = |name: &str, layers: Vec<usize>, positions| Group {
        name: name.into(),
        heads: layers
            .into_iter()
            .flat_map(|l| (0..nh).map(move |h| (l, h)))
            .collect(),
        positions,
    };
    let circuit = Circuit {
        groups: vec![
            group(
                "top",
                (nl.saturating_sub(3)..nl).collect(),
                PositionSet::All,
            ),
            group("mid", vec![nl / 2], PositionSet::Last),
        ],
    };
    // Best of `repeat`, like the fast sweeps.
    let mut best = (f64::INFINITY, 0.0, 0.0);
    for _ in 0..repeat.max(1) {
        sync(model)?;
        let t = Instant::now();
        let mut ev = Evaluator::new(model, pairs, None, batch_size)?;
        sync(model)?;
        let cache = t.elapsed().as_secs_f64();
        let f = ev.f(&circuit)?;
        sync(model)?;
        let total = t.elapsed().as_secs_f64();
        if total < best.0 {
            best = (total, cache, ev.faithfulness(f));
        }
    }
    let (total, cache, faith) = best;
    println!(
        "circuit     {:<22} {total:>9.4} s  (cache passes {cache:.4} s + circuit pass {:.4} s; faithfulness {:.3})",
        format!("F(C), {} heads", circuit.heads().len()),
        total - cache,
        faith
    );
    Ok(())
}
