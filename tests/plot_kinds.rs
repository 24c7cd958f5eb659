//! Every kind of `headhunt plot` figure, from the paper's results, synthetic analysis files
//! (tests/data/plot) and fixture runs: the SVG is parsed (titles, tick labels, the colour of
//! every cell against RdBu computed here from the values), tick labels of a 42×16 figure do
//! not overlap, and bad input is a one-line error that writes nothing. The checks return
//! `Err` instead of panicking so a mutated copy of a file can be shown to fail them.

mod common;

use common::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn paper(name: &str) -> PathBuf {
    repo("data/paper/results/gemma_2_9b").join(name)
}

/// Runs headhunt; panics with its stderr when it fails.
fn hh(args: &[&str]) -> String {
    let o = Command::new(bin()).args(args).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "{args:?}: {err}");
    err
}

fn hh_fails(args: &[&str]) -> (i32, String) {
    let o = Command::new(bin()).args(args).output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The expected fill of `v` on a scale ±`range`, as `#RRGGBB` (tests/common/figure.rs has
/// plotly's stops, written out again there, not taken from the drawing code).
fn rdbu(v: f64, range: f64) -> String {
    common::figure::hex(common::figure::rdbu(v, range))
}

struct Svg {
    texts: Vec<Text>,
    /// Fills of square rects (cells), with multiplicity.
    cells: HashMap<String, usize>,
    n_cells: usize,
}

struct Text {
    s: String,
    x: f64,
    y: f64,
    size: f64,
    anchor: String,
    rotated: bool,
}

fn parse(path: &Path) -> Svg {
    let src = std::fs::read_to_string(path).unwrap();
    let doc = roxmltree::Document::parse(&src).unwrap();
    let num = |n: roxmltree::Node, a: &str| n.attribute(a).and_then(|v| v.parse::<f64>().ok());
    let mut cells = HashMap::new();
    let mut n_cells = 0;
    for n in doc.descendants().filter(|n| n.has_tag_name("rect")) {
        let (w, h) = (num(n, "width").unwrap(), num(n, "height").unwrap());
        if (w - h).abs() < 0.01 && w < 60.0 {
            n_cells += 1;
            *cells
                .entry(n.attribute("fill").unwrap_or("").to_uppercase())
                .or_default() += 1;
        }
    }
    let texts = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| Text {
            s: n.text().unwrap_or("").trim().to_string(),
            x: num(n, "x").unwrap_or(0.0),
            y: num(n, "y").unwrap_or(0.0),
            size: num(n, "font-size").unwrap_or(10.0),
            anchor: n.attribute("text-anchor").unwrap_or("start").to_string(),
            rotated: n.attribute("transform").is_some(),
        })
        .collect();
    Svg {
        texts,
        cells,
        n_cells,
    }
}

impl Svg {
    fn has(&self, t: &str) -> Result<(), String> {
        if self.texts.iter().any(|x| x.s == t) {
            Ok(())
        } else {
            Err(format!("no text {t:?}"))
        }
    }
    fn contains(&self, t: &str) -> Result<(), String> {
        if self.texts.iter().any(|x| x.s.contains(t)) {
            Ok(())
        } else {
            Err(format!("no text containing {t:?}"))
        }
    }
    /// Every expected colour appears among the cells at least as often as expected.
    fn cells_coloured(&self, want: &[String]) -> Result<(), String> {
        let mut need: HashMap<&str, usize> = HashMap::new();
        for w in want {
            *need.entry(w).or_default() += 1;
        }
        for (c, n) in need {
            let got = self.cells.get(c).copied().unwrap_or(0);
            if got < n {
                return Err(format!("colour {c}: {got} cells, expected {n}"));
            }
        }
        Ok(())
    }
}

/// A paper result's matrix in % and its largest magnitude.
fn paper_matrix(path: &Path) -> Vec<Vec<f64>> {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    serde_json::from_value::<Vec<Vec<f64>>>(v["matrix"].clone())
        .unwrap()
        .into_iter()
        .map(|r| r.into_iter().map(|x| 100.0 * x).collect())
        .collect()
}

fn max_abs(m: &[Vec<f64>]) -> f64 {
    m.iter().flatten().fold(0.0f64, |a, x| a.max(x.abs()))
}

fn check_heatmap(svg: &Svg, m: &[Vec<f64>], title: &str) -> Result<(), String> {
    let range = max_abs(m);
    let want: Vec<String> = m.iter().flatten().map(|&v| rdbu(v, range)).collect();
    svg.cells_coloured(&want)?;
    svg.contains(title)?;
    for t in ["0", "41", "15"] {
        svg.has(t)?;
    }
    Ok(())
}

#[test]
fn heatmap_cells_match_the_paper_values_and_a_mutation_fails() {
    let dir = temp_dir("plot-kinds-heat");
    let file = paper("resid_post_41.json");
    let out = dir.join("h.svg");
    hh(&["plot", s(&file), "--out", s(&out)]);
    let m = paper_matrix(&file);
    check_heatmap(&parse(&out), &m, "resid_post 41").unwrap();

    // A copy with one cell changed: the original figure no longer matches it.
    let mut bad = m.clone();
    bad[30][3] = -20.0;
    assert!(check_heatmap(&parse(&out), &bad, "resid_post 41").is_err());
    // And the figure of the mutated copy does (the value reaches the drawing).
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    v["matrix"][30][3] = serde_json::json!(-0.2);
    let copy = dir.join("mutated.json");
    std::fs::write(&copy, v.to_string()).unwrap();
    let out2 = dir.join("m.svg");
    hh(&["plot", s(&copy), "--out", s(&out2)]);
    check_heatmap(&parse(&out2), &bad, "resid_post 41").unwrap();
    assert!(check_heatmap(&parse(&out2), &m, "resid_post 41").is_err());
}

#[test]
fn side_by_side_and_difference_of_paper_results() {
    let dir = temp_dir("plot-kinds-pair");
    let (a, b) = (paper("resid_post_41.json"), paper("ind_h39_7_v.json"));
    let (ma, mb) = (paper_matrix(&a), paper_matrix(&b));
    let out = dir.join("pair.svg");
    hh(&["plot", s(&a), s(&b), "--compare", "--out", s(&out)]);
    let svg = parse(&out);
    assert!(svg.n_cells >= 2 * 42 * 16, "{} cells", svg.n_cells);
    // One scale for both panels: the larger magnitude of the two.
    // ind_h39_7_v's receiver is in layer 39: its senders in layers 39-41 were not computed.
    let range = max_abs(&ma).max(max_abs(&mb[..39]));
    let want: Vec<String> = ma
        .iter()
        .chain(&mb[..39])
        .flatten()
        .map(|&v| rdbu(v, range))
        .collect();
    svg.cells_coloured(&want).unwrap();
    svg.contains("resid_post 41").unwrap();
    svg.contains("39.7").unwrap();

    let out = dir.join("diff.svg");
    hh(&["plot", s(&a), s(&b), "--diff", "--out", s(&out)]);
    let svg = parse(&out);
    let d: Vec<Vec<f64>> = ma
        .iter()
        .zip(&mb[..39])
        .map(|(x, y)| x.iter().zip(y).map(|(p, q)| p - q).collect())
        .collect();
    let range = max_abs(&d);
    let want: Vec<String> = d.iter().flatten().map(|&v| rdbu(v, range)).collect();
    svg.cells_coloured(&want).unwrap();
    svg.contains("minus").unwrap();
}

/// Estimated box of a text: width 0.6 em per char, height 1 em, placed by its anchor.
fn text_box(t: &Text) -> (f64, f64, f64, f64) {
    let w = 0.6 * t.size * t.s.chars().count() as f64;
    let x0 = match t.anchor.as_str() {
        "middle" => t.x - w / 2.0,
        "end" => t.x - w,
        _ => t.x,
    };
    (x0, t.y, x0 + w, t.y + t.size)
}

fn no_tick_overlaps(svg: &Svg) -> Result<usize, String> {
    let ticks: Vec<&Text> = svg
        .texts
        .iter()
        .filter(|t| !t.rotated && !t.s.is_empty() && t.s.chars().all(|c| c.is_ascii_digit()))
        .collect();
    for (i, a) in ticks.iter().enumerate() {
        for b in &ticks[i + 1..] {
            let (p, q) = (text_box(a), text_box(b));
            if p.0 < q.2 && q.0 < p.2 && p.1 < q.3 && q.1 < p.3 {
                return Err(format!(
                    "tick {:?} at ({}, {}) overlaps {:?} at ({}, {})",
                    a.s, a.x, a.y, b.s, b.x, b.y
                ));
            }
        }
    }
    Ok(ticks.len())
}

#[test]
fn tick_labels_of_a_42_by_16_result_do_not_overlap_either_way() {
    let dir = temp_dir("plot-kinds-ticks");
    let file = paper("resid_post_41.json");
    for (name, extra) in [("rows.svg", None), ("cols.svg", Some("--heads-as-rows"))] {
        let out = dir.join(name);
        let mut args = vec!["plot", s(&file), "--out", s(&out)];
        args.extend(extra);
        hh(&args);
        let svg = parse(&out);
        let n = no_tick_overlaps(&svg).unwrap();
        assert!(n >= 10, "{name}: only {n} numeric ticks");
        svg.has("41").unwrap();
        svg.has("15").unwrap();
    }
    // The check can fail: a tick moved 2 px below another one overlaps it.
    let mut svg = parse(&dir.join("rows.svg"));
    let t = svg.texts.iter().find(|t| t.s == "41").unwrap();
    let moved = Text {
        s: "40".into(),
        y: t.y + 2.0,
        anchor: t.anchor.clone(),
        ..*t
    };
    svg.texts.push(moved);
    assert!(no_tick_overlaps(&svg).is_err());
}

#[test]
fn analysis_figures_fv_ablation_minimality() {
    let dir = temp_dir("plot-kinds-analysis");
    let data = repo("tests/data/plot");

    let out = dir.join("fv.svg");
    hh(&["plot", s(&data.join("fv.json")), "--out", s(&out)]);
    let svg = parse(&out);
    let fv: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("fv.json")).unwrap()).unwrap();
    let grids: Vec<Vec<Vec<f64>>> = ["39.7", "32.6", "25.13"]
        .iter()
        .map(|h| serde_json::from_value(fv["delta"][h].clone()).unwrap())
        .collect();
    // One scale over every grid in the file, the all-heads one included.
    let all: Vec<Vec<f64>> = serde_json::from_value(fv["delta"]["all"].clone()).unwrap();
    let range = grids
        .iter()
        .chain([&all])
        .map(|g| max_abs(g))
        .fold(0.0, f64::max);
    let want: Vec<String> = grids
        .iter()
        .flatten()
        .flatten()
        .map(|&v| rdbu(v, range))
        .collect();
    assert_eq!(want.len(), 300);
    svg.cells_coloured(&want).unwrap();
    svg.contains("Function-vector").unwrap();
    for t in ["H39.7", "H32.6", "H25.13", "0+0=", "9+7=", "0", "9"] {
        svg.has(t).unwrap();
    }

    let out = dir.join("abl.svg");
    hh(&["plot", s(&data.join("ablation.json")), "--out", s(&out)]);
    let svg = parse(&out);
    svg.contains("Accuracy when ablating 39.7").unwrap();
    // Bars labelled with their accuracies in %: baseline, ablated, random mean.
    for t in ["5.0", "83.0", "61.0", "8.0", "6.0", "80.0", "accuracy (%)"] {
        svg.has(t).unwrap();
    }
    svg.contains("random heads (n=5)").unwrap();
    assert_bar_heights(&out, "#BF3100", &[5.0, 61.0, 6.0]);
    assert_bar_heights(&out, "#EC9F05", &[83.0, 8.0, 80.0]);
    assert_error_bars(&out, 2);

    let out = dir.join("min.svg");
    hh(&["plot", s(&data.join("circuit.json")), "--out", s(&out)]);
    let svg = parse(&out);
    svg.contains("Minimality").unwrap();
    for t in [
        "41.4",
        "41.5",
        "39.7",
        "32.6",
        "consolidation",
        "function induction",
    ] {
        svg.has(t).unwrap();
    }
}

/// Horizontal bars (rects of `fill`, top to bottom) have lengths proportional to `values`;
/// the legend swatch (a square) is left out.
fn assert_bar_heights(path: &Path, fill: &str, values: &[f64]) {
    let src = std::fs::read_to_string(path).unwrap();
    let doc = roxmltree::Document::parse(&src).unwrap();
    let mut bars: Vec<(f64, f64, f64)> = doc
        .descendants()
        .filter(|n| n.has_tag_name("rect") && n.attribute("fill") == Some(fill))
        .map(|n| {
            let g = |a| n.attribute(a).unwrap().parse::<f64>().unwrap();
            (g("y"), g("width"), g("height"))
        })
        .filter(|&(_, w, h)| w != h)
        .collect();
    bars.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
    let lens: Vec<f64> = bars.iter().map(|b| b.1).collect();
    assert_eq!(lens.len(), values.len(), "{fill}: {lens:?}");
    // Pixel lengths are rounded: the scale from a least-squares fit, 2 px of slack.
    let k = lens.iter().zip(values).map(|(b, v)| b * v).sum::<f64>()
        / values.iter().map(|v| v * v).sum::<f64>();
    for (b, v) in lens.iter().zip(values) {
        assert!(
            (b - k * v).abs() <= 1.5,
            "{fill}: bars {lens:?} vs values {values:?}"
        );
    }
}

/// Error bars: at least `n` thin dark rects (a whisker and its caps).
fn assert_error_bars(path: &Path, n: usize) {
    let src = std::fs::read_to_string(path).unwrap();
    let doc = roxmltree::Document::parse(&src).unwrap();
    let k = doc
        .descendants()
        .filter(|n| n.has_tag_name("rect") && n.attribute("fill") == Some("#1E1E1E"))
        .filter(|n| {
            let g = |a| n.attribute(a).unwrap().parse::<f64>().unwrap();
            g("width").min(g("height")) <= 2.0
        })
        .count();
    assert!(k >= n, "{k} error-bar pieces");
}

/// `headhunt patch` of the fixture model `m` on data `d` to resid_post 1, as `dir/p.json`.
fn fixture_patch(dir: &Path, m: &str, d: &str) -> PathBuf {
    let p = dir.join("p.json");
    hh(&[
        "patch",
        "--model",
        m,
        "--data",
        d,
        "-r",
        "resid_post:1",
        "--out",
        s(&p),
    ]);
    p
}

/// `headhunt attention --json` of heads 0.1 and 1.0, mean of 3 prompts, as `dir/att.json`.
fn fixture_attention(dir: &Path, m: &str, d: &str) -> PathBuf {
    let att = dir.join("att.json");
    let heads = ["--head", "0.1", "--head", "1.0", "--prompts", "3"];
    let mut args = vec!["attention", "--model", m, "--data", d];
    args.extend(heads);
    args.extend(["--json", s(&att)]);
    hh(&args);
    att
}

#[test]
fn fixture_runs_drawn_heatmap_attention_and_query_row() {
    let dir = temp_dir("plot-kinds-fixture");
    let fx = fixture("tiny-gpt2");
    let data = fx.join("addition.jsonl");
    let (m, d) = (s(&fx), s(&data));
    let p = fixture_patch(&dir, m, d);
    let out = dir.join("p.svg");
    hh(&["plot", s(&p), "--out", s(&out)]);
    let svg = parse(&out);
    assert!(svg.n_cells >= 2 * 4, "{} cells", svg.n_cells);
    svg.contains("resid_post 1").unwrap();
    let png = dir.join("p.png");
    hh(&["plot", s(&p), "--out", s(&png)]);
    let (w, h) = png_size(&png);
    assert!(w > 100 && h > 100, "{w}x{h}");

    let att = fixture_attention(&dir, m, d);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&att).unwrap()).unwrap();
    let tokens: Vec<String> = serde_json::from_value(v["tokens"].clone()).unwrap();
    let n = tokens.len();
    let out = dir.join("att.svg");
    hh(&["plot", s(&att), "--out", s(&out)]);
    let svg = parse(&out);
    svg.contains("mean over 3").unwrap();
    assert!(
        svg.n_cells >= 2 * n * n,
        "{} cells, {n} tokens",
        svg.n_cells
    );
    for t in ["0.1", "1.0"] {
        svg.contains(t).unwrap();
    }
    // Every position is a tick label `TOKEN (i)` on both axes of both grids.
    for i in [0, n / 2, n - 1] {
        let label = format!("({i})");
        let k = svg.texts.iter().filter(|t| t.s.ends_with(&label)).count();
        assert_eq!(k, 4, "tick label of position {i}");
    }

    let one = dir.join("one.json");
    hh(&[
        "attention",
        "--model",
        m,
        "--data",
        d,
        "--head",
        "0.1",
        "--example",
        "1",
        "--json",
        s(&one),
    ]);
    let out = dir.join("one.svg");
    hh(&["plot", s(&one), "--out", s(&out)]);
    parse(&out).contains("prompt 1").unwrap();

    let out = dir.join("q.svg");
    hh(&["plot", s(&att), "--query", "-1", "--out", s(&out)]);
    let svg = parse(&out);
    assert!(!svg.texts.is_empty());
    svg.contains("0.1").unwrap();
}

fn png_size(path: &Path) -> (u32, u32) {
    let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let r = dec.read_info().unwrap();
    (r.info().width, r.info().height)
}

#[test]
fn bad_inputs_are_one_line_errors_and_write_nothing() {
    let dir = temp_dir("plot-kinds-bad");
    let out = dir.join("x.svg");
    let groups = dir.join("groups.json");
    std::fs::write(
        &groups,
        r#"{"format": "headhunt-head-groups", "groups": [{"name": "a", "heads": [[1, 2]]}]}"#,
    )
    .unwrap();
    let npy = dir.join("r.npy");
    std::fs::write(&npy, b"\x93NUMPY\x01\x00v\x00{'descr': '<f4'}").unwrap();
    let random = dir.join("random.json");
    std::fs::write(&random, r#"{"hello": [1, 2, 3]}"#).unwrap();
    let file = paper("resid_post_41.json");
    let missing = dir.join("missing.json");
    let cases: Vec<(Vec<&str>, &[&str])> = vec![
        (vec![s(&missing)], &["missing.json"]),
        (vec![s(&groups)], &["groups.json", "format"]),
        (vec![s(&npy)], &["r.npy"]),
        (vec![s(&random)], &["random.json"]),
        (vec![s(&file), "--group", "g=99.0"], &["99.0"]),
    ];
    for (args, needles) in cases {
        let mut a = vec!["plot"];
        a.extend(&args);
        a.extend(["--out", s(&out)]);
        let (code, err) = hh_fails(&a);
        assert_one_line_error(code, &err, needles);
        assert!(!out.exists(), "{args:?} wrote {}", out.display());
    }
    // Only the inputs made above remain: no temporary file is left.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 3);
}

#[test]
fn unknown_attention_head_is_an_error() {
    let dir = temp_dir("plot-kinds-badhead");
    let fx = fixture("tiny-gpt2");
    let att = dir.join("att.json");
    hh(&[
        "attention",
        "--model",
        s(&fx),
        "--data",
        s(&fx.join("addition.jsonl")),
        "--head",
        "0.1",
        "--prompts",
        "2",
        "--json",
        s(&att),
    ]);
    let out = dir.join("x.svg");
    let (code, err) = hh_fails(&["plot", s(&att), "--head", "99.0", "--out", s(&out)]);
    assert_one_line_error(code, &err, &["att.json", "99.0", "0.1"]);
    assert!(!out.exists());
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    // `--head all` is the function-vector files' panel: one plain sentence for attention.
    let (code, err) = hh_fails(&["plot", s(&att), "--head", "all", "--out", s(&out)]);
    assert_one_line_error(code, &err, &["--head all", "function-vector"]);
    assert!(!err.contains("  "), "a run of spaces in {err:?}");
    assert!(!out.exists());
}

/// The analysis file `name` of tests/data/plot as a model run on a GGUF file deep in a cache
/// folder would write it (its `model` and `data` carry absolute paths), saved in `dir`.
fn with_machine_paths(dir: &Path, name: &str) -> PathBuf {
    let src = std::fs::read_to_string(repo("tests/data/plot").join(name)).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&src).unwrap();
    let gguf = "/root/.cache/headhunt-models/qwen2.5-coder-0.5b-instruct-q8_0-long-name.gguf";
    v["model"]["label"] = gguf.into();
    v["model"]["origin"] = serde_json::json!({"kind": "gguf", "path": gguf});
    v["data"]["file"] = "/work/data/paper/addition/setting1/addition_nmax9_offset1.jsonl".into();
    let p = dir.join(name);
    std::fs::write(&p, v.to_string()).unwrap();
    p
}

/// No text of a figure holds a folder: not `dirs` (where the test's inputs live) nor
/// anything that looks like an absolute path.
fn no_machine_paths(svg: &Svg, dirs: &[&str]) -> Result<(), String> {
    for t in &svg.texts {
        let bad = dirs.iter().any(|d| t.s.contains(d))
            || t.s.contains("/root/")
            || t.s.contains("/work/")
            || t.s.contains(".cache/")
            || t.s.split_whitespace().any(|w| w.starts_with('/'));
        if bad {
            return Err(format!("text {:?} carries a machine path", t.s));
        }
    }
    Ok(())
}

/// Every text lies inside the figure: its extent from the SVG's position, anchor and size
/// (measured in the embedded font by `canvas::text_size`; plotters writes `font-size` as the
/// pixel size / 1.24), horizontal or turned a quarter (then it runs up from its end).
fn texts_fit(svg: &Svg, (w, h): (f64, f64)) -> Result<(), String> {
    for t in svg.texts.iter().filter(|t| !t.s.is_empty()) {
        let (tw, th) = headhunt::plot::canvas::text_size(&t.s, t.size * 1.24);
        let (tw, th) = (tw as f64, th as f64);
        let ((x0, x1), (y0, y1)) = if t.rotated {
            ((t.x - th / 2.0, t.x + th / 2.0), (t.y - tw, t.y))
        } else {
            let x0 = match t.anchor.as_str() {
                "middle" => t.x - tw / 2.0,
                "end" => t.x - tw,
                _ => t.x,
            };
            ((x0, x0 + tw), (t.y - th, t.y + th))
        };
        if x0 < -0.5 || x1 > w + 0.5 || y0 < -0.5 - th || y1 > h + 0.5 {
            return Err(format!(
                "text {:?} spans x {x0:.0}..{x1:.0}, y {y0:.0}..{y1:.0}: outside the {w}×{h} figure",
                t.s
            ));
        }
    }
    Ok(())
}

fn svg_size(path: &Path) -> (f64, f64) {
    let src = std::fs::read_to_string(path).unwrap();
    let doc = roxmltree::Document::parse(&src).unwrap();
    let root = doc.root_element();
    let num = |a: &str| root.attribute(a).unwrap().parse::<f64>().unwrap();
    (num("width"), num("height"))
}

/// Every kind of figure, drawn from inputs that carry machine paths (a fixture run's model
/// folder, an analysis of a GGUF file in a cache, data files given by absolute path), names
/// the model and data by file or folder name only, and every text fits inside the figure:
/// at full size where the figure sizes itself (it widens for long headings), smaller where
/// the user fixed a narrow width. The checks fail on a path and on a text moved past the edge.
#[test]
fn figures_name_models_without_paths_and_their_text_fits() {
    let dir = temp_dir("plot-kinds-paths");
    let fx = fixture("tiny-gpt2");
    let data = fx.join("addition.jsonl");
    let (m, d) = (s(&fx), s(&data));
    let p = fixture_patch(&dir, m, d);
    let att = fixture_attention(&dir, m, d);
    let (fv, abl, circ) = (
        with_machine_paths(&dir, "fv.json"),
        with_machine_paths(&dir, "ablation.json"),
        with_machine_paths(&dir, "circuit.json"),
    );
    let g = paper("resid_post_41.json");
    let g2 = paper("ind_h39_7_v.json");
    let cases: Vec<(&str, Vec<&str>, &[&str])> = vec![
        ("heatmap", vec![s(&p)], &["tiny-gpt2", "addition.jsonl"]),
        ("narrow", vec![s(&p), "--width", "600"], &["tiny-gpt2"]),
        ("attention", vec![s(&att)], &["tiny-gpt2", "addition.jsonl"]),
        ("query", vec![s(&att), "--query", "-1"], &["tiny-gpt2"]),
        (
            "fv",
            vec![s(&fv)],
            &["long-name.gguf", "addition_nmax9_offset1.jsonl"],
        ),
        ("ablation", vec![s(&abl)], &["long-name.gguf", "± "]),
        (
            "circuit",
            vec![s(&circ)],
            &["long-name.gguf", "faithfulness"],
        ),
        (
            "compare",
            vec![s(&g), s(&g2), "--compare"],
            &["resid_post 41"],
        ),
        ("diff", vec![s(&g), s(&g2), "--diff"], &["minus"]),
    ];
    let fixtures = fixtures_dir();
    let dirs = [fixtures.to_str().unwrap(), dir.to_str().unwrap()];
    for (name, args, want) in cases {
        let out = dir.join(format!("{name}.svg"));
        let mut a = vec!["plot"];
        a.extend(&args);
        a.extend(["--out", s(&out)]);
        hh(&a);
        let svg = parse(&out);
        for w in want {
            svg.contains(w).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        no_machine_paths(&svg, &dirs).unwrap_or_else(|e| panic!("{name}: {e}"));
        let size = svg_size(&out);
        texts_fit(&svg, size).unwrap_or_else(|e| panic!("{name}: {e}"));
        // Subtitles at full size (13 px) unless the width was fixed too narrow for it (a
        // pair has none: its panels' titles fit their share of the width).
        if name == "compare" {
            continue;
        }
        let sub = &svg.texts[1];
        let full = (sub.size * 1.24 - 13.0).abs() < 0.01;
        assert_eq!(
            full,
            name != "narrow",
            "{name}: subtitle at {} px",
            sub.size * 1.24
        );
    }
    // Narrower than the subtitle at 60% of its size: refused, nothing written.
    let out = dir.join("too-narrow.svg");
    let (code, err) = hh_fails(&["plot", s(&p), "--width", "300", "--out", s(&out)]);
    assert_one_line_error(code, &err, &["width 300", "too narrow", "title"]);
    assert!(!out.exists());
    // The checks can fail: the ablation subtitle as it was (the model's path, wider than
    // the figure), and its title moved to the right edge.
    let out = dir.join("ablation.svg");
    let mut svg = parse(&out);
    let size = svg_size(&out);
    svg.texts[1].s = format!(
        "/root/.cache/headhunt-models/{} · logit diff: 1.000 without ablation",
        svg.texts[1].s
    );
    assert!(no_machine_paths(&svg, &[]).is_err());
    assert!(texts_fit(&svg, size).is_err());
    let mut svg = parse(&out);
    svg.texts[0].x = size.0;
    assert!(texts_fit(&svg, size).is_err());
}

/// A flag that does not change a file's figure is refused in one line naming the flag and
/// the file's kind (never silently ignored), and nothing is written.
#[test]
fn flags_that_do_not_apply_to_the_file_are_refused() {
    let dir = temp_dir("plot-kinds-flags");
    let data = repo("tests/data/plot");
    let (fv, abl, circ) = (
        data.join("fv.json"),
        data.join("ablation.json"),
        data.join("circuit.json"),
    );
    let g = paper("resid_post_41.json");
    let out = dir.join("x.svg");
    let cases: Vec<(Vec<&str>, &[&str])> = vec![
        (
            vec![s(&g), "--head", "39.7"],
            &["--head", "resid_post_41.json", "path-patching"],
        ),
        (
            vec![s(&g), "--query", "3"],
            &["--query", "path-patching", "attention"],
        ),
        (
            vec![s(&fv), "--crop", "1-2"],
            &["--crop", "fv.json", "function-vector"],
        ),
        (
            vec![s(&fv), "--heads-as-rows"],
            &["--heads-as-rows", "fv.json"],
        ),
        (vec![s(&fv), "--query", "1"], &["--query", "fv.json"]),
        (
            vec![s(&abl), "--head", "39.7"],
            &["--head", "ablation.json", "ablation result"],
        ),
        (
            vec![s(&abl), "--range", "10"],
            &["--range", "ablation.json"],
        ),
        (
            vec![s(&abl), "--width", "900"],
            &["--width", "ablation.json"],
        ),
        (
            vec![s(&circ), "--head", "41.4"],
            &["--head", "circuit.json", "circuit"],
        ),
        (
            vec![s(&circ), "--group", "a=1.1"],
            &["--group", "circuit.json"],
        ),
        (
            vec![s(&fv), s(&abl), "--compare"],
            &["--compare", "fv.json", "function-vector"],
        ),
        (vec![s(&g), s(&fv), "--diff"], &["--diff", "fv.json"]),
        (
            vec![s(&g), "--head", "all"],
            &["--head", "resid_post_41.json"],
        ),
        (vec![s(&g), "--png"], &["--png", "--out"]),
    ];
    for (args, needles) in cases {
        let mut a = vec!["plot"];
        a.extend(&args);
        a.extend(["--out", s(&out)]);
        let (code, err) = hh_fails(&a);
        assert_one_line_error(code, &err, needles);
        assert!(!out.exists(), "{args:?} wrote {}", out.display());
    }
    // The flags that do apply still work.
    hh(&[
        "plot",
        s(&fv),
        "--range",
        "5",
        "--head",
        "32.6",
        "--out",
        s(&out),
    ]);
    hh(&[
        "plot",
        s(&g),
        "--crop",
        "30-41",
        "--heads-as-rows",
        "--out",
        s(&dir.join("g.svg")),
    ]);
}

/// An FV file of seven heads (as the Qwen2.5-Coder case study writes): `--head 13.8 --head
/// all` draws that head's grid beside the panel of all seven together, on one scale over the
/// two, and the title says which heads "all" combines; `--head all` alone draws that panel.
#[test]
fn fv_of_seven_heads_one_head_beside_all() {
    let dir = temp_dir("plot-kinds-fv7");
    let heads = [
        (13, 8),
        (13, 0),
        (16, 2),
        (16, 5),
        (12, 3),
        (14, 1),
        (15, 9),
    ];
    let grid = |k: f64| -> Vec<Vec<f64>> {
        (0..10)
            .map(|r| {
                (0..10)
                    .map(|c| (k + r as f64 * 0.7 - c as f64 * 0.4).sin() * k)
                    .collect()
            })
            .collect()
    };
    let mut delta = serde_json::Map::new();
    for (i, (l, h)) in heads.iter().enumerate() {
        delta.insert(format!("{l}.{h}"), serde_json::json!(grid(1.0 + i as f64)));
    }
    delta.insert("all".into(), serde_json::json!(grid(2.5)));
    let file = dir.join("fv7.json");
    // The shipped synthetic file's header and metadata, with this model, data and grids.
    let base = std::fs::read_to_string(repo("tests/data/plot/fv.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&base).unwrap();
    let id = "Qwen/Qwen2.5-Coder-0.5B-Instruct";
    v["model"]["label"] = id.into();
    v["model"]["origin"] =
        serde_json::json!({"kind": "hub", "id": id, "revision": "main", "commit": null});
    v["data"]["file"] = "addition_nmax9_offset1.jsonl".into();
    v["heads"] = serde_json::json!(heads);
    v["naive_prompts"] =
        serde_json::json!((0..10).map(|i| format!("{i}+{i}=")).collect::<Vec<_>>());
    v["delta"] = serde_json::Value::Object(delta);
    std::fs::write(&file, v.to_string()).unwrap();
    let out = dir.join("two.svg");
    hh(&[
        "plot",
        s(&file),
        "--head",
        "13.8",
        "--head",
        "all",
        "--out",
        s(&out),
    ]);
    let svg = parse(&out);
    assert_eq!(svg.n_cells, 200, "two 10×10 grids");
    svg.has("H13.8").unwrap();
    svg.has("all heads").unwrap();
    assert!(svg.texts.iter().all(|t| t.s != "H13.0"));
    svg.contains("all: heads 13.8, 13.0, 16.2, 16.5, 12.3, 14.1, 15.9 together")
        .unwrap();
    svg.contains("Qwen/Qwen2.5-Coder-0.5B-Instruct · addition_nmax9_offset1.jsonl")
        .unwrap();
    let (a, b) = (grid(1.0), grid(2.5));
    let range = max_abs(&a).max(max_abs(&b));
    let want: Vec<String> = a
        .iter()
        .chain(&b)
        .flatten()
        .map(|&x| rdbu(x, range))
        .collect();
    svg.cells_coloured(&want).unwrap();
    texts_fit(&svg, svg_size(&out)).unwrap();

    let out = dir.join("all.svg");
    hh(&["plot", s(&file), "--head", "all", "--out", s(&out)]);
    let svg = parse(&out);
    assert_eq!(svg.n_cells, 100);
    svg.contains("Function-vector Δ of heads 13.8, 13.0")
        .unwrap();
    let (code, err) = hh_fails(&[
        "plot",
        s(&file),
        "--head",
        "9.9",
        "--out",
        s(&dir.join("x.svg")),
    ]);
    assert_one_line_error(code, &err, &["fv7.json", "9.9", "13.8", "all"]);
}

/// The analyses drawn from fixture runs (`ablate`, `fv`, `circuit --minimality` on
/// tiny-gpt2), as from the synthetic files: bar lengths against the file's accuracies, the
/// FV cells against RdBu of the file's Δ, the minimality bars and their values, in SVG and
/// a PNG of the same size; no path in any text, every text inside the figure.
#[test]
fn analyses_of_fixture_runs_drawn() {
    let dir = temp_dir("plot-kinds-fixture-analyses");
    let fx = fixture("tiny-gpt2");
    let data = fx.join("addition.jsonl");
    let common = ["--model", s(&fx), "--data", s(&data), "--examples", "8"];
    let run = |cmd: &str, extra: &[&str], name: &str| -> (PathBuf, serde_json::Value) {
        let json = dir.join(format!("{name}.json"));
        let mut a = vec![cmd];
        a.extend(common);
        a.extend(extra);
        a.extend(["--json", s(&json)]);
        hh(&a);
        let out = dir.join(format!("{name}.svg"));
        hh(&["plot", s(&json), "--out", s(&out)]);
        let png = dir.join(format!("{name}.png"));
        hh(&["plot", s(&json), "--out", s(&png)]);
        let size = svg_size(&out);
        assert_eq!(png_size(&png), (size.0 as u32, size.1 as u32), "{name}");
        let svg = parse(&out);
        svg.contains("tiny-gpt2 · addition.jsonl").unwrap();
        no_machine_paths(&svg, &[fx.to_str().unwrap()]).unwrap();
        texts_fit(&svg, size).unwrap();
        let v = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        (out, v)
    };

    let (out, v) = run(
        "ablate",
        &["--heads", "1.0,0.1", "--random-groups", "3"],
        "ablate",
    );
    let pct = |x: &serde_json::Value| 100.0 * x.as_f64().unwrap();
    let r = &v["random_groups"];
    let normal = [&v["baseline"], &v, r].map(|o| {
        let a = &o["acc_normal_answer"];
        pct(a.get("mean").unwrap_or(a))
    });
    let contrast = [&v["baseline"], &v, r].map(|o| {
        let a = &o["acc_contrast_answer"];
        pct(a.get("mean").unwrap_or(a))
    });
    assert_bar_heights(&out, "#BF3100", &normal);
    assert_bar_heights(&out, "#EC9F05", &contrast);

    let (out, v) = run("fv", &["--heads", "1.0,0.1"], "fv");
    let grids: Vec<Vec<Vec<f64>>> = ["1.0", "0.1", "all"]
        .iter()
        .map(|k| serde_json::from_value(v["delta"][k].clone()).unwrap())
        .collect();
    let range = grids.iter().map(|g| max_abs(g)).fold(0.0, f64::max);
    let want: Vec<String> = grids
        .iter()
        .flatten()
        .flatten()
        .map(|&x| rdbu(x, range))
        .collect();
    assert_eq!(want.len(), 300);
    let svg = parse(&out);
    assert_eq!(svg.n_cells, 300);
    svg.cells_coloured(&want).unwrap();
    for t in ["H1.0", "H0.1", "all heads", "9"] {
        svg.has(t).unwrap();
    }

    let (out, v) = run(
        "circuit",
        &["--group", "a=1.0,0.1@tok:=", "--minimality"],
        "circuit",
    );
    let svg = parse(&out);
    let values: Vec<f64> = v["minimality"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_f64().unwrap())
        .collect();
    assert_eq!(values.len(), 2);
    for x in &values {
        svg.has(&format!("{x:.2}")).unwrap();
    }
    svg.has("1.0").unwrap();
    svg.has("0.1").unwrap();
    // Vertical bars in the group's colour, left to right, heights ∝ |values| on the
    // 260-pixel axis from min(0, values) to max(0, values).
    let src = std::fs::read_to_string(&out).unwrap();
    let doc = roxmltree::Document::parse(&src).unwrap();
    let mut bars: Vec<(f64, f64)> = doc
        .descendants()
        .filter(|n| n.has_tag_name("rect") && n.attribute("fill") == Some("#7528A0"))
        .map(|n| {
            let g = |a| n.attribute(a).unwrap().parse::<f64>().unwrap();
            (g("x"), g("height"))
        })
        .filter(|&(_, h)| h != 12.0)
        .collect();
    bars.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert_eq!(bars.len(), 2, "{bars:?}");
    let hi = values.iter().fold(0.0f64, |a, &b| a.max(b));
    let lo = values.iter().fold(0.0f64, |a, &b| a.min(b));
    for ((_, h), x) in bars.iter().zip(&values) {
        let want = (260.0 * x.abs() / (hi - lo)).max(1.0);
        assert!((h - want).abs() <= 1.5, "bar {h} px for {x} ({lo} to {hi})");
    }
}
