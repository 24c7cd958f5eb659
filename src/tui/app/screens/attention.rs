//! The attention screen: a head's query × key grid with the prompt's tokens as labels, or bars
//! of one query row (by default the final position, e.g. the last `=`), for the heads chosen
//! on the heatmap (the selection, else the head under the cursor), either run, and the mean
//! of the first n prompts or one prompt. Its state is what it shows and the patterns the
//! worker sent; `F` writes the figure of what is on screen.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::Component;
use crate::model::tokenizer::printable;
use crate::plot::attention::{AttentionFile, AttentionGrid, AttentionRow, HeadPattern};
use crate::plot::attention::{PromptsUsed, FORMAT, FORMAT_VERSION};
use crate::plot::Figure;
use crate::tui::app::{Level, RunState, Screen, Session};
use crate::tui::color::{contrast_text, sequential, ColorMode};
use crate::tui::keymap::{self, AttentionAction, Binding};
use crate::tui::layout::fit_line;
use crate::worker::{AttentionRequest, Event, Job, JobId, PromptChoice, RunKind};

/// The attention view's settings and data.
pub struct AttentionView {
    pub heads: Vec<(usize, usize)>,
    pub current: usize,
    pub run: RunKind,
    /// Mean over the first n prompts, or one prompt.
    pub prompts: PromptChoice,
    /// Query row shown in the bar view (default: the last position).
    pub query: Option<usize>,
    pub bars: bool,
    pub tokens: Vec<String>,
    pub patterns: Vec<Vec<Vec<f32>>>,
    pub waiting: Option<JobId>,
}

impl Default for AttentionView {
    /// The contrast run, the mean of the first 4 prompts: the paper's view.
    fn default() -> Self {
        AttentionView {
            heads: Vec::new(),
            current: 0,
            run: RunKind::Contrast,
            prompts: PromptChoice::Mean(4),
            query: None,
            bars: false,
            tokens: Vec::new(),
            patterns: Vec::new(),
            waiting: None,
        }
    }
}

impl Component for AttentionView {
    type Action = AttentionAction;
    const TITLE: &'static str = "attention";
    const KEYS: &'static [Binding<AttentionAction>] = keymap::ATTENTION;

    /// Opened from the heatmap (`Session::open_attention`): the selected heads (last first),
    /// else the head under the cursor, and their patterns asked for.
    fn on_open(&mut self, s: &mut Session) {
        self.heads = if s.selected.is_empty() {
            vec![s.cursor]
        } else {
            s.selected.iter().rev().copied().collect()
        };
        self.current = 0;
        self.query = None;
        self.request(s);
    }

    /// Does what an attention action asks; a change of run or prompts asks for the patterns.
    fn update(&mut self, action: AttentionAction, s: &mut Session) {
        use AttentionAction as A;
        let len = self.tokens.len();
        let n_heads = self.heads.len();
        match action {
            A::Back => s.screen = Screen::Heatmap,
            A::Help => s.open_help(),
            A::SwitchRun => {
                self.run = match self.run {
                    RunKind::Normal => RunKind::Contrast,
                    RunKind::Contrast => RunKind::Normal,
                };
                self.request(s);
            }
            A::MorePrompts | A::FewerPrompts | A::OnePrompt | A::MeanPrompts => {
                self.prompts = self.next_prompts(action, s);
                self.request(s);
            }
            A::Bars => self.bars = !self.bars,
            A::Figure => self.write_figure(s),
            A::QueryUp if len > 0 => {
                let q = self.query.unwrap_or(len - 1);
                self.query = Some(q.saturating_sub(1));
            }
            A::QueryDown if len > 0 => {
                let q = self.query.unwrap_or(len - 1);
                self.query = Some((q + 1).min(len - 1));
            }
            A::NextHead if n_heads > 0 => {
                self.current = (self.current + 1) % n_heads;
            }
            A::PreviousHead if n_heads > 0 => {
                self.current = (self.current + n_heads - 1) % n_heads;
            }
            A::QueryUp | A::QueryDown | A::NextHead | A::PreviousHead => {}
        }
    }

    /// The patterns, when they are the ones the view waits for (or, none awaited, of its
    /// heads); a failed request is no longer awaited.
    fn on_worker_event(&mut self, event: &Event, _: &mut Session) {
        match event {
            Event::Attention {
                id,
                tokens,
                patterns,
                request,
            } if self.waiting == Some(*id)
                || (self.waiting.is_none() && request.heads == self.heads) =>
            {
                self.tokens = tokens.clone();
                self.patterns = patterns.clone();
                self.waiting = None;
                if self.query.is_some_and(|q| q >= self.tokens.len()) {
                    self.query = None;
                }
            }
            Event::Error { id, .. } if self.waiting == Some(*id) => self.waiting = None,
            _ => {}
        }
    }

    fn draw(&self, s: &Session, frame: &mut Frame, area: Rect) {
        draw(self, s.color, frame, area)
    }
}

impl AttentionView {
    /// Asks the worker for the patterns of the heads, run and prompts shown.
    fn request(&mut self, s: &mut Session) {
        self.patterns.clear();
        let req = AttentionRequest {
            heads: self.heads.clone(),
            run: self.run,
            prompts: self.prompts,
        };
        let id = s.submit(Job::Attention(req));
        self.waiting = Some(id);
    }

    /// The prompts the attention view shows after a prompts action: `+`/`-` step the mean
    /// (from one prompt: the mean of 1), `p` steps through single prompts, `P` is the mean of 4.
    fn next_prompts(&self, action: AttentionAction, s: &Session) -> PromptChoice {
        use AttentionAction as A;
        let n_prompts = s.data.as_ref().map_or(1, |d| d.info.n_examples);
        match (action, self.prompts) {
            (A::MorePrompts, PromptChoice::Mean(n)) => PromptChoice::Mean((n + 1).min(n_prompts)),
            (A::FewerPrompts, PromptChoice::Mean(n)) => {
                PromptChoice::Mean(n.saturating_sub(1).max(1))
            }
            (A::MorePrompts | A::FewerPrompts, PromptChoice::One(_)) => PromptChoice::Mean(1),
            (A::OnePrompt, PromptChoice::One(i)) => PromptChoice::One((i + 1) % n_prompts.max(1)),
            (A::OnePrompt, PromptChoice::Mean(_)) => PromptChoice::One(0),
            (A::MeanPrompts, _) => PromptChoice::Mean(4.min(n_prompts)),
            (_, p) => p,
        }
    }
    /// `F` on the attention screen: the view's heads (grids, or the bars of the query row
    /// shown), for the prompts shown, beside the current run's saved JSON (or in the results
    /// folder when there is no finished run to save).
    fn write_figure(&self, s: &mut Session) {
        let a = self;
        let n = a.tokens.len();
        if a.waiting.is_some() || a.patterns.is_empty() || n == 0 {
            s.set_status(Level::Warn, "the patterns are still being computed");
            return;
        }
        let file = self.file(s);
        let title = self.title(s);
        let query = a.query.unwrap_or(n - 1).min(n - 1);
        let fig: Result<Box<dyn Figure>, _> = if a.bars {
            AttentionRow::new(&file, &[], query as i64).map(|f| {
                let t = format!(
                    "Attention of query {query} {:?} · {title}",
                    file.tokens[query]
                );
                Box::new(f.with_title(t)) as Box<dyn Figure>
            })
        } else {
            AttentionGrid::new(&file, &[]).map(|f| {
                let t = format!("Attention patterns · {title}");
                Box::new(f.with_title(t)) as Box<dyn Figure>
            })
        };
        let suffix = self.suffix(query);
        let finished = s
            .current()
            .is_some_and(|s| s.record.is_some() && !matches!(s.state, RunState::Running { .. }));
        let json = if finished { s.saved_run_path() } else { None };
        let saved = if json.is_some() {
            s.status.1.clone()
        } else {
            String::new()
        };
        let stem = match json {
            Some(j) => {
                let name = j.file_stem().unwrap_or_default().to_string_lossy();
                j.with_file_name(format!("{name}-{suffix}"))
            }
            None => {
                let model = s.model.as_ref().map_or("model", |m| m.label.as_str());
                let model = std::path::Path::new(model.trim_end_matches('/'))
                    .file_name()
                    .map_or_else(|| "model".into(), |m| m.to_string_lossy().to_string());
                s.setup.results_dir.join(format!("{model}-{suffix}"))
            }
        };
        let result = fig.and_then(|f| crate::plot::write_both(f.as_ref(), &stem));
        s.figure_status(result, saved);
    }

    /// The attention view's patterns as an attention file (what `headhunt attention --json`
    /// writes), for the figure code.
    fn file(&self, s: &Session) -> AttentionFile {
        let a = self;
        let data = s.data.as_ref();
        let prompts = match a.prompts {
            PromptChoice::One(example) => PromptsUsed::One { example },
            PromptChoice::Mean(requested) => PromptsUsed::Mean {
                requested,
                // Exact when the examples have one length; else the title says "up to".
                used: requested.min(data.map_or(requested, |d| d.info.n_examples)),
            },
        };
        AttentionFile {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            model: s.model.clone(),
            data: data.map(|d| d.info.clone()),
            run: a.run.name().into(),
            prompts,
            tokens: a
                .tokens
                .iter()
                .map(|t| crate::model::tokenizer::printable(t))
                .collect(),
            heads: a
                .heads
                .iter()
                .zip(&a.patterns)
                .map(|(&head, p)| HeadPattern {
                    head,
                    pattern: p.clone(),
                })
                .collect(),
        }
    }

    /// The run and prompts as the attention screen words them (prompts counted from 1).
    fn title(&self, s: &Session) -> String {
        let a = self;
        let one_length = s.data.as_ref().is_none_or(|d| d.lengths.len() <= 1);
        let prompts = match a.prompts {
            PromptChoice::Mean(n) if one_length => format!("mean of the first {n} prompts"),
            PromptChoice::Mean(n) => {
                format!("mean of up to the first {n} prompts (those of the first one's length)")
            }
            PromptChoice::One(i) => format!("prompt {} alone", i + 1),
        };
        format!("{} run · {prompts}", a.run.name())
    }

    /// `attention-1.3_2.0-normal-mean4` (grids) or `…-prompt2-query11` (bars): the figure's
    /// name after the run's, so that views of one run do not overwrite each other.
    fn suffix(&self, query: usize) -> String {
        let a = self;
        let heads: Vec<String> = a.heads.iter().map(|(l, h)| format!("{l}.{h}")).collect();
        let prompts = match a.prompts {
            PromptChoice::Mean(n) => format!("mean{n}"),
            PromptChoice::One(i) => format!("prompt{}", i + 1),
        };
        let bars = if a.bars {
            format!("-query{query}")
        } else {
            String::new()
        };
        format!(
            "attention-{}-{}-{prompts}{bars}",
            heads.join("_"),
            a.run.name()
        )
    }
}

/// A token label of at most `w` characters (spaces drawn visibly by `printable`: Qwen's " ="
/// and "=" are different tokens).
pub fn short(tok: &str, w: usize) -> String {
    let p = printable(tok);
    let t: String = p.chars().take(w).collect();
    if t.is_empty() {
        "∅".into()
    } else {
        t
    }
}

/// An attention weight as a grid cell prints it: tenths (".4"), "1.0", or nothing below .05.
pub fn weight_text(p: f64) -> &'static str {
    const TENTHS: [&str; 10] = ["", ".1", ".2", ".3", ".4", ".5", ".6", ".7", ".8", ".9"];
    let t = (p * 10.0).round();
    if t >= 10.0 {
        "1.0"
    } else {
        TENTHS[t.max(0.0) as usize]
    }
}

/// The chosen head's pattern: a grid, or the bars of one query row, under a header line.
fn draw(a: &AttentionView, color: ColorMode, frame: &mut Frame, area: Rect) {
    let Some(&(l, h)) = a.heads.get(a.current) else {
        frame.render_widget(
            Paragraph::new("no head chosen: press a on the heatmap"),
            area,
        );
        return;
    };
    let [head, body] = Layout::vertical([Constraint::Length(2), Constraint::Min(0)]).areas(area);
    let run = match a.run {
        RunKind::Normal => "normal",
        RunKind::Contrast => "contrast",
    };
    let prompts = match a.prompts {
        PromptChoice::Mean(n) => format!("mean of the first {n} prompts"),
        PromptChoice::One(i) => format!("prompt {} alone", i + 1),
    };
    let mut tabs: Vec<Span> = vec![Span::styled(
        format!("Attention H{l}.{h} · {run} run · {prompts} "),
        Style::default().add_modifier(Modifier::BOLD),
    )];
    if a.heads.len() > 1 {
        for (i, (hl, hh)) in a.heads.iter().enumerate() {
            let s = if i == a.current {
                Style::default().add_modifier(Modifier::REVERSED)
            } else {
                Style::default().fg(Color::Gray)
            };
            tabs.push(Span::styled(format!(" H{hl}.{hh} "), s));
        }
    }
    let sub = if a.waiting.is_some() {
        "computing…".to_string()
    } else {
        let labels = match a.prompts {
            PromptChoice::Mean(n) if n > 1 => {
                format!("values: mean over {n} prompts, labels: prompt 1's tokens")
            }
            _ => "labels: this prompt's tokens".to_string(),
        };
        format!("{labels} · n normal/contrast · +/- prompts · p one · b bars · ↑↓ query · Esc")
    };
    frame.render_widget(
        Paragraph::new(vec![
            fit_line(Line::from(tabs), head.width as usize),
            fit_line(
                Line::from(Span::styled(sub, Style::default().fg(Color::DarkGray))),
                head.width as usize,
            ),
        ]),
        head,
    );
    let Some(pattern) = a.patterns.get(a.current) else {
        return;
    };
    let n = pattern.len();
    if n == 0 || body.height < 2 || body.width < 10 {
        return;
    }
    let query = a.query.unwrap_or(n - 1).min(n - 1);
    if a.bars {
        draw_bars(frame, body, (a, color), pattern, query);
    } else {
        draw_grid(frame, body, (a, color), pattern, query);
    }
}

/// The narrowest grid cell: a weight (".4") and a space, so neighbours stay apart ("1.0" only
/// when every other weight of the row is below .05 and blank).
const GRID_CW: u16 = 3;
/// The widest grid cell: wider cells only serve labels, and cost keys.
const GRID_CW_MAX: u16 = 9;
/// The most characters a query row's token label takes, however wide the terminal.
const ROW_TOKEN_MAX: usize = 24;

/// Where the grid's parts go: which queries (rows) and keys (columns) are shown, how wide
/// the cells and the labels are. Computed from the area, so that a wide terminal shows whole
/// tokens and a narrow one says, with `▴`/`▾`/`◂`/`▸`, what is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GridPlan {
    /// First query row shown, and how many.
    pub q0: usize,
    pub rows: usize,
    /// First key column shown, and how many.
    pub k0: usize,
    pub cols: usize,
    /// Cell width.
    pub cw: u16,
    /// Width of a query row's position number and of its token label.
    pub pos_w: usize,
    pub tok_w: usize,
    /// Key labels in two staggered lines (each label two cells wide) when one cell is too
    /// narrow for them.
    pub staggered: bool,
}

impl GridPlan {
    /// The grid of `n` positions in `width` × `height`, query `query` in view (the bottom row
    /// when the queries do not all fit: the final `=` is what the reader came for).
    pub fn new(width: u16, height: u16, tokens: &[String], n: usize, query: usize) -> Option<Self> {
        let pos_w = digits(n.saturating_sub(1)).max(3);
        let label_min = pos_w + 1 + 4 + 1;
        let longest = (0..n).map(|k| label_len(tokens, k)).max().unwrap_or(1);
        let room = (width as usize).checked_sub(label_min + 1)?;
        let by_width = (room / n.max(1)).min(GRID_CW_MAX as usize) as u16;
        let cw = (longest as u16 + 1).clamp(GRID_CW, GRID_CW_MAX.min(by_width.max(GRID_CW)));
        let cols = (room / cw as usize).min(n);
        let staggered = longest > cw as usize - 1;
        let header = if staggered { 3 } else { 2 };
        let avail = (height as usize).checked_sub(header)?;
        let rows = if n <= avail {
            n
        } else {
            avail.saturating_sub(1)
        };
        if cols == 0 || rows == 0 {
            return None;
        }
        let q0 = (query + 1).saturating_sub(rows).min(n - rows);
        let k0 = (q0 + rows).saturating_sub(cols);
        let spare = width as usize - pos_w - 2 - cols * cw as usize - 1;
        let tok_w = spare.clamp(4, ROW_TOKEN_MAX.max(4)).min(longest.max(4));
        Some(GridPlan {
            q0,
            rows,
            k0,
            cols,
            cw,
            pos_w,
            tok_w,
            staggered,
        })
    }

    /// Width of the query labels left of the grid (position, token, a gap).
    pub fn label_w(&self) -> u16 {
        (self.pos_w + 1 + self.tok_w + 1) as u16
    }

    /// Lines above the grid: key positions, then one or two lines of key labels.
    pub fn header(&self) -> u16 {
        if self.staggered {
            3
        } else {
            2
        }
    }
}

/// Decimal digits of `x`.
fn digits(x: usize) -> usize {
    x.to_string().len()
}

/// Characters of key `k`'s label.
fn label_len(tokens: &[String], k: usize) -> usize {
    tokens
        .get(k)
        .map_or(1, |t| short(t, usize::MAX).chars().count())
}

fn draw_grid(
    frame: &mut Frame,
    area: Rect,
    (a, color): (&AttentionView, ColorMode),
    pattern: &[Vec<f32>],
    query: usize,
) {
    let n = pattern.len();
    let tokens = &a.tokens;
    let Some(plan) = GridPlan::new(area.width, area.height, tokens, n, query) else {
        return;
    };
    let buf = frame.buffer_mut();
    draw_key_header(buf, area, tokens, &plan, n);
    let dim = Style::default().fg(Color::DarkGray);
    let (x0, y0) = (area.x + plan.label_w(), area.y + plan.header());
    for r in 0..plan.rows {
        let q = plan.q0 + r;
        let y = y0 + r as u16;
        let tok = tokens.get(q).map_or("?".into(), |t| short(t, plan.tok_w));
        let style = if q == query {
            Style::default().add_modifier(Modifier::BOLD)
        } else {
            dim
        };
        let (pw, tw) = (plan.pos_w, plan.tok_w);
        let label = format!("{q:>pw$} {tok:<tw$}");
        buf.set_stringn(area.x, y, label, plan.label_w() as usize, style);
        for c in 0..plan.cols {
            let k = plan.k0 + c;
            if k > q {
                continue;
            }
            let p = pattern[q].get(k).copied().unwrap_or(0.0) as f64;
            let bg = sequential(p);
            let st = Style::default()
                .bg(color.rgb(bg))
                .fg(color.rgb(contrast_text(bg)));
            let x = x0 + c as u16 * plan.cw;
            buf.set_string(x, y, " ".repeat(plan.cw as usize), st);
            buf.set_string(x, y, weight_text(p), st);
        }
    }
    if plan.q0 + plan.rows < n {
        let below = n - plan.q0 - plan.rows;
        let y = y0 + plan.rows as u16;
        buf.set_string(area.x, y, format!("▾ {below} more rows (↓)"), dim);
    }
}

/// The lines above the grid: each key's position (with `▴` when query rows are cut above,
/// `◂`/`▸` when key columns are cut left/right), then the keys' token labels, in one line
/// when they fit a cell or in two staggered lines, each label two cells wide.
fn draw_key_header(
    buf: &mut ratatui::buffer::Buffer,
    area: Rect,
    tokens: &[String],
    plan: &GridPlan,
    n: usize,
) {
    let dim = Style::default().fg(Color::DarkGray);
    let mark = Style::default().fg(Color::Yellow);
    let x0 = area.x + plan.label_w();
    let cw = plan.cw as usize;
    let every = if digits(n.saturating_sub(1)) < cw {
        1
    } else {
        2
    };
    for c in (0..plan.cols).filter(|c| c % every == 0) {
        let k = plan.k0 + c;
        let x = x0 + (c * cw) as u16;
        buf.set_stringn(x, area.y, k.to_string(), every * cw - 1, dim);
    }
    if plan.q0 > 0 {
        let w = plan.label_w() as usize - 2;
        let above = format!("▴ 0–{}", plan.q0 - 1);
        buf.set_stringn(area.x, area.y, above, w, mark);
    }
    if plan.k0 > 0 {
        buf.set_string(x0 - 1, area.y, "◂", mark);
    }
    if plan.k0 + plan.cols < n.min(plan.q0 + plan.rows) {
        buf.set_string(x0 + (plan.cols * cw) as u16, area.y, "▸", mark);
    }
    let (lines, w) = if plan.staggered {
        (2, 2 * cw - 1)
    } else {
        (1, cw - 1)
    };
    for c in 0..plan.cols {
        let k = plan.k0 + c;
        let t = tokens.get(k).map_or("?".into(), |t| short(t, w));
        let (x, y) = (x0 + (c * cw) as u16, area.y + 1 + (c % lines) as u16);
        buf.set_stringn(x, y, t, w, dim);
    }
}

fn draw_bars(
    frame: &mut Frame,
    area: Rect,
    (a, color): (&AttentionView, ColorMode),
    pattern: &[Vec<f32>],
    query: usize,
) {
    let tokens = &a.tokens;
    let row = &pattern[query];
    let qtok = tokens.get(query).map_or("?".into(), |t| short(t, 6));
    let mut lines = vec![Line::from(Span::styled(
        format!("query {query} {qtok:?} attends to:"),
        Style::default().add_modifier(Modifier::BOLD),
    ))];
    let mut order: Vec<usize> = (0..=query.min(row.len().saturating_sub(1))).collect();
    let top: Vec<usize> = {
        let mut o = order.clone();
        o.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
        o.into_iter().take(5).collect()
    };
    let bar_w = area.width.saturating_sub(22) as f32;
    let max_rows = area.height.saturating_sub(1) as usize;
    if order.len() > max_rows {
        // Too many keys for the height: keep the largest weights, in position order.
        let mut keep: Vec<usize> = order.clone();
        keep.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
        keep.truncate(max_rows);
        keep.sort_unstable();
        order = keep;
    }
    for k in order {
        let p = row[k];
        let full = (p * bar_w).max(0.0);
        let n_full = full as usize;
        let bar: String = "█".repeat(n_full)
            + if full - n_full as f32 >= 0.5 {
                "▌"
            } else {
                ""
            };
        let tok = tokens.get(k).map_or("?".into(), |t| short(t, 5));
        let style = if top.contains(&k) && p >= 0.05 {
            Style::default()
                .fg(Color::Magenta)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default()
        };
        lines.push(Line::from(vec![
            Span::styled(
                format!(
                    "{k:>4} {tok:<5} {:>5} ",
                    crate::plot::number::fixed(p.into(), 2)
                ),
                style,
            ),
            Span::styled(bar, Style::default().fg(color.rgb(sequential(1.0)))),
        ]));
    }
    frame.render_widget(Paragraph::new(lines), area);
}
