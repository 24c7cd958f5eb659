//! The hookable engine against Hugging Face transformers' logits and attention patterns.

mod common;

use candle_core::{DType, Device, Tensor};
use common::*;
use headhunt::model::hooks::{Capture, HookName, HookPoint, Hooks, Patch};
use headhunt::model::{self, RunOptions, Start};

fn load(name: &str, dtype: DType) -> model::LoadedModel {
    model::load(fixture(name).to_str().unwrap(), None, &Device::Cpu, dtype)
        .unwrap_or_else(|e| panic!("loading {name}: {e}"))
}

fn expected(name: &str) -> (serde_json::Value, std::collections::HashMap<String, Tensor>) {
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture(name).join("expected.json")).unwrap(),
    )
    .unwrap();
    let tensors = candle_core::safetensors::load(
        fixture(name).join("expected_logits.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    (meta, tensors)
}

#[test]
fn logits_match_transformers_on_every_fixture() {
    for name in ALL_FIXTURES {
        let lm = load(name, DType::F32);
        let (meta, exp) = expected(name);
        let texts = meta["texts"].as_array().unwrap();
        for (j, text) in texts.iter().enumerate() {
            let key = if j == 3 {
                "long".to_string()
            } else {
                j.to_string()
            };
            let ids = lm.tokenizer.encode(text.as_str().unwrap()).unwrap();
            let want_ids: Vec<i64> = exp[&format!("tokens_{key}")].to_vec1().unwrap();
            let got_ids: Vec<i64> = ids.iter().map(|&i| i as i64).collect();
            assert_eq!(got_ids, want_ids, "{name} text {key}: tokens");
            let logits = lm
                .model
                .forward(&lm.model.tokens_tensor(&[ids]).unwrap())
                .unwrap();
            let d = max_abs_diff(&flat(&logits), &flat(&exp[&format!("logits_{key}")]));
            assert!(d <= 1e-4, "{name} text {key}: max |logit diff| = {d}");
        }
    }
}

/// The window fixture only matches when exactly layers 0 and 2 slide: check that a model with
/// no window at all would *not* match, so the test above really exercises the window.
#[test]
fn sliding_window_matters_for_the_window_fixture() {
    let mut lm = load("tiny-gemma2-window", DType::F32);
    let (meta, exp) = expected("tiny-gemma2-window");
    let text = meta["texts"][3].as_str().unwrap();
    let ids = lm.tokenizer.encode(text).unwrap();
    assert!(ids.len() > 7);
    lm.model.cfg.layer_sliding = vec![false; 4];
    let logits = lm
        .model
        .forward(&lm.model.tokens_tensor(&[ids]).unwrap())
        .unwrap();
    let d = max_abs_diff(&flat(&logits), &flat(&exp["logits_long"]));
    assert!(d > 1e-2, "disabling the window changed nothing (diff {d})");
}

/// The first contrast prompt of the fixture's addition.jsonl (4 shots, offset +1).
fn first_contrast_prompt(name: &str) -> String {
    let line = std::fs::read_to_string(fixture(name).join("addition.jsonl"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    let mut lines: Vec<String> = v["demonstration"]
        .as_array()
        .unwrap()
        .iter()
        .take(4)
        .map(|d| {
            let (a, b) = (d[0].as_i64().unwrap(), d[1].as_i64().unwrap());
            format!("{a}+{b}={}", a + b + 1)
        })
        .collect();
    lines.push(format!("{}+{}=", v["inference"][0], v["inference"][1]));
    lines.join("\n")
}

#[test]
fn attention_patterns_match_transformerlens() {
    for name in PATCHING_FIXTURES {
        let lm = load(name, DType::F32);
        let exp = candle_core::safetensors::load(
            fixture(name).join("expected_path_patching.safetensors"),
            &Device::Cpu,
        )
        .unwrap();
        let ids = lm.tokenizer.encode(&first_contrast_prompt(name)).unwrap();
        let tokens = lm.model.tokens_tensor(&[ids]).unwrap();
        let mut hooks = Hooks::capture(Capture::All);
        lm.model
            .run(Start::Tokens(&tokens), RunOptions::default(), &mut hooks)
            .unwrap();
        for l in 0..lm.model.n_layers() {
            let got = hooks
                .cache
                .require(l, HookPoint::Pattern)
                .unwrap()
                .squeeze(0)
                .unwrap();
            let want = &exp[&format!("pattern.layer{l}")];
            assert_eq!(got.dims(), want.dims(), "{name} layer {l}");
            let d = max_abs_diff(&flat(&got), &flat(want));
            assert!(d <= 1e-5, "{name} layer {l}: max |pattern diff| = {d}");
        }
    }
}

/// Capturing every hook and re-injecting every captured value unchanged gives bit-identical
/// logits.
#[test]
fn capture_and_reinject_is_bit_identical() {
    for name in ALL_FIXTURES {
        let lm = load(name, DType::F32);
        let rows = vec![
            lm.tokenizer.encode("1+2=3\n4+4=").unwrap(),
            lm.tokenizer.encode("5+0=5\n1+1=").unwrap(),
        ];
        let tokens = lm.model.tokens_tensor(&rows).unwrap();
        let mut cap = Hooks::capture(Capture::All);
        let out = lm
            .model
            .run(Start::Tokens(&tokens), RunOptions::default(), &mut cap)
            .unwrap();
        assert_eq!(
            cap.cache.len(),
            lm.model.n_layers() * HookPoint::ALL.len() + 1
        );
        let mut patched = Hooks::none();
        for (name, t) in &cap.cache.map {
            patched.patches.push(Patch::whole(*name, t.clone()));
        }
        let again = lm
            .model
            .run(Start::Tokens(&tokens), RunOptions::default(), &mut patched)
            .unwrap();
        assert_eq!(
            flat(out.logits.as_ref().unwrap()),
            flat(again.logits.as_ref().unwrap()),
            "{name}"
        );
    }
}

/// Partial forwards: starting at layer l from the captured resid_pre, stopping after a layer,
/// and last-position-only runs all agree with the full forward.
#[test]
fn partial_forwards_agree_with_the_full_one() {
    for name in ALL_FIXTURES {
        let lm = load(name, DType::F32);
        let m = &lm.model;
        let ids = lm.tokenizer.encode("3+4=7\n2+2=").unwrap();
        let t = ids.len();
        let tokens = m.tokens_tensor(&[ids]).unwrap();
        let mut cap = Hooks::capture(Capture::All);
        let full = m
            .run(Start::Tokens(&tokens), RunOptions::default(), &mut cap)
            .unwrap();
        let logits = full.logits.unwrap();
        let last_layer = m.n_layers() - 1;
        for l in 0..m.n_layers() {
            let resid = cap.cache.require(l, HookPoint::ResidPre).unwrap().clone();
            let out = m
                .run(
                    Start::Resid {
                        layer: l,
                        resid: resid.clone(),
                    },
                    RunOptions::default(),
                    &mut Hooks::none(),
                )
                .unwrap();
            let d = max_abs_diff(&flat(&out.logits.unwrap()), &flat(&logits));
            assert!(d < 1e-5, "{name} from layer {l}: {d}");
            let stopped = m
                .run(
                    Start::Resid {
                        layer: 0,
                        resid: cap.cache.require(0, HookPoint::ResidPre).unwrap().clone(),
                    },
                    RunOptions {
                        stop_after: Some(l),
                        last_position_only: false,
                    },
                    &mut Hooks::none(),
                )
                .unwrap();
            assert!(stopped.logits.is_none());
            let want = cap.cache.require(l, HookPoint::ResidPost).unwrap();
            assert!(
                max_abs_diff(&flat(&stopped.resid), &flat(want)) < 1e-5,
                "{name} stop {l}"
            );
        }
        let last = m
            .run(
                Start::Tokens(&tokens),
                RunOptions {
                    stop_after: None,
                    last_position_only: true,
                },
                &mut Hooks::none(),
            )
            .unwrap();
        let want = logits.narrow(1, t - 1, 1).unwrap();
        let d = max_abs_diff(&flat(&last.logits.unwrap()), &flat(&want));
        assert!(
            d < 1e-5,
            "{name} last position only: {d} (layer {last_layer})"
        );
    }
}

/// Per-head patches touch only the chosen head; per-row patches only the chosen batch rows.
#[test]
fn per_head_and_per_row_patches() {
    let lm = load("tiny-llama", DType::F32);
    let m = &lm.model;
    let rows = vec![
        lm.tokenizer.encode("1+2=3\n4+4=").unwrap(),
        lm.tokenizer.encode("5+0=5\n1+1=").unwrap(),
    ];
    let tokens = m.tokens_tensor(&rows).unwrap();
    let v2 = HookName::Layer(2, HookPoint::V);
    let mut cap = Hooks::capture(Capture::only([v2]));
    m.run(Start::Tokens(&tokens), RunOptions::default(), &mut cap)
        .unwrap();
    let v = cap.cache.get(v2).unwrap().clone();
    let zeros = v.zeros_like().unwrap();
    // Head 3 of row 1 zeroed: everything else in hook_v must be unchanged.
    let patch = Patch::heads(v2, zeros, vec![3]).with_rows(vec![1]);
    let mut hooks = Hooks::capture(Capture::only([v2])).with_patch(patch);
    m.run(Start::Tokens(&tokens), RunOptions::default(), &mut hooks)
        .unwrap();
    let got = to_vec4(hooks.cache.get(v2).unwrap());
    let orig = to_vec4(&v);
    for b in 0..2 {
        for p in 0..orig[b].len() {
            for h in 0..orig[b][p].len() {
                if b == 1 && h == 3 {
                    assert!(got[b][p][h].iter().all(|&x| x == 0.0));
                } else {
                    assert_eq!(got[b][p][h], orig[b][p][h]);
                }
            }
        }
    }
    // Ungrouped view: heads 2 and 3 share KV head 1 in tiny-llama (8 heads, 2 KV heads), but
    // patching head 3 must leave head 2's output z unchanged.
    let z2 = HookName::Layer(2, HookPoint::Z);
    let mut a = Hooks::capture(Capture::only([z2]));
    m.run(Start::Tokens(&tokens), RunOptions::default(), &mut a)
        .unwrap();
    let mut b = Hooks::capture(Capture::only([z2])).with_patch(Patch::heads(
        v2,
        v.zeros_like().unwrap(),
        vec![3],
    ));
    m.run(Start::Tokens(&tokens), RunOptions::default(), &mut b)
        .unwrap();
    let za = to_vec4(a.cache.get(z2).unwrap());
    let zb = to_vec4(b.cache.get(z2).unwrap());
    for bi in 0..2 {
        for p in 0..za[bi].len() {
            assert_eq!(za[bi][p][2], zb[bi][p][2]);
            if p > 0 {
                assert_ne!(za[bi][p][3], zb[bi][p][3]);
            }
        }
    }
}

fn to_vec4(t: &Tensor) -> Vec<Vec<Vec<Vec<f32>>>> {
    let (b, _, _, _) = t.dims4().unwrap();
    (0..b)
        .map(|i| t.get(i).unwrap().to_vec3::<f32>().unwrap())
        .collect()
}

/// bf16 on CPU runs; its logits stay within a measured tolerance of f32 (see README).
#[test]
fn bf16_stays_close_to_f32() {
    for name in ALL_FIXTURES {
        let f = load(name, DType::F32);
        let b = load(name, DType::BF16);
        let (meta, _) = expected(name);
        let text = meta["texts"][3].as_str().unwrap();
        let ids = f.tokenizer.encode(text).unwrap();
        let lf = flat(
            &f.model
                .forward(&f.model.tokens_tensor(std::slice::from_ref(&ids)).unwrap())
                .unwrap(),
        );
        let lb = flat(
            &b.model
                .forward(&b.model.tokens_tensor(&[ids]).unwrap())
                .unwrap(),
        );
        let scale = lf.iter().fold(0f32, |m, x| m.max(x.abs()));
        let d = max_abs_diff(&lf, &lb);
        eprintln!("{name}: bf16 max |logit diff| {d:.4} (max |logit| {scale:.2})");
        assert!(d <= 0.08 * scale.max(1.0), "{name}: bf16 differs by {d}");
    }
}
