//! Error text for people: an error and its causes on one line. Used by the command line (which
//! prints it after `error: `) and by the worker (whose errors the explorer shows in its status
//! line), so it lives below both.

/// Another wording of some errors: `Some(text)` replaces an error's own message (each piece of
/// the chain is offered in turn), `None` keeps it.
pub type Wording = fn(&(dyn std::error::Error + 'static)) -> Option<String>;

/// `a: b: c` on one line, whatever the error chain holds.
pub fn one_line_error(e: &anyhow::Error) -> String {
    one_line_error_worded(e, |_| None)
}

/// [`one_line_error`], each piece worded by `word` where it has its own words (the command line
/// names its flags this way).
pub fn one_line_error_worded(e: &anyhow::Error, word: Wording) -> String {
    let parts: Vec<String> = e
        .chain()
        .map(|c| crate::model::error::one_line(&word(c).unwrap_or_else(|| c.to_string())))
        .collect();
    // anyhow contexts often repeat their source's text: keep each piece once.
    let mut out: Vec<String> = Vec::new();
    for p in parts {
        if !out.iter().any(|o| o.contains(&p)) {
            out.push(p);
        }
    }
    out.join(": ")
}
