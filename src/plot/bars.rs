//! `plot --bars N`: the N senders of largest |r| of a path-patching run or a scan, one row
//! each from the largest down, r as a point and its 95% interval as a whisker, its numbers
//! printed beside it. The heatmap shows where the effects are; this shows which of them are
//! told from noise (a whisker that crosses 0 is not).

use plotters::prelude::DrawingBackend;

use super::canvas::{self, figure, text_size, Anchor, Area, BLACK_TEXT, GREY_TEXT, TICK};
use super::number::fixed;
use super::PlotError;
use crate::patching::scan::ScanKind;
use crate::results::scan::ScanRecord;
use crate::results::RunRecord;

/// One sender: its label (`L.H`, `MLP L`, a scan's `L @ P tok`), r and its interval, in %.
#[derive(Debug, Clone, PartialEq)]
pub struct Sender {
    pub label: String,
    pub r: f64,
    pub interval: Option<(f64, f64)>,
}

impl Sender {
    /// The numbers printed beside the whisker, at one decimal: `-27.1% [-30.2, -24.0]`.
    pub fn text(&self) -> String {
        match self.interval {
            Some((lo, hi)) => format!("{}% [{}, {}]", fixed(self.r, 1), fixed(lo, 1), fixed(hi, 1)),
            None => format!("{}% (no interval)", fixed(self.r, 1)),
        }
    }
}

const ROW: i32 = 22;
const PLOT_W: i32 = 420;
const TOP: i32 = 76;

#[derive(Debug, Clone)]
pub struct IntervalBars {
    pub size: (u32, u32),
    pub title: String,
    pub subtitle: String,
    /// Sorted by |r|, largest first.
    pub senders: Vec<Sender>,
    /// The value axis, in %.
    pub lo: f64,
    pub hi: f64,
    /// The plot's left and right edges, in pixels.
    pub x: (i32, i32),
}
figure!(IntervalBars);

/// A record that cannot be drawn as bars: it has no intervals (the paper's files hold r
/// only).
fn no_intervals() -> PlotError {
    PlotError::Invalid(
        "has no 95% intervals (field `relative_ci`; the paper's imported files hold r only): \
         --bars draws r with its interval; drop --bars for the heatmap"
            .into(),
    )
}

impl IntervalBars {
    /// The `n` senders of largest |r| of a run (heads and MLPs) in sender layers `layers`.
    pub fn run(rec: &RunRecord, n: usize, layers: (usize, usize)) -> Result<Self, PlotError> {
        if !super::heatmap::has_intervals(rec) {
            return Err(no_intervals());
        }
        let mut senders = Vec::new();
        let ci = |lo: f64, hi: f64| (100.0 * lo, 100.0 * hi);
        for l in layers.0..=layers.1.min(rec.n_layers.saturating_sub(1)) {
            if rec.receiver.reachable_from(l) {
                for h in 0..rec.n_heads {
                    if let Some(r) = rec.r(l, h).filter(|r| r.is_finite()) {
                        let interval = rec.interval(l, h).map(|(a, b)| ci(a, b));
                        let label = format!("{l}.{h}");
                        senders.push(Sender {
                            label,
                            r: 100.0 * r,
                            interval,
                        });
                    }
                }
            }
            let mlp = rec.mlp_r(l).filter(|r| r.is_finite());
            if let (Some(r), true) = (mlp, rec.receiver.mlp_reachable_from(l)) {
                let iv = rec.mlp_relative_ci.as_ref().and_then(|c| *c.get(l)?);
                let interval = match iv {
                    Some([Some(a), Some(b)]) => Some(ci(a, b)),
                    _ => None,
                };
                let label = format!("MLP {l}");
                senders.push(Sender {
                    label,
                    r: 100.0 * r,
                    interval,
                });
            }
        }
        let title = format!("Path patching to {}", rec.receiver_label);
        let mut sub = super::heatmap::describe(rec);
        if crate::results::text::ill_conditioned(rec) {
            let x = rec.metric.short();
            sub.push_str(&format!(" · r is ill-conditioned: {x}_c ≈ {x}_n"));
        }
        IntervalBars::new(title, sub, senders, n)
    }

    /// The `n` cells of largest |r| of a scan in layers `layers`.
    pub fn scan(rec: &ScanRecord, n: usize, layers: (usize, usize)) -> Result<Self, PlotError> {
        if rec.relative_ci.is_none() {
            return Err(no_intervals());
        }
        let mut senders = Vec::new();
        for l in layers.0..=layers.1.min(rec.n_layers.saturating_sub(1)) {
            for c in 0..rec.n_columns {
                let Some(r) = rec.r(l, c).filter(|r| r.is_finite()) else {
                    continue;
                };
                let label = match rec.kind {
                    ScanKind::Heads => format!("{l}.{c}"),
                    ScanKind::Mlp => format!("MLP {l}"),
                    _ => {
                        let tok = rec.tokens.get(c).map(String::as_str);
                        format!("{l} @ {}", super::scan::position_label(c, tok))
                    }
                };
                let interval = rec.interval(l, c).map(|(a, b)| (100.0 * a, 100.0 * b));
                senders.push(Sender {
                    label,
                    r: 100.0 * r,
                    interval,
                });
            }
        }
        let title = format!("Activation patching scan: {}", rec.kind);
        let sub = super::heatmap::describe_source(
            rec.model.as_ref(),
            rec.data.as_ref(),
            None,
            rec.metric,
        );
        IntervalBars::new(title, sub, senders, n)
    }

    /// Keeps the `n` senders of largest |r| (ties in the order given) and lays them out, the
    /// title ending in how many are drawn (fewer than `n` when the record has fewer).
    pub fn new(
        title: String,
        subtitle: String,
        mut senders: Vec<Sender>,
        n: usize,
    ) -> Result<Self, PlotError> {
        if n == 0 {
            return Err(PlotError::Invalid("0 senders: expected N ≥ 1".into()));
        }
        if senders.is_empty() {
            return Err(PlotError::Invalid(
                "no sender has a finite r: nothing to draw".into(),
            ));
        }
        senders.sort_by(|a, b| b.r.abs().total_cmp(&a.r.abs()));
        senders.truncate(n);
        let title = format!("{title}: the {} largest |r|", senders.len());
        let subtitle = format!("{subtitle} · points: r in %, whiskers: 95% interval");
        let bounds = senders.iter().flat_map(|s| {
            let (lo, hi) = s.interval.unwrap_or((s.r, s.r));
            [s.r, lo, hi]
        });
        let (lo, hi) = bounds.fold((0.0f64, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
        let pad = ((hi - lo) * 0.05).max(0.5);
        let (lo, hi) = (lo - pad, hi + pad);
        let label_w = senders
            .iter()
            .map(|s| text_size(&s.label, TICK).0)
            .max()
            .unwrap_or(0) as i32;
        let text_w = senders
            .iter()
            .map(|s| text_size(&s.text(), TICK).0)
            .max()
            .unwrap_or(0) as i32;
        let inner = label_w + 16 + PLOT_W + 12 + text_w;
        let width = (inner + 2 * 24).max(canvas::headings_width(&title, &subtitle));
        let x0 = (width - inner) / 2 + label_w + 16;
        let height = TOP + ROW * senders.len() as i32 + 60;
        canvas::check_size(width as u32, height as u32)?;
        Ok(IntervalBars {
            size: (width as u32, height as u32),
            title,
            subtitle,
            senders,
            lo,
            hi,
            x: (x0, x0 + PLOT_W),
        })
    }

    /// The pixel column of value `v` (in %).
    pub fn at(&self, v: f64) -> i32 {
        let t = ((v - self.lo) / (self.hi - self.lo)).clamp(0.0, 1.0);
        self.x.0 + (t * PLOT_W as f64).round() as i32
    }

    /// The pixel row of sender `i`'s centre.
    pub fn row_y(&self, i: usize) -> i32 {
        TOP + ROW * i as i32 + ROW / 2
    }

    fn draw<DB: DrawingBackend>(&self, area: &Area<DB>) -> Result<(), PlotError> {
        canvas::headings(area, self.size.0, &self.title, &self.subtitle)?;
        let (x0, x1) = self.x;
        let y1 = TOP + ROW * self.senders.len() as i32;
        let ticks = canvas::nice_ticks(self.lo, self.hi, 6);
        let step = if ticks.len() > 1 {
            ticks[1] - ticks[0]
        } else {
            1.0
        };
        for t in &ticks {
            let p = self.at(*t);
            canvas::fill(area, (p, TOP), (p + 1, y1), (225, 225, 225))?;
            let s = format!("{}%", canvas::tick_label(*t, step));
            canvas::text(area, &s, (p, y1 + 4), TICK, Anchor::Top, BLACK_TEXT)?;
        }
        let zero = self.at(0.0);
        canvas::fill(area, (zero, TOP), (zero + 1, y1), GREY_TEXT)?;
        let axis = "r (%), 95% interval";
        canvas::text(
            area,
            axis,
            ((x0 + x1) / 2, y1 + 24),
            TICK,
            Anchor::Top,
            BLACK_TEXT,
        )?;
        for (i, s) in self.senders.iter().enumerate() {
            let y = self.row_y(i);
            canvas::text(area, &s.label, (x0 - 8, y), TICK, Anchor::Right, BLACK_TEXT)?;
            if let Some((lo, hi)) = s.interval {
                let (a, b) = (self.at(lo), self.at(hi));
                canvas::fill(area, (a, y), (b + 1, y + 1), BLACK_TEXT)?;
                canvas::fill(area, (a, y - 4), (a + 1, y + 5), BLACK_TEXT)?;
                canvas::fill(area, (b, y - 4), (b + 1, y + 5), BLACK_TEXT)?;
            }
            let p = self.at(s.r);
            canvas::fill(area, (p - 3, y - 3), (p + 4, y + 4), POINT)?;
            canvas::text(
                area,
                &s.text(),
                (x1 + 12, y),
                TICK,
                Anchor::Left,
                BLACK_TEXT,
            )?;
        }
        Ok(())
    }
}

/// The colour of the points.
pub const POINT: canvas::Rgb = (33, 102, 172);
