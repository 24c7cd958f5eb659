//! The command line's words for the core's typed errors: where the core names a field of the
//! request ("batch size", "receiver"), the CLI names the flag that sets it, so that a message
//! says what to type. Errors without a flag keep the core's own message.

use std::error::Error;

use crate::analysis::AnalysisError;
use crate::data::DataError;
use crate::model::ModelError;
use crate::patching::{PatchError, SpecError, RECEIVER_SYNTAX};
use crate::results::ResultsError;

/// The flag-named message of `e`, when the CLI words it differently from the core.
pub fn flag_words(e: &(dyn Error + 'static)) -> Option<String> {
    if let Some(PatchError::Spec(s)) = e.downcast_ref::<PatchError>() {
        return spec(s);
    }
    if let Some(s) = e.downcast_ref::<SpecError>() {
        return spec(s);
    }
    if let Some(d) = e.downcast_ref::<DataError>() {
        return data(d);
    }
    if let Some(m) = e.downcast_ref::<ModelError>() {
        return model(m);
    }
    if let Some(a) = e.downcast_ref::<AnalysisError>() {
        return analysis(a);
    }
    if let Some(m) = e.downcast_ref::<crate::patching::memory::MemoryError>() {
        return Some(memory(m, false));
    }
    if let Some(ResultsError::Exists { path }) = e.downcast_ref::<ResultsError>() {
        return Some(format!(
            "{path} already exists; pass --force to overwrite it"
        ));
    }
    None
}

/// A request error with its flag: --batch-size, --begin-layer, --examples, --receiver.
fn spec(e: &SpecError) -> Option<String> {
    Some(match e {
        SpecError::BatchSize { value } => format!("--batch-size {value}: expected at least 1"),
        SpecError::BeginLayer { begin, max } => {
            format!("--begin-layer {begin} is after the receiver's last layer {max}: no senders")
        }
        SpecError::NoExamples => "no examples to patch (--examples 0?)".into(),
        SpecError::ReceiverSyntax { text, why } => {
            format!("--receiver {text:?}: {why} (expected {RECEIVER_SYNTAX})")
        }
        SpecError::ReceiverKinds { first, second } => {
            format!("--receiver: cannot mix {first} and {second} receivers")
        }
        SpecError::ReceiverMixed => {
            "--receiver: cannot mix residual-stream and head receivers in one run".into()
        }
        SpecError::NoReceiver => "no --receiver given".into(),
        SpecError::ReceiverEmpty { .. }
        | SpecError::ReceiverLayer { .. }
        | SpecError::ReceiverHead { .. } => return None,
    })
}

/// A data error with its flag: --shots, --examples, --base, --offset, --answer-token,
/// --skip-mismatched. The long messages swap the core's field words for the flag in place.
fn data(e: &DataError) -> Option<String> {
    let core = e.to_string();
    Some(match e {
        DataError::TooFewDemos { shots, .. } => swap_last(
            &core,
            &format!("fewer than shots {shots}"),
            &format!("fewer than --shots {shots}"),
        ),
        DataError::TooManyExamples {
            file,
            requested,
            available,
        } => format!(
            "{file}: --examples {requested} is more than the {available} example(s) in the file"
        ),
        DataError::LengthMismatch { .. } => swap_last(
            &core,
            "(skip mismatched examples to go on without them)",
            "(pass --skip-mismatched to skip them)",
        ),
        DataError::NoExamples => "--examples 0: use at least one example".into(),
        DataError::GenParams { params, why } => {
            format!("{}: {why}", crate::data::params_text(params, "--"))
        }
        DataError::BaseNotApplicable { task } => {
            format!("--base applies to base-k addition only (the task is {task})")
        }
        DataError::BaseMissing { .. } => swap_last(&core, "needs a base B", "needs --base B"),
        DataError::BaseRange { base } => {
            format!("--base {base}: the base must be between 2 and 10")
        }
        DataError::OffsetMismatch {
            file,
            offset,
            shift,
        } => format!(
            "{file}: --offset {offset} does not match the file's Caesar shift {shift:+} (cipher \
             prompts take the contrast from the file's targets)"
        ),
        DataError::AnswerNotPrefix { field, .. } => {
            let head = format!("field `{field}`: answer token first:");
            let s = swap_last(
                &core,
                &head,
                &format!("field `{field}`: --answer-token first:"),
            );
            swap_last(&s, "; use answer token last", "; use --answer-token last")
        }
        _ => return None,
    })
}

/// A model error with its flag: --model, --tokenizer.
fn model(e: &ModelError) -> Option<String> {
    Some(match e {
        ModelError::ModelIsFile { spec } => format!(
            "{spec} is a file; --model takes a model directory, a .gguf file or a hub id (org/name)"
        ),
        ModelError::NoTokenizer { dir } => format!(
            "{dir}: tokenizer.json not found in the model directory (pass --tokenizer FILE)"
        ),
        ModelError::GgufTokenizer { file, msg } => {
            format!("{file}: cannot load tokenizer ({msg}; pass --tokenizer tokenizer.json)")
        }
        ModelError::UnknownConfigKey { .. } => {
            format!("{e}; pass --allow-unknown-config-keys to run anyway (recorded in the result)")
        }
        _ => return None,
    })
}

/// An analysis count with its flag: --random-groups, --greedy-rollouts, --greedy-iterations,
/// --greedy-samples (the core names them "random groups", "greedy rollouts", ...).
fn analysis(e: &AnalysisError) -> Option<String> {
    let AnalysisError::Count {
        field,
        value,
        min,
        max,
        why,
    } = e
    else {
        return None;
    };
    let flag = field.replace(' ', "-");
    Some(format!("--{flag} {value}: expected {min} to {max} ({why})"))
}

/// `text` with the last `from` replaced by `to` (the core's field words sit at a fixed place of
/// its message, after any file name).
fn swap_last(text: &str, from: &str, to: &str) -> String {
    match text.rfind(from) {
        Some(i) => format!("{}{to}{}", &text[..i], &text[i + from.len()..]),
        None => text.to_string(),
    }
}

/// A sweep that would not fit, with the flag that would make it fit; `capped`: the memory it
/// was held to is `--max-memory`'s.
pub fn memory(e: &crate::patching::memory::MemoryError, capped: bool) -> String {
    use crate::patching::memory::Fit;
    let est = &e.estimate;
    let fit = match e.fit {
        Some(Fit::BatchSize(b)) => format!("--batch-size {b} would need about {}", size(e.fit_peak)),
        Some(Fit::ChunkRows(c)) => format!("--chunk-rows {c} would need about {}", size(e.fit_peak)),
        Some(Fit::Devices(n)) => format!(
            "the layers over {n} devices would need about {} each (--device with {n} GPUs and --place layers)",
            size(e.fit_peak)
        ),
        None => "no --batch-size or --chunk-rows fits: use a device with more memory".into(),
    };
    let held = if capped {
        "allowed by --max-memory"
    } else {
        "free"
    };
    format!(
        "{}: the sweep needs about {} at its peak (weights {}, caches {}, working set {}, runtime {}), {} {held}; {fit}",
        e.device,
        size(est.peak()),
        size(est.weights),
        size(est.caches),
        size(est.working),
        size(est.runtime),
        size(e.available)
    )
}

/// Bytes in the unit that shows them: KiB below a MiB, MiB below a GiB (one decimal), GiB
/// (two); never a rounded "0.00 GiB" for something that is not nothing.
pub fn size(bytes: u64) -> String {
    let b = bytes as f64;
    if bytes < 1 << 20 {
        format!("{:.1} KiB", b / 1024.0)
    } else if bytes < 1 << 30 {
        format!("{:.1} MiB", b / (1u64 << 20) as f64)
    } else {
        format!("{:.2} GiB", b / (1u64 << 30) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli_text(e: impl Into<anyhow::Error>) -> String {
        crate::error::one_line_error_worded(&e.into(), flag_words)
    }

    #[test]
    fn request_errors_name_their_flags() {
        let e = crate::patching::Receiver::parse_one("2.1.x").unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("receiver \"2.1.x\": input must be q, k or v (expected {RECEIVER_SYNTAX})")
        );
        assert_eq!(
            cli_text(e),
            format!("--receiver \"2.1.x\": input must be q, k or v (expected {RECEIVER_SYNTAX})")
        );
        let e = PatchError::from(SpecError::BatchSize { value: 0 });
        assert_eq!(e.to_string(), "batch size 0: expected at least 1");
        assert_eq!(cli_text(e), "--batch-size 0: expected at least 1");
        let e = anyhow::Error::from(PatchError::from(SpecError::BeginLayer { begin: 3, max: 2 }))
            .context("patching");
        assert_eq!(
            cli_text(e),
            "patching: --begin-layer 3 is after the receiver's last layer 2: no senders"
        );
        let e = ResultsError::Exists {
            path: "r.json".into(),
        };
        assert_eq!(
            cli_text(e),
            "r.json already exists; pass --force to overwrite it"
        );
        let e = crate::analysis::ablation::check_random_groups(1 << 40, 1).unwrap_err();
        assert!(
            cli_text(e).starts_with("--random-groups 1099511627776: expected 0 to 10000 ("),
            "the count names its flag"
        );
        let g = crate::analysis::circuit::GreedyOptions {
            rollouts: 0,
            ..Default::default()
        };
        assert!(
            cli_text(g.validate().unwrap_err()).starts_with("--greedy-rollouts 0: expected 1 to")
        );
        // Errors without a flag keep the core's words.
        let e = SpecError::ReceiverHead {
            receiver: "3.16.q".into(),
            n_heads: 16,
        };
        assert_eq!(cli_text(e.clone()), e.to_string());
    }
}
