//! `headhunt check`: verifies this build on this device against the reference fixtures (tiny
//! models with Hugging Face logits and TransformerLens path-patching scores): the way to see
//! that a GPU gives the right numbers before trusting a sweep on it.

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use clap::Args;
use std::path::PathBuf;

use crate::data::{load_and_tokenize, DataSpec, TaskKind};
use crate::model::source::{dtype_name, parse_device, parse_dtype};
use crate::patching::{self, Algorithm, PatchSpec, Receiver, Silent};

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Folder of reference fixtures (each model folder with expected_logits.safetensors and
    /// optionally expected_path_patching.safetensors). Default: $HEADHUNT_FIXTURES, else
    /// `../shared/fixtures` beside the project, plus the project's `tests/data/rope`
    /// checkpoints, found from the current folder or from where the binary is.
    #[arg(long)]
    pub fixtures: Option<PathBuf>,
    #[arg(long, default_value = "cpu")]
    pub device: String,
    #[arg(long)]
    pub dtype: Option<String>,
    /// Largest allowed |difference| (default: 1e-4 in f32 and f64; in bf16 and f16 the
    /// differences are only reported). For r it applies relative to |r| where |r| > 1: r divides
    /// by LD_c - LD_n, which is small on some fixtures.
    #[arg(long)]
    pub tolerance: Option<f64>,
}

fn max_diff(a: &Tensor, b: &Tensor) -> Result<f64> {
    let a = a
        .to_dtype(DType::F32)?
        .to_device(&Device::Cpu)?
        .flatten_all()?;
    let b = b
        .to_dtype(DType::F32)?
        .to_device(&Device::Cpu)?
        .flatten_all()?;
    Ok((a - b)?.abs()?.max_all()?.to_scalar::<f32>()? as f64)
}

/// The folders to check: `--fixtures`, else $HEADHUNT_FIXTURES, else the shared fixtures and
/// the project's rope checkpoints wherever headhunt is run from (`demo::locate`).
fn fixture_roots(given: Option<&PathBuf>) -> Result<Vec<PathBuf>> {
    if let Some(g) = given {
        return Ok(vec![g.clone()]);
    }
    if let Some(env) = std::env::var_os("HEADHUNT_FIXTURES").filter(|v| !v.is_empty()) {
        return Ok(vec![PathBuf::from(env)]);
    }
    let shared = crate::demo::locate("../shared/fixtures");
    if !shared.is_dir() {
        bail!(
            "no reference fixtures found (looked for ../shared/fixtures here and beside the headhunt binary); pass --fixtures DIR or set HEADHUNT_FIXTURES"
        );
    }
    let rope = crate::demo::locate("tests/data/rope");
    Ok(std::iter::once(shared)
        .chain(rope.is_dir().then_some(rope))
        .collect())
}

pub fn run(a: CheckArgs) -> Result<i32> {
    let device = parse_device(&a.device)?;
    let dtype = parse_dtype(a.dtype.as_deref(), &device)?;
    let tol = a
        .tolerance
        .or(matches!(dtype, DType::F32 | DType::F64).then_some(1e-4));
    let mut dirs = Vec::new();
    for root in fixture_roots(a.fixtures.as_ref())? {
        let mut found: Vec<PathBuf> = std::fs::read_dir(&root)
            .with_context(|| format!("--fixtures {}", root.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join("expected_logits.safetensors").is_file())
            .collect();
        if found.is_empty() {
            bail!(
                "--fixtures {}: no fixture folders (with expected_logits.safetensors)",
                root.display()
            );
        }
        found.sort();
        dirs.extend(found);
    }
    println!(
        "checking {} fixtures on {} in {} (tolerance {})",
        dirs.len(),
        a.device,
        dtype_name(dtype),
        tol.map_or("none: report only".into(), |t| format!("{t:e}"))
    );
    let mut worst = 0f64;
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let lm = crate::model::load(dir.to_str().unwrap(), None, &device, dtype)?;
        let meta: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json"))?)?;
        let exp =
            candle_core::safetensors::load(dir.join("expected_logits.safetensors"), &Device::Cpu)?;
        let mut d_logits = 0f64;
        for (j, text) in meta["texts"].as_array().into_iter().flatten().enumerate() {
            let key = if j == 3 {
                "long".to_string()
            } else {
                j.to_string()
            };
            let Some(want) = exp.get(&format!("logits_{key}")) else {
                continue;
            };
            let ids = lm.tokenizer.encode(text.as_str().unwrap_or_default())?;
            let logits = lm.model.forward(&lm.model.tokens_tensor(&[ids])?)?;
            d_logits = d_logits.max(max_diff(&logits.squeeze(0)?, want)?);
        }
        let mut line = format!("{name:<20} logits {d_logits:.2e}");
        worst = worst.max(d_logits);
        let pp = dir.join("expected_path_patching.safetensors");
        if pp.is_file() {
            let exp = candle_core::safetensors::load(&pp, &Device::Cpu)?;
            let spec = DataSpec::new(dir.join("addition.jsonl"), TaskKind::Addition);
            let pairs = load_and_tokenize(&spec, &lm.tokenizer)?.pairs;
            let mut d_pp = 0f64;
            // r against TransformerLens: absolute, and relative to |r| where |r| > 1.
            let (mut d_r, mut d_r_scaled) = (0f64, 0f64);
            let receivers = meta["path_patching"]["receivers"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            for (key, v) in &receivers {
                let receiver = Receiver::from_fixture_json(&v["receiver"])
                    .with_context(|| format!("{name}: receiver {key}"))?;
                let begin_layer = v["begin_layer"].as_u64().unwrap_or(0) as usize;
                for chunk_rows in [0, 1 << 20] {
                    let out = patching::run(
                        &lm.model,
                        &pairs,
                        &PatchSpec {
                            receiver: receiver.clone(),
                            begin_layer,
                            batch_size: pairs.len(),
                            algorithm: Algorithm::Fast,
                            chunk_rows,
                            metric: Default::default(),
                            senders: Default::default(),
                        },
                        &mut Silent,
                    )?;
                    let m = &out.matrix;
                    let flat: Vec<f32> = (0..m.n_layers)
                        .flat_map(|l| m.patched[l].iter().map(|&x| x as f32).collect::<Vec<_>>())
                        .collect();
                    let got = Tensor::from_vec(flat, (m.n_layers, m.n_heads), &Device::Cpu)?;
                    d_pp = d_pp.max(max_diff(&got, &exp[&format!("{key}.patched_logit_diff")])?);
                    let n: f32 = exp[&format!("{key}.normal_logit_diff")]
                        .flatten_all()?
                        .to_vec1::<f32>()?[0];
                    let c: f32 = exp[&format!("{key}.contrast_logit_diff")]
                        .flatten_all()?
                        .to_vec1::<f32>()?[0];
                    d_pp = d_pp
                        .max((m.ld_normal - n as f64).abs())
                        .max((m.ld_contrast - c as f64).abs());
                    let want_r: Vec<f32> =
                        exp[&format!("{key}.relative")].flatten_all()?.to_vec1()?;
                    for (got, want) in m
                        .relative(&receiver, begin_layer)
                        .iter()
                        .flatten()
                        .zip(&want_r)
                    {
                        let d = (got - *want as f64).abs();
                        d_r = d_r.max(d);
                        d_r_scaled = d_r_scaled.max(d / (*want as f64).abs().max(1.0));
                    }
                }
            }
            line.push_str(&format!(
                "   path patching ({} receivers) {d_pp:.2e}   r {d_r:.2e} (scaled {d_r_scaled:.2e})",
                receivers.len()
            ));
            worst = worst.max(d_pp).max(d_r_scaled);
        }
        println!("{line}");
    }
    match tol {
        Some(t) if worst > t => {
            println!("FAIL: largest difference {worst:.2e} > {t:e}");
            Ok(1)
        }
        Some(_) => {
            println!("ok: largest difference {worst:.2e}");
            Ok(0)
        }
        None => {
            println!("largest difference {worst:.2e} (reported, not checked)");
            Ok(0)
        }
    }
}
