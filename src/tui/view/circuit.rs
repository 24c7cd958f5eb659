//! The circuit screen: the groups with their positions and the analysis options on top, the
//! shown report below (circuit evaluation, ablation, or function-vector grids). Every number
//! is printed at a fixed precision from the record itself, so what is drawn equals what is
//! saved at that precision; a cancelled report says it is incomplete.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

use crate::analysis::circuit::Completeness;
use crate::model::tokenizer::printable;
use crate::plot::number::{fixed, signed};
use crate::results::analysis::{
    shift_key, shifts_of, AblationFile, AnalysisFile, CircuitFile, FvFile,
};
use crate::tui::app::{heads_text, App, ReportTab, ShownReport};
use crate::tui::color::{contrast_text, diverging, ColorMode};

fn bold() -> Style {
    Style::default().add_modifier(Modifier::BOLD)
}

fn grey() -> Style {
    Style::default().fg(Color::Gray)
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let c = &app.circuit;
    // Lines wider than the screen wrap (prose) or end in `…`, never cut silently.
    let fit = |lines: Vec<Line<'static>>, w: u16| super::fit_lines(lines, w as usize);
    let glines = fit(group_lines(app), area.width);
    let [groups, tabs, body] = Layout::vertical([
        Constraint::Length((glines.len() as u16).min(area.height / 2)),
        Constraint::Length(1),
        Constraint::Min(0),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(glines), groups);
    frame.render_widget(Paragraph::new(fit(vec![tab_line(app)], tabs.width)), tabs);
    let Some(shown) = c.report(c.tab) else {
        let hint = match &c.job {
            Some(j) if j.tab == c.tab => format!("{} running… (c cancels)", c.tab.label()),
            _ => format!(
                "no {} report yet: e evaluates the circuit, a ablates the group, f reads its function vectors",
                c.tab.label()
            ),
        };
        frame.render_widget(Paragraph::new(hint).wrap(Wrap { trim: true }), body);
        return;
    };
    let mut lines = header_lines(shown);
    lines.extend(match &shown.file {
        AnalysisFile::Circuit(f) => circuit_lines(f, body.width),
        AnalysisFile::Ablation(f) => ablation_lines(f),
        AnalysisFile::Fv(f) => fv_lines(f, c.fv_panel, app.color),
    });
    let lines = fit(lines, body.width);
    // Scrolled, never past the last page; what is cut off is said.
    let n = lines.len() as u16;
    let scroll = c.scroll.min(n.saturating_sub(body.height));
    let more = match (scroll > 0, scroll + body.height < n) {
        (true, true) => " more ↑↓ PgUp PgDn ",
        (true, false) => " more ↑ PgUp ",
        (false, true) => " more ↓ PgDn ",
        (false, false) => "",
    };
    frame.render_widget(Paragraph::new(lines).scroll((scroll, 0)), body);
    if !more.is_empty() && body.height > 0 {
        let w = (more.chars().count() as u16).min(body.width);
        let r = Rect::new(body.x + body.width - w, body.y + body.height - 1, w, 1);
        let style = Style::default().fg(Color::Black).bg(Color::Gray);
        frame.render_widget(Paragraph::new(Span::styled(more, style)), r);
    }
}

/// The groups (the selected one marked), then the options of the three analyses.
fn group_lines(app: &App) -> Vec<Line<'static>> {
    let c = &app.circuit;
    let mut lines = vec![Line::from(Span::styled(
        "groups · ↑↓ choose · p positions · e evaluate · a ablate · f FV · ? keys",
        grey(),
    ))];
    if c.groups.is_empty() {
        lines.push(Line::from(
            "no tagged groups: Esc, then t tags heads on the heatmap",
        ));
    }
    let first = c.row.saturating_sub(4);
    for (i, g) in c.groups.iter().enumerate().skip(first).take(5) {
        let mark = if i == c.row { "▶ " } else { "  " };
        let style = if i == c.row { bold() } else { Style::default() };
        lines.push(Line::from(Span::styled(
            format!(
                "{mark}{:<20} {:<24} @{}",
                g.name,
                heads_text(&g.heads, ","),
                g.positions
            ),
            style,
        )));
    }
    let ko = if c.knockouts.is_empty() {
        "per group and per head".to_string()
    } else {
        let sets: Vec<String> = c.knockouts.iter().map(|k| heads_text(k, "+")).collect();
        sets.join(" ")
    };
    let on = |b: bool| if b { "on" } else { "off" };
    lines.push(Line::from(Span::styled(
        format!(
            "K knock-outs {ko} · m minimality {} · g greedy {} · n random {}, seed {}",
            on(c.minimality),
            on(c.greedy),
            c.random_groups,
            c.seed
        ),
        grey(),
    )));
    lines
}

/// The report tabs, the running job and a read-only note.
fn tab_line(app: &App) -> Line<'static> {
    let c = &app.circuit;
    let mut spans = Vec::new();
    for t in ReportTab::ALL {
        let style = if t == c.tab {
            Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        } else if c.report(t).is_some() {
            Style::default()
        } else {
            Style::default().fg(Color::DarkGray)
        };
        spans.push(Span::styled(format!(" {} ", t.label()), style));
        spans.push(Span::raw(" "));
    }
    spans.push(Span::styled("(Tab)", grey()));
    if let Some(j) = &c.job {
        let msg = format!("  {} running… c cancels", j.tab.label());
        spans.push(Span::styled(msg, Style::default().fg(Color::Yellow)));
    }
    if let Some(why) = &c.read_only {
        let msg = format!("  read-only: {why}");
        spans.push(Span::styled(msg, Style::default().fg(Color::Yellow)));
    }
    Line::from(spans)
}

/// Model, data and where the report is saved; a note when it is incomplete.
fn header_lines(shown: &ShownReport) -> Vec<Line<'static>> {
    let c = shown.file.common();
    let saved = match &shown.saved_to {
        Some(p) => format!("saved as {}", p.display()),
        None => "not saved (s)".into(),
    };
    let mut lines = vec![Line::from(Span::styled(
        format!(
            "{} · {} ({} ex.) · batch {} · {:.2} s · {saved}",
            crate::tui::app::short_model_name(&c.model.label),
            c.data
                .spec
                .file
                .file_name()
                .unwrap_or_default()
                .to_string_lossy(),
            c.data.n_examples,
            c.batch_size,
            c.seconds
        ),
        grey(),
    ))];
    if !c.complete {
        lines.push(Line::from(Span::styled(
            "incomplete: cancelled, only what finished before is shown",
            Style::default()
                .fg(Color::Yellow)
                .add_modifier(Modifier::BOLD),
        )));
    }
    lines
}

/// F(C), faithfulness, F(M); the knock-out table; minimality bars; the greedy sets.
fn circuit_lines(f: &CircuitFile, width: u16) -> Vec<Line<'static>> {
    let check = if (f.f_m - f.ld_contrast).abs() < 1e-4 {
        "= LD_contrast"
    } else {
        "≠ LD_contrast: check the engine"
    };
    let mut lines = vec![
        Line::from(format!(
            "LD_normal {}   LD_contrast {}",
            signed(f.ld_normal, 4),
            signed(f.ld_contrast, 4)
        )),
        Line::from(vec![
            Span::styled(format!("F(C) {}", signed(f.f_c, 4)), bold()),
            Span::styled(
                format!("   faithfulness {}", fixed(f.faithfulness, 4)),
                bold(),
            ),
            Span::raw(format!("   F(M) {} ({check})", signed(f.f_m, 4))),
        ]),
        Line::from(Span::styled(
            format!(
                "{:<28} {:>10} {:>10} {:>10}",
                "knock-out K", "F(C\\K)", "F(M\\K)", "gap"
            ),
            grey(),
        )),
    ];
    let sets = f.completeness.iter().map(|s| (s, String::new()));
    for (s, tag) in sets.chain(greedy_sets(f)) {
        lines.push(Line::from(format!(
            "{:<28} {:>10} {:>10} {:>10}{tag}",
            heads_text(&s.k, "+"),
            signed(s.f_c_minus_k, 4),
            signed(s.f_m_minus_k, 4),
            fixed(s.gap, 4)
        )));
    }
    if f.completeness.is_empty() {
        lines.push(Line::from(Span::styled("(no knock-out sets)", grey())));
    }
    lines.extend(minimality_lines(f, width));
    lines
}

/// The greedy search's sets, each distinct K once with the rollouts that found it.
fn greedy_sets(f: &CircuitFile) -> Vec<(&Completeness, String)> {
    let Some(g) = &f.greedy else { return vec![] };
    let mut out: Vec<(&Completeness, usize)> = Vec::new();
    for s in &g.sets {
        match out.iter_mut().find(|(x, _)| x.k == s.k) {
            Some((_, n)) => *n += 1,
            None => out.push((s, 1)),
        }
    }
    out.into_iter()
        .map(|(s, n)| (s, format!(" greedy ({n} of {} rollouts)", g.sets.len())))
        .collect()
}

/// One bar per head, scaled to the largest value, with the value printed after it.
fn minimality_lines(f: &CircuitFile, width: u16) -> Vec<Line<'static>> {
    if f.minimality.is_empty() {
        return vec![Line::from(Span::styled("minimality: not run (m)", grey()))];
    }
    let mut lines = vec![Line::from(Span::styled(
        "minimality |F(C\\K_v) − F(C\\(K_v ∪ {v}))| per head v (K_v = ∅)",
        grey(),
    ))];
    let max = f.minimality.iter().map(|m| m.value).fold(0.0, f64::max);
    let bar_w = (width as usize).saturating_sub(24).clamp(4, 40);
    for m in &f.minimality {
        let n = if max > 0.0 {
            ((m.value / max) * bar_w as f64).round() as usize
        } else {
            0
        };
        let (l, h) = m.head;
        lines.push(Line::from(vec![
            Span::raw(format!("{:<7}", format!("{l}.{h}"))),
            Span::styled("█".repeat(n), Style::default().fg(Color::Cyan)),
            Span::raw(" ".repeat(bar_w - n.min(bar_w))),
            Span::raw(format!(" {}", fixed(m.value, 4))),
        ]));
    }
    lines
}

/// The ablated heads and the plain contrast run, then the random groups' mean ± std.
fn ablation_lines(f: &AblationFile) -> Vec<Line<'static>> {
    let group = f
        .group
        .as_ref()
        .map_or(String::new(), |g| format!(" (group {g})"));
    let row = |name: String, v: [f64; 5]| {
        Line::from(format!(
            "{name:<28} {:>9} {:>8} {:>8} {:>8} {:>8}",
            signed(v[0], 4),
            fixed(v[1], 3),
            fixed(v[2], 3),
            fixed(v[3], 3),
            fixed(v[4], 3)
        ))
    };
    let run = |r: &crate::analysis::ablation::AblationRun| {
        [
            r.logit_diff,
            r.acc_normal_answer,
            r.acc_contrast_answer,
            r.acc_normal_answer_full_vocab,
            r.acc_contrast_answer_full_vocab,
        ]
    };
    let heads = [
        f.logit_diff,
        f.acc_normal_answer,
        f.acc_contrast_answer,
        f.acc_normal_answer_full_vocab,
        f.acc_contrast_answer_full_vocab,
    ];
    let mut lines = vec![
        Line::from(format!(
            "ablate {}{group}: their z on the contrast prompts from the normal run",
            heads_text(&f.heads, ",")
        )),
        Line::from(Span::styled(
            format!(
                "accuracy on contrast prompts: argmax over the {} (full: the whole vocabulary)",
                f.answer_tokens
            ),
            grey(),
        )),
        Line::from(Span::styled(
            format!(
                "{:<28} {:>9} {:>8} {:>8} {:>8} {:>8}",
                "", "LD", "normal", "contrast", "n full", "c full"
            ),
            grey(),
        )),
        row("none (contrast run)".into(), run(&f.baseline)),
        row(format!("ablate {}", heads_text(&f.heads, ",")), heads),
    ];
    lines.extend(random_lines(f, row));
    lines
}

/// Mean and population std of the random groups (or that there were none).
fn random_lines(
    f: &AblationFile,
    row: impl Fn(String, [f64; 5]) -> Line<'static>,
) -> Vec<Line<'static>> {
    let rg = &f.random_groups;
    if rg.n == 0 {
        return vec![Line::from(Span::styled(
            "no random groups (n sets them)",
            grey(),
        ))];
    }
    let stats = [
        &rg.logit_diff,
        &rg.acc_normal_answer,
        &rg.acc_contrast_answer,
        &rg.acc_normal_answer_full_vocab,
        &rg.acc_contrast_answer_full_vocab,
    ];
    let label = format!("random {} × {} (seed {})", rg.n, rg.size, rg.seed);
    vec![
        row(format!("{label} mean"), stats.map(|s| s.mean)),
        row("  ± std (population)".into(), stats.map(|s| s.std)),
    ]
}

/// Decimals of an FV grid: three while every |Δ| < 10 (a cell is 7 wide), fewer for larger.
pub fn fv_decimals(grid: &[Vec<f64>]) -> usize {
    let max = grid.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
    if max < 9.9995 {
        3
    } else if max < 99.995 {
        2
    } else {
        1
    }
}

/// One FV grid (the selected key) as coloured cells with their values, then its shifts.
fn fv_lines(f: &FvFile, panel: usize, color: ColorMode) -> Vec<Line<'static>> {
    let keys = f.keys();
    let i = panel.min(keys.len().saturating_sub(1));
    let Some(key) = keys.get(i) else {
        return vec![];
    };
    let grid = &f.delta[key];
    let range = f
        .delta
        .values()
        .flatten()
        .flatten()
        .fold(0.0f64, |m, v| m.max(v.abs()));
    let dec = fv_decimals(grid);
    let name = if key == "all" {
        "all heads".into()
    } else {
        format!("H{key}")
    };
    let mut lines = vec![
        Line::from(format!(
            "FV = mean contrast z @{}, added at {}; Δ of each digit's logit{}",
            f.fv_from,
            f.add_at,
            if f.centered { " (centred logits)" } else { "" }
        )),
        Line::from(vec![
            Span::styled(format!("◀ {name} ▶"), bold()),
            Span::styled(
                format!(
                    "  {}/{} (←→) · colour ±{} (largest |Δ|)",
                    i + 1,
                    keys.len(),
                    fixed(range, 3)
                ),
                grey(),
            ),
        ]),
    ];
    let mut head = vec![Span::styled(format!("{:<9}", "prompt"), grey())];
    head.extend(
        f.digits
            .iter()
            .map(|d| Span::styled(format!("{d:>7}"), grey())),
    );
    lines.push(Line::from(head));
    for (p, row) in f.naive_prompts.iter().zip(grid) {
        let mut spans = vec![Span::raw(format!("{:<9}", printable(p)))];
        for &v in row {
            let bg = diverging(v, range);
            let style = Style::default()
                .bg(color.rgb(bg))
                .fg(color.rgb(contrast_text(bg)));
            spans.push(Span::styled(format!("{:>7}", signed(v, dec)), style));
        }
        lines.push(Line::from(spans));
    }
    if f.shifts.is_some() {
        let parts: Vec<String> = shifts_of(grid)
            .into_iter()
            .map(|(s, v)| {
                format!(
                    "{}: {} ({})",
                    shift_key(s),
                    signed(v.mean, 2),
                    v.argmax_rows
                )
            })
            .collect();
        lines.push(Line::from(format!("shift {}", parts.join("  "))));
        lines.push(Line::from(Span::styled(
            "shift s: mean of Δ[i][i+s] (rows whose largest Δ is at i+s)",
            grey(),
        )));
    }
    lines
}

/// The gallery's detail text of an analysis file.
pub fn summary(f: &AnalysisFile) -> String {
    let c = f.common();
    let head = format!(
        "{} result · model {} · data {} ({} examples) · batch {} · created {}{}",
        f.kind(),
        c.model.label,
        c.data.spec.file.display(),
        c.data.n_examples,
        c.batch_size,
        c.created,
        if c.complete {
            ""
        } else {
            " · incomplete (cancelled)"
        }
    );
    let body = match f {
        AnalysisFile::Circuit(x) => format!(
            "{} groups · F(C) {} · faithfulness {} · {} knock-out sets · {} minimality values",
            x.groups.len(),
            signed(x.f_c, 4),
            fixed(x.faithfulness, 4),
            x.completeness.len(),
            x.minimality.len()
        ),
        AnalysisFile::Ablation(x) => format!(
            "heads {} · LD {} · contrast answer {} · {} random groups",
            heads_text(&x.heads, ","),
            signed(x.logit_diff, 4),
            fixed(x.acc_contrast_answer, 3),
            x.random_groups.n
        ),
        AnalysisFile::Fv(x) => format!(
            "heads {} · {} grids of {} prompts × {} digits",
            heads_text(&x.heads, ","),
            x.delta.len(),
            x.naive_prompts.len(),
            x.digits.len()
        ),
    };
    format!("{head}\n{body}\nEnter opens it on the circuit screen")
}
