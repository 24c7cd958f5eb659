//! Prompt pairs, built exactly like the paper's code.
//!
//! - Addition (`data_utils.process_dataset`): the first `shots` demonstrations as `a+b=c`
//!   lines (contrast: `a+b={c+offset}`), joined by `\n`, then `\n` (only if there are shots) and
//!   the test line `a+b=`. Answers `str(a+b)` and `str(a+b+offset)`.
//! - Base-k addition (`4_task_generalization/base_k_addition.py`): with `x_b` the base-k digit
//!   string of x and `x10 = int(x_b)` the same digits read as a decimal number, normal lines are
//!   `{a10}+{b10}={a10+b10}` and contrast lines `{a_b}+{b_b}={(a+b)_b}`; answers
//!   `str(a10+b10)` and `(a+b)_b`.
//! - Caesar cipher (`4_task_generalization/cipher.py`): every string `s` becomes
//!   `" " + " ".join(s)` (a space before each letter); normal lines are `{a} ->{a}`, contrast
//!   lines `{a} ->{b}` for a demonstration `[a, b]`; the test line is `{a} ->`, with answers
//!   `{a}` and `{b}` (each starting with a space).
//! - Generic pairs are taken as they are.

use super::jsonl::{parse_pair, parse_paper, read_lines, PaperExample};
use super::{DataError, DataSpec, PromptPair, TaskKind};

/// Joins demonstration lines and the test line the way the paper does: no `\n` before the
/// test line when there are no demonstrations.
fn join(lines: Vec<String>, test: String) -> String {
    let mut s = lines.join("\n");
    if !lines.is_empty() {
        s.push('\n');
    }
    s.push_str(&test);
    s
}

/// Off-by-k addition from the first `shots` demonstrations (`shots` ≤ `demos.len()`).
pub fn addition_pair(
    demos: &[(i64, i64)],
    test: (i64, i64),
    shots: usize,
    offset: i64,
) -> PromptPair {
    let k = offset as i128;
    let sum = |(a, b): (i64, i64)| a as i128 + b as i128;
    let normal = demos[..shots]
        .iter()
        .map(|&(a, b)| format!("{a}+{b}={}", sum((a, b))))
        .collect();
    let contrast = demos[..shots]
        .iter()
        .map(|&(a, b)| format!("{a}+{b}={}", sum((a, b)) + k))
        .collect();
    let (ta, tb) = test;
    PromptPair {
        normal_input: join(normal, format!("{ta}+{tb}=")),
        normal_output: sum(test).to_string(),
        contrast_input: join(contrast, format!("{ta}+{tb}=")),
        contrast_output: (sum(test) + k).to_string(),
    }
}

/// The digits of `n` in base `base` (`to_base` in the paper's code; "0" for 0).
pub fn to_base(mut n: u64, base: u32) -> String {
    if n == 0 {
        return "0".into();
    }
    let mut digits = Vec::new();
    while n > 0 {
        digits.push(char::from_digit((n % base as u64) as u32, base).unwrap());
        n /= base as u64;
    }
    digits.iter().rev().collect()
}

/// Base-k addition from the first `shots` demonstrations. Fails on negative operands (the
/// paper's `to_base` loops forever on them) and on numbers too large to read as decimal.
pub fn base_pair(
    demos: &[(i64, i64)],
    test: (i64, i64),
    shots: usize,
    base: u32,
) -> Result<PromptPair, String> {
    assert!((2..=10).contains(&base), "base must be in 2..=10");
    // (a_b, b_b, c_b, a10, b10)
    let convert = |(a, b): (i64, i64)| -> Result<(String, String, String, u128, u128), String> {
        if a < 0 || b < 0 {
            return Err(format!(
                "base-k addition needs non-negative operands, found [{a}, {b}]"
            ));
        }
        let (ab, bb) = (to_base(a as u64, base), to_base(b as u64, base));
        let cb = to_base(a as u64 + b as u64, base);
        let dec = |s: &str| {
            s.parse::<u128>()
                .map_err(|_| format!("the base-{base} digits {s} are too long to read as decimal"))
        };
        let (a10, b10) = (dec(&ab)?, dec(&bb)?);
        Ok((ab, bb, cb, a10, b10))
    };
    let mut normal = Vec::with_capacity(shots);
    let mut contrast = Vec::with_capacity(shots);
    for &d in &demos[..shots] {
        let (ab, bb, cb, a10, b10) = convert(d)?;
        normal.push(format!("{a10}+{b10}={}", a10 + b10));
        contrast.push(format!("{ab}+{bb}={cb}"));
    }
    let (ab, bb, cb, a10, b10) = convert(test)?;
    Ok(PromptPair {
        normal_input: join(normal, format!("{a10}+{b10}=")),
        normal_output: (a10 + b10).to_string(),
        contrast_input: join(contrast, format!("{ab}+{bb}=")),
        contrast_output: cb,
    })
}

/// `" " + " ".join(s)`: a space before every character.
fn spaced(s: &str) -> String {
    let mut out = String::with_capacity(2 * s.len() + 1);
    out.push(' ');
    let chars: Vec<String> = s.chars().map(String::from).collect();
    out.push_str(&chars.join(" "));
    out
}

/// Caesar cipher from the first `shots` `[source, target]` demonstrations.
pub fn cipher_pair(
    demos: &[(String, String)],
    test: &(String, String),
    shots: usize,
) -> PromptPair {
    let normal = demos[..shots]
        .iter()
        .map(|(a, _)| format!("{} ->{}", spaced(a), spaced(a)))
        .collect();
    let contrast = demos[..shots]
        .iter()
        .map(|(a, b)| format!("{} ->{}", spaced(a), spaced(b)))
        .collect();
    let (a, b) = (spaced(&test.0), spaced(&test.1));
    PromptPair {
        normal_input: join(normal, format!("{a} ->")),
        normal_output: a.clone(),
        contrast_input: join(contrast, format!("{a} ->")),
        contrast_output: b,
    }
}

/// Byte ranges of each demonstration's answer in a prompt built by this module (the paper's
/// `c` positions): every line but the last (the test line) is a demonstration; its answer is
/// what follows the line's last `=` (addition, base-k) or its `->` (cipher). `None` for generic
/// pairs, whose prompts this module did not build.
pub fn demo_answer_spans(task: TaskKind, input: &str) -> Option<Vec<std::ops::Range<usize>>> {
    let sep = match task {
        TaskKind::Addition | TaskKind::Base => "=",
        TaskKind::Cipher => "->",
        TaskKind::Pairs => return None,
    };
    let mut spans = Vec::new();
    let mut start = 0;
    let lines: Vec<&str> = input.split('\n').collect();
    for (i, line) in lines.iter().enumerate() {
        if i + 1 < lines.len() {
            let at = line.rfind(sep)? + sep.len();
            spans.push(start + at..start + line.len());
        }
        start += line.len() + 1;
    }
    Some(spans)
}

fn check_shots<T>(
    file: &str,
    line: usize,
    ex: &PaperExample<T>,
    shots: usize,
) -> Result<(), DataError> {
    if ex.demonstration.len() < shots {
        return Err(DataError::TooFewDemos {
            file: file.into(),
            line,
            have: ex.demonstration.len(),
            shots,
        });
    }
    Ok(())
}

const PAPER_HINT: &str =
    " (the paper's format: {\"demonstration\": [[a, b], ...], \"inference\": [a, b]})";

/// Reads `spec.file` and builds its prompt pairs (the first `spec.examples`, in file order).
///
/// Errors name the file, the 1-based line and the field: unreadable or empty file, invalid
/// JSON, a missing field, operands of the wrong type, fewer demonstrations than
/// `spec.shots`, `spec.examples` larger than the file, a base that cannot be found.
pub fn load_pairs(spec: &DataSpec) -> Result<Vec<PromptPair>, DataError> {
    if spec.examples == Some(0) {
        return Err(DataError::NoExamples);
    }
    let base = match spec.task {
        TaskKind::Base => Some(spec.resolved_base()?),
        _ => None,
    };
    let lines = read_lines(&spec.file)?;
    let file = lines.file.as_str();
    let n = match spec.examples {
        Some(n) if n > lines.lines.len() => {
            return Err(DataError::TooManyExamples {
                file: file.into(),
                requested: n,
                available: lines.lines.len(),
            })
        }
        Some(n) => n,
        None => lines.lines.len(),
    };
    let mut out = Vec::with_capacity(n);
    for (i, text) in lines.lines[..n].iter().enumerate() {
        let line = i + 1;
        let pair = match spec.task {
            TaskKind::Pairs => parse_pair(file, line, text)?,
            TaskKind::Addition => {
                let ex = parse_paper::<i64>(file, line, text, PAPER_HINT)?;
                check_shots(file, line, &ex, spec.shots)?;
                addition_pair(&ex.demonstration, ex.inference, spec.shots, spec.offset)
            }
            TaskKind::Base => {
                let ex = parse_paper::<i64>(file, line, text, PAPER_HINT)?;
                check_shots(file, line, &ex, spec.shots)?;
                base_pair(&ex.demonstration, ex.inference, spec.shots, base.unwrap()).map_err(
                    |msg| DataError::BadField {
                        file: file.into(),
                        line,
                        field: "demonstration".into(),
                        msg,
                    },
                )?
            }
            TaskKind::Cipher => {
                let ex = parse_paper::<String>(file, line, text, PAPER_HINT)?;
                check_shots(file, line, &ex, spec.shots)?;
                cipher_pair(&ex.demonstration, &ex.inference, spec.shots)
            }
        };
        out.push(pair);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addition_matches_the_paper_example() {
        // setting1, nmax 9, offset 1, first line, 4 shots (ALGORITHMS.md §1.1).
        let demos = [(4, 3), (3, 2), (6, 0), (3, 3), (9, 9)];
        let p = addition_pair(&demos, (1, 0), 4, 1);
        assert_eq!(p.normal_input, "4+3=7\n3+2=5\n6+0=6\n3+3=6\n1+0=");
        assert_eq!(p.normal_output, "1");
        assert_eq!(p.contrast_input, "4+3=8\n3+2=6\n6+0=7\n3+3=7\n1+0=");
        assert_eq!(p.contrast_output, "2");
    }

    #[test]
    fn addition_zero_shots_and_negative_offsets() {
        let p = addition_pair(&[(1, 2)], (3, 4), 0, -2);
        assert_eq!(p.normal_input, "3+4=");
        assert_eq!(p.contrast_input, "3+4=");
        assert_eq!(
            (p.normal_output.as_str(), p.contrast_output.as_str()),
            ("7", "5")
        );
        let p = addition_pair(&[(10, 25)], (50, 49), 1, -10);
        assert_eq!(p.normal_input, "10+25=35\n50+49=");
        assert_eq!(p.contrast_input, "10+25=25\n50+49=");
        assert_eq!(
            (p.normal_output.as_str(), p.contrast_output.as_str()),
            ("99", "89")
        );
    }

    #[test]
    fn base_k() {
        assert_eq!(to_base(0, 7), "0");
        assert_eq!(to_base(24, 7), "33");
        assert_eq!(to_base(215, 6), "555");
        // 24 = 33₇, 18 = 24₇, 42 = 60₇; 11 = 14₇, 15 = 21₇, 26 = 35₇.
        let p = base_pair(&[(24, 18), (11, 15)], (23, 24), 2, 7).unwrap();
        assert_eq!(p.normal_input, "33+24=57\n14+21=35\n32+33=");
        assert_eq!(p.normal_output, "65");
        assert_eq!(p.contrast_input, "33+24=60\n14+21=35\n32+33=");
        assert_eq!(p.contrast_output, "65");
        let p = base_pair(&[(24, 18)], (26, 22), 1, 7).unwrap();
        // 26 = 35₇, 22 = 31₇, 48 = 66₇.
        assert_eq!(p.normal_input, "33+24=57\n35+31=");
        assert_eq!(
            (p.normal_output.as_str(), p.contrast_output.as_str()),
            ("66", "66")
        );
        let p = base_pair(&[], (20, 20), 0, 7).unwrap();
        // 20 = 26₇, 40 = 55₇; decimal 26+26 = 52.
        assert_eq!(p.contrast_input, "26+26=");
        assert_eq!(
            (p.normal_output.as_str(), p.contrast_output.as_str()),
            ("52", "55")
        );
        assert!(base_pair(&[(-1, 2)], (1, 1), 1, 7).is_err());
    }

    #[test]
    fn demo_answer_spans_of_built_prompts() {
        let p = addition_pair(&[(4, 3), (13, 2)], (1, 0), 2, 1);
        let spans = demo_answer_spans(TaskKind::Addition, &p.contrast_input).unwrap();
        let texts: Vec<&str> = spans.iter().map(|r| &p.contrast_input[r.clone()]).collect();
        assert_eq!(texts, ["8", "16"]);
        let demos = vec![("qa".to_string(), "sc".to_string())];
        let p = cipher_pair(&demos, &("k".into(), "m".into()), 1);
        let spans = demo_answer_spans(TaskKind::Cipher, &p.contrast_input).unwrap();
        assert_eq!(&p.contrast_input[spans[0].clone()], " s c");
        assert!(demo_answer_spans(TaskKind::Addition, "1+2=")
            .unwrap()
            .is_empty());
        assert_eq!(demo_answer_spans(TaskKind::Pairs, "x"), None);
    }

    #[test]
    fn cipher() {
        let demos = vec![
            ("q".to_string(), "s".to_string()),
            ("t".to_string(), "v".to_string()),
        ];
        let p = cipher_pair(&demos, &("k".into(), "m".into()), 2);
        assert_eq!(p.normal_input, " q -> q\n t -> t\n k ->");
        assert_eq!(p.normal_output, " k");
        assert_eq!(p.contrast_input, " q -> s\n t -> v\n k ->");
        assert_eq!(p.contrast_output, " m");
        let demos = vec![("qahf".to_string(), "scjh".to_string())];
        let p = cipher_pair(&demos, &("ab".into(), "cd".into()), 1);
        assert_eq!(p.normal_input, " q a h f -> q a h f\n a b ->");
        assert_eq!(p.contrast_input, " q a h f -> s c j h\n a b ->");
        assert_eq!(
            (p.normal_output.as_str(), p.contrast_output.as_str()),
            (" a b", " c d")
        );
        let p = cipher_pair(&demos, &("ab".into(), "cd".into()), 0);
        assert_eq!(p.normal_input, " a b ->");
    }
}
