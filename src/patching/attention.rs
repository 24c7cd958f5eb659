//! Attention patterns of chosen heads, averaged over prompts: shared by the worker (TUI) and
//! `headhunt attention`.

use candle_core::DType;

use crate::data::TokenizedPair;
use crate::model::{Capture, HookName, HookPoint, Hooks, Model, RunOptions, Start};

use super::PatchError;

/// Which prompts' attention to read: the normal or the contrast ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RunKind {
    Normal,
    #[default]
    Contrast,
}

impl RunKind {
    pub const ALL: [RunKind; 2] = [RunKind::Normal, RunKind::Contrast];

    pub fn name(self) -> &'static str {
        match self {
            RunKind::Normal => "normal",
            RunKind::Contrast => "contrast",
        }
    }
}

/// Which examples: the mean over the first n of the first example's token length (a mean needs
/// equal lengths), or example i alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptChoice {
    Mean(usize),
    One(usize),
}

/// The token rows of the chosen prompts.
pub fn prompt_rows(
    pairs: &[TokenizedPair],
    run: RunKind,
    choice: PromptChoice,
) -> Result<Vec<Vec<u32>>, PatchError> {
    let first = pairs
        .first()
        .ok_or_else(|| PatchError::Invalid("no examples".into()))?;
    let chosen: Vec<&TokenizedPair> = match choice {
        PromptChoice::One(i) => vec![pairs.get(i).ok_or_else(|| {
            PatchError::Invalid(format!("example {i} out of range (0..{})", pairs.len()))
        })?],
        PromptChoice::Mean(n) => pairs
            .iter()
            .filter(|p| p.len() == first.len())
            .take(n.max(1))
            .collect(),
    };
    Ok(chosen
        .iter()
        .map(|p| match run {
            RunKind::Normal => p.normal_ids.clone(),
            RunKind::Contrast => p.contrast_ids.clone(),
        })
        .collect())
}

/// Mean attention pattern [query, key] of each head `(layer, head)` over `rows` (token ids, all
/// of one length), in the order given. Runs the model only up to the last layer asked for.
pub fn mean_patterns(
    model: &Model,
    rows: &[Vec<u32>],
    heads: &[(usize, usize)],
) -> Result<Vec<Vec<Vec<f32>>>, PatchError> {
    for &(l, h) in heads {
        if l >= model.n_layers() || h >= model.n_heads() {
            return Err(PatchError::Invalid(format!(
                "head ({l},{h}) is outside the model ({} layers × {} heads)",
                model.n_layers(),
                model.n_heads()
            )));
        }
    }
    if heads.is_empty() {
        return Ok(Vec::new());
    }
    let tokens = model.tokens_tensor(rows)?;
    let last_layer = heads.iter().map(|&(l, _)| l).max().unwrap_or(0);
    let mut hooks = Hooks::capture(Capture::only(
        heads
            .iter()
            .map(|&(l, _)| HookName::Layer(l, HookPoint::Pattern)),
    ));
    model.run(
        Start::Tokens(&tokens),
        RunOptions {
            stop_after: Some(last_layer),
            last_position_only: false,
        },
        &mut hooks,
    )?;
    let mut patterns = Vec::with_capacity(heads.len());
    for &(l, h) in heads {
        let p = hooks.cache.require(l, HookPoint::Pattern)?; // [B, H, T, T]
        let mean = p
            .narrow(1, h, 1)?
            .squeeze(1)?
            .to_dtype(DType::F32)?
            .mean(0)?;
        patterns.push(mean.to_vec2::<f32>()?);
    }
    Ok(patterns)
}
