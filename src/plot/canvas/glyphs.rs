//! Text for both backends as one plotters element, its PNG pixels rasterized here with
//! `ab_glyph`. plotters' own ab_glyph text drew every glyph from the pen position, dropping
//! the glyph's left side bearing (`1` left a gap after it: `1 2 examples`), and rounded each
//! glyph's vertical place on its own. Here each glyph is outlined at its pen position, so its
//! pixel bounds carry the bearing and the baseline is the same for every glyph (`.` on it).
//! The SVG backend reads only the style's size, family, colour, anchor and transform and writes
//! a `<text>`, as before; the layout box is plotters' own measure, so layouts do not move.

use std::convert::Infallible;

use ab_glyph::{point, Font, FontRef, PxScale, ScaleFont};
use plotters::element::{Drawable, PointCollection};
use plotters_backend::text_anchor::Pos;
use plotters_backend::{
    BackendColor, BackendCoord, BackendTextStyle, DrawingBackend, DrawingErrorKind, FontFamily,
    FontStyle, FontTransform,
};

/// The embedded font (DejaVu Sans), parsed once.
fn font() -> &'static FontRef<'static> {
    static FONT: std::sync::OnceLock<FontRef<'static>> = std::sync::OnceLock::new();
    FONT.get_or_init(|| {
        FontRef::try_from_slice(dejavu::sans::regular()).expect("dejavu ships a valid font")
    })
}

/// How a text is drawn: what plotters' `TextStyle` says, with our own rasterizer.
#[derive(Clone)]
pub struct GlyphStyle {
    pub size: f64,
    pub rgb: (u8, u8, u8),
    pub anchor: Pos,
    pub transform: FontTransform,
}

/// Pen advance of `text` at `size` pixels, with kerning: the width plotters measures.
pub fn advance_width(text: &str, size: f64) -> f32 {
    let font = font().as_scaled(PxScale::from(size as f32));
    let mut x = 0f32;
    let mut prev = None;
    for c in text.chars() {
        let id = font.glyph_id(c);
        if let Some(p) = prev {
            x += font.kern(p, id);
        }
        x += font.h_advance(id);
        prev = Some(id);
    }
    x
}

impl BackendTextStyle for GlyphStyle {
    type FontError = Infallible;

    fn color(&self) -> BackendColor {
        BackendColor {
            alpha: 1.0,
            rgb: self.rgb,
        }
    }

    fn size(&self) -> f64 {
        self.size
    }

    fn transform(&self) -> FontTransform {
        self.transform.clone()
    }

    fn style(&self) -> FontStyle {
        FontStyle::Normal
    }

    fn anchor(&self) -> Pos {
        self.anchor
    }

    fn family(&self) -> FontFamily<'_> {
        FontFamily::SansSerif
    }

    /// plotters' box: the pen advance wide, `size / 1.24` (one em) high, so that anchoring
    /// places a text where it did before.
    fn layout_box(&self, text: &str) -> Result<((i32, i32), (i32, i32)), Infallible> {
        let w = advance_width(text, self.size) as i32;
        Ok(((0, 0), (w, (self.size / 1.24) as i32)))
    }

    /// Each glyph outlined at its own pen position (kerning applied), its coverage drawn at
    /// its pixel bounds: left bearing and baseline as the font has them. The baseline is
    /// `size / 2` below `pos`, as plotters put it.
    fn draw<E, F: FnMut(i32, i32, BackendColor) -> Result<(), E>>(
        &self,
        text: &str,
        (x0, y0): BackendCoord,
        mut draw: F,
    ) -> Result<Result<(), E>, Infallible> {
        let font = font().as_scaled(PxScale::from(self.size as f32));
        let baseline = y0 as f32 + self.size as f32 / 2.0;
        let (mut pen, mut prev) = (x0 as f32, None);
        let color = self.color();
        for c in text.chars() {
            let id = font.glyph_id(c);
            if let Some(p) = prev {
                pen += font.kern(p, id);
            }
            prev = Some(id);
            let glyph = id.with_scale_and_position(font.scale(), point(pen, baseline));
            pen += font.h_advance(id);
            let Some(outline) = font.outline_glyph(glyph) else {
                continue;
            };
            let b = outline.px_bounds();
            let mut pixels = Vec::new();
            outline.draw(|x, y, a| pixels.push((x, y, a)));
            for (x, y, a) in pixels {
                let (px, py) = (b.min.x as i32 + x as i32, b.min.y as i32 + y as i32);
                if let Err(e) = draw(px, py, color.mix(a as f64)) {
                    return Ok(Err(e));
                }
            }
        }
        Ok(Ok(()))
    }
}

/// A text element at a point, drawn with [`GlyphStyle`].
pub struct Glyphs {
    pub text: String,
    pub at: BackendCoord,
    pub style: GlyphStyle,
}

impl<'a> PointCollection<'a, BackendCoord> for &'a Glyphs {
    type Point = &'a BackendCoord;
    type IntoIter = std::iter::Once<&'a BackendCoord>;
    fn point_iter(self) -> Self::IntoIter {
        std::iter::once(&self.at)
    }
}

impl<DB: DrawingBackend> Drawable<DB> for Glyphs {
    fn draw<I: Iterator<Item = BackendCoord>>(
        &self,
        mut points: I,
        backend: &mut DB,
        _: (u32, u32),
    ) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
        match points.next() {
            Some(at) => backend.draw_text(&self.text, &self.style, at),
            None => Ok(()),
        }
    }
}
