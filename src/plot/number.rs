//! Numbers as text, for the explorer and the figures alike: at a fixed precision and never a
//! negative zero. Rust prints `-0.0001` at two decimals as `-0.00`, which reads as a small
//! negative effect where the value rounds to nothing; every number the explorer or a figure
//! prints goes through here so that none can.

/// `x` with `decimals` decimals; a value that rounds to zero prints without a sign (`0.00`).
pub fn fixed(x: f64, decimals: usize) -> String {
    let s = format!("{x:.decimals$}");
    match s.strip_prefix('-') {
        Some(rest) if rounds_to_zero(rest) => rest.to_string(),
        _ => s,
    }
}

/// `x` with `decimals` decimals and its sign always (`+1.50`, `-0.25`); a value that rounds to
/// zero prints `+0.00`, as a positive one that rounds to zero does.
pub fn signed(x: f64, decimals: usize) -> String {
    let s = fixed(x, decimals);
    if s.starts_with('-') || s.starts_with("NaN") || s.starts_with("inf") {
        s
    } else {
        format!("+{s}")
    }
}

/// Whether the digits of a formatted number (sign removed) are all zeros.
fn rounds_to_zero(digits: &str) -> bool {
    digits.chars().all(|c| c == '0' || c == '.')
}
