//! The drawing surface shared by every figure: SVG or PNG through plotters, the embedded font,
//! and the pieces figures are made of (text, cells, tick labels that never overlap, a colour
//! bar). Figures lay themselves out in pixels, so tests can find a known cell.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontTransform;

use super::PlotError;

mod glyphs;

pub type Area<DB> = DrawingArea<DB, Shift>;
pub type Rgb = (u8, u8, u8);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Svg,
    Png,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Svg => "svg",
            Format::Png => "png",
        }
    }
}

/// A figure that can draw itself on either backend (one generic `draw` behind two entry
/// points, since a trait object cannot have a generic method).
pub trait Figure {
    /// Width and height in pixels.
    fn size(&self) -> (u32, u32);
    fn draw_svg(&self, area: &Area<SVGBackend>) -> Result<(), PlotError>;
    fn draw_png(&self, area: &Area<BitMapBackend>) -> Result<(), PlotError>;
}

/// Implements [`Figure`] for a type with `size` and a generic `draw`.
macro_rules! figure {
    ($t:ty) => {
        impl $crate::plot::canvas::Figure for $t {
            fn size(&self) -> (u32, u32) {
                self.size
            }
            fn draw_svg(
                &self,
                area: &$crate::plot::canvas::Area<plotters::prelude::SVGBackend>,
            ) -> Result<(), $crate::plot::PlotError> {
                self.draw(area)
            }
            fn draw_png(
                &self,
                area: &$crate::plot::canvas::Area<plotters::prelude::BitMapBackend>,
            ) -> Result<(), $crate::plot::PlotError> {
                self.draw(area)
            }
        }
    };
}
pub(crate) use figure;

/// The family name figures use; DejaVu Sans is registered under it once.
const FAMILY: &str = "sans-serif";

pub(crate) fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The bytes are a valid TrueType font shipped by the `dejavu` crate.
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, dejavu::sans::regular());
        let _ = plotters::style::register_font(FAMILY, FontStyle::Bold, dejavu::sans::bold());
    });
}

/// The mark every figure carries (an SVG `<desc>`, a PNG `tEXt` chunk), so that the explorer
/// replaces a figure it wrote earlier but never a file of someone else's with the same name.
pub const MARK: &str = "Drawn by headhunt";

/// Does `bytes` (the start of a file is enough) carry [`MARK`]?
pub fn has_mark(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(4096)];
    head.windows(MARK.len()).any(|w| w == MARK.as_bytes())
}

/// The smallest figure side, in pixels.
pub const MIN_PIXELS: u32 = 50;
/// The largest figure side, in pixels: 20000 × 20000 RGB is 1.2 GB of PNG buffer, past the
/// size of any poster and far inside the memory of the machines headhunt runs on.
pub const MAX_PIXELS: u32 = 20_000;

/// Fails on a figure side outside [`MIN_PIXELS`, `MAX_PIXELS`], naming the size and the
/// bound: checked on a given size before any layout arithmetic, and on every figure before
/// it is drawn.
pub fn check_size(w: u32, h: u32) -> Result<(), PlotError> {
    let range = MIN_PIXELS..=MAX_PIXELS;
    if !range.contains(&w) || !range.contains(&h) {
        return Err(PlotError::Invalid(format!(
            "figure size {w}×{h}: expected {MIN_PIXELS} to {MAX_PIXELS} pixels each way"
        )));
    }
    Ok(())
}

/// Renders `fig` to the bytes of an SVG or PNG file.
pub fn render(fig: &dyn Figure, format: Format) -> Result<Vec<u8>, PlotError> {
    register_font();
    let (w, h) = fig.size();
    check_size(w, h)?;
    match format {
        Format::Svg => {
            let mut s = String::new();
            {
                let area = SVGBackend::with_string(&mut s, (w, h)).into_drawing_area();
                area.fill(&WHITE).map_err(draw_err)?;
                fig.draw_svg(&area)?;
                area.present().map_err(draw_err)?;
            }
            Ok(marked_svg(s).into_bytes())
        }
        Format::Png => {
            let mut buf = vec![255u8; (w * h * 3) as usize];
            {
                let area = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
                area.fill(&WHITE).map_err(draw_err)?;
                fig.draw_png(&area)?;
                area.present().map_err(draw_err)?;
            }
            encode_png(&buf, w, h)
        }
    }
}

/// The family name of the font embedded in every SVG (see [`marked_svg`]).
pub const SVG_FONT: &str = "headhunt-dejavu-sans";

/// The SVG with [`MARK`] as its description, right after the opening `<svg …>` tag, and
/// the font its texts were measured in embedded as an `@font-face` (DejaVu Sans, base64):
/// a viewer without DejaVu would otherwise draw them in another font, whose widths the
/// layout did not measure (labels overlapping, titles cut).
fn marked_svg(s: String) -> String {
    match s.find('>') {
        Some(i) if s.starts_with("<svg") => {
            let face = format!(
                "<defs><style>@font-face{{font-family:{SVG_FONT};src:url(data:font/ttf;base64,{}) format(\"truetype\");}}</style></defs>",
                base64(dejavu::sans::regular())
            );
            let body = s[i + 1..].replace(
                "font-family=\"sans-serif\"",
                &format!("font-family=\"{SVG_FONT}, sans-serif\""),
            );
            format!("{}\n<desc>{MARK}</desc>{face}{body}", &s[..=i])
        }
        _ => s,
    }
}

/// Standard base64 (RFC 4648, with `=` padding) of `bytes`.
pub fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn encode_png(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>, PlotError> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let e = |e: png::EncodingError| PlotError::Draw(format!("PNG encoding: {e}"));
    enc.add_text_chunk("Software".into(), MARK.into())
        .map_err(e)?;
    let mut writer = enc.write_header().map_err(e)?;
    writer.write_image_data(rgb).map_err(e)?;
    writer.finish().map_err(e)?;
    Ok(out)
}

pub fn draw_err(e: impl std::fmt::Display) -> PlotError {
    PlotError::Draw(e.to_string())
}

pub fn color(c: Rgb) -> RGBColor {
    RGBColor(c.0, c.1, c.2)
}

/// Font sizes (pixels) of every figure: title, subtitle and axis names, tick labels.
pub const TITLE: f64 = 18.0;
pub const SUBTITLE: f64 = 13.0;
pub const TICK: f64 = 12.0;

/// Outline colours of tagged groups, in order (purple, blue, green as the paper, then more).
pub const GROUP_COLOURS: [Rgb; 6] = [
    (117, 40, 160),
    (20, 90, 200),
    (20, 140, 60),
    (230, 120, 0),
    (0, 150, 160),
    (200, 30, 120),
];

/// The colour of group number `g`.
pub fn group_colour(g: usize) -> Rgb {
    GROUP_COLOURS[g % GROUP_COLOURS.len()]
}

pub const BLACK_TEXT: Rgb = (30, 30, 30);
pub const GREY_TEXT: Rgb = (90, 90, 90);
/// Cells that were not computed: a grey that is not on any of the colour scales.
pub const MISSING: Rgb = (190, 190, 190);

/// How a text is placed relative to its point.
#[derive(Debug, Clone, Copy)]
pub enum Anchor {
    /// Left edge, vertical centre.
    Left,
    /// Right edge, vertical centre.
    Right,
    /// Horizontal centre, top edge.
    Top,
    /// Horizontal centre, vertical centre.
    Centre,
    /// Horizontal centre, bottom edge.
    Bottom,
}

/// A text of `size` pixels.
pub fn text<DB: DrawingBackend>(
    area: &Area<DB>,
    s: &str,
    (x, y): (i32, i32),
    size: f64,
    anchor: Anchor,
    c: Rgb,
) -> Result<(), PlotError> {
    let pos = match anchor {
        Anchor::Left => Pos::new(HPos::Left, VPos::Center),
        Anchor::Right => Pos::new(HPos::Right, VPos::Center),
        Anchor::Top => Pos::new(HPos::Center, VPos::Top),
        Anchor::Centre => Pos::new(HPos::Center, VPos::Center),
        Anchor::Bottom => Pos::new(HPos::Center, VPos::Bottom),
    };
    let style = glyphs::GlyphStyle {
        size,
        rgb: c,
        anchor: pos,
        transform: FontTransform::None,
    };
    draw_glyphs(area, s, (x, y), style)
}

/// Draws `s` (as [`shown`]) at `at` with `style`: a `<text>` in SVG, our own glyph pixels in
/// PNG (`glyphs`).
fn draw_glyphs<DB: DrawingBackend>(
    area: &Area<DB>,
    s: &str,
    at: (i32, i32),
    style: glyphs::GlyphStyle,
) -> Result<(), PlotError> {
    let element = glyphs::Glyphs {
        text: shown(s),
        at,
        style,
    };
    area.draw(&element).map_err(draw_err)
}

/// What is drawn of a text: every text reaches a figure through [`text`] or [`text_up`] (and
/// is measured by [`text_size`]) as this, its control characters shown escaped (`\x1b`):
/// labels, tokens and names come from files, and an SVG may hold no control character.
fn shown(s: &str) -> String {
    crate::results::text::escape_controls(s).into_owned()
}

/// A text turned a quarter to the left (reads bottom to top), its end at `(x, y)`: for tick
/// labels under a column.
pub fn text_up<DB: DrawingBackend>(
    area: &Area<DB>,
    s: &str,
    (x, y): (i32, i32),
    size: f64,
    c: Rgb,
) -> Result<(), PlotError> {
    let style = glyphs::GlyphStyle {
        size,
        rgb: c,
        anchor: Pos::new(HPos::Right, VPos::Center),
        transform: FontTransform::Rotate270,
    };
    draw_glyphs(area, s, (x, y), style)
}

/// Width and height of `s` at `size` pixels in the embedded font (no backend needed, so
/// figures lay themselves out before drawing).
pub fn text_size(s: &str, size: f64) -> (u32, u32) {
    register_font();
    let s = shown(s);
    (FAMILY, size)
        .into_font()
        .box_size(&s)
        .unwrap_or(((s.chars().count() as f64 * size * 0.6) as u32, size as u32))
}

/// A filled rectangle from `(x0, y0)` to `(x1, y1)` (exclusive).
pub fn fill<DB: DrawingBackend>(
    area: &Area<DB>,
    (x0, y0): (i32, i32),
    (x1, y1): (i32, i32),
    c: Rgb,
) -> Result<(), PlotError> {
    area.draw(&Rectangle::new([(x0, y0), (x1, y1)], color(c).filled()))
        .map_err(draw_err)
}

/// An outline `width` pixels wide.
pub fn outline<DB: DrawingBackend>(
    area: &Area<DB>,
    (x0, y0): (i32, i32),
    (x1, y1): (i32, i32),
    c: Rgb,
    width: u32,
) -> Result<(), PlotError> {
    area.draw(&Rectangle::new(
        [(x0, y0), (x1, y1)],
        color(c).stroke_width(width),
    ))
    .map_err(draw_err)
}

/// Free pixels kept at each side of a figure's headings.
pub const EDGE: i32 = 8;

/// The width a figure needs for its title and subtitle at their sizes, margins included:
/// figures that size themselves are at least this wide, so their headings are never cut.
pub fn headings_width(title: &str, subtitle: &str) -> i32 {
    let w = text_size(title, TITLE)
        .0
        .max(text_size(subtitle, SUBTITLE).0);
    w as i32 + 2 * EDGE
}

/// The smallest a text is drawn to fit, as a share of its size: below it, it is no longer
/// legible, and a figure too narrow for its headings at this size is refused instead
/// ([`headings_min_width`]).
pub const MIN_SCALE: f64 = 0.6;

/// The narrowest figure whose headings fit at [`MIN_SCALE`] of their sizes.
pub fn headings_min_width(title: &str, subtitle: &str) -> i32 {
    let w = text_size(title, TITLE * MIN_SCALE)
        .0
        .max(text_size(subtitle, SUBTITLE * MIN_SCALE).0);
    w as i32 + 2 * EDGE + 1
}

/// The font size at most `size` (and at least [`MIN_SCALE`] of it) at which `s` is at most
/// `avail` pixels wide: a text that does not fit where it goes (a figure of a width given by
/// the user) is drawn smaller rather than cut at the figure's edge.
pub fn fitted(s: &str, size: f64, avail: i32) -> f64 {
    let least = size * MIN_SCALE;
    let mut f = size;
    while f > least && text_size(s, f).0 as i32 > avail {
        f = (f * avail as f64 / text_size(s, f).0 as f64 * 10.0).floor() / 10.0;
        f = f.min(size - 0.1).max(least);
    }
    f
}

/// The title (and the subtitle under it, when there is one) centred across a figure `width`
/// pixels wide: the same place and sizes in every figure, smaller only where a text would
/// not fit the width (see [`fitted`]).
pub fn headings<DB: DrawingBackend>(
    area: &Area<DB>,
    width: u32,
    title: &str,
    subtitle: &str,
) -> Result<(), PlotError> {
    let x = width as i32 / 2;
    let avail = width as i32 - 2 * EDGE;
    let t = fitted(title, TITLE, avail);
    text(area, title, (x, 8), t, Anchor::Top, BLACK_TEXT)?;
    if subtitle.is_empty() {
        return Ok(());
    }
    let s = fitted(subtitle, SUBTITLE, avail);
    text(area, subtitle, (x, 32), s, Anchor::Top, GREY_TEXT)
}

/// How a legend item shows its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Swatch {
    /// A filled square: the colour of cells or bars.
    Filled,
    /// An outlined square: the outline of a tagged group.
    Outlined,
}

/// A legend row from `(x, y)` (the vertical centre) rightwards: a 12-pixel swatch, then the
/// name, items 14 pixels apart.
pub fn legend<DB: DrawingBackend>(
    area: &Area<DB>,
    (mut x, y): (i32, i32),
    items: &[(String, Rgb, Swatch)],
) -> Result<(), PlotError> {
    for (name, c, swatch) in items {
        match swatch {
            Swatch::Filled => fill(area, (x, y - 6), (x + 12, y + 6), *c)?,
            Swatch::Outlined => outline(area, (x, y - 6), (x + 12, y + 6), *c, 2)?,
        }
        text(area, name, (x + 16, y), TICK, Anchor::Left, BLACK_TEXT)?;
        x += 16 + text_size(name, TICK).0 as i32 + 14;
    }
    Ok(())
}

/// The smallest step from 1, 2, 5, 10, 20, 50 ... such that labels `step` items apart, each
/// item `pitch` pixels, leave at least `extent` pixels per label: tick labels never overlap.
pub fn tick_step(pitch: f64, extent: f64) -> usize {
    let mut base = 1usize;
    loop {
        for m in [1, 2, 5] {
            let step = base * m;
            if step as f64 * pitch >= extent || step > 1_000_000 {
                return step;
            }
        }
        base *= 10;
    }
}

/// Nice tick values within `[lo, hi]`: about `n` of them at 1, 2 or 5 × 10^k.
pub fn nice_ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if !lo.is_finite() || !hi.is_finite() || hi <= lo {
        return vec![lo];
    }
    let raw = (hi - lo) / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last)
        .map(|i| (i as f64 * step * 1e9).round() / 1e9)
        .collect()
}

/// A number for a tick label: as few decimals as the step needs.
pub fn tick_label(v: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    };
    super::number::fixed(v, decimals)
}

/// A vertical colour bar: `scale(v)` from `lo` (bottom) to `hi` (top), ticks labelled with
/// `suffix`, its caption above.
#[allow(clippy::too_many_arguments)]
pub fn colour_bar<DB: DrawingBackend>(
    area: &Area<DB>,
    (x, y): (i32, i32),
    (w, h): (i32, i32),
    (lo, hi): (f64, f64),
    scale: &dyn Fn(f64) -> Rgb,
    suffix: &str,
    caption: &str,
    font: f64,
) -> Result<(), PlotError> {
    for i in 0..h {
        let v = hi - (hi - lo) * (i as f64 + 0.5) / h as f64;
        fill(area, (x, y + i), (x + w, y + i + 1), scale(v))?;
    }
    outline(area, (x, y), (x + w, y + h), GREY_TEXT, 1)?;
    let ticks = nice_ticks(lo, hi, 6);
    let step = if ticks.len() > 1 {
        ticks[1] - ticks[0]
    } else {
        1.0
    };
    for t in &ticks {
        let ty = y + ((hi - t) / (hi - lo) * h as f64).round() as i32;
        fill(area, (x + w, ty), (x + w + 4, ty + 1), GREY_TEXT)?;
        let label = format!("{}{suffix}", tick_label(*t, step));
        text(
            area,
            &label,
            (x + w + 6, ty),
            font,
            Anchor::Left,
            BLACK_TEXT,
        )?;
    }
    text(
        area,
        caption,
        (x + w / 2, y - 6 - font as i32),
        font,
        Anchor::Top,
        BLACK_TEXT,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_steps_leave_room() {
        assert_eq!(tick_step(20.0, 12.0), 1);
        assert_eq!(tick_step(8.0, 12.0), 2);
        assert_eq!(tick_step(3.0, 12.0), 5);
        assert_eq!(tick_step(1.0, 12.0), 20);
    }

    #[test]
    fn nice_ticks_cover_the_range() {
        assert_eq!(
            nice_ticks(-20.0, 20.0, 4),
            vec![-20.0, -10.0, 0.0, 10.0, 20.0]
        );
        assert_eq!(nice_ticks(0.0, 1.0, 5), vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
        assert_eq!(tick_label(0.2, 0.2), "0.2");
        assert_eq!(tick_label(-0.0, 0.2), "0.0");
        assert_eq!(tick_label(-10.0, 10.0), "-10");
    }
}
