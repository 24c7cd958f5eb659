//! Colour scales: a diverging red–white–blue scale centred at 0 for r (plotly's RdBu, as the
//! paper's heatmaps), a sequential scale for attention probabilities; truecolor where the
//! terminal says it supports it, the xterm 256-colour cube otherwise.

use ratatui::style::Color;

/// How many colours the terminal can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorMode {
    TrueColor,
    Indexed256,
}

impl ColorMode {
    /// Truecolor when `COLORTERM` says so (the de-facto convention), else 256 colours.
    pub fn detect() -> Self {
        match std::env::var("COLORTERM").as_deref() {
            Ok("truecolor") | Ok("24bit") => ColorMode::TrueColor,
            _ => ColorMode::Indexed256,
        }
    }

    pub fn rgb(self, (r, g, b): (u8, u8, u8)) -> Color {
        match self {
            ColorMode::TrueColor => Color::Rgb(r, g, b),
            ColorMode::Indexed256 => Color::Indexed(nearest_256(r, g, b)),
        }
    }
}

/// Nearest colour of the xterm 256 palette (its 6×6×6 cube and 24 greys).
pub fn nearest_256(r: u8, g: u8, b: u8) -> u8 {
    const LEVELS: [u8; 6] = [0, 95, 135, 175, 215, 255];
    let idx = |v: u8| -> usize {
        LEVELS
            .iter()
            .enumerate()
            .min_by_key(|(_, &l)| (l as i32 - v as i32).abs())
            .map(|(i, _)| i)
            .unwrap()
    };
    let (ri, gi, bi) = (idx(r), idx(g), idx(b));
    let cube = (LEVELS[ri], LEVELS[gi], LEVELS[bi]);
    let dist = |c: (u8, u8, u8)| {
        let d = |a: u8, b: u8| (a as i32 - b as i32).pow(2);
        d(c.0, r) + d(c.1, g) + d(c.2, b)
    };
    let avg = (r as u32 + g as u32 + b as u32) / 3;
    let grey_i = ((avg.saturating_sub(8)) / 10).min(23) as u8;
    let grey_v = 8 + 10 * grey_i;
    if dist((grey_v, grey_v, grey_v)) < dist(cube) {
        232 + grey_i
    } else {
        16 + 36 * ri as u8 + 6 * gi as u8 + bi as u8
    }
}

/// RdBu stops from -1 (red) through 0 (white) to +1 (blue).
const RDBU: [(f64, (u8, u8, u8)); 7] = [
    (-1.0, (103, 0, 31)),
    (-0.66, (178, 24, 43)),
    (-0.33, (244, 165, 130)),
    (0.0, (247, 247, 247)),
    (0.33, (146, 197, 222)),
    (0.66, (33, 102, 172)),
    (1.0, (5, 48, 97)),
];

fn lerp(a: (u8, u8, u8), b: (u8, u8, u8), t: f64) -> (u8, u8, u8) {
    let f = |x: u8, y: u8| (x as f64 + (y as f64 - x as f64) * t).round() as u8;
    (f(a.0, b.0), f(a.1, b.1), f(a.2, b.2))
}

/// The diverging colour of `value` on a scale from -`range` to +`range`.
pub fn diverging(value: f64, range: f64) -> (u8, u8, u8) {
    let x = if range > 0.0 {
        (value / range).clamp(-1.0, 1.0)
    } else {
        0.0
    };
    for w in RDBU.windows(2) {
        let ((x0, c0), (x1, c1)) = (w[0], w[1]);
        if x <= x1 {
            return lerp(c0, c1, (x - x0) / (x1 - x0));
        }
    }
    RDBU[RDBU.len() - 1].1
}

/// A readable text colour on background `bg`.
pub fn contrast_text(bg: (u8, u8, u8)) -> (u8, u8, u8) {
    let lum = 0.299 * bg.0 as f64 + 0.587 * bg.1 as f64 + 0.114 * bg.2 as f64;
    if lum > 140.0 {
        (20, 20, 20)
    } else {
        (240, 240, 240)
    }
}

/// Sequential scale for probabilities in [0, 1]: from the terminal background to purple.
pub fn sequential(p: f64) -> (u8, u8, u8) {
    let t = p.clamp(0.0, 1.0).sqrt();
    lerp((20, 20, 30), (190, 150, 255), t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diverging_scale_is_centred() {
        assert_eq!(diverging(0.0, 0.2), (247, 247, 247));
        let neg = diverging(-0.2, 0.2);
        let pos = diverging(0.2, 0.2);
        assert!(neg.0 > neg.2, "negative is red");
        assert!(pos.2 > pos.0, "positive is blue");
        assert_eq!(diverging(-5.0, 0.2), diverging(-0.2, 0.2), "clamped");
    }

    #[test]
    fn palette_fallback() {
        assert_eq!(nearest_256(0, 0, 0), 16);
        assert_eq!(nearest_256(255, 255, 255), 231);
        assert_eq!(nearest_256(255, 0, 0), 196);
    }
}
