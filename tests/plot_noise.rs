//! `headhunt plot` marks noise and draws what path patching and scans add beside the heads
//! (issue #24, items 4, 5 and 7): a dot on exactly the cells whose 95% interval holds 0, the
//! MLP senders as one more column (or row) on the heads' scale, `--bars N` (the largest
//! senders with their intervals, the printed numbers checked against the JSON), scans with
//! their positions labelled by escaped, visibly cut tokens, and files without intervals
//! saying so. Expected sets and numbers are computed here from the JSON, not by the code
//! under test; the figure's pixel layout (`Heatmap::cell_rect`) says where to look.

mod common;

use common::figure::{hex, rdbu, svg_rects, svg_texts, SvgRect};
use common::*;
use headhunt::plot::heatmap::{Heatmap, HeatmapOptions};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn hh(args: &[&str]) -> std::process::Output {
    Command::new(bin()).args(args).output().unwrap()
}

fn ok(args: &[&str]) {
    let o = hh(args);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// The demo model's path patching to resid_post 2 with heads and MLPs, 100 examples.
fn demo_run(dir: &Path) -> PathBuf {
    let out = dir.join("run.json");
    ok(&[
        "patch",
        "--model",
        s(&demo_model()),
        "--data",
        s(&demo_data()),
        "--senders",
        "heads,mlp",
        "--quiet",
        "--out",
        s(&out),
    ]);
    out
}

/// The run with some intervals moved to hold 0 (one at its edge), one MLP's too: the demo
/// model's effects are all told from noise, so the test makes some that are not.
fn with_noise(dir: &Path, run: &Path) -> PathBuf {
    let mut v = json(run);
    v["relative_ci"][1][0] = serde_json::json!([-0.05, 0.02]);
    v["relative_ci"][2][3] = serde_json::json!([-0.01, 0.0]);
    v["relative_ci"][0][2] = serde_json::json!([0.001, 0.02]);
    v["mlp_relative_ci"][0] = serde_json::json!([-0.006, 0.001]);
    let out = dir.join("noisy.json");
    std::fs::write(&out, serde_json::to_string(&v).unwrap()).unwrap();
    out
}

/// The dark centres of the dots: (cx, cy).
fn dots(svg: &str) -> Vec<(f64, f64)> {
    let doc = roxmltree::Document::parse(svg).unwrap();
    let num = |n: roxmltree::Node, a: &str| n.attribute(a).unwrap().parse::<f64>().unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name("circle") && n.attribute("fill") == Some("#1E1E1E"))
        .map(|n| (num(n, "cx"), num(n, "cy")))
        .collect()
}

/// The (layer, column) of each dot, by the cell whose rectangle holds its centre; the one
/// dot outside every cell is the legend's (which says what a dot means).
fn dotted_cells(svg: &str, fig: &Heatmap, n_layers: usize) -> BTreeSet<(usize, usize)> {
    let mut out = BTreeSet::new();
    let mut outside = 0;
    for (x, y) in dots(svg) {
        let cell = (0..n_layers)
            .flat_map(|l| (0..fig.columns.len()).map(move |c| (l, c)))
            .find(|&(l, c)| {
                let ((x0, y0), (x1, y1)) = fig.cell_rect(0, l, c).unwrap();
                x >= x0 as f64 && x < x1 as f64 && y >= y0 as f64 && y < y1 as f64
            });
        match cell {
            Some(cell) => assert!(out.insert(cell), "two dots on a cell"),
            None => outside += 1,
        }
    }
    assert_eq!(outside, 1, "one dot in the legend");
    out
}

/// Cells whose `[lo, hi]` in `ci` (rows of [lo, hi] per column) holds 0, from the JSON.
fn holding_zero(ci: &Value) -> BTreeSet<(usize, usize)> {
    let mut out = BTreeSet::new();
    for (l, row) in ci.as_array().unwrap().iter().enumerate() {
        for (c, iv) in row.as_array().into_iter().flatten().enumerate() {
            if let (Some(lo), Some(hi)) = (iv[0].as_f64(), iv[1].as_f64()) {
                if lo <= 0.0 && hi >= 0.0 {
                    out.insert((l, c));
                }
            }
        }
    }
    out
}

fn fill_at(rects: &[SvgRect], fig: &Heatmap, l: usize, c: usize) -> String {
    let ((x0, y0), (x1, y1)) = fig.cell_rect(0, l, c).unwrap();
    let centre = ((x0 + x1) as f64 / 2.0, (y0 + y1) as f64 / 2.0);
    common::figure::svg_fill_at(rects, centre).unwrap()
}

#[test]
fn cells_whose_interval_holds_0_are_dotted_and_the_mlp_is_a_column() {
    let dir = temp_dir("plot-noise");
    let run = with_noise(&dir, &demo_run(&dir));
    let v = json(&run);
    let (n_layers, n_heads) = (3, 4);
    let mut want = holding_zero(&v["relative_ci"]);
    for (l, iv) in v["mlp_relative_ci"].as_array().unwrap().iter().enumerate() {
        if iv[0].as_f64().unwrap() <= 0.0 && iv[1].as_f64().unwrap() >= 0.0 {
            want.insert((l, n_heads));
        }
    }
    for cell in [(1, 0), (2, 3), (0, n_heads)] {
        assert!(want.contains(&cell), "the test's own set: {want:?}");
    }
    assert!(!want.contains(&(0, 2)), "an interval above 0 holds no 0");
    let rec = headhunt::results::RunRecord::load(&run).unwrap();
    // The range: the largest |100·r| of heads and MLPs, in the JSON.
    let mut range: f64 = 0.0;
    for l in 0..n_layers {
        for h in 0..n_heads {
            range = range.max((100.0 * v["relative"][l][h].as_f64().unwrap()).abs());
        }
        range = range.max((100.0 * v["mlp_relative"][l].as_f64().unwrap()).abs());
    }
    for rows in [false, true] {
        let out = dir.join(format!("noisy-{rows}.svg"));
        let mut args = vec!["plot", s(&run), "--out", s(&out)];
        if rows {
            args.push("--heads-as-rows");
        }
        ok(&args);
        let svg = std::fs::read_to_string(&out).unwrap();
        let opts = HeatmapOptions {
            heads_as_rows: rows,
            ..HeatmapOptions::default()
        };
        let fig = Heatmap::single(&rec, &opts).unwrap();
        assert_eq!(dotted_cells(&svg, &fig, n_layers), want, "rows {rows}");
        // Every cell, heads and MLP, on the one scale.
        let rects = svg_rects(&svg);
        for l in 0..n_layers {
            for h in 0..n_heads {
                let r = 100.0 * v["relative"][l][h].as_f64().unwrap();
                assert_eq!(fill_at(&rects, &fig, l, h), hex(rdbu(r, range)), "{l}.{h}");
            }
            let m = 100.0 * v["mlp_relative"][l].as_f64().unwrap();
            assert_eq!(
                fill_at(&rects, &fig, l, n_heads),
                hex(rdbu(m, range)),
                "MLP {l}"
            );
        }
        let texts = svg_texts(&svg);
        for t in ["MLP", "head · MLP", "95% interval holds 0"] {
            assert!(texts.iter().any(|x| x == t), "{t:?} not in {texts:?}");
        }
        assert!(
            texts[1].ends_with("· dot: 95% interval holds 0"),
            "{}",
            texts[1]
        );
    }
    // In the PNG: the dot's dark centre on each such cell, the cell's colour at its corner.
    let png = dir.join("noisy.png");
    ok(&["plot", s(&run), "--out", s(&png)]);
    let img = common::figure::Png::read(&png);
    let fig = Heatmap::single(&rec, &HeatmapOptions::default()).unwrap();
    for &(l, c) in &want {
        let ((cx, cy), _) = fig.dot(0, l, c).unwrap();
        assert_eq!(
            img.at((cx as f64, cy as f64)),
            (30, 30, 30),
            "dot of ({l}, {c})"
        );
        let ((x0, y0), _) = fig.cell_rect(0, l, c).unwrap();
        let v = match c {
            4 => v["mlp_relative"][l].as_f64().unwrap(),
            h => v["relative"][l][h].as_f64().unwrap(),
        };
        let corner = ((x0 + 2) as f64, (y0 + 2) as f64);
        assert_eq!(img.at(corner), rdbu(100.0 * v, range), "cell ({l}, {c})");
    }
    // The MLP column is where the layout says: right of the heads, or under them.
    let cols = Heatmap::single(&rec, &HeatmapOptions::default()).unwrap();
    let (a, b) = (
        cols.cell_rect(0, 1, 3).unwrap(),
        cols.cell_rect(0, 1, 4).unwrap(),
    );
    assert!(b.0 .0 >= a.1 .0 && b.0 .1 == a.0 .1, "{a:?} {b:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_file_without_intervals_says_so_and_bars_refuse_it() {
    let dir = temp_dir("plot-noise-paper");
    let paper = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/paper/results/gemma_2_9b/resid_post_41.json");
    let out = dir.join("p.svg");
    ok(&["plot", s(&paper), "--out", s(&out)]);
    let svg = std::fs::read_to_string(&out).unwrap();
    assert!(dots(&svg).is_empty());
    let texts = svg_texts(&svg);
    assert!(
        texts[1].ends_with("no intervals in the file: noise not marked"),
        "{}",
        texts[1]
    );
    assert!(!texts.iter().any(|t| t.contains("holds 0")), "{texts:?}");
    let bars = dir.join("b.svg");
    let o = hh(&["plot", s(&paper), "--bars", "5", "--out", s(&bars)]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_one_line_error(
        o.status.code().unwrap_or(-1),
        &err,
        &["--bars", "resid_post_41.json", "no 95% intervals"],
    );
    assert!(!bars.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// (text, x, y) of every SVG text.
fn placed_texts(svg: &str) -> Vec<(String, f64, f64)> {
    let doc = roxmltree::Document::parse(svg).unwrap();
    let num = |n: roxmltree::Node, a: &str| n.attribute(a).unwrap().parse::<f64>().unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| {
            (
                n.text().unwrap_or("").trim().to_string(),
                num(n, "x"),
                num(n, "y"),
            )
        })
        .collect()
}

/// `x` at one decimal, never `-0.0`.
fn one(x: f64) -> String {
    let t = format!("{x:.1}");
    if t == "-0.0" {
        "0.0".into()
    } else {
        t
    }
}

/// The least-squares line through (v, p) and its largest residual.
fn fit(pairs: &[(f64, f64)]) -> f64 {
    let n = pairs.len() as f64;
    let (mv, mp) = (
        pairs.iter().map(|p| p.0).sum::<f64>() / n,
        pairs.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let k = pairs.iter().map(|p| (p.0 - mv) * (p.1 - mp)).sum::<f64>()
        / pairs.iter().map(|p| (p.0 - mv).powi(2)).sum::<f64>();
    assert!(k > 0.0, "pixels do not grow with the value");
    pairs
        .iter()
        .map(|p| (p.1 - (mp + k * (p.0 - mv))).abs())
        .fold(0.0, f64::max)
}

#[test]
fn bars_show_the_largest_senders_with_their_intervals() {
    let dir = temp_dir("plot-bars");
    let run = with_noise(&dir, &demo_run(&dir));
    let v = json(&run);
    // Every sender with r and its interval (in %), from the JSON: heads, then MLPs.
    let mut all: Vec<(String, f64, f64, f64)> = Vec::new();
    let pct = |x: &Value| 100.0 * x.as_f64().unwrap();
    for l in 0..3 {
        for h in 0..4 {
            let iv = &v["relative_ci"][l][h];
            all.push((
                format!("{l}.{h}"),
                pct(&v["relative"][l][h]),
                pct(&iv[0]),
                pct(&iv[1]),
            ));
        }
        let iv = &v["mlp_relative_ci"][l];
        all.push((
            format!("MLP {l}"),
            pct(&v["mlp_relative"][l]),
            pct(&iv[0]),
            pct(&iv[1]),
        ));
    }
    all.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
    let n = 7;
    let out = dir.join("bars.svg");
    ok(&["plot", s(&run), "--bars", &n.to_string(), "--out", s(&out)]);
    let svg = std::fs::read_to_string(&out).unwrap();
    let texts = placed_texts(&svg);
    let row_of = |t: &str| texts.iter().find(|x| x.0 == t).map(|x| x.2);
    let mut last_y = f64::MIN;
    for (label, r, lo, hi) in &all[..n] {
        let y = row_of(label).unwrap_or_else(|| panic!("{label} not drawn"));
        assert!(y > last_y, "{label}: not sorted by |r|");
        last_y = y;
        let numbers = format!("{}% [{}, {}]", one(*r), one(*lo), one(*hi));
        assert_eq!(row_of(&numbers), Some(y), "{label}: {numbers}");
    }
    for (label, ..) in &all[n..] {
        assert!(
            row_of(label).is_none(),
            "{label} is not among the {n} largest"
        );
    }
    assert!(texts[0].0.contains("the 7 largest |r|"), "{}", texts[0].0);
    // Points (7×7 squares) and whiskers (1 px high) at the values, on one linear axis.
    let rects = svg_rects(&svg);
    let mut points = Vec::new();
    let mut ends = Vec::new();
    for (label, r, lo, hi) in &all[..n] {
        let y = row_of(label).unwrap();
        let p = rects
            .iter()
            .find(|q| q.w == 7.0 && q.h == 7.0 && (q.centre().1 - y).abs() <= 1.0)
            .unwrap_or_else(|| panic!("{label}: no point"));
        points.push((*r, p.centre().0));
        let w = rects
            .iter()
            .find(|q| q.h == 1.0 && q.fill == "#1E1E1E" && (q.y - y).abs() <= 1.0)
            .unwrap_or_else(|| panic!("{label}: no whisker"));
        ends.push((*lo, w.x));
        ends.push((*hi, w.x + w.w - 1.0));
    }
    assert!(fit(&points) <= 1.5, "points {points:?}");
    assert!(fit(&ends) <= 1.0, "whiskers {ends:?}");
    // What --bars cannot draw is refused in one line, nothing written.
    let no = dir.join("no.svg");
    for (args, needle) in [
        (vec!["--bars", "0"], "--bars 0"),
        (vec!["--bars", "3", "--heads-as-rows"], "--heads-as-rows"),
        (vec!["--bars", "3", "--range", "20"], "--range"),
    ] {
        let mut a = vec!["plot", s(&run), "--out", s(&no)];
        a.extend(args);
        let o = hh(&a);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_one_line_error(o.status.code().unwrap_or(-1), &err, &[needle]);
    }
    let o = hh(&[
        "plot",
        s(&run),
        s(&run),
        "--compare",
        "--bars",
        "3",
        "--out",
        s(&no),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_one_line_error(o.status.code().unwrap_or(-1), &err, &["--bars", "2 files"]);
    assert!(!no.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn pairs_and_differences_carry_the_mlp_column() {
    let dir = temp_dir("plot-mlp-pair");
    let run = with_noise(&dir, &demo_run(&dir));
    let paper =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo-analysis/resid_post_2.json");
    let v = json(&run);
    let rec = headhunt::results::RunRecord::load(&run).unwrap();
    let other = headhunt::results::RunRecord::load(&paper).unwrap();
    // Beside a heads-only result of its shape: both panels have the MLP column, grey where
    // the heads-only run has none; the difference's MLP column is grey too.
    let out = dir.join("pair.svg");
    ok(&["plot", s(&run), s(&paper), "--compare", "--out", s(&out)]);
    let svg = std::fs::read_to_string(&out).unwrap();
    let fig = Heatmap::pair(&rec, &other, &HeatmapOptions::default()).unwrap();
    let rects = svg_rects(&svg);
    let at = |p: usize, l: usize, c: usize| {
        let ((x0, y0), (x1, y1)) = fig.cell_rect(p, l, c).unwrap();
        common::figure::svg_fill_at(&rects, ((x0 + x1) as f64 / 2.0, (y0 + y1) as f64 / 2.0))
            .unwrap()
    };
    let m2 = 100.0 * v["mlp_relative"][2].as_f64().unwrap();
    assert_eq!(at(0, 2, 4), hex(rdbu(m2, fig.range)));
    assert_eq!(at(1, 2, 4), hex(common::figure::MISSING));
    let texts = svg_texts(&svg);
    assert!(
        texts.iter().filter(|t| *t == "MLP").count() == 2,
        "{texts:?}"
    );
    assert!(
        texts[1].contains("where a file has intervals") || texts[1].contains("holds 0"),
        "{}",
        texts[1]
    );
    let out = dir.join("diff.svg");
    ok(&["plot", s(&run), s(&run), "--diff", "--out", s(&out)]);
    let svg = std::fs::read_to_string(&out).unwrap();
    assert!(dots(&svg).is_empty(), "a difference has no intervals");
    let texts = svg_texts(&svg);
    assert!(texts.iter().any(|t| t == "MLP"), "{texts:?}");
    assert!(texts[1].ends_with("no intervals for a difference: noise not marked"));
    // Results of other shapes side by side: heads only, and the figure says so.
    let gemma = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/paper/results/gemma_2_9b/resid_post_41.json");
    let out = dir.join("side.svg");
    ok(&["plot", s(&run), s(&gemma), "--compare", "--out", s(&out)]);
    let texts = svg_texts(&std::fs::read_to_string(&out).unwrap());
    assert!(
        texts[1].starts_with("heads only: the MLP senders are not drawn"),
        "{texts:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `headhunt scan` of the demo model, kind `kind`, as `dir/NAME.json`.
fn demo_scan(dir: &Path, kind: &str) -> PathBuf {
    let out = dir.join(format!("scan-{kind}.json"));
    ok(&[
        "scan",
        "--model",
        s(&demo_model()),
        "--data",
        s(&demo_data()),
        "--kind",
        kind,
        "--out",
        s(&out),
    ]);
    out
}

#[test]
fn a_scan_is_drawn_with_its_tokens_scale_and_dots() {
    let dir = temp_dir("plot-scan");
    let scan = demo_scan(&dir, "mlp-pos");
    // Tokens that must be escaped and one that must be cut, in the file as a scan writes it.
    let mut v = json(&scan);
    v["tokens"][1] = Value::from(" 4\n");
    v["tokens"][2] = Value::from("\u{1b}[2J");
    v["tokens"][3] = Value::from("a very long token indeed");
    std::fs::write(&scan, serde_json::to_string(&v).unwrap()).unwrap();
    let out = dir.join("scan.svg");
    ok(&["plot", s(&scan), "--out", s(&out)]);
    let svg = std::fs::read_to_string(&out).unwrap();
    let rec = headhunt::results::scan::ScanRecord::load(&scan).unwrap();
    let fig = Heatmap::scan(&rec, &HeatmapOptions::default()).unwrap();
    let (n_layers, n_cols) = (3, v["n_columns"].as_u64().unwrap() as usize);
    let mut range: f64 = 0.0;
    for l in 0..n_layers {
        for c in 0..n_cols {
            range = range.max((100.0 * v["relative"][l][c].as_f64().unwrap()).abs());
        }
    }
    let rects = svg_rects(&svg);
    for l in 0..n_layers {
        for c in 0..n_cols {
            let r = 100.0 * v["relative"][l][c].as_f64().unwrap();
            assert_eq!(
                fill_at(&rects, &fig, l, c),
                hex(rdbu(r, range)),
                "({l}, {c})"
            );
        }
    }
    let want = holding_zero(&v["relative_ci"]);
    assert!(want.len() > 10, "{want:?}");
    assert_eq!(dotted_cells(&svg, &fig, n_layers), want);
    let texts = svg_texts(&svg);
    for t in [
        "0:<bos>",
        "1:·4↵",
        "2:�[2J",
        "3:a·very·long…",
        "position",
        "95% interval holds 0",
    ] {
        assert!(texts.iter().any(|x| x == t), "{t:?} not in {texts:?}");
    }
    assert!(
        texts[0].starts_with("Activation patching scan: mlp-pos"),
        "{}",
        texts[0]
    );
    // Its bars: positions named by layer, index and token.
    let bars = dir.join("bars.svg");
    ok(&["plot", s(&scan), "--bars", "3", "--out", s(&bars)]);
    let texts = svg_texts(&std::fs::read_to_string(&bars).unwrap());
    let top = v["relative"][2][n_cols - 1].as_f64().unwrap();
    let iv = &v["relative_ci"][2][n_cols - 1];
    let numbers = format!(
        "{}% [{}, {}]",
        one(100.0 * top),
        one(100.0 * iv[0].as_f64().unwrap()),
        one(100.0 * iv[1].as_f64().unwrap())
    );
    assert!(
        texts.iter().any(|t| t == &numbers),
        "{numbers} not in {texts:?}"
    );
    assert!(
        texts.iter().any(|t| t == &format!("2 @ {}:=", n_cols - 1)),
        "{texts:?}"
    );
    // A heads scan: its columns are heads; flags for runs only are refused in one line.
    let heads = demo_scan(&dir, "heads");
    let out = dir.join("heads.svg");
    ok(&["plot", s(&heads), "--out", s(&out), "--heads-as-rows"]);
    let texts = svg_texts(&std::fs::read_to_string(&out).unwrap());
    assert!(texts.iter().any(|t| t == "head"), "{texts:?}");
    let o = hh(&[
        "plot",
        s(&heads),
        s(&heads),
        "--diff",
        "--out",
        s(&dir.join("d.svg")),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_one_line_error(
        o.status.code().unwrap_or(-1),
        &err,
        &["--diff", "an activation-patching scan"],
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The column (or row) labels of the line the `MLP` label is on: (text, centre along the
/// axis, extent along it), from the SVG.
fn labels_beside_mlp(svg: &str, rows: bool) -> Vec<(String, f64, f64)> {
    use headhunt::plot::canvas::{text_size, TICK};
    let doc = roxmltree::Document::parse(svg).unwrap();
    let num = |n: roxmltree::Node, a: &str| n.attribute(a).unwrap().parse::<f64>().unwrap();
    let texts: Vec<(String, f64, f64)> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| {
            (
                n.text().unwrap_or("").trim().to_string(),
                num(n, "x"),
                num(n, "y"),
            )
        })
        .collect();
    let mlp = texts
        .iter()
        .find(|t| t.0 == "MLP")
        .expect("an MLP label")
        .clone();
    texts
        .into_iter()
        .filter(|t| if rows { t.1 == mlp.1 } else { t.2 == mlp.2 })
        .map(|t| {
            let (w, h) = text_size(&t.0, TICK);
            if rows {
                (t.0, t.2, h as f64)
            } else {
                (t.0, t.1, w as f64)
            }
        })
        .collect()
}

/// The `MLP` label is drawn whatever the tick step, and a head label it would overlap is
/// left out: 42 layers × 16 heads and the MLP, at several widths and both orientations.
#[test]
fn the_mlp_label_never_overlaps_a_head_label() {
    let paper = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/paper/results/gemma_2_9b/resid_post_41.json");
    let mut rec = headhunt::results::RunRecord::load(&paper).unwrap();
    rec.mlp_relative = Some((0..42).map(|l| Some(0.002 * l as f64)).collect());
    for rows in [false, true] {
        // Heights from rows of 6 px (ticks every 5 heads: head 15 would touch the MLP's).
        let sizes = match rows {
            true => [None, Some(236), Some(260), Some(300), Some(400)],
            false => [None, Some(700), Some(760), Some(820), Some(1000)],
        };
        for size in sizes {
            let opts = HeatmapOptions {
                heads_as_rows: rows,
                width: if rows { None } else { size },
                height: if rows { size } else { None },
                ..HeatmapOptions::default()
            };
            let fig = Heatmap::single(&rec, &opts).unwrap();
            let svg = headhunt::plot::render(&fig, headhunt::plot::Format::Svg).unwrap();
            let mut labels = labels_beside_mlp(&String::from_utf8(svg).unwrap(), rows);
            assert!(labels.len() >= 3, "{labels:?}");
            labels.sort_by(|a, b| a.1.total_cmp(&b.1));
            for w in labels.windows(2) {
                let gap = (w[1].1 - w[0].1) - (w[0].2 + w[1].2) / 2.0;
                assert!(gap >= 0.0, "rows {rows}, size {size:?}: {w:?} overlap");
            }
            assert_eq!(labels.last().unwrap().0, "MLP", "{labels:?}");
        }
    }
}
