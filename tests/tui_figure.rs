//! The explorer's figure key `F`: on the heatmap it writes the figure of the run as shown
//! (groups, colour range, crop, orientation) beside the run's saved JSON, saving the run first;
//! on the attention screen the figure of the view's heads. The files are read back (SVG
//! rectangles and texts, PNG pixels) and checked against the run's values on an independent
//! colour scale. A file of someone else's at the figure's name is never replaced.

mod common;

use common::figure::{hex, rdbu, svg_cells, svg_fill_at, svg_rects, svg_texts, Png};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use headhunt::patching::{Algorithm, PatchMatrix};
use headhunt::results::{RecordParts, RunRecord};
use headhunt::tui::app::{App, Effect, Orientation, Screen, Setup};
use headhunt::worker::{Event, Job, PromptChoice, RunKind};
use std::path::{Path, PathBuf};

use common::tui::{baselines, info, press, HEADS, LAYERS};

fn setup(results: PathBuf) -> Setup {
    common::tui::setup("fixture", results)
}

fn enter(app: &mut App) {
    app.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
}

/// An app with the model and data "loaded" (worker events fed by hand).
fn ready_app(tag: &str) -> (App, PathBuf) {
    let dir = common::temp_dir(tag);
    (common::tui::loaded(setup(dir.clone()), 11), dir)
}

/// r of sender (layer, head) in the run `run_sweep` feeds: head 0 from -10% (layer 0) to
/// -40% (layer 3), head 1 +5%, head 2 +30%, the rest 0.
fn r_of(l: usize, h: usize) -> f64 {
    match h {
        0 => -0.1 * (l as f64 + 1.0),
        1 => 0.05,
        2 => 0.3,
        _ => 0.0,
    }
}

/// Runs `r` and feeds the whole sweep (LD_n 2, LD_c -1: patched = -1 - 3 r).
fn run_sweep(app: &mut App) {
    press(app, "r");
    let effects = app.take_effects();
    let (id, receiver) = effects
        .iter()
        .find_map(|e| match e {
            Effect::Submit(id, Job::Patch(spec)) => Some((*id, spec.receiver.clone())),
            _ => None,
        })
        .expect("a patch job");
    let mut m = PatchMatrix::new(LAYERS, HEADS, 2.0, -1.0, 8);
    for l in 0..LAYERS {
        m.set_row(l, (0..HEADS).map(|h| -1.0 - 3.0 * r_of(l, h)).collect());
    }
    app.on_worker(baselines(id));
    let record = RunRecord::from_run(RecordParts {
        matrix: &m,
        complete: true,
        receiver: &receiver,
        begin_layer: 0,
        algorithm: Algorithm::Fast,
        batch_size: 4,
        model: info(),
        data: None,
        timing: Default::default(),
    });
    app.on_worker(Event::PatchDone {
        id,
        record: Box::new(record),
    });
}

/// The pixel size of the SVG text starting with `start` (plotters writes size / 1.24).
fn title_px(svg: &str, start: &str) -> f64 {
    let doc = roxmltree::Document::parse(svg).unwrap();
    let n = doc
        .descendants()
        .find(|n| n.has_tag_name("text") && n.text().unwrap_or("").trim().starts_with(start))
        .unwrap_or_else(|| panic!("no text {start:?}"));
    let size: f64 = n.attribute("font-size").unwrap().parse().unwrap();
    (size * 1.24 * 100.0).round() / 100.0
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    files(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect()
}

#[test]
fn f_writes_the_heatmap_as_shown_beside_the_saved_run() {
    let (mut app, dir) = ready_app("fig-heatmap");
    run_sweep(&mut app);
    // Shown: layers 1-3 only, fixed ±20%, layers as rows, H3.2 tagged into the first group.
    press(&mut app, "z1-3");
    enter(&mut app);
    press(&mut app, "f");
    app.orientation = Orientation::LayersAsRows;
    app.cursor = (3, 2);
    press(&mut app, "t");
    assert!(with_ext(&dir, "json").is_empty(), "not saved yet");
    press(&mut app, "F");
    let json = with_ext(&dir, "json");
    assert_eq!(json.len(), 1, "F saved the run first: {:?}", files(&dir));
    let stem = json[0].with_extension("");
    let (svg_path, png_path) = (stem.with_extension("svg"), stem.with_extension("png"));
    assert!(
        app.status.1.contains(&svg_path.display().to_string())
            && app.status.1.contains(&format!(
                " and {}",
                png_path.file_name().unwrap().to_string_lossy()
            ))
            && app.status.1.starts_with("saved "),
        "{}",
        app.status.1
    );
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    let texts = svg_texts(&svg);
    assert!(
        texts.iter().any(|t| t == "Path patching to resid_post 3"),
        "{texts:?}"
    );
    assert!(
        texts.iter().any(|t| t == "20%"),
        "fixed ±20% scale: {texts:?}"
    );
    assert!(texts.iter().any(|t| t == "consolidation"), "{texts:?}");
    // 3 layers × 4 heads, cropped; layers as rows, the highest on top.
    let rects = svg_rects(&svg);
    let size = rects
        .iter()
        .filter(|r| r.fill == hex(rdbu(0.0, 20.0)) && r.w == r.h)
        .map(|r| r.w)
        .next()
        .expect("a white cell (r = 0)");
    let cells = svg_cells(&svg, size);
    assert_eq!(cells.len(), 3 * HEADS, "{cells:?}");
    let x0 = cells.iter().map(|c| c.x).fold(f64::MAX, f64::min);
    let y0 = cells.iter().map(|c| c.y).fold(f64::MAX, f64::min);
    let png = Png::read(&png_path);
    for l in 1..=3 {
        for h in 0..HEADS {
            let row = (3 - l) as f64;
            let at = (x0 + (h as f64 + 0.5) * size, y0 + (row + 0.5) * size);
            let want = rdbu(100.0 * r_of(l, h), 20.0);
            assert_eq!(svg_fill_at(&cells, at), Some(hex(want)), "SVG cell {l}.{h}");
            assert_eq!(png.at(at), want, "PNG cell {l}.{h}");
        }
    }
    // The tagged head is outlined in the first group's colour (purple).
    let outline = svg
        .lines()
        .any(|l| l.contains("<rect") && l.contains("stroke=\"#7528A0\""));
    assert!(outline, "group outline");
}

#[test]
fn f_follows_the_orientation_and_the_auto_range() {
    let (mut app, dir) = ready_app("fig-orient");
    run_sweep(&mut app);
    press(&mut app, "s");
    app.orientation = Orientation::LayersAsColumns;
    press(&mut app, "F");
    let svg = std::fs::read_to_string(&with_ext(&dir, "svg")[0]).unwrap();
    // Auto: ± the largest |r| shown, 40%: H3.0 is RdBu's dark red end, H0.0 (-10%) a quarter.
    let rects = svg_rects(&svg);
    let dark: Vec<_> = rects
        .iter()
        .filter(|r| r.w == r.h && r.fill == hex(rdbu(-40.0, 40.0)))
        .collect();
    assert_eq!(dark.len(), 1, "{dark:?}");
    let size = dark[0].w;
    let cells = svg_cells(&svg, size);
    assert_eq!(cells.len(), LAYERS * HEADS);
    let x0 = cells.iter().map(|c| c.x).fold(f64::MAX, f64::min);
    let y0 = cells.iter().map(|c| c.y).fold(f64::MAX, f64::min);
    // Layers as columns (layer 0 left), heads as rows (head 0 on top).
    let at = |l: usize, h: usize| (x0 + (l as f64 + 0.5) * size, y0 + (h as f64 + 0.5) * size);
    for (l, h) in [(3, 0), (0, 0), (2, 2), (1, 1), (0, 3)] {
        let want = hex(rdbu(100.0 * r_of(l, h), 40.0));
        assert_eq!(svg_fill_at(&cells, at(l, h)), Some(want), "cell {l}.{h}");
    }
    assert!(app.status.1.starts_with("figure "), "{}", app.status.1);
}

#[test]
fn f_never_replaces_a_file_headhunt_did_not_draw() {
    let (mut app, dir) = ready_app("fig-clobber");
    run_sweep(&mut app);
    press(&mut app, "s");
    let stem = with_ext(&dir, "json")[0].with_extension("");
    let mine = stem.with_extension("svg");
    std::fs::write(&mine, "<svg>someone's own figure</svg>").unwrap();
    press(&mut app, "F");
    assert_eq!(
        std::fs::read_to_string(&mine).unwrap(),
        "<svg>someone's own figure</svg>"
    );
    let name = stem.file_name().unwrap().to_string_lossy().to_string();
    let second = dir.join(format!("{name}-2.svg"));
    assert!(second.is_file(), "{:?}", files(&dir));
    assert!(app.status.1.contains("-2.svg"), "{}", app.status.1);
    // A figure headhunt drew is redrawn in place: no -3.
    press(&mut app, "fF");
    assert!(
        !dir.join(format!("{name}-3.svg")).exists(),
        "{:?}",
        files(&dir)
    );
    let redrawn = std::fs::read_to_string(&second).unwrap();
    let texts = svg_texts(&redrawn);
    assert!(
        texts.iter().any(|t| t == "20%") && !texts.iter().any(|t| t == "40%"),
        "fixed ±20% now, not the auto ±40%: {texts:?}"
    );
    // The PNG beside the JSON was free: it took the plain name.
    assert!(stem.with_extension("png").is_file());
}

#[test]
fn f_on_the_attention_screen_draws_the_heads_shown() {
    let (mut app, dir) = ready_app("fig-attn");
    app.cursor = (3, 0);
    press(&mut app, "a");
    assert_eq!(app.screen, Screen::Attention);
    press(&mut app, "F");
    assert!(
        app.status.1.contains("still being computed"),
        "{}",
        app.status.1
    );
    let id = match &app.take_effects()[..] {
        [Effect::Submit(id, Job::Attention(_))] => *id,
        other => panic!("{other:?}"),
    };
    let tokens: Vec<String> = ["<bos>", "1", "+", "1", "=", "3", "\n", "2", "+", "2", "="]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let n = tokens.len();
    // Each query attends 0.75 to the token before it and 0.25 to <bos> (query 0: 1 to itself).
    let pattern: Vec<Vec<f32>> = (0..n)
        .map(|q| {
            (0..n)
                .map(|k| match (q, k) {
                    (0, 0) => 1.0,
                    (_, 0) if q == 1 => 1.0,
                    (_, 0) => 0.25,
                    _ if k + 1 == q => 0.75,
                    _ => 0.0,
                })
                .collect()
        })
        .collect();
    app.on_worker(Event::Attention {
        id,
        request: headhunt::worker::AttentionRequest {
            heads: vec![(3, 0)],
            run: RunKind::Contrast,
            prompts: PromptChoice::Mean(4),
        },
        tokens,
        patterns: vec![pattern.clone()],
    });
    press(&mut app, "F");
    let svg_path = dir.join("fixture-attention-3.0-contrast-mean4.svg");
    assert!(svg_path.is_file(), "{:?} ({})", files(&dir), app.status.1);
    assert!(dir
        .join("fixture-attention-3.0-contrast-mean4.png")
        .is_file());
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    let texts = svg_texts(&svg);
    assert!(
        texts
            .iter()
            .any(|t| t == "Attention patterns · contrast run · mean of the first 4 prompts"),
        "{texts:?}"
    );
    assert!(
        texts.iter().any(|t| t == "↵ (6)"),
        "token labels: {texts:?}"
    );
    // The explorer's own title is laid out for: drawn at full size (18 px, which plotters
    // writes as 18 / 1.24), not shrunk to fit a width meant for another title.
    assert_eq!(title_px(&svg, "Attention patterns · contrast run"), 18.0);
    // Purples: weight 1 is the end stop, 0 the start, 0.75 and 0.25 interpolated stops.
    let count = |c: &str| {
        svg_rects(&svg)
            .iter()
            .filter(|r| r.w == r.h && r.fill == c)
            .count()
    };
    assert_eq!(count("#3F007D"), 2, "two weights of 1");
    assert_eq!(count("#6A51A3"), n - 2, "weights 0.75 = stop 6 of 8");
    assert_eq!(count("#DADAEB"), n - 2, "weights 0.25 = stop 2 of 8");
    // The bars of the query row shown go to their own file.
    press(&mut app, "b");
    press(&mut app, "F");
    let bars = dir.join("fixture-attention-3.0-contrast-mean4-query10.svg");
    assert!(bars.is_file(), "{:?}", files(&dir));
    let texts = svg_texts(&std::fs::read_to_string(&bars).unwrap());
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("Attention of query 10 \"=\"")),
        "{texts:?}"
    );
}

/// A run whose baselines are too close for r (|LD_c − LD_n| < 1): the explorer and the figure
/// show the raw effect patched − LD_c in logits, the auto range has its 0.5-logit floor, and
/// the fixed range is ±1 logit.
#[test]
fn f_draws_raw_effects_with_the_explorers_floor_and_fixed_range() {
    let (mut app, dir) = ready_app("fig-raw");
    let raw = |l: usize, h: usize| 0.1 * h as f64 - 0.05 * l as f64;
    let mut m = PatchMatrix::new(LAYERS, HEADS, 0.3, 0.0, 8);
    for l in 0..LAYERS {
        m.set_row(l, (0..HEADS).map(|h| raw(l, h)).collect());
    }
    let rec = RunRecord::from_run(RecordParts {
        matrix: &m,
        complete: true,
        receiver: &headhunt::patching::Receiver::resid_post(LAYERS - 1),
        begin_layer: 0,
        algorithm: Algorithm::Fast,
        batch_size: 4,
        model: info(),
        data: None,
        timing: Default::default(),
    });
    let json = dir.join("raw.json");
    rec.save(&json, false).unwrap();
    app.open_record(rec, json.clone());
    app.orientation = Orientation::LayersAsRows;
    let check = |app: &mut App, range: f64, bar: &str| {
        press(app, "F");
        let svg = std::fs::read_to_string(dir.join("raw.svg")).unwrap();
        let texts = svg_texts(&svg);
        assert!(texts.iter().any(|t| t == "Δ logits"), "{texts:?}");
        assert!(
            texts.iter().any(|t| t == bar),
            "colour bar end {bar}: {texts:?}"
        );
        let white = hex(rdbu(0.0, range));
        let size = svg_rects(&svg)
            .iter()
            .find(|r| r.fill == white && r.w == r.h)
            .expect("a white cell")
            .w;
        let cells = svg_cells(&svg, size);
        assert_eq!(cells.len(), LAYERS * HEADS);
        let x0 = cells.iter().map(|c| c.x).fold(f64::MAX, f64::min);
        let y0 = cells.iter().map(|c| c.y).fold(f64::MAX, f64::min);
        let png = Png::read(&dir.join("raw.png"));
        for (l, h) in [(3, 0), (0, 3), (1, 2), (2, 1)] {
            let at = (
                x0 + (h as f64 + 0.5) * size,
                y0 + ((3 - l) as f64 + 0.5) * size,
            );
            let want = rdbu(raw(l, h), range);
            assert_eq!(svg_fill_at(&cells, at), Some(hex(want)), "SVG cell {l}.{h}");
            assert_eq!(png.at(at), want, "PNG cell {l}.{h}");
        }
    };
    // Auto: the largest |effect| is 0.3 logit, under the floor: ±0.5.
    check(&mut app, 0.5, "0.4");
    // Fixed: ±1 logit.
    press(&mut app, "f");
    check(&mut app, 1.0, "1.0");
}

/// `F` on the comparison (the gallery's `c` / `d`): the two results side by side, then their
/// difference, as `A_vs_B` / `A_minus_B` (SVG and PNG) in the results folder, never beside
/// the paper's files; the cells against RdBu of the files' values on the screen's one auto
/// scale (its ±5% floor included).
#[test]
fn f_on_the_comparison_draws_the_pair_and_the_difference() {
    let (mut app, dir) = ready_app("fig-compare");
    let paper = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/paper/results/gemma_2_9b");
    app.setup.gallery_dirs = vec![paper.clone()];
    press(&mut app, "w");
    press(&mut app, "mjc");
    assert_eq!(app.screen, Screen::Compare);
    let stem = |i: usize| {
        app.gallery.entries[i]
            .path
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .to_string()
    };
    let (a, b) = (stem(0), stem(1));
    let before: Vec<_> = std::fs::read_dir(&paper).unwrap().collect();
    press(&mut app, "F");
    let svg_path = dir.join(format!("{a}_vs_{b}.svg"));
    assert!(svg_path.is_file(), "{:?} ({})", files(&dir), app.status.1);
    assert!(dir.join(format!("{a}_vs_{b}.png")).is_file());
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    let recs: Vec<RunRecord> = [0, 1]
        .iter()
        .map(|&i| app.gallery.entries[i].record.clone().unwrap())
        .collect();
    let pct = |r: &RunRecord| -> Vec<f64> {
        r.relative
            .iter()
            .flatten()
            .flatten()
            .map(|v| 100.0 * v)
            .collect()
    };
    // The screen's auto range: the largest |r| of the two, never below its ±5% floor.
    let range = recs
        .iter()
        .flat_map(pct)
        .fold(0.0f64, |m, v| m.max(v.abs()))
        .max(5.0);
    let cells = svg_rects(&svg);
    let fills: std::collections::HashSet<String> = cells.iter().map(|r| r.fill.clone()).collect();
    for v in recs.iter().flat_map(pct) {
        assert!(fills.contains(&hex(rdbu(v, range))), "no cell of {v}%");
    }
    let texts = svg_texts(&svg);
    for r in &recs {
        assert!(
            texts.iter().any(|t| t.contains(&r.receiver_label)),
            "{texts:?}"
        );
    }
    press(&mut app, "dF");
    let diff = dir.join(format!("{a}_minus_{b}.svg"));
    assert!(diff.is_file(), "{:?} ({})", files(&dir), app.status.1);
    let texts = svg_texts(&std::fs::read_to_string(&diff).unwrap());
    assert!(texts.iter().any(|t| t.contains("minus")), "{texts:?}");
    let after: Vec<_> = std::fs::read_dir(&paper).unwrap().collect();
    assert_eq!(
        before.len(),
        after.len(),
        "nothing written beside the paper's files"
    );
}

/// The comparison's figure is drawn with the colour range on screen: after `f` (fixed ±20%)
/// the cells are RdBu on ±20%, not on the files' largest |r| (the auto range would put the
/// paper's 39.7 at full saturation).
#[test]
fn f_on_the_comparison_uses_the_range_on_screen() {
    let (mut app, dir) = ready_app("fig-compare-range");
    let paper = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/paper/results/gemma_2_9b");
    app.setup.gallery_dirs = vec![paper];
    press(&mut app, "f");
    press(&mut app, "w");
    let find = |app: &App, name: &str| {
        let stem = |e: &headhunt::tui::app::GalleryEntry| e.path.file_stem().unwrap() == name;
        app.gallery.entries.iter().position(stem).expect(name)
    };
    let pair = [find(&app, "resid_post_41"), find(&app, "ind_h39_7_v")];
    app.gallery.selected = pair[0];
    press(&mut app, "m");
    app.gallery.selected = pair[1];
    press(&mut app, "c");
    assert_eq!(app.screen, Screen::Compare);
    press(&mut app, "F");
    let svg = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".svg") && p.to_string_lossy().contains("_vs_"))
        .unwrap_or_else(|| panic!("{:?} ({})", files(&dir), app.status.1));
    let cells = svg_rects(&std::fs::read_to_string(&svg).unwrap());
    let fills: std::collections::HashSet<String> = cells.iter().map(|r| r.fill.clone()).collect();
    let mut largest = 0.0f64;
    for i in pair {
        let rec = app.gallery.entries[i].record.clone().unwrap();
        for v in rec.relative.iter().flatten().flatten() {
            largest = largest.max((100.0 * v).abs());
            assert!(
                fills.contains(&hex(rdbu(100.0 * v, 20.0))),
                "no cell of {v} on ±20%"
            );
        }
    }
    assert!(
        largest > 20.0,
        "the test needs an |r| beyond the fixed range: {largest}"
    );
}
