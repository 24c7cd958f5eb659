//! Rotary position embeddings: every rope type transformers defines for the families headhunt
//! runs (default, linear, dynamic, yarn, longrope, llama3), read from either way a config can
//! hold them.
//!
//! transformers < 5 writes `rope_theta` and `rope_scaling` at the top level (Gemma-3 adds
//! `rope_local_base_freq`, GPT-NeoX `rotary_emb_base` and `rotary_pct`); transformers >= 5
//! writes one `rope_parameters` object instead (`{"rope_type", "rope_theta", "factor", ...}`), or
//! one per layer type (`{"full_attention": {...}, "sliding_attention": {...}}`, Gemma-3). A
//! reader of only the old keys falls back to theta 10000 on a new checkpoint and computes
//! confidently wrong logits, so both layouts are read here, in one place, and a config that
//! holds both must hold the same values. Every key of a rope object must be one its type uses.

use serde_json::{Map, Value};

use super::config::Fields;
use super::ModelError;

/// How rotary frequencies are rescaled for long contexts (transformers' `rope_type`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum RopeScaling {
    None,
    /// Position interpolation: every frequency divided by `factor`.
    Linear {
        factor: f64,
    },
    /// Dynamic NTK: past `max_position_embeddings` tokens the base grows with the length.
    Dynamic {
        factor: f64,
        max_position_embeddings: f64,
    },
    /// YaRN: frequencies blended between interpolation and extrapolation by a ramp over the
    /// dims; cos and sin scaled by `attention_factor`.
    Yarn {
        factor: f64,
        original_max_position_embeddings: f64,
        beta_fast: f64,
        beta_slow: f64,
        truncate: bool,
        attention_factor: f64,
    },
    /// LongRoPE (Phi-3): per-frequency factors, the long ones past the original length; cos and
    /// sin scaled by `attention_factor`.
    LongRope {
        short_factor: Vec<f64>,
        long_factor: Vec<f64>,
        original_max_position_embeddings: f64,
        attention_factor: f64,
    },
    /// Llama 3's frequency-band rescaling.
    Llama3 {
        factor: f64,
        low_freq_factor: f64,
        high_freq_factor: f64,
        original_max_position_embeddings: f64,
    },
}

/// Rotary embedding parameters for one kind of layer.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RopeConfig {
    pub theta: f64,
    pub scaling: RopeScaling,
}

impl RopeConfig {
    pub fn plain(theta: f64) -> Self {
        RopeConfig {
            theta,
            scaling: RopeScaling::None,
        }
    }

    /// Inverse frequencies for `dim` rotated dims of a sequence of `seq_len` tokens, computed in
    /// f32 the way transformers does (`1 / base^(2i/d)`), then rescaled. Only dynamic and
    /// longrope depend on `seq_len`.
    pub fn inv_freq(&self, dim: usize, seq_len: usize) -> Vec<f32> {
        let powers = |base: f32| -> Vec<f32> {
            (0..dim / 2)
                .map(|i| base.powf((2 * i) as f32 / dim as f32))
                .collect()
        };
        let plain = |base: f32| -> Vec<f32> { powers(base).iter().map(|p| 1.0 / p).collect() };
        let base = self.theta as f32;
        match &self.scaling {
            RopeScaling::None => plain(base),
            RopeScaling::Linear { factor } => {
                plain(base).iter().map(|f| f / *factor as f32).collect()
            }
            RopeScaling::Dynamic {
                factor,
                max_position_embeddings,
            } => {
                let len = (seq_len as f64).max(*max_position_embeddings);
                let grown = self.theta
                    * ((factor * len / max_position_embeddings) - (factor - 1.0))
                        .powf(dim as f64 / (dim as f64 - 2.0));
                plain(grown as f32)
            }
            RopeScaling::Yarn { .. } => self.yarn_inv_freq(dim),
            RopeScaling::LongRope {
                short_factor,
                long_factor,
                original_max_position_embeddings,
                ..
            } => {
                let ext = if seq_len as f64 > *original_max_position_embeddings {
                    long_factor
                } else {
                    short_factor
                };
                powers(base)
                    .iter()
                    .zip(ext)
                    .map(|(p, e)| 1.0 / (*e as f32 * p))
                    .collect()
            }
            RopeScaling::Llama3 { .. } => self.llama3_inv_freq(plain(base)),
        }
    }

    /// What cos and sin are multiplied by (YaRN's and LongRoPE's attention factor; else 1).
    pub fn attention_scaling(&self) -> f64 {
        match &self.scaling {
            RopeScaling::Yarn {
                attention_factor, ..
            }
            | RopeScaling::LongRope {
                attention_factor, ..
            } => *attention_factor,
            _ => 1.0,
        }
    }

    /// Whether the frequencies depend on the sequence length (tables are then per length).
    pub fn depends_on_length(&self) -> bool {
        matches!(
            self.scaling,
            RopeScaling::Dynamic { .. } | RopeScaling::LongRope { .. }
        )
    }

    fn yarn_inv_freq(&self, dim: usize) -> Vec<f32> {
        let RopeScaling::Yarn {
            factor,
            original_max_position_embeddings: orig,
            beta_fast,
            beta_slow,
            truncate,
            ..
        } = &self.scaling
        else {
            unreachable!("called for yarn only")
        };
        let base = self.theta;
        let correction_dim = |rotations: f64| {
            (dim as f64 * (orig / (rotations * 2.0 * std::f64::consts::PI)).ln())
                / (2.0 * base.ln())
        };
        let (mut low, mut high) = (correction_dim(*beta_fast), correction_dim(*beta_slow));
        if *truncate {
            low = low.floor();
            high = high.ceil();
        }
        let (low, mut high) = (low.max(0.0), high.min(dim as f64 - 1.0));
        if low == high {
            high += 0.001;
        }
        let pos: Vec<f32> = (0..dim / 2)
            .map(|i| (base as f32).powf((2 * i) as f32 / dim as f32))
            .collect();
        pos.iter()
            .enumerate()
            .map(|(i, p)| {
                let ramp = ((i as f32 - low as f32) / (high as f32 - low as f32)).clamp(0.0, 1.0);
                let extrapolation = 1.0 - ramp;
                let inter = 1.0 / (*factor as f32 * p);
                let extra = 1.0 / p;
                inter * (1.0 - extrapolation) + extra * extrapolation
            })
            .collect()
    }

    fn llama3_inv_freq(&self, mut inv: Vec<f32>) -> Vec<f32> {
        let RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings,
        } = &self.scaling
        else {
            unreachable!("called for llama3 only")
        };
        let (factor, low, high, old_ctx) = (
            *factor as f32,
            *low_freq_factor as f32,
            *high_freq_factor as f32,
            *original_max_position_embeddings as f32,
        );
        let low_wavelen = old_ctx / low;
        let high_wavelen = old_ctx / high;
        for f in inv.iter_mut() {
            let wavelen = 2.0 * std::f32::consts::PI / *f;
            if wavelen > low_wavelen {
                *f /= factor;
            } else if wavelen >= high_wavelen {
                let smooth = (old_ctx / wavelen - low) / (high - low);
                *f = (1.0 - smooth) * *f / factor + smooth * *f;
            }
        }
        inv
    }
}

/// A family's rope defaults and the old top-level keys it reads them from.
pub struct RopeKeys {
    /// The old top-level key of the base (`rope_theta`; GPT-NeoX `rotary_emb_base`).
    pub theta_key: &'static str,
    /// transformers' default base when no key gives one.
    pub default_theta: f64,
    /// Gemma-3: the sliding layers' old key (`rope_local_base_freq`) and default base.
    pub local: Option<(&'static str, f64)>,
}

/// The rotary parameters of a model: of full-attention layers, of sliding layers where they
/// differ (Gemma-3), and the rotated fraction of each head where the config gives one.
#[derive(Debug, Clone, PartialEq)]
pub struct RopeSet {
    pub global: RopeConfig,
    pub local: Option<RopeConfig>,
    /// `partial_rotary_factor` (inside `rope_parameters` in transformers 5), if given.
    pub partial_rotary_factor: Option<f64>,
}

/// The layer-type names transformers nests `rope_parameters` under.
const LAYER_TYPES: [&str; 2] = ["full_attention", "sliding_attention"];

/// Reads the rope settings from `rope_parameters` and from the old top-level keys; both
/// present and disagreeing is an error naming both. `max_pos` is the config's
/// `max_position_embeddings` (dynamic scaling and the original length of yarn/longrope/llama3
/// default to it, as in transformers).
pub fn read(f: &Fields, keys: &RopeKeys, max_pos: usize) -> Result<RopeSet, ModelError> {
    let top_orig = f.opt_f64("original_max_position_embeddings")?;
    let len = Lengths {
        max_pos,
        top_original: top_orig,
    };
    let old = read_old(f, keys, len)?;
    let Some(params) = f.get("rope_parameters") else {
        return Ok(old);
    };
    let obj = params.as_object().ok_or_else(|| {
        f.err(
            "rope_parameters",
            &format!("expected an object, got {}", short(params)),
        )
    })?;
    let new = if obj.keys().any(|k| LAYER_TYPES.contains(&k.as_str())) {
        read_nested(f, keys, obj, len)?
    } else {
        let (global, partial) = one(f, "rope_parameters", params, keys.default_theta, len)?;
        RopeSet {
            global,
            local: keys.local.map(|(_, d)| RopeConfig::plain(d)),
            partial_rotary_factor: partial,
        }
    };
    check_top_original(f, top_orig)?;
    agree(f, keys, &old, new)
}

/// `rope_parameters` nested per layer type (`full_attention`, `sliding_attention`): the
/// sliding rope is a family's own (Gemma-3) or must equal the full one.
fn read_nested(
    f: &Fields,
    keys: &RopeKeys,
    obj: &Map<String, Value>,
    len: Lengths,
) -> Result<RopeSet, ModelError> {
    if let Some(k) = obj.keys().find(|k| !LAYER_TYPES.contains(&k.as_str())) {
        return Err(f.err(
            &format!("rope_parameters.{k}"),
            "unknown layer type (expected full_attention or sliding_attention)",
        ));
    }
    let part = |t: &str, default_theta: f64| match obj.get(t).filter(|v| !v.is_null()) {
        None => Ok(None),
        Some(v) => one(f, &format!("rope_parameters.{t}"), v, default_theta, len).map(Some),
    };
    let global = part("full_attention", keys.default_theta)?;
    let local_default = keys.local.map_or(keys.default_theta, |(_, d)| d);
    let local = part("sliding_attention", local_default)?;
    let partial = global
        .as_ref()
        .and_then(|g| g.1)
        .or(local.as_ref().and_then(|l| l.1));
    let global = global.map_or_else(|| RopeConfig::plain(keys.default_theta), |g| g.0);
    let local = match (keys.local, local) {
        (Some(_), l) => Some(l.map_or_else(|| RopeConfig::plain(local_default), |l| l.0)),
        // One rope for every layer, written twice.
        (None, Some(l)) if l.0 == global => None,
        (None, Some(_)) => {
            return Err(f.err(
                "rope_parameters.sliding_attention",
                "differs from full_attention, but this family has one rope for every layer",
            ))
        }
        (None, None) => None,
    };
    Ok(RopeSet {
        global,
        local,
        partial_rotary_factor: partial,
    })
}

/// A top-level `original_max_position_embeddings` (the Phi-3 layout, which transformers 4
/// needs for longrope) is the original length of llama3, yarn and longrope rope in both
/// versions (`Lengths`), and gives longrope's factor when it has none. A rope object that says
/// otherwise is an error: the two versions would compute different frequencies.
fn check_top_original(f: &Fields, top: Option<f64>) -> Result<(), ModelError> {
    let Some(top) = top else {
        return Ok(());
    };
    let explicit = |at: &str| -> Option<f64> {
        let v = f.get(at)?;
        let o = v.get("full_attention").unwrap_or(v);
        o.get("original_max_position_embeddings")
            .and_then(|x| x.as_f64())
    };
    match explicit("rope_parameters").or(explicit("rope_scaling")) {
        Some(x) if x != top => Err(f.err(
            "original_max_position_embeddings",
            &format!(
                "{top} disagrees with the rope settings' original_max_position_embeddings {x}"
            ),
        )),
        _ => Ok(()),
    }
}

/// The lengths rope settings default to: `max_position_embeddings`, and a top-level
/// `original_max_position_embeddings` where the config has one.
#[derive(Clone, Copy)]
struct Lengths {
    max_pos: usize,
    top_original: Option<f64>,
}

/// The settings of the old top-level keys (transformers < 5).
fn read_old(f: &Fields, keys: &RopeKeys, len: Lengths) -> Result<RopeSet, ModelError> {
    let theta = f.opt_f64(keys.theta_key)?.unwrap_or(keys.default_theta);
    let scaling = match f.get("rope_scaling") {
        None => RopeScaling::None,
        Some(v) => {
            let obj = v.as_object().ok_or_else(|| {
                f.err(
                    "rope_scaling",
                    &format!("expected an object or null, got {}", short(v)),
                )
            })?;
            scaling(f, "rope_scaling", obj, len)?
        }
    };
    let local = match keys.local {
        Some((key, default)) => Some(RopeConfig::plain(f.opt_f64(key)?.unwrap_or(default))),
        None => None,
    };
    Ok(RopeSet {
        global: RopeConfig { theta, scaling },
        local,
        partial_rotary_factor: None,
    })
}

/// `new` (from `rope_parameters`), after checking that the old keys the config also holds say
/// the same.
fn agree(f: &Fields, keys: &RopeKeys, old: &RopeSet, new: RopeSet) -> Result<RopeSet, ModelError> {
    let clash = |key: &str, old: String, new: String| {
        f.err(
            key,
            &format!(
                "{old} disagrees with rope_parameters ({new}); transformers 5 reads only rope_parameters, older versions only {key}: remove the stale one"
            ),
        )
    };
    if f.get(keys.theta_key).is_some() && old.global.theta != new.global.theta {
        return Err(clash(
            keys.theta_key,
            old.global.theta.to_string(),
            format!("rope_theta {}", new.global.theta),
        ));
    }
    if f.get("rope_scaling").is_some() && old.global.scaling != new.global.scaling {
        return Err(clash(
            "rope_scaling",
            format!("{:?}", old.global.scaling),
            format!("{:?}", new.global.scaling),
        ));
    }
    if let (Some((key, _)), Some(o), Some(n)) = (keys.local, &old.local, &new.local) {
        if f.get(key).is_some() && o.theta != n.theta {
            return Err(clash(
                key,
                o.theta.to_string(),
                format!("sliding_attention rope_theta {}", n.theta),
            ));
        }
    }
    Ok(new)
}

/// One rope object of `rope_parameters` (`at` names it in errors): its base, scaling and
/// `partial_rotary_factor`.
fn one(
    f: &Fields,
    at: &str,
    v: &Value,
    default_theta: f64,
    len: Lengths,
) -> Result<(RopeConfig, Option<f64>), ModelError> {
    let obj = v
        .as_object()
        .ok_or_else(|| f.err(at, &format!("expected an object, got {}", short(v))))?;
    let theta = match obj.get("rope_theta").filter(|x| !x.is_null()) {
        None => default_theta,
        Some(x) => number(f, &format!("{at}.rope_theta"), x)?,
    };
    let partial = match obj.get("partial_rotary_factor").filter(|x| !x.is_null()) {
        None => None,
        Some(x) => Some(number(f, &format!("{at}.partial_rotary_factor"), x)?),
    };
    let mut rest = obj.clone();
    rest.remove("rope_theta");
    rest.remove("partial_rotary_factor");
    let scaling = scaling(f, at, &rest, len)?;
    Ok((RopeConfig { theta, scaling }, partial))
}

/// The keys each rope type may hold besides `rope_type`/`type`, `rope_theta` and
/// `partial_rotary_factor` (transformers' `_validate_*_rope_parameters`).
fn allowed_keys(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "default" => &[],
        "linear" => &["factor"],
        "dynamic" => &["factor"],
        "yarn" => &[
            "factor",
            "original_max_position_embeddings",
            "attention_factor",
            "beta_fast",
            "beta_slow",
            "mscale",
            "mscale_all_dim",
            "truncate",
        ],
        "longrope" => &[
            "short_factor",
            "long_factor",
            "factor",
            "attention_factor",
            "original_max_position_embeddings",
        ],
        "llama3" => &[
            "factor",
            "low_freq_factor",
            "high_freq_factor",
            "original_max_position_embeddings",
        ],
        _ => return None,
    })
}

/// The rope types headhunt computes, for error messages.
pub const SUPPORTED: &str = "default, linear, dynamic, yarn, longrope, llama3";

/// A scaling object (`rope_scaling`, or a `rope_parameters` object without its theta).
fn scaling(
    f: &Fields,
    at: &str,
    o: &Map<String, Value>,
    len: Lengths,
) -> Result<RopeScaling, ModelError> {
    let kind = match (o.get("rope_type"), o.get("type")) {
        (Some(a), Some(b)) if a != b => {
            return Err(f.err(
                &format!("{at}.rope_type"),
                &format!("{a} disagrees with {at}.type {b}"),
            ))
        }
        (Some(Value::String(s)), _) | (None, Some(Value::String(s))) => s.as_str(),
        (None, None) => "default",
        (Some(v), _) | (_, Some(v)) => {
            return Err(f.err(
                &format!("{at}.rope_type"),
                &format!("expected a string, got {}", short(v)),
            ))
        }
    };
    let allowed = allowed_keys(kind).ok_or_else(|| {
        f.err(
            &format!("{at}.rope_type"),
            &format!("unsupported rope type {kind:?} (supported: {SUPPORTED})"),
        )
    })?;
    if let Some((k, v)) = o.iter().find(|(k, v)| {
        !v.is_null()
            && k.as_str() != "rope_type"
            && k.as_str() != "type"
            && !allowed.contains(&k.as_str())
    }) {
        return Err(f.err(
            &format!("{at}.{k}"),
            &format!("= {}: not a setting of rope type {kind:?}, and headhunt does not know what it changes", short(v)),
        ));
    }
    let s = Scope { f, at, o };
    let max_pos = len.max_pos;
    let orig = || -> Result<f64, ModelError> {
        let own = s.opt("original_max_position_embeddings")?;
        Ok(own.or(len.top_original).unwrap_or(max_pos as f64))
    };
    Ok(match kind {
        "default" => RopeScaling::None,
        "linear" => RopeScaling::Linear {
            factor: s.req("factor")?,
        },
        "dynamic" => RopeScaling::Dynamic {
            factor: s.req("factor")?,
            max_position_embeddings: max_pos as f64,
        },
        "llama3" => RopeScaling::Llama3 {
            factor: s.req("factor")?,
            low_freq_factor: s.req("low_freq_factor")?,
            high_freq_factor: s.req("high_freq_factor")?,
            original_max_position_embeddings: orig()?,
        },
        "yarn" => yarn(&s, orig()?)?,
        "longrope" => longrope(&s, orig()?, max_pos)?,
        _ => unreachable!("allowed_keys knows only these"),
    })
}

fn yarn(s: &Scope, orig: f64) -> Result<RopeScaling, ModelError> {
    let factor = s.req("factor")?;
    let mscale_of = |scale: f64, m: f64| {
        if scale <= 1.0 {
            1.0
        } else {
            0.1 * m * scale.ln() + 1.0
        }
    };
    let attention_factor = match s.opt("attention_factor")? {
        Some(a) => a,
        None => match (s.opt("mscale")?, s.opt("mscale_all_dim")?) {
            (Some(m), Some(all)) if m != 0.0 && all != 0.0 => {
                mscale_of(factor, m) / mscale_of(factor, all)
            }
            _ => mscale_of(factor, 1.0),
        },
    };
    let truncate = match s.o.get("truncate").filter(|v| !v.is_null()) {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(v) => {
            return Err(s.f.err(
                &format!("{}.truncate", s.at),
                &format!("expected true or false, got {}", short(v)),
            ))
        }
    };
    // `beta_fast or 32`: transformers treats 0 like a missing value.
    let or = |x: Option<f64>, d: f64| x.filter(|v| *v != 0.0).unwrap_or(d);
    Ok(RopeScaling::Yarn {
        factor,
        original_max_position_embeddings: orig,
        beta_fast: or(s.opt("beta_fast")?, 32.0),
        beta_slow: or(s.opt("beta_slow")?, 1.0),
        truncate,
        attention_factor,
    })
}

fn longrope(s: &Scope, orig: f64, max_pos: usize) -> Result<RopeScaling, ModelError> {
    let list = |k: &str| -> Result<Vec<f64>, ModelError> {
        let key = format!("{}.{k}", s.at);
        let v =
            s.o.get(k)
                .filter(|v| !v.is_null())
                .ok_or_else(|| s.f.err(&key, "missing (expected a list of numbers)"))?;
        let xs: Option<Vec<f64>> = v
            .as_array()
            .and_then(|a| a.iter().map(|x| x.as_f64()).collect());
        // Their length is checked against the rotated dims in `ModelConfig::validate`.
        xs.ok_or_else(|| {
            s.f.err(
                &key,
                &format!("expected a list of numbers, got {}", short(v)),
            )
        })
    };
    let factor = s.opt("factor")?.unwrap_or(max_pos as f64 / orig);
    let attention_factor = match s.opt("attention_factor")? {
        Some(a) => a,
        None if factor <= 1.0 => 1.0,
        None => (1.0 + factor.ln() / orig.ln()).sqrt(),
    };
    Ok(RopeScaling::LongRope {
        short_factor: list("short_factor")?,
        long_factor: list("long_factor")?,
        original_max_position_embeddings: orig,
        attention_factor,
    })
}

/// Numbers of one rope object, with errors naming `at.key`.
struct Scope<'a> {
    f: &'a Fields<'a>,
    at: &'a str,
    o: &'a Map<String, Value>,
}

impl Scope<'_> {
    fn opt(&self, k: &str) -> Result<Option<f64>, ModelError> {
        match self.o.get(k).filter(|v| !v.is_null()) {
            None => Ok(None),
            Some(v) => number(self.f, &format!("{}.{k}", self.at), v).map(Some),
        }
    }
    fn req(&self, k: &str) -> Result<f64, ModelError> {
        self.opt(k)?.ok_or_else(|| {
            self.f
                .err(&format!("{}.{k}", self.at), "missing (expected a number)")
        })
    }
}

fn number(f: &Fields, key: &str, v: &Value) -> Result<f64, ModelError> {
    v.as_f64()
        .filter(|x| x.is_finite())
        .ok_or_else(|| f.err(key, &format!("expected a number, got {}", short(v))))
}

/// A JSON value in at most ~60 characters, for error messages.
pub(super) fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(57).collect::<String>())
    } else {
        s
    }
}
