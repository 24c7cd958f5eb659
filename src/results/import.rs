//! The paper's own result files (`../shared/paper/results/<model>/<name>.json`): a `matrix` of r
//! [layer][head] from 100 examples, setting1, 4 shots, offset +1, batch 4, begin_layer 0.

use std::path::Path;

use serde_json::Value;

use super::{ResultsError, RunRecord, FORMAT, FORMAT_VERSION};
use crate::model::HeadInput;
use crate::patching::{Receiver, ResidKind};

pub fn paper_result(v: &Value, path: &Path) -> Result<RunRecord, ResultsError> {
    let bad = |msg: String| ResultsError::Format {
        path: path.display().to_string(),
        msg,
    };
    let matrix = v["matrix"]
        .as_array()
        .ok_or_else(|| bad("field `matrix`: expected a list of rows".into()))?;
    let mut rows: Vec<Vec<f64>> = Vec::with_capacity(matrix.len());
    for (l, row) in matrix.iter().enumerate() {
        let row = row
            .as_array()
            .ok_or_else(|| bad(format!("field `matrix[{l}]`: expected a list of numbers")))?;
        let vals = row
            .iter()
            .enumerate()
            .map(|(h, x)| {
                x.as_f64().ok_or_else(|| {
                    bad(format!(
                        "field `matrix[{l}][{h}]`: expected a number, got {x}"
                    ))
                })
            })
            .collect::<Result<Vec<f64>, _>>()?;
        rows.push(vals);
    }
    let n_layers = rows.len();
    let n_heads = rows.first().map_or(0, |r| r.len());
    if n_layers == 0 || n_heads == 0 || rows.iter().any(|r| r.len() != n_heads) {
        return Err(bad(
            "field `matrix`: expected a non-empty rectangular [layer][head] matrix".into(),
        ));
    }
    let rv = &v["receiver"];
    let get_usize = |k: &str| -> Result<usize, ResultsError> {
        rv[k].as_u64().map(|x| x as usize).ok_or_else(|| {
            bad(format!(
                "field `receiver.{k}`: expected a non-negative integer"
            ))
        })
    };
    let receiver = match rv["type"].as_str() {
        Some("head") => Receiver::head(
            get_usize("layer")?,
            get_usize("head")?,
            HeadInput::parse(rv["input"].as_str().unwrap_or("v"))
                .ok_or_else(|| bad("field `receiver.input`: expected q, k or v".into()))?,
        ),
        Some(t) => Receiver::Resid {
            kind: ResidKind::parse(t)
                .ok_or_else(|| bad(format!("field `receiver.type`: unknown receiver {t:?}")))?,
            layers: vec![get_usize("layer")?],
        },
        None => return Err(bad("field `receiver.type`: missing".into())),
    };
    receiver
        .validate(n_layers, n_heads)
        .map_err(|e| bad(format!("field `receiver`: {e}")))?;
    // The paper masks head receivers from their own layer on; those rows carry no result.
    let computed: Vec<usize> = (0..n_layers)
        .filter(|&l| receiver.reachable_from(l))
        .collect();
    let relative = (0..n_layers)
        .map(|l| computed.contains(&l).then(|| rows[l].clone()))
        .collect();
    let model = v["model"].as_str().unwrap_or("unknown model");
    let group = rv["group"]
        .as_str()
        .map(|g| format!(", receiver group {g}"))
        .unwrap_or_default();
    Ok(RunRecord {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        headhunt_version: env!("CARGO_PKG_VERSION").into(),
        created: String::new(),
        complete: true,
        receiver_label: receiver.label(),
        receiver,
        begin_layer: 0,
        algorithm: None,
        batch_size: Some(4),
        model: None,
        data: None,
        n_layers,
        n_heads,
        metric: Default::default(),
        normal_logit_diff: None,
        contrast_logit_diff: None,
        baseline_accuracy: None,
        warnings: Vec::new(),
        rows_computed: computed,
        relative,
        patched_logit_diff: None,
        timing: None,
        groups: Vec::new(),
        selected: Vec::new(),
        source: Some(format!(
            "paper result {} ({})",
            path.display(),
            v["file"].as_str().unwrap_or("?")
        )),
        note: Some(format!(
            "imported from the paper: {model}, 100 examples, setting1, 4 shots, offset +1, batch 4{group}"
        )),
        sender_positions: None,
        receiver_positions: None,
        relative_ci: None,
        bootstrap: None,
        per_example: None,
        shard: None,
        senders: Default::default(),
        mlp_relative: None,
        mlp_patched_logit_diff: None,
        mlp_relative_ci: None,
        mlp_per_example: None,
    })
}
