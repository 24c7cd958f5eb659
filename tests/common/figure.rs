//! Reading figures back in tests: the SVG's rectangles and texts, the PNG's pixels, and an
//! independent RdBu / sequential scale to check cell colours against (plotly's and
//! matplotlib's published stops, interpolated here, not by the code under test).

pub type Rgb = (u8, u8, u8);

/// One `<rect>` of an SVG with a fill.
#[derive(Debug, Clone, PartialEq)]
pub struct SvgRect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    pub fill: String,
}

impl SvgRect {
    pub fn centre(&self) -> (f64, f64) {
        (self.x + self.w / 2.0, self.y + self.h / 2.0)
    }
}

/// Every filled rectangle, in drawing order.
pub fn svg_rects(svg: &str) -> Vec<SvgRect> {
    let doc = roxmltree::Document::parse(svg).expect("the SVG parses");
    let num = |n: roxmltree::Node, a: &str| n.attribute(a).unwrap().parse::<f64>().unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name("rect"))
        .filter_map(|n| {
            Some(SvgRect {
                x: num(n, "x"),
                y: num(n, "y"),
                w: num(n, "width"),
                h: num(n, "height"),
                fill: n.attribute("fill").filter(|f| *f != "none")?.to_string(),
            })
        })
        .collect()
}

/// The square cells (of `size` pixels, ± 1) of the grid, in drawing order.
pub fn svg_cells(svg: &str, size: f64) -> Vec<SvgRect> {
    svg_rects(svg)
        .into_iter()
        .filter(|r| (r.w - size).abs() <= 1.0 && (r.h - size).abs() <= 1.0)
        .collect()
}

/// The texts of an SVG, trimmed.
pub fn svg_texts(svg: &str) -> Vec<String> {
    roxmltree::Document::parse(svg)
        .unwrap()
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.text().unwrap_or("").trim().to_string())
        .collect()
}

/// The fill of the last rectangle drawn that contains the point.
pub fn svg_fill_at(rects: &[SvgRect], (x, y): (f64, f64)) -> Option<String> {
    rects
        .iter()
        .rev()
        .find(|r| x >= r.x && x < r.x + r.w && y >= r.y && y < r.y + r.h)
        .map(|r| r.fill.clone())
}

/// `#RRGGBB` as plotters writes it.
pub fn hex((r, g, b): Rgb) -> String {
    format!("#{r:02X}{g:02X}{b:02X}")
}

/// A decoded PNG: width, height and RGB pixels.
pub struct Png {
    pub w: usize,
    pub h: usize,
    pub ch: usize,
    pub buf: Vec<u8>,
}

impl Png {
    pub fn read(path: &std::path::Path) -> Png {
        let decoder =
            png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        Png {
            w: info.width as usize,
            h: info.height as usize,
            ch: info.color_type.samples(),
            buf,
        }
    }

    pub fn at(&self, (x, y): (f64, f64)) -> Rgb {
        let i = (y as usize * self.w + x as usize) * self.ch;
        (self.buf[i], self.buf[i + 1], self.buf[i + 2])
    }
}

/// plotly's RdBu stops, dark red (-1) to dark blue (+1).
pub const RDBU: [Rgb; 11] = [
    (103, 0, 31),
    (178, 24, 43),
    (214, 96, 77),
    (244, 165, 130),
    (253, 219, 199),
    (247, 247, 247),
    (209, 229, 240),
    (146, 197, 222),
    (67, 147, 195),
    (33, 102, 172),
    (5, 48, 97),
];

/// The grey of cells that were not computed.
pub const MISSING: Rgb = (190, 190, 190);

/// The expected colour of `v` on RdBu from -range to +range, clamped at the ends.
pub fn rdbu(v: f64, range: f64) -> Rgb {
    let t = (0.5 + 0.5 * v / range).clamp(0.0, 1.0) * 10.0;
    let i = (t.floor() as usize).min(9);
    let f = t - i as f64;
    let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * f).round() as u8;
    let (a, b) = (RDBU[i], RDBU[i + 1]);
    (mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}
