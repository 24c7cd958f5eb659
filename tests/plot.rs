//! `headhunt plot` on the paper's Gemma-2-9B result: the SVG is parsed (cells, labels, the
//! colour of the strongest cell against RdBu's end colour), the PNG decoded (its size and the
//! pixel at that cell), and bad input leaves nothing behind.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn paper(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/paper/results/gemma_2_9b")
        .join(name)
}

fn plot(file: &Path, out: &Path) -> std::process::Output {
    Command::new(bin())
        .arg("plot")
        .arg(file)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

/// (x, y, w, h) of the SVG rects filled with `fill`, and the number of square cells.
fn rects(svg: &str, fill: &str) -> (Vec<(f64, f64, f64, f64)>, usize) {
    let doc = roxmltree::Document::parse(svg).unwrap();
    let num = |n: roxmltree::Node, a: &str| n.attribute(a).unwrap().parse::<f64>().unwrap();
    let mut hits = vec![];
    let mut cells = 0;
    for n in doc.descendants().filter(|n| n.has_tag_name("rect")) {
        let (w, h) = (num(n, "width"), num(n, "height"));
        if w == h && w < 50.0 {
            cells += 1;
        }
        if n.attribute("fill") == Some(fill) {
            hits.push((num(n, "x"), num(n, "y"), w, h));
        }
    }
    (hits, cells)
}

#[test]
fn heatmap_svg_and_png_show_the_file() {
    let dir = temp_dir("plot");
    let file = paper("resid_post_41.json");
    let svg_path = dir.join("f.svg");
    let o = plot(&file, &svg_path);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    // The auto range is the largest |r| (39.7, -27.1%): that cell, and only it, is RdBu's end.
    let (dark, cells) = rects(&svg, "#67001F");
    assert!(cells >= 42 * 16, "{cells} cells");
    assert_eq!(dark.len(), 1, "{dark:?}");
    let texts: Vec<String> = roxmltree::Document::parse(&svg)
        .unwrap()
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.text().unwrap_or("").trim().to_string())
        .collect();
    assert!(
        texts.iter().any(|t| t.contains("resid_post 41")),
        "{texts:?}"
    );
    for label in ["0", "20", "41", "15"] {
        assert!(texts.iter().any(|t| t == label), "tick {label} missing");
    }
    // Layers as rows from 41 at the top: the dark cell is in the third row (layer 39) and the
    // eighth column (head 7).
    let (x, y, w, _) = dark[0];
    let zeros = rects(&svg, "#F7F7F7").0;
    let xs = zeros.iter().map(|r| r.0).fold(f64::MAX, f64::min);
    let ys = zeros.iter().map(|r| r.1).fold(f64::MAX, f64::min);
    assert_eq!(((x - xs) / w).round() as i64, 7, "head column");
    assert_eq!(((y - ys) / w).round() as i64, 2, "layer row");

    let png_path = dir.join("f.png");
    let o = plot(&file, &png_path);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&png_path).unwrap(),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert!(
        info.width > 300 && info.height > 400,
        "{}x{}",
        info.width,
        info.height
    );
    let ch = info.color_type.samples();
    let (px, py) = ((x + w / 2.0) as usize, (y + w / 2.0) as usize);
    let at = (py * info.width as usize + px) * ch;
    assert_eq!(&buf[at..at + 3], &[103, 0, 31], "PNG pixel of cell 39.7");
}

#[test]
fn bad_input_is_one_line_and_writes_nothing() {
    let dir = temp_dir("plot-bad");
    let out = dir.join("x.svg");
    let o = plot(&dir.join("missing.json"), &out);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_one_line_error(o.status.code().unwrap_or(-1), &err, &["missing.json"]);
    let not_result = dir.join("other.json");
    std::fs::write(&not_result, "{\"format\": \"something-else\"}").unwrap();
    let o = plot(&not_result, &out);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_one_line_error(o.status.code().unwrap_or(-1), &err, &["other.json"]);
    assert!(!out.exists());
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        1,
        "nothing but the input"
    );
}

/// The grid origin and pitch of the square cells of `size` px (±1) in an SVG.
fn grid_of(cells: &[common::figure::SvgRect]) -> (f64, f64, f64) {
    let x0 = cells.iter().map(|c| c.x).fold(f64::MAX, f64::min);
    let y0 = cells.iter().map(|c| c.y).fold(f64::MAX, f64::min);
    (x0, y0, cells[0].w)
}

/// Checks each `(point, expected colour, what)` in the SVG (the last rect drawn there) and
/// the PNG (the pixel), after checking that the expected colours are all different (so a
/// cell drawn with another cell's value is caught).
fn assert_colours(svg: &str, png: &Path, want: &[((f64, f64), common::figure::Rgb, String)]) {
    use common::figure::{hex, svg_fill_at, svg_rects, Png};
    for (i, a) in want.iter().enumerate() {
        for b in &want[i + 1..] {
            assert_ne!(
                a.1, b.1,
                "{} and {} have one colour: pick other cells",
                a.2, b.2
            );
        }
    }
    let rects = svg_rects(svg);
    let img = Png::read(png);
    for (at, rgb, what) in want {
        assert_eq!(svg_fill_at(&rects, *at), Some(hex(*rgb)), "SVG {what}");
        assert_eq!(img.at(*at), *rgb, "PNG {what}");
    }
}

/// Cells of the paper's Gemma-2-9B result of either sign and of large, middling and tiny
/// magnitude, in SVG and PNG, against RdBu on the auto range (the largest |r|).
#[test]
fn heatmap_cells_of_every_sign_and_size_in_svg_and_png() {
    use common::figure::{rdbu, svg_cells};
    let dir = temp_dir("plot-cells");
    let file = paper("resid_post_41.json");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let m: Vec<Vec<f64>> = serde_json::from_value(v["matrix"].clone()).unwrap();
    let pct = |l: usize, h: usize| 100.0 * m[l][h];
    let range = m
        .iter()
        .flatten()
        .fold(0.0f64, |a, x| a.max(100.0 * x.abs()));
    assert!((range - 27.081483602523804).abs() < 1e-9);
    // Closest to -range/2 and to +range/4, and the smallest magnitude.
    let all: Vec<(usize, usize)> = (0..42).flat_map(|l| (0..16).map(move |h| (l, h))).collect();
    let nearest = |t: f64| {
        *all.iter()
            .min_by(|a, b| {
                (pct(a.0, a.1) - t)
                    .abs()
                    .total_cmp(&(pct(b.0, b.1) - t).abs())
            })
            .unwrap()
    };
    let cells = [
        (39, 7),
        (41, 4),
        nearest(-range / 2.0),
        nearest(range / 4.0),
        nearest(0.0),
    ];
    let (svg_path, png_path) = (dir.join("h.svg"), dir.join("h.png"));
    for p in [&svg_path, &png_path] {
        let o = plot(&file, p);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    let size = common::figure::svg_rects(&svg)
        .iter()
        .find(|r| r.fill == common::figure::hex(rdbu(pct(39, 7), range)) && r.w == r.h)
        .expect("the darkest cell")
        .w;
    let (x0, y0, s) = grid_of(&svg_cells(&svg, size));
    // Layers as rows, layer 41 on top; heads as columns.
    let want: Vec<_> = cells
        .iter()
        .map(|&(l, h)| {
            let at = (x0 + (h as f64 + 0.5) * s, y0 + ((41 - l) as f64 + 0.5) * s);
            (
                at,
                rdbu(pct(l, h), range),
                format!("cell {l}.{h} ({:.2}%)", pct(l, h)),
            )
        })
        .collect();
    assert_colours(&svg, &png_path, &want);
}

/// A result with a row not computed (layer 2) and a row that cannot reach the receiver
/// (layer 1 of a receiver in layer 1): both grey, the computed row on its scale.
#[test]
fn heatmap_rows_not_computed_are_grey_in_svg_and_png() {
    use common::figure::{rdbu, svg_cells, MISSING};
    let dir = temp_dir("plot-missing");
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo-analysis/h1.3.v.json");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert!(
        v["relative"][2].is_null(),
        "layer 2 not computed in the file"
    );
    let row0: Vec<f64> = serde_json::from_value(v["relative"][0].clone()).unwrap();
    let row0: Vec<f64> = row0.iter().map(|r| 100.0 * r).collect();
    let range = row0.iter().fold(0.0f64, |a, x| a.max(x.abs()));
    let (svg_path, png_path) = (dir.join("h.svg"), dir.join("h.png"));
    for p in [&svg_path, &png_path] {
        let o = plot(&file, p);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    let grey = common::figure::hex(MISSING);
    let size = common::figure::svg_rects(&svg)
        .iter()
        .find(|r| r.fill == grey && r.w == r.h && r.w > 12.0)
        .expect("a grey cell")
        .w;
    let cells = svg_cells(&svg, size);
    assert_eq!(cells.len(), 3 * 4, "3 layers × 4 heads");
    let (x0, y0, s) = grid_of(&cells);
    let at = |l: usize, h: usize| (x0 + (h as f64 + 0.5) * s, y0 + ((2 - l) as f64 + 0.5) * s);
    // Heads 0 (-23.4%, the scale's end) and 3 (-5.1%) computed; one grey cell per grey row.
    let want = vec![
        (at(0, 0), rdbu(row0[0], range), "cell 0.0".to_string()),
        (at(0, 3), rdbu(row0[3], range), "cell 0.3".to_string()),
        (at(2, 1), MISSING, "cell 2.1 (not computed)".to_string()),
    ];
    assert_colours(&svg, &png_path, &want);
    let unreachable = vec![(at(1, 2), MISSING, "cell 1.2 (cannot reach 1.3)".to_string())];
    assert_colours(&svg, &png_path, &unreachable);
    assert!(common::figure::svg_texts(&svg)
        .iter()
        .any(|t| t == "not computed"));
}

/// Function-vector grids (tests/data/plot/fv.json): cells of either sign and several sizes
/// in the first panel and the all-heads one, SVG and PNG, on one RdBu scale over every grid;
/// and a cell that is not a number drawn grey.
#[test]
fn fv_grid_cells_in_svg_and_png() {
    use common::figure::{rdbu, svg_cells, MISSING};
    let dir = temp_dir("plot-fv-cells");
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/plot/fv.json");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let grid =
        |k: &str| -> Vec<Vec<f64>> { serde_json::from_value(v["delta"][k].clone()).unwrap() };
    let (first, all) = (grid("39.7"), grid("all"));
    let range = ["39.7", "32.6", "25.13", "all"]
        .iter()
        .flat_map(|k| grid(k).into_iter().flatten())
        .fold(0.0f64, |a, x| a.max(x.abs()));
    let (svg_path, png_path) = (dir.join("fv.svg"), dir.join("fv.png"));
    for p in [&svg_path, &png_path] {
        let o = plot(&file, p);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    let cells = svg_cells(&svg, 22.0);
    assert_eq!(cells.len(), 4 * 100, "four 10×10 grids");
    let (x0, y0, s) = grid_of(&cells);
    // The all-heads panel is the fourth: its left edge is the fourth distinct panel start.
    let mut xs: Vec<f64> = cells.iter().map(|c| c.x).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    let starts: Vec<f64> = xs
        .iter()
        .enumerate()
        .filter(|(i, x)| *i == 0 || **x - xs[i - 1] > s + 0.5)
        .map(|(_, x)| *x)
        .collect();
    assert_eq!(starts.len(), 4, "{starts:?}");
    let at = |x: f64, r: usize, c: usize| (x + (c as f64 + 0.5) * s, y0 + (r as f64 + 0.5) * s);
    let mut want = vec![];
    for (r, c) in [(0, 0), (0, 3), (5, 5), (9, 9)] {
        let d = first[r][c];
        want.push((
            at(x0, r, c),
            rdbu(d, range),
            format!("H39.7 [{r}][{c}] = {d}"),
        ));
    }
    let mut seen: Vec<_> = want.iter().map(|w| w.1).collect();
    for (r, c) in [(8, 2), (2, 0), (4, 7)] {
        let d = all[r][c];
        if !seen.contains(&rdbu(d, range)) {
            seen.push(rdbu(d, range));
            want.push((
                at(starts[3], r, c),
                rdbu(d, range),
                format!("all [{r}][{c}] = {d}"),
            ));
        }
    }
    assert!(want.len() >= 6, "{want:?}");
    assert!(want.iter().any(|w| w.2.contains("= -")) && want.iter().any(|w| !w.2.contains("= -")));
    assert_colours(&svg, &png_path, &want);

    // A Δ that is not a number (no JSON holds one: through the library) is grey.
    let mut fv: headhunt::plot::analysis::FvFile = serde_json::from_value(v.clone()).unwrap();
    fv.delta.get_mut("39.7").unwrap()[1][2] = f64::NAN;
    let fig = headhunt::plot::analysis::FvFigure::new(&fv, None).unwrap();
    let svg = String::from_utf8(headhunt::plot::render(&fig, headhunt::plot::Format::Svg).unwrap())
        .unwrap();
    let png = dir.join("nan.png");
    std::fs::write(
        &png,
        headhunt::plot::render(&fig, headhunt::plot::Format::Png).unwrap(),
    )
    .unwrap();
    let want = vec![
        (at(x0, 1, 2), MISSING, "H39.7 [1][2] = NaN".to_string()),
        (
            at(x0, 0, 0),
            rdbu(first[0][0], range),
            "H39.7 [0][0]".to_string(),
        ),
    ];
    assert_colours(&svg, &png, &want);
}

/// `--head` on a function-vector file keeps those heads' panels (no all-heads panel); a head
/// the file does not have is a one-line error naming the file, and nothing is written.
#[test]
fn fv_head_selects_panels() {
    let dir = temp_dir("plot-fv-head");
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/plot/fv.json");
    let out = dir.join("one.svg");
    let o = Command::new(bin())
        .arg("plot")
        .arg(&file)
        .args(["--head", "32.6", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let svg = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        common::figure::svg_cells(&svg, 22.0).len(),
        100,
        "one 10×10 grid"
    );
    let texts = common::figure::svg_texts(&svg);
    assert!(
        texts.iter().any(|t| t == "Function-vector Δ, head 32.6"),
        "{texts:?}"
    );
    assert!(texts.iter().any(|t| t == "H32.6"), "{texts:?}");
    assert!(
        !texts.iter().any(|t| t == "all heads" || t == "H39.7"),
        "{texts:?}"
    );
    let bad = dir.join("bad.svg");
    let o = Command::new(bin())
        .arg("plot")
        .arg(&file)
        .args(["--head", "1.1", "--out"])
        .arg(&bad)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_one_line_error(
        o.status.code().unwrap_or(-1),
        &err,
        &["fv.json", "1.1", "39.7"],
    );
    assert!(!bad.exists());
}

/// An attention file of two heads over six tokens whose weights sit on the scales' stops:
/// each query attends 0.75 to the token before it and 0.25 to the first (queries 0 and 1:
/// 1 to the first).
fn stops_attention(dir: &Path) -> PathBuf {
    let n = 6;
    let pattern: Vec<Vec<f32>> = (0..n)
        .map(|q| {
            (0..n)
                .map(|k| match (q, k) {
                    (0 | 1, 0) => 1.0,
                    (_, 0) => 0.25,
                    _ if k + 1 == q => 0.75,
                    _ => 0.0,
                })
                .collect()
        })
        .collect();
    let v = serde_json::json!({
        "format": "headhunt-attention", "format_version": 1, "model": null, "data": null,
        "run": "contrast", "prompts": {"mean": {"requested": 4, "used": 4}},
        "tokens": ["<bos>", "1", "+", "1", "=", "2"],
        "heads": [{"head": [3, 0], "pattern": pattern}, {"head": [2, 1], "pattern": pattern}],
    });
    let p = dir.join("att.json");
    std::fs::write(&p, v.to_string()).unwrap();
    p
}

/// Every SVG rect filled with `fill` (at least `n` of them, none thinner than 3 px) has that
/// colour in the PNG too, sampled just inside its top-left corner (clear of error bars).
fn png_has_the_svg_rects(svg: &str, png: &Path, fill: common::figure::Rgb, n: usize) {
    use common::figure::{hex, svg_rects, Png};
    let img = Png::read(png);
    let doc = roxmltree::Document::parse(svg).unwrap();
    let root = doc.root_element();
    let size = |a: &str| root.attribute(a).unwrap().parse::<usize>().unwrap();
    assert_eq!((img.w, img.h), (size("width"), size("height")), "PNG size");
    let hits: Vec<_> = svg_rects(svg)
        .into_iter()
        .filter(|r| r.fill == hex(fill) && r.w >= 3.0 && r.h >= 3.0)
        .collect();
    assert!(
        hits.len() >= n,
        "{} rects of {}, expected {n}",
        hits.len(),
        hex(fill)
    );
    for r in hits {
        let at = (r.x + 1.5, r.y + 1.5);
        assert_eq!(
            img.at(at),
            fill,
            "PNG at {at:?}, rect {:?}",
            (r.x, r.y, r.w, r.h)
        );
    }
}

/// The attention grids, the query-row bars, the ablation and the minimality bars in PNG:
/// the size of the SVG, and the colour of known cells (weights on the Purples and Blues
/// stops, matplotlib's values written here) and of every bar.
#[test]
fn attention_and_bar_figures_in_png() {
    use common::figure::svg_cells;
    let dir = temp_dir("plot-png-kinds");
    let att = stops_attention(&dir);
    let (svg_path, png_path) = (dir.join("a.svg"), dir.join("a.png"));
    for p in [&svg_path, &png_path] {
        let o = plot(&att, p);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    // The cells: square rects (the colour bars are 1 px high strips); 36 px for 6 tokens.
    let s = 36.0;
    let cells = svg_cells(&svg, s);
    assert_eq!(cells.len(), 2 * 36, "two 6×6 grids");
    let (x0, y0, _) = grid_of(&cells);
    let x1 = cells
        .iter()
        .map(|c| c.x)
        .filter(|x| *x > x0 + 6.0 * s)
        .fold(f64::MAX, f64::min);
    let purples = [
        (252, 251, 253),
        (218, 218, 235),
        (106, 81, 163),
        (63, 0, 125),
    ];
    let blues = [
        (247, 251, 255),
        (198, 219, 239),
        (33, 113, 181),
        (8, 48, 107),
    ];
    // (query, key) of weights 0, 0.25, 0.75, 1.
    let qk = [(3, 3), (3, 0), (3, 2), (1, 0)];
    let mut want = vec![];
    for (gx, stops, head) in [(x0, purples, "3.0"), (x1, blues, "2.1")] {
        for (&(q, k), rgb) in qk.iter().zip(stops) {
            let at = (gx + (k as f64 + 0.5) * s, y0 + (q as f64 + 0.5) * s);
            want.push((at, rgb, format!("H{head} query {q} key {k}")));
        }
    }
    assert_colours(&svg, &png_path, &want);

    // Bars of the last query: weight 0.25 and 0.75 bars in the head's colour (stop 0.75).
    let (svg_path, png_path) = (dir.join("q.svg"), dir.join("q.png"));
    for p in [&svg_path, &png_path] {
        let o = Command::new(bin())
            .arg("plot")
            .arg(&att)
            .args(["--query", "-1", "--out"])
            .arg(p)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    png_has_the_svg_rects(&svg, &png_path, purples[2], 2);
    png_has_the_svg_rects(&svg, &png_path, blues[2], 2);

    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/plot");
    for (file, fills) in [
        (
            "ablation.json",
            vec![((0xbf, 0x31, 0x00), 3), ((0xec, 0x9f, 0x05), 3)],
        ),
        (
            "circuit.json",
            vec![((117, 40, 160), 1), ((20, 90, 200), 1)],
        ),
    ] {
        let (svg_path, png_path) = (dir.join("b.svg"), dir.join("b.png"));
        for p in [&svg_path, &png_path] {
            let o = Command::new(bin())
                .arg("plot")
                .arg(data.join(file))
                .args(["--force", "--out"])
                .arg(p)
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
        let svg = std::fs::read_to_string(&svg_path).unwrap();
        for (rgb, n) in fills {
            png_has_the_svg_rects(&svg, &png_path, rgb, n);
        }
    }
}
