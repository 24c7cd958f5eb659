//! Colour scales of the figures: plotly's RdBu (the paper's heatmaps) centred at 0, and the
//! matplotlib sequential maps the paper's attention figures use (Purples, Blues, Greens).
//!
//! Written here rather than shared with the explorer's scale: the terminal one maps to 256
//! colours and a dark background, a figure needs the exact stops on white.

use super::canvas::Rgb;

/// plotly's RdBu, evenly spaced from -1 (dark red) through 0 (near white) to +1 (dark blue):
/// a path that restores the normal answer (r < 0) is red, as in the paper.
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

/// matplotlib's sequential maps at 9 even stops from 0 to 1 (ColorBrewer's 9-class schemes).
pub const PURPLES: [Rgb; 9] = [
    (252, 251, 253),
    (239, 237, 245),
    (218, 218, 235),
    (188, 189, 220),
    (158, 154, 200),
    (128, 125, 186),
    (106, 81, 163),
    (84, 39, 143),
    (63, 0, 125),
];
pub const BLUES: [Rgb; 9] = [
    (247, 251, 255),
    (222, 235, 247),
    (198, 219, 239),
    (158, 202, 225),
    (107, 174, 214),
    (66, 146, 198),
    (33, 113, 181),
    (8, 81, 156),
    (8, 48, 107),
];
pub const GREENS: [Rgb; 9] = [
    (247, 252, 245),
    (229, 245, 224),
    (199, 233, 192),
    (161, 217, 155),
    (116, 196, 118),
    (65, 171, 93),
    (35, 139, 69),
    (0, 109, 44),
    (0, 68, 27),
];

/// The maps attention figures cycle through, one per head, like the paper's (c)–(e).
pub const SEQUENTIAL: [&[Rgb; 9]; 3] = [&PURPLES, &BLUES, &GREENS];

fn lerp(a: Rgb, b: Rgb, t: f64) -> Rgb {
    let f = |x: u8, y: u8| (x as f64 + (y as f64 - x as f64) * t).round() as u8;
    (f(a.0, b.0), f(a.1, b.1), f(a.2, b.2))
}

/// The colour at `t` in [0, 1] (clamped) of evenly spaced `stops`, linearly interpolated.
pub fn along(stops: &[Rgb], t: f64) -> Rgb {
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    let x = t * (stops.len() - 1) as f64;
    let i = (x.floor() as usize).min(stops.len() - 2);
    lerp(stops[i], stops[i + 1], x - i as f64)
}

/// RdBu colour of `value` on a scale from `-range` to `+range`, centred at 0 (white-ish);
/// values beyond the range take the end colours.
pub fn diverging(value: f64, range: f64) -> Rgb {
    if range.is_nan() || range <= 0.0 {
        return RDBU[5];
    }
    along(&RDBU, 0.5 + 0.5 * value / range)
}

/// The range of an automatic scale: the largest magnitude among `values` (finite ones), or 1
/// when there is none, so a scale never has zero width.
pub fn auto_range(values: impl IntoIterator<Item = f64>) -> f64 {
    let m = values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold(0.0f64, |m, v| m.max(v.abs()));
    if m > 0.0 {
        m
    } else {
        1.0
    }
}

/// `--range`: `auto`, or a half-width `X`, `±X` or `+-X` (in the figure's unit, e.g. %).
pub fn parse_range(s: &str) -> Result<Option<f64>, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("auto") {
        return Ok(None);
    }
    let num = t
        .strip_prefix('±')
        .or_else(|| t.strip_prefix("+-"))
        .unwrap_or(t)
        .trim_end_matches('%');
    match num.parse::<f64>() {
        Ok(x) if x > 0.0 && x.is_finite() => Ok(Some(x)),
        _ => Err(format!(
            "{s:?}: expected auto or a positive half-width such as 20 or ±20"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rdbu_stops_and_centre() {
        assert_eq!(diverging(0.0, 20.0), (247, 247, 247));
        assert_eq!(diverging(-20.0, 20.0), (103, 0, 31));
        assert_eq!(diverging(20.0, 20.0), (5, 48, 97));
        assert_eq!(diverging(-99.0, 20.0), (103, 0, 31), "clamped");
        // -10 of ±20 is t = 0.25: halfway between stops 2 and 3.
        assert_eq!(diverging(-10.0, 20.0), (229, 131, 104));
        assert_eq!(diverging(4.0, 20.0), (209, 229, 240));
    }

    #[test]
    fn sequential_ends() {
        assert_eq!(along(&BLUES, 0.0), (247, 251, 255));
        assert_eq!(along(&BLUES, 1.0), (8, 48, 107));
        assert_eq!(along(&BLUES, 0.5), (107, 174, 214));
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("auto"), Ok(None));
        assert_eq!(parse_range("±20"), Ok(Some(20.0)));
        assert_eq!(parse_range("+-2.5"), Ok(Some(2.5)));
        assert_eq!(parse_range("20%"), Ok(Some(20.0)));
        assert!(parse_range("-3").is_err());
        assert!(parse_range("x").is_err());
        assert_eq!(auto_range([0.1, -0.3, f64::NAN]), 0.3);
        assert_eq!(auto_range([]), 1.0);
    }
}
