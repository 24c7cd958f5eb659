//! The `.npy` and CSV exports of a result (`show --npy/--csv`, `patch --npy`): every number
//! the JSON holds per cell — r, its 95% interval, the patched metric, and a run's MLP column —
//! under names that say which metric they are (`patched_kl`, never a `patched_logit_diff` that
//! holds a KL). Runs and scans export the same way; rows not computed are NaN in `.npy` and
//! empty in CSV.

use std::path::{Path, PathBuf};

use super::npy::encode_f64;
use super::scan::ScanRecord;
use super::{Intervals, RunRecord};
use crate::patching::Metric;

/// `STEM.<suffix>.npy` beside `path`.
fn npy_path(path: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!(
        "{}.{suffix}.npy",
        path.with_extension("").display()
    ))
}

/// Every name an export of a result at `path` may write, for any metric: checked before a
/// run so that no stale export sits beside a new result.
pub fn npy_paths(path: &Path) -> Vec<PathBuf> {
    let mut suffixes = vec!["relative".to_string(), "relative_ci".to_string()];
    suffixes.extend(["mlp_relative", "mlp_relative_ci"].map(String::from));
    for m in Metric::ALL {
        suffixes.push(format!("patched_{}", m.key()));
        suffixes.push(format!("mlp_patched_{}", m.key()));
    }
    suffixes.iter().map(|s| npy_path(path, s)).collect()
}

/// A [layers, cols] matrix, NaN in rows not computed.
fn matrix(rows: &[Option<Vec<f64>>], cols: usize) -> Vec<u8> {
    let data: Vec<f64> = rows
        .iter()
        .flat_map(|r| match r {
            Some(v) => v.clone(),
            None => vec![f64::NAN; cols],
        })
        .collect();
    encode_f64(&data, &[rows.len(), cols])
}

/// Intervals as [layers, cols, 2] (low, high), NaN where a bound is undefined or a row was not
/// computed: the values, row-major.
fn interval_values(iv: &Intervals, cols: usize) -> Vec<f64> {
    let bound = |b: Option<f64>| b.unwrap_or(f64::NAN);
    iv.iter()
        .flat_map(|r| match r {
            Some(cells) => cells
                .iter()
                .flat_map(|[lo, hi]| [bound(*lo), bound(*hi)])
                .collect(),
            None => vec![f64::NAN; 2 * cols],
        })
        .collect()
}

fn intervals(iv: &Intervals, cols: usize) -> Vec<u8> {
    encode_f64(&interval_values(iv, cols), &[iv.len(), cols, 2])
}

/// One value per layer, NaN where not computed.
fn column(v: &[Option<f64>]) -> Vec<u8> {
    let data: Vec<f64> = v.iter().map(|x| x.unwrap_or(f64::NAN)).collect();
    encode_f64(&data, &[v.len()])
}

/// A CSV field: a number in Rust's shortest exact form (empty when not a number), or text
/// quoted when it holds a comma, quote or line break (a token such as `","`).
fn num(v: Option<f64>) -> String {
    v.filter(|x| x.is_finite())
        .map(|x| format!("{x}"))
        .unwrap_or_default()
}

fn text_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The low and high bounds of a cell's interval, when the result has one.
fn bounds(iv: Option<&Intervals>, l: usize, c: usize) -> (Option<f64>, Option<f64>) {
    match iv.and_then(|iv| iv.get(l)?.as_ref()?.get(c)) {
        Some([lo, hi]) => (*lo, *hi),
        None => (None, None),
    }
}

impl RunRecord {
    /// The `.npy` exports beside `path`: `STEM.relative.npy` [layer, head],
    /// `STEM.patched_<metric>.npy`, `STEM.relative_ci.npy` [layer, head, 2], and with MLP
    /// senders `STEM.mlp_relative.npy` [layer], `STEM.mlp_patched_<metric>.npy`,
    /// `STEM.mlp_relative_ci.npy` [layer, 2].
    pub fn npy_files(&self, path: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let key = self.metric.key();
        let h = self.n_heads;
        let mut out = vec![(npy_path(path, "relative"), matrix(&self.relative, h))];
        if let Some(p) = &self.patched_logit_diff {
            out.push((npy_path(path, &format!("patched_{key}")), matrix(p, h)));
        }
        if let Some(iv) = &self.relative_ci {
            out.push((npy_path(path, "relative_ci"), intervals(iv, h)));
        }
        if let Some(m) = &self.mlp_relative {
            out.push((npy_path(path, "mlp_relative"), column(m)));
        }
        if let Some(m) = &self.mlp_patched_logit_diff {
            let name = format!("mlp_patched_{key}");
            out.push((npy_path(path, &name), column(m)));
        }
        if let Some(iv) = &self.mlp_relative_ci {
            let rows: Intervals = iv.iter().map(|c| c.map(|b| vec![b])).collect();
            let data = encode_f64(&interval_values(&rows, 1), &[rows.len(), 2]);
            out.push((npy_path(path, "mlp_relative_ci"), data));
        }
        out
    }

    /// The result as CSV, one row per sender: `layer,head,r,patched_<metric>,r_low,r_high`,
    /// layers descending like the paper's lists, each layer's MLP (head `mlp`) after its heads
    /// when the run has MLP senders; empty fields where not computed or not defined.
    pub fn to_csv(&self) -> String {
        let mut s = format!("layer,head,r,patched_{},r_low,r_high\n", self.metric.key());
        let iv = self.relative_ci.as_ref();
        for l in (0..self.n_layers).rev() {
            for h in 0..self.n_heads {
                let (lo, hi) = bounds(iv, l, h);
                let (r, p) = (self.r(l, h), self.patched(l, h));
                s.push_str(&format!(
                    "{l},{h},{},{},{},{}\n",
                    num(r),
                    num(p),
                    num(lo),
                    num(hi)
                ));
            }
            if self.mlp_relative.is_some() {
                s.push_str(&self.mlp_csv_row(l));
            }
        }
        s
    }

    /// Layer `l`'s MLP row of [`RunRecord::to_csv`].
    fn mlp_csv_row(&self, l: usize) -> String {
        let get = |v: &Option<Vec<Option<f64>>>| v.as_ref().and_then(|v| *v.get(l)?);
        let [lo, hi] = self
            .mlp_relative_ci
            .as_ref()
            .and_then(|iv| *iv.get(l)?)
            .unwrap_or([None, None]);
        let (r, p) = (get(&self.mlp_relative), get(&self.mlp_patched_logit_diff));
        format!("{l},mlp,{},{},{},{}\n", num(r), num(p), num(lo), num(hi))
    }
}

impl ScanRecord {
    /// The `.npy` exports beside `path`: `STEM.relative.npy` [layer, column],
    /// `STEM.patched_<metric>.npy` and `STEM.relative_ci.npy` [layer, column, 2].
    pub fn npy_files(&self, path: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let c = self.n_columns;
        let patched = format!("patched_{}", self.metric.key());
        let mut out = vec![
            (npy_path(path, "relative"), matrix(&self.relative, c)),
            (npy_path(path, &patched), matrix(&self.patched, c)),
        ];
        if let Some(iv) = &self.relative_ci {
            out.push((npy_path(path, "relative_ci"), intervals(iv, c)));
        }
        out
    }

    /// The scan as CSV, one row per cell: `layer,<column kind>[,token],r,patched_<metric>,
    /// r_low,r_high` (the token of a position column, from the first example), layers
    /// descending.
    pub fn to_csv(&self) -> String {
        let positions = self.columns == "position" && !self.tokens.is_empty();
        let token_col = if positions { ",token" } else { "" };
        let key = self.metric.key();
        let mut s = format!(
            "layer,{}{token_col},r,patched_{key},r_low,r_high\n",
            self.columns
        );
        let iv = self.relative_ci.as_ref();
        for l in (0..self.n_layers).rev() {
            for c in 0..self.n_columns {
                let p = self
                    .patched
                    .get(l)
                    .and_then(|r| r.as_ref()?.get(c).copied());
                let (lo, hi) = bounds(iv, l, c);
                let token = match positions {
                    true => format!(",{}", text_field(self.tokens.get(c).map_or("", |t| t))),
                    false => String::new(),
                };
                let r = num(self.r(l, c));
                s.push_str(&format!(
                    "{l},{c}{token},{r},{},{},{}\n",
                    num(p),
                    num(lo),
                    num(hi)
                ));
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_text_is_quoted_only_when_it_must_be() {
        assert_eq!(text_field(" Mary"), " Mary");
        assert_eq!(text_field(","), "\",\"");
        assert_eq!(text_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(text_field("a\nb"), "\"a\nb\"");
        assert_eq!(num(Some(f64::NAN)), "");
        assert_eq!(num(Some(-0.125)), "-0.125");
        assert_eq!(num(None), "");
    }

    #[test]
    fn export_names_cover_every_metric() {
        let names: Vec<String> = npy_paths(Path::new("d/run.json"))
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        for n in [
            "d/run.relative.npy",
            "d/run.patched_logit_diff.npy",
            "d/run.patched_kl.npy",
        ] {
            assert!(names.contains(&n.to_string()), "{n}: {names:?}");
        }
        assert!(names.contains(&"d/run.mlp_patched_prob.npy".to_string()));
    }
}
