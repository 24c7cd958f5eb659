//! `headhunt patch --senders` end to end (issue #24 item 1): the saved MLP column against the
//! TransformerLens references of `tests/data/mlp` (per example and as r), the heads columns
//! of a `heads,mlp` run equal to a heads-only run's, shard parts merged equal to the unsharded
//! run, `show` printing the MLP column and MLPs in the lists, a bad `--senders` a one-line error.

mod common;

use candle_core::{Device, Tensor};
use common::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `headhunt ARGS`: (exit code, stdout, stderr).
fn headhunt(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin()).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// `patch` on a fixture with its addition data, quiet, to `out`.
fn patch(fx: &str, out: &Path, extra: &[&str]) {
    patch_fixture(fx, out, extra);
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn npy(path: &Path) -> (Vec<f64>, Vec<usize>) {
    headhunt::results::npy::decode_f64(&std::fs::read(path).unwrap()).unwrap()
}

fn refs(name: &str) -> (serde_json::Value, HashMap<String, Tensor>) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/mlp");
    let meta = json(&dir.join(format!("{name}.json")));
    let t = candle_core::safetensors::load(dir.join(format!("{name}.safetensors")), &Device::Cpu)
        .unwrap();
    (meta, t)
}

fn vec1(t: &HashMap<String, Tensor>, key: &str) -> Vec<f64> {
    t[key].to_vec1::<f64>().unwrap()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// `patch --senders heads,mlp` saves, per receiver of the references and per family, the MLP
/// senders' per-example values and r equal to TransformerLens' within 1e-4, null where no
/// sender layer is swept; and the same run's heads equal a heads-only run's bit for bit.
#[test]
fn saved_mlp_column_matches_transformerlens_and_heads_are_unchanged() {
    for fx in ["tiny-llama", "tiny-pythia", "tiny-gemma2"] {
        let (meta, t) = refs(fx);
        let (normal, contrast) = (
            vec1(&t, "logit-diff.normal"),
            vec1(&t, "logit-diff.contrast"),
        );
        for (i, (key, r)) in meta["receivers"].as_object().unwrap().iter().enumerate() {
            let dir = temp_dir(&format!("mlp-cli-{fx}-{i}"));
            let receiver = r["headhunt"].as_str().unwrap();
            let (both, heads) = (dir.join("both.json"), dir.join("heads.json"));
            patch(
                fx,
                &both,
                &["--receiver", receiver, "--senders", "heads,mlp"],
            );
            patch(fx, &heads, &["--receiver", receiver]);
            let want = t[&format!("{key}.logit-diff.mlp_patched")]
                .to_vec2::<f64>()
                .unwrap();
            let v = json(&both);
            assert_eq!(v["senders"], "heads,mlp", "{fx} {key}");
            let computed: Vec<usize> = v["rows_computed"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as usize)
                .collect();
            let (pe, shape) = npy(&headhunt::results::mlp_per_example_path(&both));
            let n_layers = want[0].len();
            assert_eq!(shape, vec![want.len(), n_layers], "{fx} {key}");
            let mut worst = 0f64;
            for l in 0..n_layers {
                let got = &v["mlp_relative"][l];
                if !computed.contains(&l) {
                    assert!(got.is_null(), "{fx} {key} layer {l}: {got}");
                    continue;
                }
                let col: Vec<f64> = want.iter().map(|e| e[l]).collect();
                for (e, w) in col.iter().enumerate() {
                    worst = worst.max((pe[e * n_layers + l] - w).abs());
                }
                let patched = v["mlp_patched_logit_diff"][l].as_f64().unwrap();
                worst = worst.max((patched - mean(&col)).abs());
                // r is the record's own means, exactly as for heads (a small gap would blow
                // the 1e-4 of the means up in r).
                let (n, c) = (
                    v["normal_logit_diff"].as_f64().unwrap(),
                    v["contrast_logit_diff"].as_f64().unwrap(),
                );
                let r = (patched - c) / (c - n);
                assert!((got.as_f64().unwrap() - r).abs() < 1e-12, "{fx} {key} {l}");
            }
            for (k, want) in [("normal", &normal), ("contrast", &contrast)] {
                let got = v[format!("{k}_logit_diff")].as_f64().unwrap();
                worst = worst.max((got - mean(want)).abs());
            }
            assert!(worst < 1e-4, "{fx} {key}: max |diff| {worst:e}");
            // The heads of the heads,mlp run are the heads-only run's, bit for bit.
            let h = json(&heads);
            assert!(h.get("senders").is_none() && h.get("mlp_relative").is_none());
            for f in [
                "relative",
                "patched_logit_diff",
                "relative_ci",
                "rows_computed",
            ] {
                assert_eq!(v[f], h[f], "{fx} {key}: {f}");
            }
            let (a, b) = (
                headhunt::results::per_example_paths(&both),
                headhunt::results::per_example_paths(&heads),
            );
            for (x, y) in a.iter().zip(&b) {
                assert_eq!(std::fs::read(x).unwrap(), std::fs::read(y).unwrap());
            }
            assert!(!headhunt::results::mlp_per_example_path(&heads).exists());
        }
    }
}

/// `--senders mlp` alone: no head row is computed (every `relative` row null), the MLP column
/// is the `heads,mlp` run's, and it loads back.
#[test]
fn mlp_only_leaves_the_heads_uncomputed() {
    let dir = temp_dir("mlp-cli-only");
    let (only, both) = (dir.join("only.json"), dir.join("both.json"));
    patch("tiny-llama", &only, &["--senders", "mlp"]);
    patch("tiny-llama", &both, &["--senders", "heads,mlp"]);
    let (o, b) = (json(&only), json(&both));
    assert_eq!(o["senders"], "mlp");
    assert!(o["relative"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r.is_null()));
    // The same senders; only the batching of pass 1 differs (one row group, or beside the
    // heads'), so the same numbers to float rounding.
    let close = |x: &serde_json::Value, y: &serde_json::Value| {
        (x.as_f64().unwrap() - y.as_f64().unwrap()).abs() < 1e-5
    };
    let (om, bm) = (
        o["mlp_relative"].as_array().unwrap(),
        b["mlp_relative"].as_array().unwrap(),
    );
    assert!(
        om.iter().zip(bm).all(|(x, y)| close(x, y)),
        "{om:?} vs {bm:?}"
    );
    assert_eq!(o["rows_computed"], b["rows_computed"]);
    let (pe, shape) = npy(&headhunt::results::per_example_paths(&only)[0]);
    assert_eq!(shape[0], 8);
    assert!(pe.iter().all(|x| x.is_nan()), "heads not computed are NaN");
    assert!(headhunt::results::mlp_per_example_path(&only).exists());
    assert!(o["mlp_relative_ci"].is_array());
    let rec = headhunt::results::RunRecord::load(&only).unwrap();
    assert!(rec.complete && rec.mlp_r(0).is_some() && rec.r(0, 0).is_none());
}

fn numbers(path: &Path) -> serde_json::Value {
    let mut v = json(path);
    let m = v.as_object_mut().unwrap();
    m.remove("created");
    m.remove("timing");
    m["model"].as_object_mut().unwrap().remove("device");
    v
}

/// Shard parts of a `heads,mlp` sweep merge into the unsharded run: JSON and every
/// per-example file (the MLP one included) bit for bit.
#[test]
fn merged_mlp_shards_equal_the_unsharded_run() {
    for (i, extra) in [
        &["--receiver", "resid_post:3", "--senders", "heads,mlp"][..],
        &[
            "--receiver",
            "2.1.q",
            "--senders",
            "mlp",
            "--algorithm",
            "reference",
        ][..],
    ]
    .iter()
    .enumerate()
    {
        let dir = temp_dir(&format!("mlp-cli-shards{i}"));
        let whole = dir.join("whole.json");
        patch("tiny-llama", &whole, extra);
        let parts = dir.join("parts");
        for k in 0..2 {
            let mut args = extra.to_vec();
            let shard = format!("{k}/2");
            args.extend(["--shard", &shard]);
            patch("tiny-llama", &parts.join(format!("p{k}.json")), &args);
        }
        let merged = dir.join("merged.json");
        let (code, _, err) = headhunt(&[
            "merge",
            parts.to_str().unwrap(),
            "--out",
            merged.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(numbers(&whole), numbers(&merged), "{extra:?}");
        let mut files = headhunt::results::per_example_paths(&whole).to_vec();
        files.push(headhunt::results::mlp_per_example_path(&whole));
        let mut other = headhunt::results::per_example_paths(&merged).to_vec();
        other.push(headhunt::results::mlp_per_example_path(&merged));
        for (x, y) in files.iter().zip(&other) {
            assert_eq!(
                std::fs::read(x).unwrap(),
                std::fs::read(y).unwrap(),
                "{y:?}"
            );
        }
    }
}

/// `show` prints the MLP column beside the heatmap and MLPs in the lists.
#[test]
fn show_prints_the_mlp_column_and_lists_mlps() {
    let dir = temp_dir("mlp-cli-show");
    let out = dir.join("r.json");
    patch("tiny-llama", &out, &["--senders", "heads,mlp"]);
    let (code, text, err) = headhunt(&["show", out.to_str().unwrap(), "--lo", "0", "--hi", "0"]);
    assert_eq!(code, 0, "{err}");
    let header = text.lines().find(|l| l.starts_with("layer")).unwrap();
    assert!(header.trim_end().ends_with("MLP"), "{text}");
    let rec = headhunt::results::RunRecord::load(&out).unwrap();
    // The cell as the heads' are shown: r in %, or the raw effect where r is ill-conditioned.
    let cell = match headhunt::results::text::ill_conditioned(&rec) {
        true => {
            let p = rec.mlp_patched_logit_diff.as_ref().unwrap()[3].unwrap();
            format!("{:+.3}", p - rec.contrast_logit_diff.unwrap())
        }
        false => format!("{:.1}", 100.0 * rec.mlp_r(3).unwrap()),
    };
    let row = text.lines().find(|l| l.starts_with("    3")).unwrap();
    assert!(row.trim_end().ends_with(&cell), "{row} vs {cell}");
    if !headhunt::results::text::ill_conditioned(&rec) {
        assert!(text.contains("MLP 3 "), "{text}");
    }
    // A receiver whose r is well-conditioned lists its MLPs by r.
    let other = dir.join("r2.json");
    patch(
        "tiny-llama",
        &other,
        &["--senders", "heads,mlp", "-r", "resid_post:2"],
    );
    let rec = headhunt::results::RunRecord::load(&other).unwrap();
    let (code, text, err) = headhunt(&["show", other.to_str().unwrap(), "--lo", "0", "--hi", "0"]);
    assert_eq!(code, 0, "{err}");
    if !headhunt::results::text::ill_conditioned(&rec) {
        assert!(text.contains("MLP 2 "), "{text}");
    }
}

#[test]
fn a_bad_senders_is_a_one_line_error() {
    let dir = fixture("tiny-llama");
    let data = dir.join("addition.jsonl");
    for bad in ["attn", "heads,heads", ""] {
        let (code, _, err) = headhunt(&[
            "patch",
            "--model",
            dir.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--senders",
            bad,
        ]);
        assert_one_line_error(code, &err, &["--senders", "heads, mlp or heads,mlp"]);
    }
}
