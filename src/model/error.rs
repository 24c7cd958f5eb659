//! Errors of the model layer. Every message is one line and names the file, tensor or field
//! that is wrong and what was expected.

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{path}: {msg}")]
    Io { path: String, msg: String },

    #[error("{file}: {msg}")]
    Config { file: String, msg: String },

    #[error(
        "{file}: unsupported model_type {model_type:?} (supported: {})",
        super::families::model_types().join(", ")
    )]
    UnsupportedModelType { model_type: String, file: String },

    #[error("{0}")]
    NotFound(String),

    /// A config key headhunt does not read and does not know to be irrelevant to the numbers:
    /// running on would fall back to a default in silence.
    #[error("{file}: config key `{key}` = {value} is not one headhunt reads, and it may change the model's numbers{}", more_keys(*more))]
    UnknownConfigKey {
        file: String,
        key: String,
        value: String,
        /// How many other such keys the file holds.
        more: usize,
    },

    #[error("tensor `{name}` is missing from {files}")]
    MissingTensor { name: String, files: String },

    /// The checkpoint holds a layer the config does not: it would run silently truncated.
    #[error("tensor `{name}` in {file} is of layer {layer}, but {key} is {n_layers} (layers 0 to {}): the config has fewer layers than the checkpoint", n_layers.saturating_sub(1))]
    ExtraLayer {
        name: String,
        file: String,
        layer: usize,
        n_layers: usize,
        key: String,
    },

    /// A stored tensor the model never reads: the checkpoint is not of the config's shape.
    #[error("tensor `{name}` in {file} is not one the model reads: the checkpoint does not match its config")]
    UnusedTensor { name: String, file: String },

    #[error("tensor `{name}` in {file} has shape {got:?}, expected {expected:?}")]
    TensorShape {
        name: String,
        file: String,
        expected: Vec<usize>,
        got: Vec<usize>,
    },

    #[error("{file}: not a valid safetensors file ({msg})")]
    Safetensors { file: String, msg: String },

    #[error("{file}: cannot load tokenizer ({msg})")]
    Tokenizer { file: String, msg: String },

    #[error("hub model {id}: {msg}")]
    Hub { id: String, msg: String },

    #[error("{file}: {msg}")]
    Gguf { file: String, msg: String },

    #[error("{0}")]
    Invalid(String),

    /// A model given as a plain file that is not a .gguf.
    #[error("{spec} is a file; a model is a model directory, a .gguf file or a hub id (org/name)")]
    ModelIsFile { spec: String },

    /// A model directory without tokenizer.json, and no tokenizer file given.
    #[error("{dir}: tokenizer.json not found in the model directory (give a tokenizer file)")]
    NoTokenizer { dir: String },

    /// A GGUF file whose vocabulary cannot be read as a tokenizer: a tokenizer file is needed.
    #[error("{file}: cannot load tokenizer ({msg}; give a tokenizer file, tokenizer.json)")]
    GgufTokenizer { file: String, msg: String },

    #[error("tensor computation failed: {0}")]
    Candle(#[from] candle_core::Error),
}

fn more_keys(more: usize) -> String {
    match more {
        0 => String::new(),
        1 => " (and 1 more key)".into(),
        n => format!(" (and {n} more keys)"),
    }
}

impl ModelError {
    pub fn io(path: &std::path::Path, e: std::io::Error) -> Self {
        ModelError::Io {
            path: path.display().to_string(),
            msg: e.to_string(),
        }
    }
}

/// Flattens a candle error (which can span lines with a backtrace) into one line.
pub fn one_line(e: &dyn std::fmt::Display) -> String {
    let s = e.to_string();
    let first: Vec<&str> = s.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    first.join("; ")
}
