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
