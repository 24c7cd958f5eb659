//! Checkpoints saved by transformers 5.25 (rope settings only under `rope_parameters`, per
//! layer type for Gemma-3) and the same weights saved by transformers 4.57 (top-level
//! `rope_theta` / `rope_scaling`): both load to transformers' own logits, for every rope type.
//! The folders and their logits are made by `scripts/fixtures/make_rope_fixtures.py`
//! (tests/data/rope/README.md); CI needs no Python.

mod common;

use candle_core::{DType, Device};
use common::*;
use headhunt::model::{self, ModelConfig, ModelError};
use std::path::PathBuf;

const MODELS: &[&str] = &[
    "llama3-rope",
    "llama-linear",
    "llama-dynamic",
    "llama-yarn",
    "llama-longrope",
    "qwen2",
    "qwen3",
    "gemma2",
    "gemma3",
];

fn dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/rope")
        .join(name)
}

/// The largest |logit − transformers' logit| over the four reference texts, every position.
fn max_diff(folder: &str) -> f32 {
    let d = dir(folder);
    let lm = model::load(d.to_str().unwrap(), None, &Device::Cpu, DType::F32)
        .unwrap_or_else(|e| panic!("{folder}: {e}"));
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("expected.json")).unwrap()).unwrap();
    let exp = candle_core::safetensors::load(d.join("expected_logits.safetensors"), &Device::Cpu)
        .unwrap();
    let mut worst = 0f32;
    for (j, text) in meta["texts"].as_array().unwrap().iter().enumerate() {
        let key = if j == 3 {
            "long".to_string()
        } else {
            j.to_string()
        };
        let ids = lm.tokenizer.encode(text.as_str().unwrap()).unwrap();
        let want: Vec<i64> = exp[&format!("tokens_{key}")].to_vec1().unwrap();
        assert_eq!(
            ids.iter().map(|&i| i as i64).collect::<Vec<_>>(),
            want,
            "{folder} text {key}: tokens"
        );
        assert!(
            lm.prompt_misfit(&ids).is_none(),
            "{folder} text {key} refused"
        );
        let logits = lm
            .model
            .forward(&lm.model.tokens_tensor(&[ids]).unwrap())
            .unwrap();
        worst = worst.max(max_abs_diff(
            &flat(&logits),
            &flat(&exp[&format!("logits_{key}")]),
        ));
    }
    worst
}

#[test]
fn transformers_5_checkpoints_match_their_logits() {
    for name in MODELS {
        let d = max_diff(&format!("{name}-tf5"));
        assert!(d <= 1e-4, "{name}-tf5: max |logit diff| = {d}");
    }
}

#[test]
fn transformers_4_saves_of_the_same_weights_match_too() {
    for name in MODELS {
        let d = max_diff(&format!("{name}-tf4"));
        assert!(d <= 1e-4, "{name}-tf4: max |logit diff| = {d}");
    }
}

/// The two layouts read into the same rope settings (so the logits above agree for the same
/// reason, not by luck), and those settings matter: the default rope is far off.
#[test]
fn both_layouts_read_the_same_rope_and_the_rope_matters() {
    for name in MODELS {
        let a = ModelConfig::from_file(&dir(&format!("{name}-tf5")).join("config.json")).unwrap();
        let b = ModelConfig::from_file(&dir(&format!("{name}-tf4")).join("config.json")).unwrap();
        assert_eq!(a.rope_global, b.rope_global, "{name}: full-attention rope");
        assert_eq!(a.rope_local, b.rope_local, "{name}: sliding rope");
        let meta: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir(&format!("{name}-tf5")).join("expected.json")).unwrap(),
        )
        .unwrap();
        let off = meta["logit_diff_vs_default_rope"].as_f64().unwrap();
        assert!(off > 0.1, "{name}: the rope settings do not matter ({off})");
    }
}

/// A config JSON of a fixture, changed by `edit`, read as `from_json` reads it.
fn edited(
    name: &str,
    edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) -> Result<ModelConfig, ModelError> {
    let text = std::fs::read_to_string(dir(name).join("config.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    edit(v.as_object_mut().unwrap());
    ModelConfig::from_json(&v, "cfg.json")
}

/// The error of reading the fixture's config changed by `edit` (it must be refused).
fn refused(
    name: &str,
    edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) -> String {
    edited(name, edit)
        .expect_err("the edited config must be refused")
        .to_string()
}

#[test]
fn an_unknown_numeric_key_is_refused_with_its_name() {
    for name in ["qwen2-tf5", "llama3-rope-tf4", "gemma3-tf5"] {
        let e = refused(name, |o| {
            o.insert("attn_temperature".into(), 0.7.into());
        });
        assert!(
            e.contains("cfg.json") && e.contains("`attn_temperature`") && e.contains("0.7"),
            "{e}"
        );
    }
    // Known but irrelevant to the numbers: accepted.
    edited("qwen2-tf5", |o| {
        o.insert("initializer_range".into(), 0.5.into());
        o.insert("use_cache".into(), false.into());
        o.insert("attention_dropout".into(), 0.1.into());
    })
    .unwrap();
    // Allowed on request, and recorded.
    let text = std::fs::read_to_string(dir("qwen2-tf5").join("config.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["attn_temperature"] = 0.7.into();
    let c = ModelConfig::from_json_with(&v, "cfg.json", true).unwrap();
    assert_eq!(c.ignored_keys, vec!["attn_temperature = 0.7".to_string()]);
}

#[test]
fn rope_keys_in_both_layouts_must_agree() {
    // Agreeing copies are fine.
    edited("qwen2-tf5", |o| {
        o.insert("rope_theta".into(), 1000000.0.into());
    })
    .unwrap();
    let e = refused("qwen2-tf5", |o| {
        o.insert("rope_theta".into(), 10000.0.into());
    });
    assert!(
        e.contains("`rope_theta`") && e.contains("rope_parameters"),
        "{e}"
    );
    let e = refused("llama3-rope-tf5", |o| {
        o.insert(
            "rope_scaling".into(),
            serde_json::json!({"rope_type": "linear", "factor": 8.0}),
        );
    });
    assert!(e.contains("`rope_scaling`"), "{e}");
    let e = refused("gemma3-tf5", |o| {
        o.insert("rope_local_base_freq".into(), 20000.0.into());
    });
    assert!(e.contains("`rope_local_base_freq`"), "{e}");
}

#[test]
fn a_rope_setting_headhunt_does_not_know_is_refused() {
    let e = refused("llama-yarn-tf5", |o| {
        o["rope_parameters"]["mrope_section"] = serde_json::json!([2, 2, 2]);
    });
    assert!(e.contains("rope_parameters.mrope_section"), "{e}");
    let e = refused("llama-linear-tf5", |o| {
        o["rope_parameters"]["rope_type"] = "proportional".into();
    });
    assert!(e.contains("proportional") && e.contains("supported"), "{e}");
    let e = refused("qwen3-tf5", |o| {
        o["rope_parameters"]["partial_rotary_factor"] = 0.5.into();
    });
    assert!(e.contains("partial_rotary_factor"), "{e}");
}

/// A family default stands in for an absent key, never a headhunt default: Gemma-2 without
/// its soft-cap keys has transformers' 50 and 30, and `null` means none.
#[test]
fn absent_keys_take_transformers_defaults() {
    let c = edited("gemma2-tf5", |o| {
        o.remove("attn_logit_softcapping");
        o.remove("final_logit_softcapping");
    })
    .unwrap();
    assert_eq!((c.attn_softcap, c.final_softcap), (Some(50.0), Some(30.0)));
    let c = edited("gemma2-tf5", |o| {
        o.insert("attn_logit_softcapping".into(), serde_json::Value::Null);
    })
    .unwrap();
    assert_eq!(c.attn_softcap, None);
    let c = edited("gemma3-tf4", |o| {
        o.remove("rope_theta");
        o.remove("rope_scaling");
    })
    .unwrap();
    assert_eq!(c.rope_global.theta, 1_000_000.0);
}
