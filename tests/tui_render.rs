//! The explorer's numbers, checked against the files: every paper result opened at 80×24 and
//! 120×40 draws, in each cell, its value at the printed precision (read independently from the
//! file's JSON), and opens with the file's largest |r| on screen.

mod common;

use headhunt::data::{DataFile, DataOptions};
use headhunt::patching::Algorithm;
use headhunt::results::RunRecord;
use headhunt::tui::app::{App, Setup};
use headhunt::tui::view;
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use std::path::{Path, PathBuf};

fn setup(results: PathBuf, open: Option<PathBuf>) -> Setup {
    Setup {
        model: "fixture".into(),
        tokenizer: None,
        device: "cpu".into(),
        dtype: None,
        data: DataFile {
            data: common::fixture("tiny-gemma2").join("addition.jsonl"),
            options: DataOptions::default(),
        },
        batch_size: 4,
        begin_layer: 0,
        algorithm: Algorithm::Fast,
        receiver: None,
        results_dir: results,
        gallery_dirs: vec![],
        open,
    }
}

fn paper_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/paper/results");
    let mut out = Vec::new();
    for d in std::fs::read_dir(&root).unwrap() {
        for f in std::fs::read_dir(d.unwrap().path()).unwrap() {
            out.push(f.unwrap().path());
        }
    }
    out.sort();
    assert!(out.len() >= 40, "paper results: {out:?}");
    out
}

/// The r matrix straight from the file's JSON (not through the importer).
fn file_matrix(path: &Path) -> Vec<Vec<f64>> {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["matrix"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        })
        .collect()
}

fn cell_string(term: &Terminal<TestBackend>, x: u16, y: u16, w: u16) -> String {
    let buf = term.backend().buffer();
    (x..x + w)
        .map(|i| buf[(i, y)].symbol().to_string())
        .collect()
}

/// `x` printed with `decimals` decimals, zero without a sign.
fn printed(x: f64, decimals: usize) -> String {
    let s = format!("{x:.decimals$}");
    if s.trim_start_matches('-')
        .chars()
        .all(|c| c == '0' || c == '.')
    {
        s.trim_start_matches('-').to_string()
    } else {
        s
    }
}

#[test]
fn every_paper_result_draws_its_own_numbers_and_opens_at_its_largest_effect() {
    let dir = common::temp_dir("render-paper");
    let mut checked = 0;
    for path in paper_files() {
        let m = file_matrix(&path);
        let rec = RunRecord::load(&path).unwrap();
        // The largest |r| of the file, among senders that reach the receiver.
        let mut best = (0, 0, 0.0f64);
        for (l, row) in m.iter().enumerate() {
            for (h, &r) in row.iter().enumerate() {
                if rec.receiver.reachable_from(l) && r.abs() > best.2 {
                    best = (l, h, r.abs());
                }
            }
        }
        for (w, h) in [(80u16, 24u16), (120, 40)] {
            let mut app = App::new(setup(dir.clone(), Some(path.clone())));
            app.viewport = (w, h);
            let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
            term.draw(|f| view::draw(f, &app)).unwrap();
            let g = app.heatmap_geometry().expect("heatmap on screen");
            let mut seen_best = false;
            let (gap, tw, _) = view::heatmap::cell_parts(g.cell_w);
            for r in 0..g.n_rows as usize {
                for c in 0..g.n_cols as usize {
                    let (l, hd) = g.cell_at(r, c);
                    seen_best |= (l, hd) == (best.0, best.1);
                    let x = g.x + c as u16 * g.cell_w + gap;
                    let text = cell_string(&term, x, g.y + r as u16, tw);
                    let t = text.trim();
                    let what = format!("{} at {w}x{h}, cell ({l},{hd}) = {t:?}", path.display());
                    if t.is_empty() || t == "·" || t == "◆" {
                        continue;
                    }
                    let v = 100.0 * m[l][hd];
                    if t == "▲" || t == "▼" {
                        let d = view::heatmap::cell_decimals(
                            headhunt::results::text::CellMeasure::R,
                            tw as usize,
                        );
                        assert!(
                            printed(v, d).len() > tw as usize,
                            "glyph for a value that fits: {what}"
                        );
                        assert_eq!(t == "▲", v > 0.0, "glyph sign: {what}");
                        continue;
                    }
                    let decimals = t.split_once('.').map_or(0, |(_, d)| d.len());
                    assert_eq!(t, printed(v, decimals), "{what}");
                    checked += 1;
                }
            }
            assert!(
                seen_best,
                "{}: largest |r| at {:?} not on screen at {w}x{h}",
                path.display(),
                best
            );
            assert_eq!(app.cursor, (best.0, best.1), "{}", path.display());
        }
    }
    assert!(checked > 1000, "only {checked} numbers checked");
}

#[test]
fn orientation_shows_the_most_precision() {
    // Llama-2-7B (32×32) at 80×24 and Gemma-2-9B (42×16) at 120×40: numbers are drawn.
    let dir = common::temp_dir("render-orient");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/paper/results");
    for (file, w, h, rows) in [
        ("gemma_2_9b/resid_post_41.json", 120u16, 40u16, true),
        ("gemma_2_9b/resid_post_41.json", 80, 24, true),
        // Square: a tie, so layers as columns, as the paper draws them.
        ("llama_2_7b/resid_post_31.json", 120, 40, false),
    ] {
        let mut app = App::new(setup(dir.clone(), Some(root.join(file))));
        app.viewport = (w, h);
        let g = app.heatmap_geometry().unwrap();
        assert_eq!(g.layers_as_rows, rows, "{file} {w}x{h}: {g:?}");
        assert!(
            view::heatmap::cell_parts(g.cell_w).1 >= 2,
            "{file} {w}x{h}: {g:?}"
        );
    }
}
