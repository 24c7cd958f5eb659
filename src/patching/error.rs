//! Errors of path patching. A bad request is a [`SpecError`]: which part of the request
//! ([`SpecField`]), the value given and what is allowed, worded with the field's plain name
//! (as the explorer's setup form labels it). The command line rewords the same errors with its
//! flag names (`cli::wording`), so the core never speaks in flags.

use crate::model::ModelError;

#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// A request that cannot be run: a value out of range, a receiver that does not parse.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// Inputs that do not fit together, and internal invariants.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Model(#[from] ModelError),
}

impl From<candle_core::Error> for PatchError {
    fn from(e: candle_core::Error) -> Self {
        PatchError::Model(ModelError::Candle(e))
    }
}

/// The part of a patching request an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecField {
    Receiver,
    BeginLayer,
    BatchSize,
    Examples,
}

impl SpecField {
    /// The field's plain name (the explorer's setup form uses the same words).
    pub fn name(self) -> &'static str {
        match self {
            SpecField::Receiver => "receiver",
            SpecField::BeginLayer => "begin layer",
            SpecField::BatchSize => "batch size",
            SpecField::Examples => "examples",
        }
    }
}

/// The receiver notation, for messages about a value that does not parse.
pub const RECEIVER_SYNTAX: &str =
    "resid_pre|resid_mid|resid_post:LAYER[,LAYER...], mlp_in:LAYER or LAYER.HEAD.q|k|v";

/// What is wrong with a patching request: the field, the value and the allowed range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// Prompts per batch must be at least 1.
    #[error("batch size {value}: expected at least 1")]
    BatchSize { value: usize },
    /// The first sender layer is after the receiver's last layer: no senders.
    #[error("begin layer {begin} is after the receiver's last layer {max}: no senders")]
    BeginLayer { begin: usize, max: usize },
    /// No examples to patch.
    #[error("no examples to patch")]
    NoExamples,
    /// One receiver value does not parse; `why` says which part.
    #[error("receiver {text:?}: {why} (expected {RECEIVER_SYNTAX})")]
    ReceiverSyntax { text: String, why: &'static str },
    /// Residual receivers of two kinds in one run.
    #[error("receiver: cannot mix {first} and {second} receivers")]
    ReceiverKinds {
        first: &'static str,
        second: &'static str,
    },
    /// Residual-stream and head receivers in one run.
    #[error("receiver: cannot mix residual-stream and head receivers in one run")]
    ReceiverMixed,
    /// No receiver value at all.
    #[error("no receiver given")]
    NoReceiver,
    /// A receiver with an empty list of layers or heads.
    #[error("receiver has no {what}")]
    ReceiverEmpty { what: &'static str },
    /// A receiver layer outside the model: allowed 0..n_layers-1.
    #[error(
        "receiver {receiver}: layer out of range (the model has {n_layers} layers, 0..{})",
        n_layers - 1
    )]
    ReceiverLayer { receiver: String, n_layers: usize },
    /// A receiver head outside the model: allowed 0..n_heads-1.
    #[error(
        "receiver {receiver}: head out of range (the model has {n_heads} heads per layer, 0..{})",
        n_heads - 1
    )]
    ReceiverHead { receiver: String, n_heads: usize },
}

impl SpecError {
    /// The field the error is about.
    pub fn field(&self) -> SpecField {
        match self {
            SpecError::BatchSize { .. } => SpecField::BatchSize,
            SpecError::BeginLayer { .. } => SpecField::BeginLayer,
            SpecError::NoExamples => SpecField::Examples,
            _ => SpecField::Receiver,
        }
    }
}
