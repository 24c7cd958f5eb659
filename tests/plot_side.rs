//! `headhunt plot --compare A B C D`: results of different shapes (the paper's four models)
//! as panels side by side on a depth-normalized layer axis; two of one shape still draw as a
//! pair, `--diff` still needs equal shapes.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn paper_finals() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/paper/results");
    [
        "gemma_2_9b/resid_post_41.json",
        "llama_2_7b/resid_post_31.json",
        "llama_3_8b/resid_post_31.json",
        "mistral_7b/resid_post_31.json",
    ]
    .iter()
    .map(|f| root.join(f))
    .collect()
}

fn plot(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(bin()).arg("plot").args(args).output().unwrap()
}

/// The SVG's rects as (x, y, width, height, fill).
fn rects(svg: &str) -> Vec<(f64, f64, f64, f64, String)> {
    let doc = roxmltree::Document::parse(svg).unwrap();
    let num = |n: roxmltree::Node, a: &str| n.attribute(a).unwrap().parse::<f64>().unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name("rect") && n.attribute("width").is_some())
        .map(|n| {
            let fill = n.attribute("fill").unwrap_or("").to_string();
            (
                num(n, "x"),
                num(n, "y"),
                num(n, "width"),
                num(n, "height"),
                fill,
            )
        })
        .collect()
}

#[test]
fn four_models_of_two_shapes_side_by_side_on_one_depth_axis() {
    let dir = temp_dir("plot-side");
    let out = dir.join("side.svg");
    let files = paper_finals();
    let mut args: Vec<&std::ffi::OsStr> = vec!["--compare".as_ref()];
    args.extend(files.iter().map(|f| f.as_os_str()));
    args.extend(["--out".as_ref(), out.as_os_str()]);
    let o = plot(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let svg = std::fs::read_to_string(&out).unwrap();
    for m in ["gemma_2_9b", "llama_2_7b", "llama_3_8b", "mistral_7b"] {
        assert!(svg.contains(m), "{m} is not a panel heading");
    }
    // Every cell of every panel: 42×16 + 3 × 32×32; all grids span the same height, so the
    // 42-layer cells are 32/42 the height of the 32-layer ones.
    let cells: Vec<_> = rects(&svg)
        .into_iter()
        .filter(|r| (8.0..=15.0).contains(&r.2) && (9.0..20.0).contains(&r.3) && r.4 != "none")
        .collect();
    assert_eq!(cells.len(), 42 * 16 + 3 * 32 * 32, "cells");
    let top = cells.iter().map(|r| r.1).fold(f64::MAX, f64::min);
    let bottom = cells.iter().map(|r| r.1 + r.3).fold(0.0, f64::max);
    let xs: Vec<f64> = {
        let mut xs: Vec<f64> = cells.iter().map(|r| r.0).collect();
        xs.sort_by(f64::total_cmp);
        xs
    };
    let first_panel = cells.iter().filter(|r| r.0 < xs[0] + 16.0 * 14.0 + 1.0);
    for c in first_panel {
        assert!((c.3 - (bottom - top) / 42.0).abs() <= 1.0, "{c:?}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn more_than_two_files_need_compare_and_diff_needs_two() {
    let files = paper_finals();
    let paths: Vec<&std::ffi::OsStr> = files.iter().map(|f| f.as_os_str()).collect();
    let o = plot(&paths[..3]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--compare"));
    let mut args = vec!["--diff".as_ref()];
    args.extend(&paths[..3]);
    let o = plot(&args);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--diff needs two"));
}
