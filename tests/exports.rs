//! `show --npy/--csv` exports every number a result holds per cell — r, its interval, the
//! patched metric under its own name, a run's MLP column, and scans too — equal to the JSON.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn headhunt(args: &[&str]) -> (i32, String) {
    let out = Command::new(bin()).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn npy(path: &Path) -> (Vec<f64>, Vec<usize>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    headhunt::results::npy::decode_f64(&bytes).unwrap()
}

fn beside(path: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}.{suffix}", path.with_extension("").display()))
}

/// The same number, or both not a number (NaN in `.npy`, `null`/absent in JSON).
fn same(a: f64, b: Option<f64>) -> bool {
    match b {
        Some(b) if b.is_finite() => a == b,
        _ => a.is_nan(),
    }
}

#[test]
fn a_kl_run_with_mlp_senders_exports_every_number_under_its_metric() {
    let dir = temp_dir("exports_run");
    let out = dir.join("run.json");
    patch_fixture(
        "tiny-llama",
        &out,
        &["--senders", "heads,mlp", "--metric", "kl"],
    );
    let (code, err) = headhunt(&["show", out.to_str().unwrap(), "--npy", "--csv"]);
    assert_eq!(code, 0, "{err}");
    let rec = headhunt::results::RunRecord::load(&out).unwrap();
    let (l, h) = (rec.n_layers, rec.n_heads);
    assert!(
        !beside(&out, "patched_logit_diff.npy").exists(),
        "a KL must never be exported under the logit difference's name"
    );
    let (r, shape) = npy(&beside(&out, "relative.npy"));
    assert_eq!(shape, vec![l, h]);
    let (p, _) = npy(&beside(&out, "patched_kl.npy"));
    let (ci, ci_shape) = npy(&beside(&out, "relative_ci.npy"));
    assert_eq!(ci_shape, vec![l, h, 2]);
    for layer in 0..l {
        for head in 0..h {
            let i = layer * h + head;
            assert!(same(r[i], rec.r(layer, head)), "r {layer}.{head}");
            assert!(
                same(p[i], rec.patched(layer, head)),
                "patched {layer}.{head}"
            );
            let iv = rec.interval(layer, head);
            assert!(same(ci[2 * i], iv.map(|x| x.0)), "low {layer}.{head}");
            assert!(same(ci[2 * i + 1], iv.map(|x| x.1)), "high {layer}.{head}");
        }
    }
    let (m, m_shape) = npy(&beside(&out, "mlp_relative.npy"));
    assert_eq!(m_shape, vec![l]);
    let (mp, _) = npy(&beside(&out, "mlp_patched_kl.npy"));
    let (mci, mci_shape) = npy(&beside(&out, "mlp_relative_ci.npy"));
    assert_eq!(mci_shape, vec![l, 2]);
    let mlp_patched = rec.mlp_patched_logit_diff.clone().unwrap();
    let mlp_ci = rec.mlp_relative_ci.clone().unwrap();
    for layer in 0..l {
        assert!(same(m[layer], rec.mlp_r(layer)), "mlp r {layer}");
        assert!(same(mp[layer], mlp_patched[layer]), "mlp patched {layer}");
        let [lo, hi] = mlp_ci[layer].unwrap_or([None, None]);
        assert!(same(mci[2 * layer], lo) && same(mci[2 * layer + 1], hi));
    }
    assert!(m.iter().any(|x| x.is_finite() && *x != 0.0), "{m:?}");

    let csv = std::fs::read_to_string(out.with_extension("csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("layer,head,r,patched_kl,r_low,r_high"));
    let rows: Vec<Vec<&str>> = lines.map(|x| x.split(',').collect()).collect();
    assert_eq!(rows.len(), l * (h + 1), "a row per head and per MLP");
    let parse = |s: &str| (!s.is_empty()).then(|| s.parse::<f64>().unwrap());
    for row in &rows {
        let layer: usize = row[0].parse().unwrap();
        let (r, p, lo) = (parse(row[2]), parse(row[3]), parse(row[4]));
        let (want_r, want_p, want_lo) = match row[1] {
            "mlp" => (
                rec.mlp_r(layer),
                mlp_patched[layer],
                mlp_ci[layer].and_then(|b| b[0]),
            ),
            head => {
                let head: usize = head.parse().unwrap();
                let iv = rec.interval(layer, head).map(|x| x.0);
                (rec.r(layer, head), rec.patched(layer, head), iv)
            }
        };
        let exact = |a: Option<f64>, b: Option<f64>| match (a, b.filter(|x| x.is_finite())) {
            (Some(a), Some(b)) => a == b,
            (a, b) => a.is_none() && b.is_none(),
        };
        assert!(
            exact(r, want_r) && exact(p, want_p) && exact(lo, want_lo),
            "{row:?}"
        );
    }
}

#[test]
fn a_scan_exports_its_cells_and_position_tokens() {
    let dir = temp_dir("exports_scan");
    let out = dir.join("scan.json");
    let fx = fixture("tiny-llama");
    let data = fx.join("addition.jsonl");
    let (code, err) = headhunt(&[
        "scan",
        "--kind",
        "resid-pos",
        "--model",
        fx.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, err) = headhunt(&["show", out.to_str().unwrap(), "--npy", "--csv"]);
    assert_eq!(code, 0, "{err}");
    let rec = headhunt::results::scan::ScanRecord::load(&out).unwrap();
    let (r, shape) = npy(&beside(&out, "relative.npy"));
    assert_eq!(shape, vec![rec.n_layers, rec.n_columns]);
    for l in 0..rec.n_layers {
        for c in 0..rec.n_columns {
            assert!(same(r[l * rec.n_columns + c], rec.r(l, c)), "{l},{c}");
        }
    }
    assert!(beside(&out, "patched_logit_diff.npy").exists());
    let csv = std::fs::read_to_string(out.with_extension("csv")).unwrap();
    assert!(
        csv.starts_with("layer,position,token,r,patched_logit_diff,r_low,r_high\n"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 1 + rec.n_layers * rec.n_columns);
    // Each position's token is there, quoted where it holds a comma or a quote.
    let last = rec.n_columns - 1;
    let token = &rec.tokens[last];
    let field = if token.contains([',', '"']) {
        format!("\"{}\"", token.replace('"', "\"\""))
    } else {
        token.clone()
    };
    let top = rec.n_layers - 1;
    assert!(
        csv.contains(&format!("\n{top},{last},{field},")),
        "{field:?} in {csv}"
    );
    // An existing export is not replaced without --force.
    let (code, err) = headhunt(&["show", out.to_str().unwrap(), "--csv"]);
    assert_one_line_error(code, &err, &["--csv", "--force"]);
}
