//! The IOI prompt pairs of README's case study (`data/ioi/ioi_abba.jsonl`, roles as character
//! spans) through `patch` with position sets, on a fixture model: two identities path patching
//! must hold whatever the model, since a receiver read at END hears a sender only through that
//! sender's output at END (every other head is frozen to the contrast run; MLPs do not mix
//! positions):
//! - heads patched at END only give the numbers of heads patched everywhere, bit for bit;
//! - heads patched at S2 only give r = 0 (up to float rounding).

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

fn patch(out: &Path, extra: &[&str]) -> headhunt::results::RunRecord {
    let fx = fixture("tiny-qwen2");
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/ioi/ioi_abba.jsonl");
    let res = Command::new(bin())
        .arg("patch")
        .args(["--model", fx.to_str().unwrap()])
        .args(["--data", data.to_str().unwrap()])
        // The fixture's tokenizer splits names into pieces: keep the pairs of equal length.
        .args([
            "--skip-mismatched",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{extra:?}: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    headhunt::results::RunRecord::load(out).unwrap()
}

fn cells(rec: &headhunt::results::RunRecord) -> Vec<f64> {
    (0..rec.n_layers)
        .flat_map(|l| (0..rec.n_heads).map(move |h| (l, h)))
        .map(|(l, h)| rec.r(l, h).unwrap())
        .collect()
}

#[test]
fn roles_restrict_senders_exactly() {
    let dir = temp_dir("ioi_roles");
    let end = patch(
        &dir.join("end.json"),
        &[
            "--sender-positions",
            "role:END",
            "--receiver",
            "resid_post:2@role:END",
        ],
    );
    let all = patch(&dir.join("all.json"), &["--receiver", "resid_post:2"]);
    let s2 = patch(
        &dir.join("s2.json"),
        &[
            "--sender-positions",
            "role:S2",
            "--receiver",
            "resid_post:2@role:END",
        ],
    );
    assert_eq!(cells(&end), cells(&all), "END only = every position");
    assert!(
        cells(&end).iter().any(|r| r.abs() > 0.05),
        "a test of nothing: {:?}",
        cells(&end)
    );
    let largest = cells(&s2).iter().fold(0f64, |m, r| m.max(r.abs()));
    assert!(largest < 1e-5, "heads at S2 reach END: {largest}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("s2.json")).unwrap()).unwrap();
    assert_eq!(v["sender_positions"], "role:S2");
    assert_eq!(v["receiver_label"], "resid_post:2@role:END");
    // Its figure says where the senders were patched.
    let svg = dir.join("s2.svg");
    let res = Command::new(bin())
        .args(["plot", dir.join("s2.json").to_str().unwrap()])
        .args(["--out", svg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let texts = common::figure::svg_texts(&std::fs::read_to_string(&svg).unwrap());
    assert!(
        texts.iter().any(|t| t.contains("senders at role:S2")),
        "{texts:?}"
    );
}
