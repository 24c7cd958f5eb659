//! Results of different shapes side by side (issue 26, item 2): the paper's four
//! `resid_post_*` results (Gemma-2-9B 42×16, Llama-2-7B, Llama-3-8B and Mistral-7B 32×32)
//! open together; each panel's cursor readout is its own file's value at its printed
//! precision; at 120×40 all four show, at 80×24 the view pages between them.

mod common;

use std::path::{Path, PathBuf};

use crossterm::event::KeyCode;
use headhunt::plot::number::signed;
use headhunt::tui::app::{App, Screen};

use common::tui::{key, press};

/// The paper's four final-layer results, in the order given.
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

/// r at (layer, head) straight from the file's JSON (not through the importer).
fn file_value(path: &Path, (l, h): (usize, usize)) -> f64 {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["matrix"][l][h].as_f64().unwrap()
}

/// The explorer opened on `files` side by side (no model needed to show them).
fn side_app(tag: &str, files: Vec<PathBuf>) -> (App, PathBuf) {
    let dir = common::temp_dir(tag);
    let mut s = common::tui::setup("fixture", dir.clone());
    s.side_by_side = files;
    let mut app = App::new(s);
    app.take_effects();
    (app, dir)
}

/// Each panel on screen shows its cursor as `H{l}.{h}  r {value}%`, the value its file holds
/// there at two decimals; returns how many panels were checked.
fn check_panels_on_screen(app: &mut App, w: u16, h: u16) -> usize {
    let text = common::tui::screen(app, w, h);
    let mut checked = 0;
    for p in &app.screens.side.panels {
        if !text.contains(&format!(" {} ", p.model)) {
            continue;
        }
        let (l, hd) = p.cursor;
        let want = format!(
            "H{l}.{hd}  r {}%",
            signed(100.0 * file_value(&p.path, (l, hd)), 2)
        );
        assert!(
            text.contains(&want),
            "{}: {want} not on screen:\n{text}",
            p.model
        );
        checked += 1;
    }
    checked
}

#[test]
fn four_paper_models_side_by_side_at_120x40_each_cursor_its_files_value() {
    let (mut app, dir) = side_app("side-120", paper_finals());
    assert_eq!(app.screen, Screen::Side, "{}", app.status.1);
    assert_eq!(app.screens.side.panels.len(), 4);
    let shapes: Vec<(usize, usize)> = app
        .screens
        .side
        .panels
        .iter()
        .map(|p| (p.record.n_layers, p.record.n_heads))
        .collect();
    assert_eq!(shapes, vec![(42, 16), (32, 32), (32, 32), (32, 32)]);
    // Each cursor opens on its own largest effect, and every panel shows it.
    assert_eq!(check_panels_on_screen(&mut app, 120, 40), 4);
    let text = common::tui::screen(&mut app, 120, 40);
    for m in ["gemma_2_9b", "llama_2_7b", "llama_3_8b", "mistral_7b"] {
        assert!(text.contains(m), "{m}:\n{text}");
    }
    assert!(text.contains("largest |r|:"), "{text}");
    // The largest heads of each are listed with their file's values.
    for p in &app.screens.side.panels {
        let (l, h, _) = headhunt::tui::app::largest(&p.record, 1)[0];
        let line = format!(
            "{l:>2}.{h:<2} {:>8}%",
            signed(100.0 * file_value(&p.path, (l, h)), 2)
        );
        assert!(text.contains(&line), "{}: {line}\n{text}", p.model);
    }
    // Moving one panel's cursor moves that panel only; every readout still equals its file.
    let before: Vec<(usize, usize)> = app.screens.side.panels.iter().map(|p| p.cursor).collect();
    app.on_key(key(KeyCode::Tab));
    press(&mut app, "jjlll");
    let after: Vec<(usize, usize)> = app.screens.side.panels.iter().map(|p| p.cursor).collect();
    assert_eq!(after[0], before[0]);
    assert_eq!(after[2..], before[2..]);
    assert_eq!(after[1], (before[1].0 - 2, (before[1].1 + 3).min(31)));
    assert_eq!(check_panels_on_screen(&mut app, 120, 40), 4);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn at_80x24_the_side_by_side_view_pages_between_the_models() {
    let (mut app, dir) = side_app("side-80", paper_finals());
    let text = common::tui::screen(&mut app, 80, 24);
    assert!(text.contains("panels 1–2 of 4"), "{text}");
    assert!(
        text.contains("gemma_2_9b") && !text.contains("mistral_7b"),
        "{text}"
    );
    assert_eq!(check_panels_on_screen(&mut app, 80, 24), 2);
    app.on_key(key(KeyCode::Tab));
    app.on_key(key(KeyCode::Tab));
    let text = common::tui::screen(&mut app, 80, 24);
    assert!(text.contains("panels 3–4 of 4"), "{text}");
    assert!(
        text.contains("mistral_7b") && !text.contains("gemma_2_9b"),
        "{text}"
    );
    press(&mut app, "kh");
    assert_eq!(check_panels_on_screen(&mut app, 80, 24), 2);
    app.on_key(key(KeyCode::BackTab));
    app.on_key(key(KeyCode::BackTab));
    assert!(common::tui::screen(&mut app, 80, 24).contains("panels 1–2 of 4"));
    // Esc goes back, q asks to quit (nothing unsaved: quits).
    app.on_key(key(KeyCode::Esc));
    assert_eq!(app.screen, Screen::Heatmap);
    std::fs::remove_dir_all(dir).unwrap();
}

/// The grid's rows are depth bands: a 42-layer and a 32-layer result fill the same rows, the
/// last layer on the top row and layer 0 on the bottom one, every layer in one band.
#[test]
fn the_layer_axis_is_depth_normalized() {
    use headhunt::tui::app::screens::side::row_layers;
    for n in [42, 32, 4] {
        let rows = 20;
        let mut seen = vec![0; n];
        for r in 0..rows {
            for l in row_layers(r, rows, n) {
                seen[l] += 1;
                // The band's depth holds where the layer starts (l / n) where layers are
                // at least as many as rows; else the band's start lies in the layer.
                let (lo, hi) = (r as f64 / rows as f64, (r + 1) as f64 / rows as f64);
                let (a, b) = (l as f64 / n as f64, (l + 1) as f64 / n as f64);
                if n >= rows {
                    assert!(lo - 1e-12 <= a && a < hi, "{n}: layer {l} in row {r}");
                } else {
                    assert!(a - 1e-12 <= lo && lo < b, "{n}: layer {l} in row {r}");
                }
            }
        }
        if n >= rows {
            assert!(seen.iter().all(|&c| c == 1), "{n}: {seen:?}");
        }
        assert_eq!(row_layers(rows - 1, rows, n).last(), Some(&(n - 1)));
        assert_eq!(row_layers(0, rows, n)[0], 0);
    }
}

/// `F` on the side-by-side view writes its figure (.svg and .png) into the results folder,
/// never beside the compared files, one panel per result.
#[test]
fn f_writes_the_side_by_side_figure_into_the_results_folder() {
    let (mut app, dir) = side_app("side-figure", paper_finals());
    press(&mut app, "F");
    assert!(app.status.1.starts_with("figure: "), "{}", app.status.1);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names[0].starts_with("side-gemma_2_9b") && names[0].ends_with(".png"),
        "{names:?}"
    );
    let svg = std::fs::read_to_string(dir.join(&names[1])).unwrap();
    for m in ["gemma_2_9b", "llama_2_7b", "llama_3_8b", "mistral_7b"] {
        assert!(svg.contains(m), "{m}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}
