//! GGUF files (llama.cpp): metadata → `ModelConfig`, tensors dequantized to the run dtype.

use std::path::Path;

use candle_core::{DType, Device};

use super::tokenizer::Tokenizer;
use super::transformer::Model;
use super::ModelError;

/// Whether the file starts with the GGUF magic.
pub fn is_gguf(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .map(|_| &magic == b"GGUF")
        .unwrap_or(false)
}

pub fn load(
    path: &Path,
    _tokenizer: Option<&Path>,
    _device: &Device,
    _dtype: DType,
) -> Result<(Model, Tokenizer), ModelError> {
    Err(ModelError::Gguf {
        file: path.display().to_string(),
        msg: "GGUF loading is not implemented yet".into(),
    })
}
