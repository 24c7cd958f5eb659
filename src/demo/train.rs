//! Training the demo model (`headhunt train-demo`): seeded, on CPU or CUDA, with loss and
//! held-out accuracy per k as it goes; writes a Hugging Face model directory.

/// Progress on stdout; a closed stdout must not stop (or lose) minutes of training.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarMap};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::net::{Net, NetConfig};
use super::task::{self, EvalPrompt, Sampler};
use crate::data::{load_pairs, DataSpec, TaskKind};
use crate::model::{RunOptions, Start};

/// Everything that determines a training run.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TrainConfig {
    pub net: NetConfig,
    /// The k values of off-by-k, one drawn per sequence.
    pub offsets: Vec<i64>,
    /// Lines per training sequence, one choice drawn per step (shots trained: 1 ..= the
    /// longest - 1).
    pub lines: Vec<usize>,
    pub steps: usize,
    /// Tokens per step: a step of sequences of L lines holds batch_tokens / (6 L) of them.
    pub batch_tokens: usize,
    /// Peak learning rate (AdamW), reached after `warmup` steps, then cosine decay to
    /// `lr * final_lr_frac`.
    pub lr: f64,
    pub warmup: usize,
    pub final_lr_frac: f64,
    pub weight_decay: f64,
    pub seed: u64,
    /// Evaluate on the held-out prompts every this many steps (0: only at the end).
    pub eval_every: usize,
    /// Print the running loss every this many steps.
    pub log_every: usize,
    /// Stop early (and still save) after this many minutes.
    pub max_minutes: Option<f64>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            net: NetConfig {
                n_layers: 3,
                n_heads: 4,
                d_model: 64,
                d_mlp: 256,
                vocab_size: task::VOCAB_SIZE,
                rope_theta: 10000.0,
                norm_eps: 1e-6,
                max_positions: 256,
            },
            offsets: vec![-2, -1, 0, 1, 2],
            lines: vec![9, 17, 33],
            steps: 3000,
            batch_tokens: 3456,
            lr: 3e-3,
            warmup: 200,
            final_lr_frac: 0.05,
            weight_decay: 0.01,
            seed: 1234,
            eval_every: 500,
            log_every: 100,
            max_minutes: None,
        }
    }
}

impl TrainConfig {
    /// Sequences per step when they have `lines` lines.
    pub fn batch_rows(&self, lines: usize) -> usize {
        (self.batch_tokens / (task::LINE_TOKENS * lines)).max(1)
    }

    fn lr_at(&self, step: usize) -> f64 {
        if step < self.warmup {
            return self.lr * (step + 1) as f64 / self.warmup as f64;
        }
        let t = (step - self.warmup) as f64 / (self.steps - self.warmup).max(1) as f64;
        let cos = 0.5 * (1.0 + (std::f64::consts::PI * t.min(1.0)).cos());
        self.lr * (self.final_lr_frac + (1.0 - self.final_lr_frac) * cos)
    }
}

/// Shot counts of the held-out evaluation on the paper's files.
pub const PAPER_SHOTS: &[usize] = &[4, 16, 32];
/// Shot counts of the generated held-out prompts.
pub const GENERATED_SHOTS: &[usize] = &[1, 2, 4, 8, 16, 32];

/// The held-out prompts: the paper's setting1 nmax-9 files (4, 16 and 32 shots: the contrast
/// prompts of each file's k, and the k=0 normal prompts of every file) and generated prompts of
/// several shot counts from a seed of their own.
pub struct EvalSets {
    /// (k, shots) → the paper file's contrast prompts.
    pub paper: BTreeMap<(i64, usize), Vec<EvalPrompt>>,
    /// The normal (k=0) prompts of the default dataset (4 shots), paired with `paper[&(1, 4)]`.
    pub paper_normal: Vec<EvalPrompt>,
    pub generated: Vec<EvalPrompt>,
    /// Every held-out prompt with its answer (banned from training).
    pub banned: HashSet<String>,
}

/// The paper's setting1 nmax-9 file for offset k.
pub fn paper_file(paper_dir: &Path, k: i64) -> PathBuf {
    paper_dir.join(format!("addition_nmax9_offset{k}.jsonl"))
}

/// The prompts of a paper file, 4 shots: the contrast prompts (k = the file's offset) and the
/// normal ones (k = 0).
pub fn paper_prompts(
    file: &Path,
    k: i64,
    shots: usize,
) -> Result<(Vec<EvalPrompt>, Vec<EvalPrompt>)> {
    let mut spec = DataSpec::new(file, TaskKind::Addition);
    spec.shots = shots;
    spec.offset = k;
    let pairs = load_pairs(&spec)?;
    let contrast = pairs
        .iter()
        .map(|p| EvalPrompt {
            input: p.contrast_input.clone(),
            answer: p.contrast_output.clone(),
            k,
            shots,
        })
        .collect();
    let normal = pairs
        .iter()
        .map(|p| EvalPrompt {
            input: p.normal_input.clone(),
            answer: p.normal_output.clone(),
            k: 0,
            shots,
        })
        .collect();
    Ok((contrast, normal))
}

impl EvalSets {
    pub fn build(paper_dir: &Path, offsets: &[i64], seed: u64) -> Result<Self> {
        let mut paper = BTreeMap::new();
        let mut paper_normal = Vec::new();
        let mut banned = HashSet::new();
        for k in -2..=2i64 {
            let file = paper_file(paper_dir, k);
            for &shots in PAPER_SHOTS {
                let (contrast, normal) = paper_prompts(&file, k, shots)
                    .with_context(|| format!("held-out prompts from {}", file.display()))?;
                banned.extend(contrast.iter().chain(&normal).map(EvalPrompt::full_text));
                if k == 1 && shots == 4 {
                    paper_normal = normal;
                }
                if offsets.contains(&k) {
                    paper.insert((k, shots), contrast);
                }
            }
        }
        let generated = task::generated_eval(seed, offsets, GENERATED_SHOTS, 100);
        banned.extend(generated.iter().map(EvalPrompt::full_text));
        Ok(EvalSets {
            paper,
            paper_normal,
            generated,
            banned,
        })
    }
}

/// A model as the evaluation sees it: a batch of equal-length token rows in, the argmax of the
/// last position of each out.
pub type LastArgmax<'a> = dyn FnMut(&[Vec<u32>]) -> Result<Vec<u32>> + 'a;

/// Predicted next tokens (argmax over the whole vocabulary) at the end of each prompt, given a
/// function from a batch of equal-length token rows to their last-position predictions.
pub fn predict(
    prompts: &[EvalPrompt],
    encode: &dyn Fn(&str) -> Result<Vec<u32>>,
    last_argmax: &mut LastArgmax,
) -> Result<Vec<u32>> {
    let mut out = vec![0u32; prompts.len()];
    let mut by_len: BTreeMap<usize, Vec<(usize, Vec<u32>)>> = BTreeMap::new();
    for (i, p) in prompts.iter().enumerate() {
        let ids = encode(&p.input)?;
        by_len.entry(ids.len()).or_default().push((i, ids));
    }
    for group in by_len.values() {
        for chunk in group.chunks(256) {
            let rows: Vec<Vec<u32>> = chunk.iter().map(|(_, r)| r.clone()).collect();
            let pred = last_argmax(&rows)?;
            for ((i, _), p) in chunk.iter().zip(pred) {
                out[*i] = p;
            }
        }
    }
    Ok(out)
}

/// The answer token of a single-digit answer.
pub fn answer_id(answer: &str) -> u32 {
    task::encode(answer)[1]
}

/// Fraction of prompts whose prediction is their answer.
pub fn accuracy(prompts: &[EvalPrompt], pred: &[u32]) -> f64 {
    let ok = prompts
        .iter()
        .zip(pred)
        .filter(|(p, &id)| answer_id(&p.answer) == id)
        .count();
    ok as f64 / prompts.len().max(1) as f64
}

/// Held-out accuracies of a model (given as its last-position predictor).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct EvalReport {
    /// k → shots → accuracy on the paper's setting1 file for k (100 prompts).
    pub paper: BTreeMap<i64, BTreeMap<usize, f64>>,
    /// k → shots → accuracy on generated prompts (100 each).
    pub generated: BTreeMap<i64, BTreeMap<usize, f64>>,
    /// Default dataset (offset +1 file, 4 shots): accuracy on the normal (k=0) prompts.
    pub paper_normal: f64,
    /// Default dataset: fraction of examples where the normal and the contrast prompt (same
    /// query, k=0 vs k=1 demonstrations) get different predictions, and where both are right.
    pub demo_dependence_differs: f64,
    pub demo_dependence_both_right: f64,
}

impl EvalReport {
    pub fn measure(
        sets: &EvalSets,
        encode: &dyn Fn(&str) -> Result<Vec<u32>>,
        last_argmax: &mut LastArgmax,
    ) -> Result<Self> {
        let mut r = EvalReport::default();
        for (&(k, shots), prompts) in &sets.paper {
            let pred = predict(prompts, encode, last_argmax)?;
            r.paper
                .entry(k)
                .or_default()
                .insert(shots, accuracy(prompts, &pred));
        }
        let pred = predict(&sets.generated, encode, last_argmax)?;
        let mut groups: BTreeMap<(i64, usize), (usize, usize)> = BTreeMap::new();
        for (p, &id) in sets.generated.iter().zip(&pred) {
            let e = groups.entry((p.k, p.shots)).or_default();
            e.1 += 1;
            if answer_id(&p.answer) == id {
                e.0 += 1;
            }
        }
        for ((k, s), (ok, n)) in groups {
            r.generated
                .entry(k)
                .or_default()
                .insert(s, ok as f64 / n as f64);
        }
        if let Some(contrast) = sets.paper.get(&(1, 4)) {
            let normal = &sets.paper_normal;
            let pn = predict(normal, encode, last_argmax)?;
            let pc = predict(contrast, encode, last_argmax)?;
            r.paper_normal = accuracy(normal, &pn);
            let n = normal.len().max(1) as f64;
            r.demo_dependence_differs =
                pn.iter().zip(&pc).filter(|(a, b)| a != b).count() as f64 / n;
            r.demo_dependence_both_right = normal
                .iter()
                .zip(contrast)
                .zip(pn.iter().zip(&pc))
                .filter(|((a, b), (x, y))| {
                    answer_id(&a.answer) == **x && answer_id(&b.answer) == **y
                })
                .count() as f64
                / n;
        }
        Ok(r)
    }

    /// A few lines: per k, the accuracy on the paper's files and on generated prompts, per
    /// shot count.
    pub fn table(&self) -> String {
        let cols = |m: &BTreeMap<i64, BTreeMap<usize, f64>>| -> Vec<usize> {
            let mut v: Vec<usize> = m.values().flat_map(|x| x.keys().copied()).collect();
            v.sort();
            v.dedup();
            v
        };
        let (pc, gc) = (cols(&self.paper), cols(&self.generated));
        let mut s = String::from("     k |");
        for n in &pc {
            s.push_str(&format!(" paper{n:>3}"));
        }
        s.push_str(" |");
        for n in &gc {
            s.push_str(&format!("  gen{n:>3}"));
        }
        s.push_str("  (accuracy % by shots)\n");
        let cell = |m: &BTreeMap<i64, BTreeMap<usize, f64>>, k: i64, n: usize, w: usize| {
            m.get(&k)
                .and_then(|x| x.get(&n))
                .map_or(format!("{:>w$}", "-"), |a| format!("{:>w$.1}", 100.0 * a))
        };
        for &k in self.generated.keys() {
            s.push_str(&format!("  {k:>+3} |"));
            for &n in &pc {
                s.push_str(&format!(" {}", cell(&self.paper, k, n, 8)));
            }
            s.push_str(" |");
            for &n in &gc {
                s.push_str(&format!(" {}", cell(&self.generated, k, n, 7)));
            }
            s.push('\n');
        }
        s.push_str(&format!(
            "  default dataset (offset +1 file, 4 shots): normal prompts {:.1}%, contrast {:.1}%; \
             k=0 vs k=1 demos give different answers on {:.0}% of queries, both right on {:.0}%",
            100.0 * self.paper_normal,
            100.0
                * self
                    .paper
                    .get(&1)
                    .and_then(|m| m.get(&4))
                    .copied()
                    .unwrap_or(0.0),
            100.0 * self.demo_dependence_differs,
            100.0 * self.demo_dependence_both_right
        ));
        s
    }
}

/// The training model's last-position argmax for a batch of equal-length rows.
fn net_argmax(net: &Net, device: &Device, rows: &[Vec<u32>]) -> Result<Vec<u32>> {
    let t = rows[0].len();
    let flat: Vec<u32> = rows.iter().flatten().copied().collect();
    let tokens = Tensor::from_vec(flat, (rows.len(), t), device)?;
    let idx: Vec<u32> = (0..rows.len()).map(|r| (r * t + t - 1) as u32).collect();
    let idx = Tensor::from_vec(idx, rows.len(), device)?;
    let logits = net.logits_at(&tokens, &idx)?.detach();
    Ok(logits.argmax(1)?.to_vec1::<u32>()?)
}

/// The engine's (a loaded model's) last-position argmax for a batch of equal-length rows.
pub fn engine_argmax(model: &crate::model::Model, rows: &[Vec<u32>]) -> Result<Vec<u32>> {
    let tokens = model.tokens_tensor(rows)?;
    let out = model.run(
        Start::Tokens(&tokens),
        RunOptions {
            stop_after: None,
            last_position_only: true,
        },
        &mut crate::model::Hooks::none(),
    )?;
    let logits = out.logits.expect("full run").squeeze(1)?;
    Ok(logits.argmax(1)?.to_vec1::<u32>()?)
}

fn write_json(dir: &Path, name: &str, v: &serde_json::Value) -> Result<()> {
    let path = dir.join(name);
    // The command checked before training which files it may replace.
    crate::results::write_atomic(
        &path,
        (serde_json::to_string_pretty(v)? + "\n").as_bytes(),
        true,
    )
    .with_context(|| format!("writing {}", path.display()))
}

/// Writes a Hugging Face model directory: model.safetensors (f32, the variables under their
/// checkpoint names), config.json and tokenizer.json.
pub fn save_model_dir(vars: &VarMap, net: &NetConfig, out: &Path) -> Result<()> {
    use crate::results::write;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    // Written beside and renamed, so a crash mid-write never leaves half a model; an ending
    // signal waits for the write.
    let _writing = write::Writing::start();
    let model = out.join("model.safetensors");
    let tmp = write::temp_path(&model);
    let saved = vars
        .save(&tmp)
        .map_err(anyhow::Error::from)
        .and_then(|()| Ok(write::check_target(&model, true)?))
        .and_then(|()| Ok(std::fs::rename(&tmp, &model)?));
    if let Err(e) = saved {
        let _ = std::fs::remove_file(&tmp);
        bail!("cannot write {}: {e:#}", model.display());
    }
    write_json(out, "config.json", &net.hf_config())?;
    write_json(out, "tokenizer.json", &task::tokenizer_json())?;
    Ok(())
}

/// What a training run did, saved as `training.json` beside the model.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TrainSummary {
    pub config: TrainConfig,
    pub steps_done: usize,
    pub seconds: f64,
    pub device: String,
    pub threads: usize,
    /// Mean training loss (answer digits) over the last `log_every` steps.
    pub final_loss: f64,
    /// (step, mean loss over the preceding log interval)
    pub loss_curve: Vec<(usize, f64)>,
    pub sequences_redrawn_for_held_out: usize,
    /// Held-out accuracy of the saved model, measured with the engine after loading it back.
    pub eval: EvalReport,
    /// Where the model went when `out` could not take it (see `out_or_recovered`).
    #[serde(skip)]
    pub recovered_to: Option<std::path::PathBuf>,
}

/// Saves the model at `out`, or, when that fails (a full disk, a folder that vanished), in a
/// `NAME.recovered-PID` folder beside it or in the system's temporary folder: a trained model
/// is never lost to its last write. Returns the fallback folder used, if any.
fn out_or_recovered(
    vars: &VarMap,
    net: &NetConfig,
    out: &Path,
) -> Result<Option<std::path::PathBuf>> {
    let Err(first) = save_model_dir(vars, net, out) else {
        return Ok(None);
    };
    let name = format!(
        "{}.recovered-{}",
        out.file_name()
            .map_or("model".into(), |n| n.to_string_lossy()),
        std::process::id()
    );
    let beside = crate::results::write::parent_of(out).join(&name);
    for alt in [beside, std::env::temp_dir().join(&name)] {
        // A folder of that name that is not this run's own is left alone.
        if std::fs::symlink_metadata(&alt).is_ok() {
            continue;
        }
        if save_model_dir(vars, net, &alt).is_ok() {
            let _ = writeln!(
                std::io::stderr(),
                "error: {first:#}; saved the model to {} instead",
                alt.display()
            );
            return Ok(Some(alt));
        }
        let _ = std::fs::remove_dir_all(&alt);
    }
    Err(first.context("nor in a .recovered folder beside it or in the temporary folder"))
}

/// Trains, saves the model directory `out` (config.json, model.safetensors, tokenizer.json,
/// training.json) and returns the summary. `stop` is asked after every step: when it says
/// so (a signal), training ends early and the model so far is saved, like `--max-minutes`.
pub fn train(
    cfg: &TrainConfig,
    paper_dir: &Path,
    out: &Path,
    device: &Device,
    stop: &dyn Fn() -> bool,
) -> Result<TrainSummary> {
    if cfg.steps == 0 || cfg.batch_tokens == 0 {
        bail!("--steps and --batch-tokens must be positive");
    }
    if !cfg.net.d_model.is_multiple_of(cfg.net.n_heads) || !cfg.net.d_head().is_multiple_of(2) {
        bail!("d_model must be a multiple of heads, with an even head size");
    }
    if cfg.lines.is_empty() || cfg.lines.iter().any(|&l| l < 2) {
        bail!("--lines: give one or more line counts of at least 2");
    }
    let max_lines = *cfg.lines.iter().max().unwrap();
    if task::LINE_TOKENS * max_lines > cfg.net.max_positions {
        bail!(
            "--lines {max_lines}: longer than max_positions {}",
            cfg.net.max_positions
        );
    }
    let started = Instant::now();
    let sets = EvalSets::build(paper_dir, &cfg.offsets, cfg.seed.wrapping_add(1))?;
    let vars = VarMap::new();
    let mut init_rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let net = Net::new(&cfg.net, &vars, &mut init_rng, device)?;
    let n_params: usize = vars.all_vars().iter().map(|v| v.elem_count()).sum();
    let mut opt = AdamW::new(
        vars.all_vars(),
        ParamsAdamW {
            lr: cfg.lr,
            beta1: 0.9,
            beta2: 0.98,
            eps: 1e-8,
            weight_decay: cfg.weight_decay,
        },
    )?;
    let mut sampler = Sampler::new(
        cfg.seed.wrapping_add(2),
        cfg.offsets.clone(),
        sets.banned.clone(),
    );
    let threads = rayon::current_num_threads();
    say!(
        "demo model: llama, {} layers x {} heads, d_model {}, d_mlp {}, {} parameters; \
         {} threads on {}",
        cfg.net.n_layers,
        cfg.net.n_heads,
        cfg.net.d_model,
        cfg.net.d_mlp,
        n_params,
        threads,
        crate::model::source::device_name(device)
    );
    say!(
        "task: k in {:?}, {:?} lines per sequence (1..={} shots), {} tokens per step, {} steps, \
         lr {} (warmup {}, cosine to {}x), weight decay {}, seed {}",
        cfg.offsets,
        cfg.lines,
        max_lines - 1,
        cfg.batch_tokens,
        cfg.steps,
        cfg.lr,
        cfg.warmup,
        cfg.final_lr_frac,
        cfg.weight_decay,
        cfg.seed
    );
    let mut curve = Vec::new();
    let (mut acc_loss, mut acc_n) = (0f64, 0usize);
    let mut last_loss = f64::NAN;
    let mut steps_done = 0;
    let mut last_log = Instant::now();
    for step in 0..cfg.steps {
        opt.set_learning_rate(cfg.lr_at(step));
        let lines = sampler.choose(&cfg.lines);
        let rows = cfg.batch_rows(lines);
        let b = sampler.batch(rows, lines);
        let t = b.tokens[0].len();
        let flat: Vec<u32> = b.tokens.iter().flatten().copied().collect();
        let tokens = Tensor::from_vec(flat, (rows, t), device)?;
        let n = b.loss_index.len();
        let idx = Tensor::from_vec(b.loss_index, n, device)?;
        let targets = Tensor::from_vec(b.targets, n, device)?;
        let logits = net.logits_at(&tokens, &idx)?;
        let loss = candle_nn::loss::cross_entropy(&logits, &targets)?;
        opt.backward_step(&loss)?;
        acc_loss += loss.to_scalar::<f32>()? as f64;
        acc_n += 1;
        steps_done = step + 1;
        let stopped = stop();
        let out_of_time = stopped
            || cfg
                .max_minutes
                .is_some_and(|m| started.elapsed().as_secs_f64() > m * 60.0);
        let last = steps_done == cfg.steps || out_of_time;
        if steps_done % cfg.log_every.max(1) == 0 || last {
            last_loss = acc_loss / acc_n as f64;
            curve.push((steps_done, last_loss));
            let rate = acc_n as f64 / last_log.elapsed().as_secs_f64();
            say!(
                "step {steps_done:>6}  loss {last_loss:.3e}  lr {:.2e}  {rate:.1} steps/s  {:.0} s",
                cfg.lr_at(step),
                started.elapsed().as_secs_f64()
            );
            std::io::stdout().flush().ok();
            acc_loss = 0.0;
            acc_n = 0;
            last_log = Instant::now();
        }
        if cfg.eval_every > 0 && steps_done % cfg.eval_every == 0 && !last {
            let r = EvalReport::measure(&sets, &|s| Ok(task::encode(s)), &mut |rows| {
                net_argmax(&net, device, rows)
            })?;
            say!("held-out accuracy at step {steps_done}:\n{}", r.table());
            last_log = Instant::now();
        }
        if out_of_time {
            let why = if stopped {
                "asked to stop"
            } else {
                "--max-minutes reached"
            };
            say!("stopping after {steps_done} steps: {why}");
            break;
        }
    }
    let seconds = started.elapsed().as_secs_f64();

    let recovered = out_or_recovered(&vars, &cfg.net, out)?;
    let out = recovered.as_deref().unwrap_or(out);

    // Measure what was saved, through the engine and the shipped tokenizer.
    let lm = crate::model::load(&out.display().to_string(), None, &Device::Cpu, DType::F32)?;
    let eval = EvalReport::measure(&sets, &|s| Ok(lm.tokenizer.encode(s)?), &mut |rows| {
        engine_argmax(&lm.model, rows)
    })?;
    say!(
        "held-out accuracy of the saved model (engine, {}):\n{}",
        out.display(),
        eval.table()
    );
    let summary = TrainSummary {
        config: cfg.clone(),
        steps_done,
        seconds,
        device: crate::model::source::device_name(device),
        threads,
        final_loss: last_loss,
        loss_curve: curve,
        sequences_redrawn_for_held_out: sampler.rejected,
        eval,
        recovered_to: recovered.clone(),
    };
    write_json(out, "training.json", &serde_json::to_value(&summary)?)?;
    say!(
        "trained {steps_done} steps in {seconds:.0} s; final loss {last_loss:.3e}; wrote {}",
        out.display()
    );
    Ok(summary)
}
