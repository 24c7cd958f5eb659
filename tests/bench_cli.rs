//! `headhunt bench` prints the measurements it was asked for, and only those (`--only`):
//! what is in each line is checked, never how long it took (timings are not tested).
mod common;

use std::process::Command;

/// Runs `headhunt bench` on tiny-llama's weights with synthetic prompts (2 pairs, one
/// repetition) and returns its standard output, lines starting with their measurement.
fn bench(extra: &[&str]) -> Vec<String> {
    let out = Command::new(common::bin())
        .arg("bench")
        .arg("--model")
        .arg(common::fixture("tiny-llama"))
        .args(["--examples", "2", "--large", "0", "--repeat", "1"])
        .args(extra)
        .output()
        .expect("runs headhunt");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed: {stderr}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn starting(lines: &[String], word: &str) -> usize {
    lines.iter().filter(|l| l.starts_with(word)).count()
}

#[test]
fn all_parts_by_default() {
    let lines = bench(&[]);
    assert_eq!(starting(&lines, "fast "), 4, "{lines:#?}");
    assert_eq!(starting(&lines, "reference "), 1, "{lines:#?}");
    // reference / fast, heads,mlp / heads, and @last / every position
    assert_eq!(starting(&lines, "ratio "), 3, "{lines:#?}");
    assert_eq!(starting(&lines, "circuit "), 1, "{lines:#?}");
    // the circuit line names its circuit and gives a faithfulness
    let c = lines.iter().find(|l| l.starts_with("circuit ")).unwrap();
    assert!(c.contains("F(C)") && c.contains("faithfulness"), "{c}");
}

#[test]
fn only_leaves_the_rest_out() {
    let lines = bench(&["--only", "circuit"]);
    assert_eq!(starting(&lines, "fast "), 0, "{lines:#?}");
    assert_eq!(starting(&lines, "reference "), 0, "{lines:#?}");
    assert_eq!(starting(&lines, "circuit "), 1, "{lines:#?}");
    let lines = bench(&["--only", "head,reference"]);
    assert_eq!(starting(&lines, "fast "), 1, "{lines:#?}");
    assert!(lines
        .iter()
        .any(|l| l.starts_with("fast ") && l.contains(".v")));
    assert_eq!(starting(&lines, "reference "), 1, "{lines:#?}");
    // no fast resid sweep, so no ratio to it
    assert_eq!(starting(&lines, "ratio "), 0, "{lines:#?}");
    assert_eq!(starting(&lines, "circuit "), 0, "{lines:#?}");
    let lines = bench(&["--only", "reference", "--no-reference"]);
    assert_eq!(starting(&lines, "reference "), 0, "{lines:#?}");
}

#[test]
fn mlp_senders_are_timed_beside_heads_only() {
    let lines = bench(&["--only", "resid,mlp"]);
    let mlp = lines
        .iter()
        .find(|l| l.starts_with("fast ") && l.contains("heads and MLPs"))
        .unwrap_or_else(|| panic!("{lines:#?}"));
    // tiny-llama: 4 layers of 8 heads and an MLP each.
    assert!(mlp.contains("36 senders"), "{mlp}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("ratio ") && l.contains("heads,mlp / heads")),
        "{lines:#?}"
    );
}

#[test]
fn a_position_restricted_head_sweep_is_timed_beside_the_whole_one() {
    let lines = bench(&["--only", "positions"]);
    let at_last = lines
        .iter()
        .find(|l| l.starts_with("fast ") && l.contains("@last"))
        .unwrap_or_else(|| panic!("{lines:#?}"));
    assert!(
        at_last.contains("senders at the last position"),
        "{at_last}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("ratio ") && l.contains("@last / every position")),
        "{lines:#?}"
    );
}
