//! Where weights come from: memory-mapped safetensors (one file or shards) or a GGUF file.
//!
//! Tensors are addressed by their Hugging Face names (`model.layers.0.self_attn.q_proj.weight`);
//! a source that stores them differently (GGUF) translates.

use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::ModelError;

/// A store of named tensors.
pub trait TensorSource {
    /// Short description for error messages (the file or folder).
    fn describe(&self) -> String;
    /// Shape of a tensor, if present.
    fn shape(&self, name: &str) -> Option<Vec<usize>>;
    /// Loads a tensor in its stored (or dequantized) dtype.
    fn load(&self, name: &str, device: &Device) -> Result<Tensor, ModelError>;
    /// Quantization types of the stored weights, if they were quantized (GGUF).
    fn quantization(&self) -> Option<String> {
        None
    }
    /// File that holds `name`, for error messages.
    fn file_of(&self, _name: &str) -> String {
        self.describe()
    }
    /// Every stored tensor's name, as the source stores it (GGUF: llama.cpp's names), for the
    /// check that nothing is left unread ([`check_unused`]); empty where unknown.
    fn stored_names(&self) -> Vec<String> {
        Vec::new()
    }
    /// Where the layer count comes from, for errors: `config.json`'s `key` here, the
    /// metadata's `{arch}.block_count` for GGUF.
    fn layer_count_key(&self, key: &str) -> String {
        format!("config.json's {key}")
    }
    /// Whether every stored tensor must be one the model reads (see [`check_unused`]).
    fn all_tensors_used(&self) -> bool {
        false
    }
}

/// Buffers some checkpoints store that are not weights (causal masks, rotary frequencies
/// recomputed from the config): never read, never an error.
const NOT_WEIGHTS: &[&str] = &[
    ".rotary_emb.inv_freq",
    ".attn.bias",
    ".attn.masked_bias",
    ".attention.bias",
    ".attention.masked_bias",
];

/// The layer a stored tensor belongs to: the number after `layers`, `h` or `blk`
/// (`model.layers.4.mlp...`, `transformer.h.4...`, GGUF's `blk.4...`).
pub fn layer_of(name: &str) -> Option<usize> {
    let parts: Vec<&str> = name.split('.').collect();
    parts
        .windows(2)
        .find(|w| matches!(w[0], "layers" | "h" | "blk"))
        .and_then(|w| w[1].parse().ok())
}

/// Refuses a checkpoint with tensors the model does not read: one of a layer at or past
/// `n_layers` means the config has fewer layers than the checkpoint (the model would run
/// silently truncated), named with the tensor and `key`, the config's layer count. Where
/// the source asks for it ([`TensorSource::all_tensors_used`]: safetensors), any other
/// unread tensor is refused too, except known non-weight buffers ([`NOT_WEIGHTS`]) and,
/// when the config ties the unembedding to the embedding (`tied`), a stored `lm_head`
/// (transformers ignores it then too).
pub fn check_unused(
    source: &dyn TensorSource,
    used: &std::collections::HashSet<String>,
    (n_layers, key): (usize, &str),
    tied: bool,
) -> Result<(), ModelError> {
    let mut names = source.stored_names();
    names.sort();
    for name in names.iter().filter(|n| !used.contains(*n)) {
        if let Some(l) = layer_of(name).filter(|&l| l >= n_layers) {
            return Err(ModelError::ExtraLayer {
                name: name.clone(),
                file: source.file_of(name),
                layer: l,
                n_layers,
                key: source.layer_count_key(key),
            });
        }
    }
    if !source.all_tensors_used() {
        return Ok(());
    }
    let skip =
        |n: &str| NOT_WEIGHTS.iter().any(|b| n.ends_with(b)) || (tied && n.starts_with("lm_head."));
    match names.iter().find(|n| !used.contains(*n) && !skip(n)) {
        Some(name) => Err(ModelError::UnusedTensor {
            name: name.clone(),
            file: source.file_of(name),
        }),
        None => Ok(()),
    }
}

struct MappedFile {
    path: PathBuf,
    mmap: memmap2::Mmap,
    header_len: usize,
    meta: safetensors::tensor::Metadata,
}

/// Memory-mapped safetensors files (a single `model.safetensors` or the shards listed in
/// `model.safetensors.index.json`).
pub struct SafetensorsSource {
    files: Vec<MappedFile>,
    routing: HashMap<String, usize>,
}

impl SafetensorsSource {
    pub fn open(paths: &[PathBuf]) -> Result<Self, ModelError> {
        let mut files = Vec::with_capacity(paths.len());
        let mut routing = HashMap::new();
        for (i, path) in paths.iter().enumerate() {
            let file = std::fs::File::open(path).map_err(|e| ModelError::io(path, e))?;
            // SAFETY: the file is opened read-only; like every mmap user we rely on nobody
            // truncating it while we run.
            let mmap = unsafe { memmap2::MmapOptions::new().map(&file) }
                .map_err(|e| ModelError::io(path, e))?;
            let (header_len, meta) =
                safetensors::SafeTensors::read_metadata(&mmap).map_err(|e| {
                    ModelError::Safetensors {
                        file: path.display().to_string(),
                        msg: describe_st_error(&e),
                    }
                })?;
            for name in meta.tensors().keys() {
                routing.insert(name.clone(), i);
            }
            files.push(MappedFile {
                path: path.clone(),
                mmap,
                header_len,
                meta,
            });
        }
        Ok(Self { files, routing })
    }

    /// Names of all tensors.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.routing.keys().cloned().collect();
        v.sort();
        v
    }
}

fn describe_st_error(e: &safetensors::SafeTensorError) -> String {
    use safetensors::SafeTensorError as E;
    match e {
        E::MetadataIncompleteBuffer | E::InvalidHeaderLength | E::HeaderTooSmall => {
            "file is truncated or its header is corrupt".to_string()
        }
        other => other.to_string(),
    }
}

fn st_dtype(d: safetensors::Dtype) -> Option<DType> {
    use safetensors::Dtype as S;
    Some(match d {
        S::F32 => DType::F32,
        S::F16 => DType::F16,
        S::BF16 => DType::BF16,
        S::F64 => DType::F64,
        S::U8 => DType::U8,
        S::U32 => DType::U32,
        S::I64 => DType::I64,
        _ => return None,
    })
}

impl TensorSource for SafetensorsSource {
    fn describe(&self) -> String {
        match self.files.len() {
            1 => self.files[0].path.display().to_string(),
            n => format!(
                "{} ({n} safetensors shards)",
                self.files[0]
                    .path
                    .parent()
                    .unwrap_or(Path::new("."))
                    .display()
            ),
        }
    }

    fn file_of(&self, name: &str) -> String {
        match self.routing.get(name) {
            Some(&i) => self.files[i].path.display().to_string(),
            None => self.describe(),
        }
    }

    fn stored_names(&self) -> Vec<String> {
        self.names()
    }

    fn all_tensors_used(&self) -> bool {
        true
    }

    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        let f = &self.files[*self.routing.get(name)?];
        f.meta.info(name).map(|i| i.shape.clone())
    }

    fn load(&self, name: &str, device: &Device) -> Result<Tensor, ModelError> {
        let Some(&i) = self.routing.get(name) else {
            return Err(ModelError::MissingTensor {
                name: name.to_string(),
                files: self.describe(),
            });
        };
        let f = &self.files[i];
        let info = f
            .meta
            .info(name)
            .expect("routing only holds names from the metadata");
        let dtype = st_dtype(info.dtype).ok_or_else(|| ModelError::Safetensors {
            file: f.path.display().to_string(),
            msg: format!("tensor `{name}` has unsupported dtype {:?}", info.dtype),
        })?;
        let (start, end) = info.data_offsets;
        let base = 8 + f.header_len;
        let bytes = &f.mmap[base + start..base + end];
        Ok(Tensor::from_raw_buffer(bytes, dtype, &info.shape, device)?)
    }
}

/// Loads tensors by name with shape checks and conversion to the run dtype; counts parameters.
pub struct WeightLoader<'a> {
    pub source: &'a dyn TensorSource,
    pub device: Device,
    pub dtype: DType,
    pub n_params: usize,
    /// Make up random tensors of the expected shapes instead of reading `source` (benchmarks
    /// at real model sizes without downloads: speed does not depend on the values).
    pub random: bool,
    /// The names read (and looked for: an optional tensor present counts as read), for
    /// [`check_unused`].
    pub used: std::collections::HashSet<String>,
}

/// A source with no tensors at all: used with `Model::random`, which never asks it.
pub struct NoTensors;

impl TensorSource for NoTensors {
    fn describe(&self) -> String {
        "random weights".into()
    }
    fn shape(&self, _name: &str) -> Option<Vec<usize>> {
        None
    }
    fn load(&self, name: &str, _device: &Device) -> Result<Tensor, ModelError> {
        Err(ModelError::MissingTensor {
            name: name.into(),
            files: self.describe(),
        })
    }
}

impl<'a> WeightLoader<'a> {
    pub fn new(source: &'a dyn TensorSource, device: &Device, dtype: DType) -> Self {
        Self {
            source,
            device: device.clone(),
            dtype,
            n_params: 0,
            random: false,
            used: Default::default(),
        }
    }

    /// A loader that makes up random weights.
    pub fn random(device: &Device, dtype: DType) -> WeightLoader<'static> {
        WeightLoader {
            source: &NoTensors,
            device: device.clone(),
            dtype,
            n_params: 0,
            random: true,
            used: Default::default(),
        }
    }

    fn made_up(&self, name: &str, shape: &[usize], dtype: DType) -> Result<Tensor, ModelError> {
        let t = match shape {
            [n] if name.contains("norm") => Tensor::ones(*n, DType::F32, &self.device)?,
            [n] => Tensor::zeros(*n, DType::F32, &self.device)?,
            [_, inp] => Tensor::randn(0f32, 1.0 / (*inp as f32).sqrt(), shape, &self.device)?,
            _ => Tensor::randn(0f32, 0.02, shape, &self.device)?,
        };
        Ok(t.to_dtype(dtype)?)
    }

    pub fn has(&self, name: &str) -> bool {
        self.random || self.source.shape(name).is_some()
    }

    /// Loads `name`, checks its shape and converts it to `dtype` (the run dtype unless given).
    pub fn get_as(
        &mut self,
        name: &str,
        shape: &[usize],
        dtype: DType,
    ) -> Result<Tensor, ModelError> {
        if self.random {
            self.n_params += shape.iter().product::<usize>();
            return self.made_up(name, shape, dtype);
        }
        self.used.insert(name.to_string());
        let got = self
            .source
            .shape(name)
            .ok_or_else(|| ModelError::MissingTensor {
                name: name.to_string(),
                files: self.source.describe(),
            })?;
        if got != shape {
            return Err(ModelError::TensorShape {
                name: name.to_string(),
                file: self.source.file_of(name),
                expected: shape.to_vec(),
                got,
            });
        }
        let t = self.source.load(name, &self.device)?;
        self.n_params += t.elem_count();
        Ok(t.to_dtype(dtype)?)
    }

    pub fn get(&mut self, name: &str, shape: &[usize]) -> Result<Tensor, ModelError> {
        let dtype = self.dtype;
        self.get_as(name, shape, dtype)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_of_stored_names() {
        assert_eq!(layer_of("model.layers.12.mlp.up_proj.weight"), Some(12));
        assert_eq!(layer_of("transformer.h.3.attn.c_attn.weight"), Some(3));
        assert_eq!(layer_of("gpt_neox.layers.0.attention.dense.bias"), Some(0));
        assert_eq!(layer_of("blk.7.attn_q.weight"), Some(7));
        assert_eq!(layer_of("model.embed_tokens.weight"), None);
        assert_eq!(layer_of("lm_head.weight"), None);
    }
}
