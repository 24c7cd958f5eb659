//! `headhunt eval` and `headhunt attention` on a reference fixture: the accuracy counts agree
//! with plain forward passes, the mean logit differences with TransformerLens' patching
//! baselines, and the printed attention weights with TransformerLens' patterns.

mod common;

use candle_core::{DType, Device};
use common::*;
use headhunt::model;
use std::process::Command;

const NAME: &str = "tiny-llama";

fn run_cli(args: &[&str]) -> String {
    let out = Command::new(bin()).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn eval_counts_match_plain_forward_passes() {
    let dir = fixture(NAME);
    let data = dir.join("addition.jsonl");
    let json = run_cli(&[
        "eval",
        "--model",
        dir.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--batch-size",
        "3",
        "--json",
    ]);
    let got: serde_json::Value = serde_json::from_str(&json).unwrap();

    let lm = model::load(dir.to_str().unwrap(), None, &Device::Cpu, DType::F32).unwrap();
    let spec = headhunt::data::DataSpec::new(&data, headhunt::data::TaskKind::Addition);
    let tok = headhunt::data::load_and_tokenize(&spec, &lm.tokenizer).unwrap();
    let argmax = |ids: &Vec<u32>| -> u32 {
        let logits = lm
            .model
            .forward(&lm.model.tokens_tensor(std::slice::from_ref(ids)).unwrap())
            .unwrap();
        headhunt::model::transformer::argmax_last(&logits.narrow(1, ids.len() - 1, 1).unwrap())
            .unwrap()[0]
    };
    let (mut nn, mut nc, mut cn, mut cc) = (0, 0, 0, 0);
    for (p, g) in tok.pairs.iter().zip(got["predictions"].as_array().unwrap()) {
        let (on_n, on_c) = (argmax(&p.normal_ids), argmax(&p.contrast_ids));
        assert_eq!(g["on_normal"].as_u64().unwrap() as u32, on_n);
        assert_eq!(g["on_contrast"].as_u64().unwrap() as u32, on_c);
        nn += (on_n == p.normal_answer) as usize;
        nc += (on_n == p.contrast_answer) as usize;
        cn += (on_c == p.normal_answer) as usize;
        cc += (on_c == p.contrast_answer) as usize;
    }
    assert_eq!(got["n"], 8);
    assert_eq!(got["normal_prompt_normal_answer"], nn);
    assert_eq!(got["normal_prompt_contrast_answer"], nc);
    assert_eq!(got["contrast_prompt_normal_answer"], cn);
    assert_eq!(got["contrast_prompt_contrast_answer"], cc);

    // The mean logit differences are the patching baselines TransformerLens computed.
    let exp = candle_core::safetensors::load(
        dir.join("expected_path_patching.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    let want_n: Vec<f32> = exp["resid_post_last_begin0.normal_logit_diff"]
        .to_vec1()
        .unwrap();
    let want_c: Vec<f32> = exp["resid_post_last_begin0.contrast_logit_diff"]
        .to_vec1()
        .unwrap();
    let ld_n = got["mean_ld_normal"].as_f64().unwrap();
    let ld_c = got["mean_ld_contrast"].as_f64().unwrap();
    assert!(
        (ld_n - want_n[0] as f64).abs() < 1e-4,
        "{ld_n} vs {want_n:?}"
    );
    assert!(
        (ld_c - want_c[0] as f64).abs() < 1e-4,
        "{ld_c} vs {want_c:?}"
    );

    // The table names the paper's two accuracies.
    let table = run_cli(&[
        "eval",
        "--model",
        dir.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--show",
        "2",
    ]);
    assert!(table.contains("normal (orig_acc)") && table.contains("contrast (cf_acc)"));
    assert!(
        table.contains("LD_normal") && table.contains("→normal"),
        "{table}"
    );
}

#[test]
fn attention_rows_match_transformerlens_patterns() {
    let dir = fixture(NAME);
    let data = dir.join("addition.jsonl");
    let exp = candle_core::safetensors::load(
        dir.join("expected_path_patching.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    for (l, h) in [(1usize, 3usize), (3, 0)] {
        let out = run_cli(&[
            "attention",
            "--model",
            dir.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--head",
            &format!("{l}.{h}"),
            "--prompts",
            "1",
            "--run",
            "contrast",
            "--top",
            "1000",
        ]);
        // pattern.layerL: [heads, query, key] on the first contrast prompt.
        let pat = &exp[&format!("pattern.layer{l}")];
        let t = pat.dims()[1];
        let want: Vec<f32> = pat.get(h).unwrap().get(t - 1).unwrap().to_vec1().unwrap();
        let rows: Vec<(usize, f32)> = out
            .lines()
            .filter(|line| line.starts_with("  "))
            .map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                (f[0].parse().unwrap(), f.last().unwrap().parse().unwrap())
            })
            .collect();
        assert_eq!(rows.len(), t, "{out}");
        for w in rows.windows(2) {
            assert!(w[0].1 >= w[1].1, "not sorted: {out}");
        }
        for (pos, w) in rows {
            assert!(
                (w - want[pos]).abs() < 1e-4,
                "{l}.{h} key {pos}: {w} vs {}",
                want[pos]
            );
        }
    }
    let grid = run_cli(&[
        "attention",
        "--model",
        dir.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--head",
        "0.1",
        "--grid",
        "--prompts",
        "4",
    ]);
    assert!(
        grid.contains("head 0.1: attention (rows: query position"),
        "{grid}"
    );
}

#[test]
fn attention_rejects_bad_heads() {
    let dir = fixture(NAME);
    let data = dir.join("addition.jsonl");
    for (head, needle) in [("9.0", "outside the model"), ("x", "LAYER.HEAD")] {
        let out = Command::new(bin())
            .args(["attention", "--model", dir.to_str().unwrap(), "--data"])
            .arg(&data)
            .args(["--head", head])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{err}");
    }
}
