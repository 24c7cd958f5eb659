//! The explorer's numbers, checked against the files: every paper result opened at 80×24 and
//! 120×40 draws, in each cell, its value at the printed precision (read independently from the
//! file's JSON), and opens with the file's largest |r| on screen.

mod common;

use headhunt::results::RunRecord;
use headhunt::tui::app::{App, Setup};
use headhunt::tui::view;
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use std::path::{Path, PathBuf};

fn setup(results: PathBuf, open: Option<PathBuf>) -> Setup {
    Setup {
        open,
        ..common::tui::setup("fixture", results)
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

fn screen(term: &Terminal<TestBackend>) -> String {
    let buf = term.backend().buffer();
    (0..buf.area.height)
        .map(|y| {
            (0..buf.area.width)
                .map(|x| buf[(x, y)].symbol().to_string())
                .collect::<String>()
                + "\n"
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
            // Every cell prints a number (or a glyph): a grid too large for the screen
            // scrolls rather than drawing colour-only cells (Llama's 32×32 at 80×24).
            assert!(
                tw >= 2,
                "{} at {w}x{h}: cells {} wide",
                path.display(),
                g.cell_w
            );
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
/// Head groups differ by a mark as well as a colour (a terminal without colour, or a
/// colour-blind reader, still tells them apart), the selection has its own mark, and the
/// mark sits in the cell's own last column: the gap before the next cell stays blank and the
/// number is the value at the printed precision. At 80×24 the unmarked grid has 3-column
/// cells (no room for a mark): once a head is marked the cells are 4 wide and scroll.
#[test]
fn group_marks_differ_and_never_eat_the_gap_or_a_digit() {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use headhunt::results::text::CellMeasure;
    let dir = common::temp_dir("render-marks");
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/paper/results/gemma_2_9b/resid_post_41.json");
    let rec = RunRecord::load(&path).unwrap();
    let press =
        |app: &mut App, c: char| app.on_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
    let mut narrow_before = 0;
    for (w, h) in [(80u16, 24u16), (120, 40), (40, 12)] {
        let mut app = App::new(setup(dir.clone(), Some(path.clone())));
        app.viewport = (w, h);
        let draw = |app: &App| {
            let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
            term.draw(|f| view::draw(f, app)).unwrap();
            term
        };
        draw(&app);
        let plain = app.heatmap_geometry().expect("heatmap on screen");
        if plain.cell_w < view::heatmap::MARKED_CELL_W {
            narrow_before += 1;
        }
        // (39,7) into the first group, (41,4) into the second, (36,7) selected.
        let heads = [(39, 7), (41, 4), (36, 7)];
        app.cursor = heads[0];
        press(&mut app, 't');
        press(&mut app, 'g');
        app.cursor = heads[1];
        press(&mut app, 't');
        app.cursor = heads[2];
        press(&mut app, ' ');
        let mut marks = Vec::new();
        for want in heads {
            // The cursor on the head itself, so that the grid scrolls to it (the cursor is
            // drawn reversed; its text and mark are the same).
            app.cursor = want;
            let marked = draw(&app);
            let g = app.heatmap_geometry().expect("heatmap on screen");
            let cw = g.cell_w;
            let what = format!("{w}x{h} {want:?}");
            assert!(
                cw >= view::heatmap::MARKED_CELL_W,
                "{what}: cells {cw} wide have no mark column"
            );
            assert_eq!(
                g.layers_as_rows, plain.layers_as_rows,
                "{what}: marking turned the grid"
            );
            // What is scrolled off is said in full, or visibly cut; never lost at the edge.
            let text = screen(&marked);
            assert!(
                text.contains(" of 42") || text.contains("/42"),
                "{what}: no clip note in\n{text}"
            );
            let (r, c) = (0..g.n_rows as usize)
                .flat_map(|r| (0..g.n_cols as usize).map(move |c| (r, c)))
                .find(|&(r, c)| g.cell_at(r, c) == want)
                .unwrap_or_else(|| panic!("{what} not on screen: {g:?}"));
            let (x, y) = (g.x + c as u16 * cw, g.y + r as u16);
            let after = cell_string(&marked, x, y, cw);
            let tw = view::heatmap::cell_parts(cw).1 as usize;
            let v = rec.relative[want.0].as_ref().unwrap()[want.1];
            let number = view::heatmap::cell_text(v, CellMeasure::R, tw);
            let inner: String = after.chars().skip(1).take(tw).collect();
            assert_eq!(
                inner, number,
                "{what}: the mark moved the number ({after:?})"
            );
            assert!(after.starts_with(' '), "{what}: the gap is gone: {after:?}");
            if c + 1 < g.n_cols as usize {
                let next = cell_string(&marked, x + cw, y, 1);
                assert_eq!(next, " ", "{what}: the mark ate the next cell's gap");
            }
            let mark = after.chars().last().unwrap().to_string();
            assert_ne!(mark, " ", "{what}: no mark");
            marks.push(mark);
        }
        assert_eq!(marks[0], view::heatmap::GROUP_MARKS[0], "{w}x{h}");
        assert_eq!(marks[1], view::heatmap::GROUP_MARKS[1], "{w}x{h}");
        assert_eq!(marks[2], "+", "{w}x{h}: the selection's mark");
        assert!(marks[0] != marks[1], "{w}x{h}: two groups with one mark");
    }
    assert!(
        narrow_before > 0,
        "no size had cells too narrow for marks before marking"
    );
}

/// The gallery says which model and data each entry is for, in columns fitted to the list's
/// width: at every width each paper entry shows its model, the line fits, and a cut ends in
/// `…` (never a silent cut at the border). A long file name gives way before the data.
#[test]
fn gallery_lines_fit_and_say_where_they_are_cut() {
    let paper = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/paper/results/gemma_2_9b");
    let mut entries = headhunt::tui::app::scan_results(&[paper]);
    assert!(entries.len() > 5);
    let mut long = headhunt::tui::app::scan_results(&[
        Path::new(env!("CARGO_MANIFEST_DIR")).join("data/paper/results/gemma_2_9b")
    ])
    .remove(0);
    long.columns[0] = "x".repeat(70);
    entries.push(long);
    for width in [56usize, 76, 96, 116] {
        let lines = view::other::gallery_lines(&entries, width);
        for (e, l) in entries.iter().zip(&lines) {
            assert!(l.chars().count() <= width, "{width}: {l:?}");
            assert!(l.contains("gemma_2_9b"), "{width}: no model in {l:?}");
            assert!(
                l.ends_with('…')
                    || l.ends_with(e.columns[3].as_str())
                    || l.ends_with(e.columns[4].as_str()),
                "{width}: cut without a mark: {l:?}"
            );
        }
        // The name gives way before the data: the data's start is there from 76 columns.
        if width >= 76 {
            let shown = lines
                .iter()
                .filter(|l| l.contains("paper: 100 examples"))
                .count();
            assert_eq!(shown, entries.len(), "{width}: {lines:#?}");
        }
    }
}
