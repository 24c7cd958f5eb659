//! PNG text is drawn glyph by glyph where the font puts each glyph: a `.` sits on the
//! baseline (not at mid-height) and a `1` leaves no wider gap after it than any other digit
//! (its left side bearing kept). plotters' own ab_glyph text dropped both, so every PNG
//! subtitle read `qwen2·5` and `1 2 examples`.

use headhunt::plot::canvas::{render, text, Anchor, Area, Figure, Format};
use headhunt::plot::PlotError;
use plotters::prelude::{BitMapBackend, DrawingBackend, SVGBackend};

/// A pixel darker than this (of 255) is ink.
const DARK: u8 = 128;

/// One line of text, black on white, left-anchored.
struct Line(&'static str, f64);

impl Line {
    fn draw<DB: DrawingBackend>(&self, area: &Area<DB>) -> Result<(), PlotError> {
        text(area, self.0, (10, 250), self.1, Anchor::Left, (0, 0, 0))
    }
}

impl Figure for Line {
    fn size(&self) -> (u32, u32) {
        (1600, 500)
    }
    fn draw_svg(&self, area: &Area<SVGBackend>) -> Result<(), PlotError> {
        self.draw(area)
    }
    fn draw_png(&self, area: &Area<BitMapBackend>) -> Result<(), PlotError> {
        self.draw(area)
    }
}

/// The inked pixels of `s` rendered to PNG, as a width × height grid of "is dark".
fn ink_at(s: &'static str, size: f64) -> Vec<Vec<bool>> {
    let bytes = render(&Line(s, size), Format::Png).unwrap();
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let (w, h) = (info.width as usize, info.height as usize);
    let px = info.line_size / w;
    (0..h)
        .map(|y| {
            (0..w)
                .map(|x| buf[y * info.line_size + x * px] < DARK)
                .collect()
        })
        .collect()
}

/// The glyphs as runs of inked columns: (first column, last column, top row, bottom row).
fn glyphs(grid: &[Vec<bool>]) -> Vec<(usize, usize, usize, usize)> {
    let w = grid[0].len();
    let rows = |x: usize| (0..grid.len()).filter(move |&y| grid[y][x]);
    let mut out: Vec<(usize, usize, usize, usize)> = Vec::new();
    let mut prev_inked = false;
    for x in 0..w {
        let (top, bottom) = (rows(x).min(), rows(x).max());
        match (top, bottom) {
            (Some(t), Some(b)) if prev_inked => {
                let g = out.last_mut().unwrap();
                *g = (g.0, x, g.2.min(t), g.3.max(b));
            }
            (Some(t), Some(b)) => out.push((x, x, t, b)),
            _ => {}
        }
        prev_inked = top.is_some();
    }
    out
}

/// The subtitle's size and larger ones: a `.` ends on the same pixel row as a `2` (whose
/// foot is flat on the baseline). plotters' text drew it a row higher at 13 px, where a dot
/// one pixel high then read as a `·`.
#[test]
fn a_dot_sits_on_the_baseline() {
    for size in [12.0, 13.0, 18.0, 40.0] {
        let g = glyphs(&ink_at("2.5", size));
        assert_eq!(g.len(), 3, "{size}: {g:?}");
        let (two, dot) = (g[0], g[1]);
        assert_eq!(dot.3, two.3, "{size} px: dot {dot:?}, digit {two:?}");
    }
}

/// Each glyph starts where the font puts it, its left side bearing after the pen: `1` has a
/// wider bearing than `2` (225 and 150 font units), so alone at the same point its ink starts
/// further right, by the difference. plotters' text started every glyph's ink at the pen.
#[test]
fn a_glyph_keeps_its_left_side_bearing() {
    use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
    let size = 200.0;
    let font = FontRef::try_from_slice(dejavu::sans::regular()).unwrap();
    let font = font.as_scaled(PxScale::from(size as f32));
    let bearing = |c: char| font.h_side_bearing(font.glyph_id(c));
    let left = |s: &'static str| glyphs(&ink_at(s, size))[0].0 as f32;
    let want = bearing('1') - bearing('2');
    let got = left("1") - left("2");
    assert!(want > 5.0, "the test's glyphs differ in bearing: {want}");
    assert!(
        (got - want).abs() <= 1.0,
        "1 starts {got} px right of 2, the font says {want}"
    );
}

/// So the gap after a `1` is no wider than between two `2`s (their ink gaps differ by 5 font
/// units): plotters' text left 70 units more after a `1` (`1 2 examples`).
#[test]
fn a_one_leaves_no_wider_gap_than_other_digits() {
    let gap = |s: &'static str| {
        let g = glyphs(&ink_at(s, 200.0));
        assert_eq!(g.len(), 2, "{s}: {g:?}");
        g[1].0 - g[0].1
    };
    let (after_one, after_two) = (gap("12"), gap("22"));
    assert!(
        after_one <= after_two + 1,
        "gap after 1: {after_one} px, after 2: {after_two} px"
    );
}

/// The PNG text is as wide as the layout measured it (`text_size`, within two pixels), so
/// that labels measured to fit still fit.
#[test]
fn png_text_is_as_wide_as_its_measure() {
    let s = "qwen2.5 12 examples";
    for size in [13.0, 40.0] {
        let g = glyphs(&ink_at(s, size));
        let (first, last) = (g.first().unwrap().0, g.last().unwrap().1);
        let (w, _) = headhunt::plot::canvas::text_size(s, size);
        let ink = (last + 1 - first) as i64;
        assert!(
            ink <= w as i64 + 2,
            "{size} px: ink {ink} px, measure {w} px"
        );
    }
}
