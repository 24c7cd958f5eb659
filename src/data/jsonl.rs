//! Reading JSONL files: one example per line, with errors that name the file, line and field.
//!
//! Two formats:
//! - the paper's: `{"demonstration": [[a, b], ...], "inference": [a, b]}` with integer operands
//!   (addition, base-k addition) or strings (cipher: `[source, target]`);
//! - generic prompt pairs: `{"normal_input": ..., "normal_output": ..., "contrast_input": ...,
//!   "contrast_output": ...}` (strings; other fields are ignored).
//!
//! Every non-blank line is one example. Blank lines at the end of a file are ignored; a blank
//! line between examples is an error (it would shift every later example's line number and
//! index). A `\r` before the newline is dropped.

use std::path::Path;

use serde_json::Value;

use super::{DataError, PromptPair, TaskKind};

/// The example lines of a file, in order (the i-th is on line i + 1).
pub(crate) struct ExampleLines {
    pub file: String,
    pub lines: Vec<String>,
}

pub(crate) fn read_lines(path: &Path) -> Result<ExampleLines, DataError> {
    let file = path.display().to_string();
    if path.is_dir() {
        return Err(DataError::Io {
            file,
            msg: "is a directory, expected a JSONL file".into(),
        });
    }
    let bytes = read_once(path).map_err(|e| DataError::io(path, e))?;
    let text = String::from_utf8(bytes).map_err(|e| DataError::Io {
        file: file.clone(),
        msg: format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ),
    })?;
    // Editors on Windows start UTF-8 files with a byte-order mark; it is not part of the JSON.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut lines: Vec<String> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l).to_string())
        .collect();
    while lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    if lines.is_empty() {
        return Err(DataError::Empty { file });
    }
    if let Some(i) = lines.iter().position(|l| l.trim().is_empty()) {
        return Err(DataError::Json {
            file,
            line: i + 1,
            msg: "empty line (every line must hold one example)".into(),
        });
    }
    Ok(ExampleLines { file, lines })
}

/// The bytes of `path`. A pipe (`--data <(cmd)`, `/dev/stdin`) can be read only once, but a
/// file is read more than once (task detection, then the examples): its bytes are kept for
/// the process. Regular files are read afresh.
fn read_once(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static PIPES: Mutex<Option<HashMap<std::path::PathBuf, Vec<u8>>>> = Mutex::new(None);
    if std::fs::metadata(path)?.is_file() {
        return std::fs::read(path);
    }
    let mut pipes = PIPES.lock().unwrap_or_else(|e| e.into_inner());
    let map = pipes.get_or_insert_with(HashMap::new);
    if let Some(b) = map.get(path) {
        return Ok(b.clone());
    }
    let b = std::fs::read(path)?;
    map.insert(path.to_path_buf(), b.clone());
    Ok(b)
}

/// How many examples a file holds (after checking it is not empty and has no blank lines
/// between examples).
pub fn count_examples(path: &Path) -> Result<usize, DataError> {
    Ok(read_lines(path)?.lines.len())
}

/// Parses one line as a JSON object.
pub(crate) fn parse_object(
    file: &str,
    line: usize,
    text: &str,
) -> Result<serde_json::Map<String, Value>, DataError> {
    let v: Value = serde_json::from_str(text).map_err(|e| {
        // serde's "at line 1 column 7" counts lines within this one line: keep the column.
        let full = crate::model::error::one_line(&e);
        let what = match full.rfind(" at line ") {
            Some(i) => &full[..i],
            None => full.as_str(),
        };
        DataError::Json {
            file: file.into(),
            line,
            msg: format!("{what} (column {})", e.column()),
        }
    })?;
    match v {
        Value::Object(m) => Ok(m),
        other => Err(DataError::Json {
            file: file.into(),
            line,
            msg: format!("expected a JSON object, found {}", describe(&other)),
        }),
    }
}

/// A short description of a JSON value for error messages: its type and (shortened) text.
pub(crate) fn describe(v: &Value) -> String {
    let kind = match v {
        Value::Null => return "null".into(),
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "the integer",
        Value::Number(_) => "the number",
        Value::String(_) => "the string",
        Value::Array(_) => "the list",
        Value::Object(_) => "an object",
    };
    let mut text = v.to_string();
    if text.chars().count() > 40 {
        text = text.chars().take(37).collect::<String>() + "...";
    }
    format!("{kind} {text}")
}

/// An operand of the paper's format.
pub(crate) trait Operand: Sized + Clone {
    /// What the task expects, for error messages.
    const EXPECTED: &'static str;
    fn from_json(v: &Value) -> Result<Self, String>;
}

impl Operand for i64 {
    const EXPECTED: &'static str = "an integer";
    fn from_json(v: &Value) -> Result<Self, String> {
        match v {
            Value::Number(n) => match n.as_i64() {
                Some(i) => Ok(i),
                None if n.is_u64() => Err(format!("the integer {n} is too large")),
                // Integers beyond 64 bits arrive as floats (10^30 as 1e30).
                None if n
                    .as_f64()
                    .is_some_and(|f| f.fract() == 0.0 && f.abs() >= 9.2e18) =>
                {
                    Err(format!(
                        "the integer {n} is too large (at most {})",
                        i64::MAX
                    ))
                }
                None => Err(format!("expected an integer, found {}", describe(v))),
            },
            _ => Err(format!("expected an integer, found {}", describe(v))),
        }
    }
}

impl Operand for String {
    const EXPECTED: &'static str = "a string";
    fn from_json(v: &Value) -> Result<Self, String> {
        match v {
            Value::String(s) => Ok(s.clone()),
            _ => Err(format!("expected a string, found {}", describe(v))),
        }
    }
}

/// One line of the paper's format: all demonstrations (the file has 32) and the test pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaperExample<T> {
    pub demonstration: Vec<(T, T)>,
    pub inference: (T, T),
}

fn pair<T: Operand>(file: &str, line: usize, field: &str, v: &Value) -> Result<(T, T), DataError> {
    let bad = |field: String, msg: String| DataError::BadField {
        file: file.into(),
        line,
        field,
        msg,
    };
    let items = match v {
        Value::Array(items) if items.len() == 2 => items,
        _ => {
            return Err(bad(
                field.into(),
                format!(
                    "expected a pair [a, b] of {}s, found {}",
                    T::EXPECTED
                        .trim_start_matches("an ")
                        .trim_start_matches("a "),
                    describe(v)
                ),
            ))
        }
    };
    let a = T::from_json(&items[0]).map_err(|m| bad(format!("{field}[0]"), m))?;
    let b = T::from_json(&items[1]).map_err(|m| bad(format!("{field}[1]"), m))?;
    Ok((a, b))
}

/// Parses a line of the paper's format, checking every demonstration and the test pair.
pub(crate) fn parse_paper<T: Operand>(
    file: &str,
    line: usize,
    text: &str,
    hint: &str,
) -> Result<PaperExample<T>, DataError> {
    let obj = parse_object(file, line, text)?;
    let get = |field: &str| {
        obj.get(field).ok_or_else(|| DataError::MissingField {
            file: file.into(),
            line,
            field: field.into(),
            hint: hint.into(),
        })
    };
    let demos = get("demonstration")?;
    let inference = get("inference")?;
    let demos = match demos {
        Value::Array(items) => items,
        other => {
            return Err(DataError::BadField {
                file: file.into(),
                line,
                field: "demonstration".into(),
                msg: format!("expected a list of [a, b] pairs, found {}", describe(other)),
            })
        }
    };
    let demonstration = demos
        .iter()
        .enumerate()
        .map(|(i, d)| pair::<T>(file, line, &format!("demonstration[{i}]"), d))
        .collect::<Result<Vec<_>, _>>()?;
    let inference = pair::<T>(file, line, "inference", inference)?;
    Ok(PaperExample {
        demonstration,
        inference,
    })
}

/// The four fields of a generic prompt pair.
pub(crate) const PAIR_FIELDS: [&str; 4] = [
    "normal_input",
    "normal_output",
    "contrast_input",
    "contrast_output",
];

/// Parses a line of the generic prompt-pair format.
pub(crate) fn parse_pair(file: &str, line: usize, text: &str) -> Result<PromptPair, DataError> {
    let obj = parse_object(file, line, text)?;
    let mut vals: Vec<String> = Vec::with_capacity(4);
    for field in PAIR_FIELDS {
        let v = obj.get(field).ok_or_else(|| DataError::MissingField {
            file: file.into(),
            line,
            field: field.into(),
            hint: " (a prompt-pair line needs normal_input, normal_output, contrast_input and \
                   contrast_output)"
                .into(),
        })?;
        let s = String::from_json(v).map_err(|msg| DataError::BadField {
            file: file.into(),
            line,
            field: field.into(),
            msg,
        })?;
        vals.push(s);
    }
    let mut it = vals.into_iter();
    Ok(PromptPair {
        normal_input: it.next().unwrap(),
        normal_output: it.next().unwrap(),
        contrast_input: it.next().unwrap(),
        contrast_output: it.next().unwrap(),
    })
}

/// The base in a file name like `addition_ndigits2_base7.jsonl` (the digits after the last
/// `base` at the end of the name, before the extension).
pub fn base_from_file_name(path: &Path) -> Option<u32> {
    let stem = path.file_stem()?.to_str()?;
    let at = stem.rfind("base")?;
    let digits = &stem[at + 4..];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

pub(crate) fn detect_task(path: &Path) -> Result<TaskKind, DataError> {
    let lines = read_lines(path)?;
    let obj = parse_object(&lines.file, 1, &lines.lines[0])?;
    if obj.contains_key("normal_input") {
        return Ok(TaskKind::Pairs);
    }
    let first_operand = obj
        .get("demonstration")
        .and_then(|d| d.as_array())
        .and_then(|d| d.first())
        .or_else(|| obj.get("inference"))
        .and_then(|p| p.as_array())
        .and_then(|p| p.first());
    if matches!(first_operand, Some(Value::String(_))) {
        return Ok(TaskKind::Cipher);
    }
    if base_from_file_name(path).is_some() {
        return Ok(TaskKind::Base);
    }
    Ok(TaskKind::Addition)
}

/// The Caesar shift of a cipher file, in -12..=13, if every `[source, target]` pair (all
/// demonstrations and test pairs) is the same shift of letters; `None` otherwise.
pub fn cipher_shift(path: &Path) -> Result<Option<i64>, DataError> {
    let lines = read_lines(path)?;
    let mut shift: Option<i64> = None;
    for (i, text) in lines.lines.iter().enumerate() {
        let ex = parse_paper::<String>(&lines.file, i + 1, text, "")?;
        for (src, tar) in ex
            .demonstration
            .iter()
            .chain(std::iter::once(&ex.inference))
        {
            if src.chars().count() != tar.chars().count() {
                return Ok(None);
            }
            for (a, b) in src.chars().zip(tar.chars()) {
                let k = match (a, b) {
                    (a, b) if a.is_ascii_lowercase() && b.is_ascii_lowercase() => {
                        (b as i64 - a as i64).rem_euclid(26)
                    }
                    (a, b) if a.is_ascii_uppercase() && b.is_ascii_uppercase() => {
                        (b as i64 - a as i64).rem_euclid(26)
                    }
                    _ => return Ok(None),
                };
                match shift {
                    None => shift = Some(k),
                    Some(s) if s != k => return Ok(None),
                    _ => {}
                }
            }
        }
    }
    Ok(shift.map(|k| if k > 13 { k - 26 } else { k }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_in_file_names() {
        let b = |s: &str| base_from_file_name(Path::new(s));
        assert_eq!(b("data/addition_ndigits2_base7.jsonl"), Some(7));
        assert_eq!(b("x_base10.jsonl"), Some(10));
        assert_eq!(b("addition_nmax9_offset1.jsonl"), None);
        assert_eq!(b("database.jsonl"), None);
        assert_eq!(b("base_x.jsonl"), None);
    }

    #[test]
    fn operands() {
        let p = |s: &str| parse_paper::<i64>("f", 2, s, "");
        let ok = p(r#"{"demonstration": [[1, 2], [3, -4]], "inference": [5, 6]}"#).unwrap();
        assert_eq!(ok.demonstration, vec![(1, 2), (3, -4)]);
        assert_eq!(ok.inference, (5, 6));
        let e = p(r#"{"demonstration": [[1, 2], [3, 4.5]], "inference": [5, 6]}"#)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "f:2: field `demonstration[1][1]`: expected an integer, found the number 4.5"
        );
        let e = p(r#"{"demonstration": [[1, 2]], "inference": ["5", 6]}"#)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "f:2: field `inference[0]`: expected an integer, found the string \"5\""
        );
        let e = p(r#"{"demonstration": [[1, 2, 3]], "inference": [5, 6]}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`demonstration[0]`: expected a pair [a, b] of integers"),
            "{e}"
        );
        let e = p(r#"{"demonstration": 3, "inference": [5, 6]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`demonstration`: expected a list"), "{e}");
        let e = p(r#"[1, 2]"#).unwrap_err().to_string();
        assert!(
            e.contains("f:2: invalid JSON: expected a JSON object"),
            "{e}"
        );
        let e = p(r#"{"demonstration": [[1, 99999999999999999999]], "inference": [5, 6]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`demonstration[0][1]`"), "{e}");
    }
}
