//! GGUF files (llama.cpp): metadata → `ModelConfig`, tensors dequantized to the run dtype.
//!
//! A GGUF file is read in three steps:
//! 1. [`GgufFile::open`] memory-maps the file, parses the header with candle's reader and checks
//!    every tensor's data range against the file size (a truncated file is an error here, never
//!    a panic later), and that the types are ones candle can dequantize.
//! 2. [`config_from_gguf`] turns the metadata (`{arch}.block_count`, `.attention.head_count` ...)
//!    into the Hugging Face `config.json` the same model would have, and parses that with
//!    [`ModelConfig::from_json`], so every family rule lives in one place. What llama.cpp does
//!    not store but hard-codes (Gemma-3's sliding-window pattern and local rope base, Gemma's
//!    attention scale) is filled in the way llama.cpp does.
//! 3. [`GgufSource`] serves the tensors under their Hugging Face names, dequantized to f32 and
//!    converted back to the Hugging Face convention: llama.cpp permutes the q/k rows of `llama`
//!    models for its interleaved rope (undone here: the engine uses the rotate-half rope), and
//!    stores Gemma's RMSNorm weights with the 1 already added (subtracted here: the engine adds
//!    it, as `config.json` models need).
//!
//! The tokenizer can come from the file too (see [`super::gguf_vocab`]).

use std::collections::{BTreeMap, HashMap};
use std::io::Cursor;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::quantized::GgmlDType;
use candle_core::{DType, Device, Tensor};
use serde_json::json;

use super::config::{Family, ModelConfig};
use super::tokenizer::Tokenizer;
use super::transformer::Model;
use super::weights::TensorSource;
use super::ModelError;

/// `general.architecture` values headhunt can run.
pub fn supported_architectures() -> Vec<&'static str> {
    super::families::gguf_archs()
}

/// Whether the file starts with the GGUF magic.
pub fn is_gguf(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .map(|_| &magic == b"GGUF")
        .unwrap_or(false)
}

/// Name of a ggml tensor type as llama.cpp prints it.
pub fn type_name(t: GgmlDType) -> &'static str {
    match t {
        GgmlDType::F32 => "F32",
        GgmlDType::F16 => "F16",
        GgmlDType::BF16 => "BF16",
        GgmlDType::Q4_0 => "Q4_0",
        GgmlDType::Q4_1 => "Q4_1",
        GgmlDType::Q5_0 => "Q5_0",
        GgmlDType::Q5_1 => "Q5_1",
        GgmlDType::Q8_0 => "Q8_0",
        GgmlDType::Q8_1 => "Q8_1",
        GgmlDType::Q2K => "Q2_K",
        GgmlDType::Q3K => "Q3_K",
        GgmlDType::Q4K => "Q4_K",
        GgmlDType::Q5K => "Q5_K",
        GgmlDType::Q6K => "Q6_K",
        GgmlDType::Q8K => "Q8_K",
    }
}

/// llama.cpp's `general.file_type` names (LLAMA_FTYPE_*), for `info`.
fn file_type_name(t: u64) -> Option<&'static str> {
    Some(match t {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        32 => "BF16",
        _ => return None,
    })
}

/// Where one tensor's bytes are in the file.
#[derive(Debug, Clone)]
pub struct TensorEntry {
    pub dtype: GgmlDType,
    /// PyTorch order (slowest dimension first); GGUF lists dimensions fastest first and
    /// candle's reader already reverses them.
    pub shape: Vec<usize>,
    pub start: usize,
    pub end: usize,
}

/// An open, checked GGUF file: metadata and the byte range of every tensor.
pub struct GgufFile {
    pub path: PathBuf,
    pub metadata: HashMap<String, Value>,
    pub tensors: BTreeMap<String, TensorEntry>,
    mmap: memmap2::Mmap,
    /// Metadata keys read so far: an `{arch}.*` key nothing read is a setting headhunt does not
    /// implement (see `hf_config_json`).
    read: std::cell::RefCell<std::collections::HashSet<String>>,
}

impl GgufFile {
    fn err(path: &Path, msg: impl Into<String>) -> ModelError {
        ModelError::Gguf {
            file: path.display().to_string(),
            msg: msg.into(),
        }
    }

    /// Opens and checks a GGUF file: the header parses, every tensor's type is supported and
    /// its data lies inside the file.
    pub fn open(path: &Path) -> Result<Self, ModelError> {
        let file = std::fs::File::open(path).map_err(|e| ModelError::io(path, e))?;
        // SAFETY: read-only mapping; like every mmap user we rely on nobody truncating the
        // file while it is mapped.
        let mmap = unsafe { memmap2::MmapOptions::new().map(&file) }
            .map_err(|e| ModelError::io(path, e))?;
        let size = mmap.len();
        if size < 4 || &mmap[..4] != b"GGUF" {
            return Err(Self::err(path, "not a GGUF file (no GGUF magic)"));
        }
        // candle's reader checks lengths against the file size; the unwind guard is for what
        // it does not check (a zero `general.alignment` divides by zero).
        let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Content::read(&mut Cursor::new(&mmap[..]))
        }));
        let content = match parsed {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                let m = first_line(&e);
                let msg = if m.contains("fill whole buffer") || m.contains("remaining") {
                    format!("file is truncated or its header is corrupt ({m})")
                } else if m.contains("unknown dtype") {
                    format!(
                        "a tensor has a type candle cannot read ({m}); supported: F32, F16, BF16, \
                         Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K..Q6_K"
                    )
                } else {
                    format!("not a valid GGUF file ({m})")
                };
                return Err(Self::err(path, msg));
            }
            Err(_) => return Err(Self::err(path, "not a valid GGUF file (corrupt header)")),
        };
        let mut tensors = BTreeMap::new();
        for (name, info) in &content.tensor_infos {
            let shape = info.shape.dims().to_vec();
            let bad = |what: String| Self::err(path, format!("tensor `{name}`: {what}"));
            let elems = shape
                .iter()
                .try_fold(1usize, |a, &d| a.checked_mul(d))
                .ok_or_else(|| bad(format!("shape {shape:?} overflows")))?;
            let block = info.ggml_dtype.block_size();
            if elems % block != 0 {
                return Err(bad(format!(
                    "{elems} elements is not a multiple of the {} block size {block}",
                    type_name(info.ggml_dtype)
                )));
            }
            if !matches!(
                info.ggml_dtype,
                GgmlDType::F32
                    | GgmlDType::F16
                    | GgmlDType::BF16
                    | GgmlDType::Q4_0
                    | GgmlDType::Q4_1
                    | GgmlDType::Q5_0
                    | GgmlDType::Q5_1
                    | GgmlDType::Q8_0
                    | GgmlDType::Q2K
                    | GgmlDType::Q3K
                    | GgmlDType::Q4K
                    | GgmlDType::Q5K
                    | GgmlDType::Q6K
            ) {
                return Err(bad(format!(
                    "type {} cannot be dequantized",
                    type_name(info.ggml_dtype)
                )));
            }
            let bytes = (elems / block)
                .checked_mul(info.ggml_dtype.type_size())
                .ok_or_else(|| bad("size overflows".into()))?;
            let start = content
                .tensor_data_offset
                .checked_add(info.offset)
                .and_then(|s| usize::try_from(s).ok());
            let end = start.and_then(|s| s.checked_add(bytes));
            match (start, end) {
                (Some(start), Some(end)) if end <= size => {
                    // The block structs are read in place: they need aligned data (GGUF aligns
                    // tensor data to 32 bytes; a file that does not is corrupt).
                    if !(mmap.as_ptr() as usize + start).is_multiple_of(8) {
                        return Err(bad(format!("data offset {start} is not aligned")));
                    }
                    tensors.insert(
                        name.clone(),
                        TensorEntry {
                            dtype: info.ggml_dtype,
                            shape,
                            start,
                            end,
                        },
                    );
                }
                _ => {
                    return Err(Self::err(
                        path,
                        format!(
                            "file is truncated: tensor `{name}` needs bytes {}..{} but the file has {size} bytes",
                            content.tensor_data_offset.saturating_add(info.offset),
                            content
                                .tensor_data_offset
                                .saturating_add(info.offset)
                                .saturating_add(bytes as u64),
                        ),
                    ))
                }
            }
        }
        Ok(GgufFile {
            path: path.to_path_buf(),
            metadata: content.metadata,
            read: Default::default(),
            tensors,
            mmap,
        })
    }

    pub fn describe(&self) -> String {
        self.path.display().to_string()
    }

    pub(in crate::model) fn meta_err(&self, key: &str, what: &str) -> ModelError {
        Self::err(&self.path, format!("metadata `{key}`: {what}"))
    }

    /// A metadata value, remembered as read.
    pub(in crate::model) fn meta(&self, key: &str) -> Option<&Value> {
        self.read.borrow_mut().insert(key.to_string());
        self.metadata.get(key)
    }

    /// `{arch}.*` metadata keys that nothing read, sorted.
    fn unread_arch_keys(&self, arch: &str) -> Vec<&str> {
        let read = self.read.borrow();
        let prefix = format!("{arch}.");
        let mut keys: Vec<&str> = self
            .metadata
            .keys()
            .filter(|k| k.starts_with(&prefix) && !read.contains(k.as_str()))
            .map(|k| k.as_str())
            .collect();
        keys.sort();
        keys
    }

    /// An unsigned integer value (any integer type that fits).
    pub fn get_u64(&self, key: &str) -> Result<Option<u64>, ModelError> {
        let v = match self.meta(key) {
            None => return Ok(None),
            Some(v) => v,
        };
        let n: Option<u64> = match v {
            Value::U8(x) => Some(*x as u64),
            Value::U16(x) => Some(*x as u64),
            Value::U32(x) => Some(*x as u64),
            Value::U64(x) => Some(*x),
            Value::I8(x) => u64::try_from(*x).ok(),
            Value::I16(x) => u64::try_from(*x).ok(),
            Value::I32(x) => u64::try_from(*x).ok(),
            Value::I64(x) => u64::try_from(*x).ok(),
            _ => None,
        };
        n.map(Some).ok_or_else(|| {
            self.meta_err(
                key,
                &format!("expected a non-negative integer, got {}", short(v)),
            )
        })
    }

    pub fn req_u64(&self, key: &str) -> Result<u64, ModelError> {
        self.get_u64(key)?
            .ok_or_else(|| self.meta_err(key, "missing (expected an integer)"))
    }

    pub fn get_f64(&self, key: &str) -> Result<Option<f64>, ModelError> {
        match self.meta(key) {
            None => Ok(None),
            Some(Value::F32(x)) => Ok(Some(*x as f64)),
            Some(Value::F64(x)) => Ok(Some(*x)),
            Some(v) => match self.get_u64(key) {
                Ok(Some(n)) => Ok(Some(n as f64)),
                _ => Err(self.meta_err(key, &format!("expected a number, got {}", short(v)))),
            },
        }
    }

    pub fn get_str(&self, key: &str) -> Result<Option<&str>, ModelError> {
        match self.meta(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.meta_err(key, &format!("expected a string, got {}", short(v)))),
        }
    }

    pub fn get_bool(&self, key: &str) -> Result<Option<bool>, ModelError> {
        match self.meta(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => {
                Err(self.meta_err(key, &format!("expected true or false, got {}", short(v))))
            }
        }
    }

    pub fn get_array(&self, key: &str) -> Result<Option<&Vec<Value>>, ModelError> {
        match self.meta(key) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(v) => Err(self.meta_err(key, &format!("expected an array, got {}", short(v)))),
        }
    }

    /// `general.architecture`.
    pub fn architecture(&self) -> Result<&str, ModelError> {
        self.get_str("general.architecture")?
            .ok_or_else(|| self.meta_err("general.architecture", "missing"))
    }

    /// Tensor types and how many tensors have each, most frequent first:
    /// `Q5_0 ×133, F32 ×121, Q8_0 ×13, Q4_K ×12, Q6_K ×12; file type Q4_K_M`.
    pub fn type_summary(&self) -> String {
        let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
        for t in self.tensors.values() {
            *counts.entry(type_name(t.dtype)).or_insert(0) += 1;
        }
        let mut v: Vec<(&str, usize)> = counts.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let list = v
            .iter()
            .map(|(t, n)| format!("{t} ×{n}"))
            .collect::<Vec<_>>()
            .join(", ");
        match self
            .get_u64("general.file_type")
            .ok()
            .flatten()
            .and_then(file_type_name)
        {
            Some(ft) => format!("{list}; file type {ft}"),
            None => list,
        }
    }

    /// Whether every tensor is stored unquantized (F32/F16/BF16).
    pub fn is_unquantized(&self) -> bool {
        self.tensors
            .values()
            .all(|t| matches!(t.dtype, GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16))
    }

    /// A tensor by its GGUF name, dequantized to f32 on the CPU, in PyTorch dimension order.
    pub fn dequantize(&self, name: &str) -> Result<Tensor, ModelError> {
        let e = self.tensors.get(name).ok_or_else(|| {
            Self::err(
                &self.path,
                format!("tensor `{name}` is missing from the file"),
            )
        })?;
        let bytes = &self.mmap[e.start..e.end];
        let q = candle_core::quantized::ggml_file::qtensor_from_ggml(
            e.dtype,
            bytes,
            e.shape.clone(),
            &Device::Cpu,
        )
        .map_err(|err| Self::err(&self.path, format!("tensor `{name}`: {}", first_line(&err))))?;
        Ok(q.dequantize(&Device::Cpu)?.to_dtype(DType::F32)?)
    }
}

/// The message of a candle error without the backtrace it carries when RUST_BACKTRACE is set.
fn first_line(e: &dyn std::fmt::Display) -> String {
    let s = e.to_string();
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_string()
}

/// A metadata value in a few characters, for error messages.
fn short(v: &Value) -> String {
    match v {
        Value::String(s) if s.len() > 40 => format!("string {:?}…", &s[..40]),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(a) => format!("an array of {}", a.len()),
        other => format!("{other:?}"),
    }
}

/// The Hugging Face `config.json` equivalent of a GGUF file's metadata.
pub fn hf_config_json(f: &GgufFile) -> Result<serde_json::Value, ModelError> {
    let arch = f.architecture()?.to_string();
    let def = super::families::by_gguf_arch(&arch).ok_or_else(|| {
        GgufFile::err(
            &f.path,
            format!(
                "unsupported architecture {arch:?} (general.architecture; supported: {})",
                supported_architectures().join(", ")
            ),
        )
    })?;
    let model_type = def.model_types()[0];
    let key = |k: &str| format!("{arch}.{k}");
    let n_layers = f.req_u64(&key("block_count"))?;
    let d_model = f.req_u64(&key("embedding_length"))?;
    let d_mlp = f.req_u64(&key("feed_forward_length"))?;
    let n_heads = f.req_u64(&key("attention.head_count"))?;
    let n_kv = f
        .get_u64(&key("attention.head_count_kv"))?
        .unwrap_or(n_heads);
    let embd = f.tensors.get("token_embd.weight").ok_or_else(|| {
        GgufFile::err(
            &f.path,
            "tensor `token_embd.weight` is missing from the file",
        )
    })?;
    let vocab = embd.shape[0] as u64;
    if let Some(v) = f.get_u64(&key("vocab_size"))? {
        if v != vocab {
            return Err(f.meta_err(
                &key("vocab_size"),
                &format!("{v} differs from the {vocab} rows of token_embd.weight"),
            ));
        }
    }
    if f.get_bool(&key("attention.causal"))? == Some(false) {
        return Err(f.meta_err(
            &key("attention.causal"),
            "false is not supported (headhunt runs causal attention)",
        ));
    }
    let mut c = json!({
        "model_type": model_type,
        "hidden_size": d_model,
        "intermediate_size": d_mlp,
        "num_hidden_layers": n_layers,
        "num_attention_heads": n_heads,
        "num_key_value_heads": n_kv,
        "vocab_size": vocab,
        "tie_word_embeddings": !f.tensors.contains_key("output.weight"),
    });
    let o = c.as_object_mut().expect("an object");
    if let Some(k) = f.get_u64(&key("attention.key_length"))? {
        if let Some(v) = f.get_u64(&key("attention.value_length"))? {
            if v != k {
                return Err(f.meta_err(
                    &key("attention.value_length"),
                    &format!("{v} differs from key_length {k}; headhunt needs equal head sizes"),
                ));
            }
        }
        o.insert("head_dim".into(), json!(k));
    }
    // llama.cpp rotates this many dims of each head; every GGUF family here rotates them all.
    if let Some(r) = f.get_u64(&key("rope.dimension_count"))? {
        let head = f
            .get_u64(&key("attention.key_length"))?
            .unwrap_or(d_model / n_heads.max(1));
        if r != head {
            return Err(f.meta_err(
                &key("rope.dimension_count"),
                &format!("{r} of {head} head dims rotated: a partial rotary is not supported here"),
            ));
        }
    }
    if let Some(eps) = f.get_f64(&key("attention.layer_norm_rms_epsilon"))? {
        o.insert("rms_norm_eps".into(), json!(eps));
    }
    if let Some(theta) = f.get_f64(&key("rope.freq_base"))? {
        o.insert("rope_theta".into(), json!(theta));
    }
    if let Some(ctx) = f.get_u64(&key("context_length"))? {
        o.insert("max_position_embeddings".into(), json!(ctx));
    }
    if let Some(bos) = f.get_u64("tokenizer.ggml.bos_token_id")? {
        o.insert("bos_token_id".into(), json!(bos));
    }
    match f.get_str(&key("rope.scaling.type"))? {
        None | Some("none") => {}
        Some("linear") => {
            let factor = f.get_f64(&key("rope.scaling.factor"))?.unwrap_or(1.0);
            if factor != 1.0 {
                o.insert(
                    "rope_scaling".into(),
                    json!({"rope_type": "linear", "factor": factor}),
                );
            }
        }
        Some(other) => {
            return Err(f.meta_err(
                &key("rope.scaling.type"),
                &format!("unsupported rope scaling {other:?} (supported: none, linear)"),
            ))
        }
    }
    if f.tensors.contains_key("rope_freqs.weight") {
        return Err(GgufFile::err(
            &f.path,
            "tensor `rope_freqs.weight`: per-frequency rope factors (Llama-3.1-style rope scaling) are not supported",
        ));
    }
    def.gguf_config(f, o)?;
    let _ = f.get_bool(&key("rope.scaling.finetuned"))?; // informational in llama.cpp
    Ok(c)
}

/// The engine's config for a GGUF file; an `{arch}.*` metadata key that nothing read is an
/// error ([`ModelError::UnknownConfigKey`]), or with `allow_unknown` kept in `ignored_keys`.
pub fn config_from_gguf(f: &GgufFile, allow_unknown: bool) -> Result<ModelConfig, ModelError> {
    let json = hf_config_json(f)?;
    let mut cfg = ModelConfig::from_json(&json, &f.describe())?;
    cfg.checkpoint_dtype = Some("gguf".into());
    let arch = f.architecture()?.to_string();
    let unknown = f.unread_arch_keys(&arch);
    let value = |k: &str| f.metadata.get(k).map(short).unwrap_or_default();
    match unknown.first() {
        Some(k) if !allow_unknown => Err(ModelError::UnknownConfigKey {
            file: f.describe(),
            key: k.to_string(),
            value: value(k),
            more: unknown.len() - 1,
        }),
        _ => {
            cfg.ignored_keys = unknown
                .iter()
                .map(|k| format!("{k} = {}", value(k)))
                .collect();
            Ok(cfg)
        }
    }
}

/// The GGUF name of a Hugging Face tensor name.
pub fn gguf_name(hf: &str, family: Family) -> Option<String> {
    family.def().gguf_name(hf)
}

/// Undoes llama.cpp's q/k permutation (`LlamaModel.permute` in convert_hf_to_gguf.py), which
/// reorders each head's rows from rotate-half pairs (i, i + d/2) to interleaved pairs (2i, 2i+1):
/// `w[h, j, i] = w_hf[h, i, j]` for `w` viewed as [heads, d/2, 2, ...]. Works on a weight
/// [heads·d, in] and on a bias [heads·d].
pub fn unpermute_qk(t: &Tensor, n_heads: usize) -> Result<Tensor, ModelError> {
    let dims = t.dims().to_vec();
    let rows = dims[0];
    if n_heads == 0 || !rows.is_multiple_of(2 * n_heads) {
        return Err(ModelError::Invalid(format!(
            "cannot unpermute {rows} rows into {n_heads} rotary heads"
        )));
    }
    let half = rows / n_heads / 2;
    let rest: usize = dims[1..].iter().product();
    let u = t
        .reshape((n_heads, half, 2, rest))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape(dims)?;
    Ok(u)
}

/// The inverse of [`unpermute_qk`]: what llama.cpp's converter stores (for tests that write
/// GGUF files).
pub fn permute_qk(t: &Tensor, n_heads: usize) -> Result<Tensor, ModelError> {
    let dims = t.dims().to_vec();
    let rows = dims[0];
    if n_heads == 0 || !rows.is_multiple_of(2 * n_heads) {
        return Err(ModelError::Invalid(format!(
            "cannot permute {rows} rows into {n_heads} rotary heads"
        )));
    }
    let half = rows / n_heads / 2;
    let rest: usize = dims[1..].iter().product();
    Ok(t.reshape((n_heads, 2, half, rest))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape(dims)?)
}

/// A GGUF file's tensors under Hugging Face names, dequantized and converted back to the
/// Hugging Face convention (see the module docs).
pub struct GgufSource {
    pub file: GgufFile,
    cfg: ModelConfig,
}

impl GgufSource {
    pub fn new(file: GgufFile, cfg: &ModelConfig) -> Self {
        GgufSource {
            file,
            cfg: cfg.clone(),
        }
    }
}

impl TensorSource for GgufSource {
    fn describe(&self) -> String {
        self.file.describe()
    }

    fn stored_names(&self) -> Vec<String> {
        self.file.tensors.keys().cloned().collect()
    }

    fn layer_count_key(&self, _key: &str) -> String {
        let arch = self.cfg.family.def().gguf_arch().unwrap_or("{arch}");
        format!("the metadata's {arch}.block_count")
    }

    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        let g = gguf_name(name, self.cfg.family)?;
        self.file.tensors.get(&g).map(|e| e.shape.clone())
    }

    fn load(&self, name: &str, device: &Device) -> Result<Tensor, ModelError> {
        let g = gguf_name(name, self.cfg.family).ok_or_else(|| ModelError::MissingTensor {
            name: name.to_string(),
            files: self.describe(),
        })?;
        let t = self.file.dequantize(&g)?;
        let t = self.cfg.family.def().gguf_tensor(&g, t, &self.cfg)?;
        Ok(t.to_device(device)?)
    }

    fn quantization(&self) -> Option<String> {
        Some(self.file.type_summary())
    }
}

/// Loads a GGUF model. The tokenizer is `tokenizer` if given, else built from the file's
/// `tokenizer.ggml.*` metadata.
pub fn load(
    path: &Path,
    tokenizer: Option<&Path>,
    device: &Device,
    dtype: DType,
) -> Result<(Model, Tokenizer), ModelError> {
    let opts = super::source::LoadOptions {
        tokenizer: tokenizer.map(Path::to_path_buf),
        allow_unknown_config_keys: false,
    };
    load_with_progress(
        path,
        &opts,
        std::slice::from_ref(device),
        dtype,
        &mut |_, _| {},
    )
}

/// [`load`], calling `progress(layers loaded, layers)` as the layers load.
pub fn load_with_progress(
    path: &Path,
    opts: &super::source::LoadOptions,
    devices: &[Device],
    dtype: DType,
    progress: super::transformer::LoadProgress,
) -> Result<(Model, Tokenizer), ModelError> {
    if path.is_dir() {
        return Err(ModelError::NotFound(format!(
            "{} is a folder, not a GGUF file (a .gguf model is one file; a model folder holds \
             config.json)",
            path.display()
        )));
    }
    if path.exists() && !path.is_file() {
        return Err(ModelError::NotFound(format!(
            "{} is not a regular file: a GGUF model is one file",
            path.display()
        )));
    }
    if !path.is_file() {
        return Err(ModelError::NotFound(format!(
            "GGUF file not found: {}",
            path.display()
        )));
    }
    let file = GgufFile::open(path)?;
    let cfg = config_from_gguf(&file, opts.allow_unknown_config_keys)?;
    let tok = match &opts.tokenizer {
        Some(t) => Tokenizer::from_file(t)?,
        None => super::gguf_vocab::tokenizer_from_gguf(&file)?,
    };
    super::source::check_tokenizer(&cfg, &tok, &file.describe())?;
    let source = GgufSource::new(file, &cfg);
    let family = cfg.family;
    let model =
        Model::load_placed(cfg, &source, devices, dtype, progress).map_err(|e| match e {
            ModelError::MissingTensor { name, .. } => ModelError::Gguf {
                file: path.display().to_string(),
                msg: match gguf_name(&name, family) {
                    Some(g) => format!("tensor `{g}` is missing (needed as {name})"),
                    None => format!("tensor {name} has no GGUF equivalent"),
                },
            },
            ModelError::TensorShape {
                name,
                expected,
                got,
                ..
            } => ModelError::Gguf {
                file: path.display().to_string(),
                msg: format!(
                    "tensor `{}` has shape {got:?}, expected {expected:?} from the metadata",
                    gguf_name(&name, family).unwrap_or(name)
                ),
            },
            other => other,
        })?;
    Ok((model, tok))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutation_round_trips_and_interleaves() {
        // One head of size 4 with two input columns: rows r0..r3.
        let w = Tensor::arange(0f32, 8.0, &Device::Cpu)
            .unwrap()
            .reshape((4, 2))
            .unwrap();
        let p = permute_qk(&w, 1).unwrap();
        // llama.cpp order: r0, r2, r1, r3 (pairs (i, i + d/2) made adjacent).
        assert_eq!(
            p.to_vec2::<f32>().unwrap(),
            vec![vec![0., 1.], vec![4., 5.], vec![2., 3.], vec![6., 7.]]
        );
        let back = unpermute_qk(&p, 1).unwrap();
        assert_eq!(back.to_vec2::<f32>().unwrap(), w.to_vec2::<f32>().unwrap());
        let b = Tensor::arange(0f32, 8.0, &Device::Cpu).unwrap();
        let pb = permute_qk(&b, 2).unwrap();
        assert_eq!(
            pb.to_vec1::<f32>().unwrap(),
            vec![0., 2., 1., 3., 4., 6., 5., 7.]
        );
        assert_eq!(
            unpermute_qk(&pb, 2).unwrap().to_vec1::<f32>().unwrap(),
            b.to_vec1::<f32>().unwrap()
        );
    }
}
