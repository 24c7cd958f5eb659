//! Error text for people: an error and its causes on one line. Used by the command line (which
//! prints it after `error: `) and by the worker (whose errors the explorer shows in its status
//! line), so it lives below both.

/// `a: b: c` on one line, whatever the error chain holds.
pub fn one_line_error(e: &anyhow::Error) -> String {
    let parts: Vec<String> = e
        .chain()
        .map(|c| crate::model::error::one_line(&c.to_string()))
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
