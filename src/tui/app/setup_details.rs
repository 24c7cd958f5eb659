//! The setup screen's details (load state, model, data, example pair, baselines) as the rows
//! the screen shows, wrapped to its width. They are computed here, on the state's side, so
//! that the key handler bounds the scroll by the very rows the view draws (`setup_max_scroll`)
//! without calling into the drawing.

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

use crate::model::tokenizer::printable;
use crate::plot::number::signed;
use crate::tui::layout;

use super::{DataStatus, Session, SETUP_FIELDS};

/// The furthest the setup's details scroll at the terminal size `app.viewport`.
pub fn setup_max_scroll(app: &Session) -> usize {
    let full = Rect::new(0, 0, app.viewport.0, app.viewport.1);
    let Some(area) = layout::main_area(full) else {
        return 0;
    };
    let (_, info, _) = layout::setup_areas(area, SETUP_FIELDS.len());
    let total = setup_detail_rows(app, info.width).len();
    total.saturating_sub(detail_rows_shown(app, info, total))
}

/// Rows of the `total` detail rows that `info` shows at once: all of them when they fit and
/// no hint line is needed, else all but the hint's row.
pub fn detail_rows_shown(app: &Session, info: Rect, total: usize) -> usize {
    let n_examples = app.data.as_ref().map_or(0, |d| d.preview.len());
    let h = info.height as usize;
    if total <= h && n_examples <= 1 {
        total
    } else {
        h.saturating_sub(1).min(total)
    }
}

/// The setup's details (load state, model, data, example pair, baselines) as rows of at most
/// `width` characters: wrapped here, so that the scroll and its bound count the same rows
/// the screen draws.
pub fn setup_detail_rows(app: &Session, width: u16) -> Vec<Line<'static>> {
    let mut out = load_lines(app);
    if let Some(d) = &app.data {
        out.extend(data_lines(d, app.setup_screen.example));
    }
    if let Some(rec) = app.current_record() {
        if let (Some(n), Some(c)) = (rec.normal_logit_diff, rec.contrast_logit_diff) {
            out.push(Line::from(""));
            let x = rec.metric.short();
            out.push(Line::from(format!(
                "baselines  {x}_normal {}  {x}_contrast {}  gap {}",
                signed(n, 4),
                signed(c, 4),
                signed(c - n, 4)
            )));
        }
    }
    out.into_iter()
        .flat_map(|l| wrap_line(l, width as usize))
        .collect()
}

/// `line` broken into rows of at most `width` characters, at a space in the row's second
/// half where there is one, keeping each character's style.
fn wrap_line(line: Line<'static>, width: usize) -> Vec<Line<'static>> {
    let chars: Vec<(char, Style)> = line
        .spans
        .iter()
        .flat_map(|s| s.content.chars().map(move |c| (c, s.style)))
        .collect();
    if width == 0 || chars.len() <= width {
        return vec![line];
    }
    let mut rows = Vec::new();
    let mut rest = &chars[..];
    while !rest.is_empty() {
        let mut cut = rest.len().min(width);
        if cut < rest.len() {
            if let Some(sp) = rest[width / 2..cut].iter().rposition(|&(c, _)| c == ' ') {
                cut = width / 2 + sp + 1;
            }
        }
        rows.push(styled_row(&rest[..cut]));
        rest = &rest[cut..];
    }
    rows
}

/// Characters with their styles as a line of spans (one per run of equal style).
fn styled_row(chars: &[(char, Style)]) -> Line<'static> {
    let mut spans: Vec<Span<'static>> = Vec::new();
    for &(c, style) in chars {
        match spans.last_mut() {
            Some(last) if last.style == style => last.content.to_mut().push(c),
            _ => spans.push(Span::styled(c.to_string(), style)),
        }
    }
    Line::from(spans)
}

/// The load's state (its error in full) and the model loaded.
fn load_lines(app: &Session) -> Vec<Line<'static>> {
    let mut out: Vec<Line> = Vec::new();
    if let Some(e) = &app.load_error {
        let red = Style::default().fg(Color::Red).add_modifier(Modifier::BOLD);
        out.push(Line::from(Span::styled(
            format!("could not load: {e}"),
            red,
        )));
        if app.model.is_some() {
            out.push(Line::from("the previous model and data stay loaded"));
        }
        if app.setup_screen.draft.is_some() {
            out.push(Line::from(
                "the form keeps what you typed: correct it, L loads it",
            ));
        }
        out.push(Line::from(""));
    } else if app.loading {
        out.push(Line::from(Span::styled(
            "loading the model and data…",
            Style::default().fg(Color::Yellow),
        )));
    }
    match &app.model {
        Some(m) => out.push(Line::from(format!(
            "model  {} · {} · {} layers × {} heads ({} kv) · d_model {} · {} on {}",
            m.label, m.family, m.n_layers, m.n_heads, m.n_kv_heads, m.d_model, m.dtype, m.device
        ))),
        None => out.push(Line::from("model  (loading or not loaded)")),
    }
    out
}

/// The data loaded: what it is, its baselines, what tokenizing noticed, and prompt pair
/// `example` of the preview.
fn data_lines(d: &DataStatus, example: usize) -> Vec<Line<'static>> {
    let mut out: Vec<Line> = Vec::new();
    let yellow = Style::default().fg(Color::Yellow);
    // Shots and offset only where the task uses them (never for prompt-pair files).
    out.push(Line::from(format!(
        "data   {} · {} · {} · lengths {:?}",
        d.info.spec.file.display(),
        d.info.spec.task,
        data_words(&d.info).replace(", ", " · "),
        d.lengths
    )));
    match &d.eval {
        Some(e) => {
            out.push(Line::from(format!("       {}", e.summary())));
            for w in &e.warnings {
                out.push(Line::from(Span::styled(format!("       ⚠ {w}"), yellow)));
            }
        }
        None => out.push(Line::from(Span::styled(
            "       measuring baselines and accuracy…",
            Style::default().fg(Color::DarkGray),
        ))),
    }
    if !d.info.skipped.is_empty() {
        out.push(Line::from(Span::styled(
            format!(
                "       {} examples skipped: normal and contrast lengths differ",
                d.info.skipped.len()
            ),
            yellow,
        )));
    }
    if !d.info.multi_token_answers.is_empty() {
        out.push(Line::from(Span::styled(
            format!(
                "       {} examples have multi-token answers",
                d.info.multi_token_answers.len()
            ),
            yellow,
        )));
    }
    if let Some(p) = d
        .preview
        .get(example.min(d.preview.len().saturating_sub(1)))
    {
        out.extend(pair_lines(p));
    }
    out
}

/// A prompt pair as its tokens, with the answers.
fn pair_lines(p: &crate::worker::PairPreview) -> Vec<Line<'static>> {
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let toks = |t: &[String]| {
        t.iter()
            .map(|s| format!("[{}]", printable(s)))
            .collect::<String>()
    };
    vec![
        Line::from(""),
        Line::from(Span::styled(
            format!("example {} (line {})", p.index, p.index + 1),
            bold,
        )),
        Line::from(format!(
            "normal   {} → {:?}",
            toks(&p.normal_tokens),
            printable(&p.normal_answer)
        )),
        Line::from(format!(
            "contrast {} → {:?}",
            toks(&p.contrast_tokens),
            printable(&p.contrast_answer)
        )),
        Line::from(Span::styled(
            format!("{} tokens", p.contrast_tokens.len()),
            Style::default().fg(Color::DarkGray),
        )),
    ]
}

/// "N examples, S shots, offset +K" — shots and offset only for tasks that use them.
pub fn data_words(d: &crate::results::DataInfo) -> String {
    if d.spec.task == crate::data::TaskKind::Pairs {
        format!("{} prompt pairs", d.n_examples)
    } else {
        format!(
            "{} examples, {} shots, offset {:+}",
            d.n_examples, d.spec.shots, d.spec.offset
        )
    }
}
