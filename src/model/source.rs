//! Finding a model's files: a local directory, a GGUF file, or a hub id resolved in the
//! standard Hugging Face cache (downloading when online).

use std::path::{Path, PathBuf};

use std::time::Instant;

use candle_core::{DType, Device};

use super::config::ModelConfig;
use super::tokenizer::Tokenizer;
use super::transformer::Model;
use super::weights::SafetensorsSource;
use super::ModelError;

/// Where a model came from, for result metadata.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ModelOrigin {
    /// A local Hugging Face directory.
    Local { path: String },
    /// A hub id resolved in the Hugging Face cache; `commit` is the snapshot used.
    Hub {
        id: String,
        revision: String,
        commit: Option<String>,
    },
    /// A GGUF file.
    Gguf { path: String },
}

impl ModelOrigin {
    pub fn label(&self) -> String {
        match self {
            ModelOrigin::Local { path } | ModelOrigin::Gguf { path } => path.clone(),
            ModelOrigin::Hub { id, revision, .. } if revision == "main" => id.clone(),
            ModelOrigin::Hub { id, revision, .. } => format!("{id}@{revision}"),
        }
    }
}

/// The files of a Hugging Face-format model.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    pub config: PathBuf,
    pub weights: Vec<PathBuf>,
    pub tokenizer: Option<PathBuf>,
    pub origin: ModelOrigin,
}

/// A model with its tokenizer, ready to run.
pub struct LoadedModel {
    pub model: Model,
    pub tokenizer: Tokenizer,
    pub origin: ModelOrigin,
    pub load_seconds: f64,
}

impl LoadedModel {
    /// Why a prompt of `ids` cannot run on this model, if it cannot: more tokens than its
    /// positions (a rotary model would run on silently, past what it was trained for), or a
    /// token id outside its vocabulary (another model's tokenizer). One check for the command
    /// line and the explorer.
    pub fn prompt_misfit(&self, ids: &[u32]) -> Option<String> {
        let max = self.model.cfg.max_positions();
        if ids.len() > max {
            return Some(format!(
                "the prompt is {} tokens long; the model {} takes at most {max} positions (max_position_embeddings)",
                ids.len(),
                self.origin.label()
            ));
        }
        let vocab = self.model.cfg.vocab_size;
        ids.iter().find(|&&id| id as usize >= vocab).map(|bad| {
            format!(
                "token id {bad} of tokenizer {} is outside the vocabulary of model {} (size {vocab}): the tokenizer does not belong to the model",
                self.tokenizer.path,
                self.origin.label()
            )
        })
    }
}

/// The groups of a device list, checked but not opened: copies separated by `,`, each one
/// device or several joined by `+` (one model with its layers placed over them, as results
/// record it): `cpu`, `cuda:0,cuda:1` (two copies), `cuda:0+cuda:1` (one model over two
/// cards), `cuda:0+cuda:1,cuda:2+cuda:3`. The one reader of the syntax for the command line,
/// the explorer's setup and its worker.
pub fn device_groups(text: &str) -> Result<Vec<Vec<String>>, ModelError> {
    let bad = |why: String| {
        ModelError::Invalid(format!(
            "device {text:?}: {why} (expected cpu, cuda or cuda:N; copies separated by `,`, one model's devices joined by `+`)"
        ))
    };
    text.split(',')
        .map(|group| {
            group
                .split('+')
                .map(|d| match d.trim() {
                    "" => Err(bad("an empty device in the list".into())),
                    d => match ordinal(d) {
                        Ok(_) => Ok(d.to_string()),
                        Err(why) => Err(bad(why)),
                    },
                })
                .collect()
        })
        .collect()
}

/// [`device_groups`], each device opened.
pub fn parse_device_groups(text: &str) -> Result<Vec<Vec<Device>>, ModelError> {
    device_groups(text)?
        .iter()
        .map(|g| g.iter().map(|d| parse_device(d)).collect())
        .collect()
}

/// What a device name says: `None` for `cpu`, the ordinal N of `cuda:N` (`cuda` is 0).
fn ordinal(s: &str) -> Result<Option<usize>, String> {
    match s {
        "cpu" => Ok(None),
        "cuda" => Ok(Some(0)),
        s => match s.strip_prefix("cuda:") {
            Some(n) => n
                .parse()
                .map(Some)
                .map_err(|_| format!("bad device {s:?}: expected cuda:N with N a number")),
            None => Err(format!("unknown device {s:?}")),
        },
    }
}

/// Parses `cpu`, `cuda` or `cuda:N`.
pub fn parse_device(s: &str) -> Result<Device, ModelError> {
    match ordinal(s) {
        Ok(None) => Ok(Device::Cpu),
        Ok(Some(n)) => cuda_device(n),
        Err(why) if why.starts_with("unknown") => Err(ModelError::Invalid(format!(
            "{why} (expected cpu, cuda or cuda:N)"
        ))),
        Err(why) => Err(ModelError::Invalid(why)),
    }
}

#[cfg(feature = "cuda")]
fn cuda_device(ordinal: usize) -> Result<Device, ModelError> {
    Device::new_cuda(ordinal).map_err(|e| {
        ModelError::Invalid(format!(
            "cannot open CUDA device {ordinal}: {}",
            super::error::one_line(&e)
        ))
    })
}

#[cfg(not(feature = "cuda"))]
fn cuda_device(_ordinal: usize) -> Result<Device, ModelError> {
    Err(ModelError::Invalid(
        "this headhunt was built without CUDA; rebuild with `cargo build --release --features cuda`".into(),
    ))
}

/// Parses `f32`, `bf16` or `f16`; `None` picks the device's default (f32 on CPU, bf16 on GPU).
pub fn parse_dtype(s: Option<&str>, device: &Device) -> Result<DType, ModelError> {
    match s {
        None => Ok(if device.is_cpu() {
            DType::F32
        } else {
            DType::BF16
        }),
        Some("f32") | Some("float32") => Ok(DType::F32),
        Some("bf16") | Some("bfloat16") => Ok(DType::BF16),
        Some("f16") | Some("float16") => Ok(DType::F16),
        // For exact reference computations on CPU (e.g. `headhunt check --dtype f64`).
        Some("f64") | Some("float64") => Ok(DType::F64),
        Some(other) => Err(ModelError::Invalid(format!(
            "unknown dtype {other:?} (expected f32, bf16, f16 or f64)"
        ))),
    }
}

pub fn dtype_name(d: DType) -> &'static str {
    match d {
        DType::F32 => "f32",
        DType::BF16 => "bf16",
        DType::F16 => "f16",
        DType::F64 => "f64",
        _ => "other",
    }
}

pub fn device_name(d: &Device) -> String {
    match d {
        Device::Cpu => "cpu".into(),
        Device::Cuda(_) => "cuda".into(),
        Device::Metal(_) => "metal".into(),
    }
}

/// The devices a model lives on: `cpu`, or a placed model's devices joined by `+`
/// (`cuda+cuda`), as results record them.
pub fn devices_label(model: &Model) -> String {
    let names: Vec<String> = model
        .device_map()
        .devices()
        .iter()
        .map(device_name)
        .collect();
    names.join("+")
}

/// Looks like `org/name` or `org/name@revision` (and is not an existing path).
fn parse_hub_id(spec: &str) -> Option<(String, String)> {
    let (id, rev) = match spec.split_once('@') {
        Some((id, rev)) => (id, rev),
        None => (spec, "main"),
    };
    let parts: Vec<&str> = id.split('/').collect();
    let ok_part = |p: &str| {
        !p.is_empty()
            && p != "."
            && p != ".."
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    if parts.len() == 2 && parts.iter().all(|p| ok_part(p)) && !rev.is_empty() {
        Some((id.to_string(), rev.to_string()))
    } else {
        None
    }
}

/// Whether a `--model` that names nothing on disk was meant as a path, not a hub id: it starts
/// with `.`, `/` or `~`, has more than one `/`, or its first component is a folder here
/// (`assets/demo-model` run from a folder with `assets/` but not the model). Only the rest
/// (`org/name[@rev]`) goes to the hub.
fn looks_like_path(spec: &str) -> bool {
    let id = spec.split_once('@').map_or(spec, |(id, _)| id);
    spec.starts_with(['.', '/', '~'])
        || id.matches('/').count() > 1
        || id
            .split_once('/')
            .is_some_and(|(first, _)| Path::new(first).is_dir())
}

/// Resolves `--model`: a local directory, a `.gguf` file, or a hub id.
pub fn resolve(spec: &str) -> Result<ModelFiles, ModelError> {
    let path = Path::new(spec);
    if path.is_dir() {
        return local_files(path);
    }
    if path.is_file() {
        return Err(ModelError::ModelIsFile { spec: spec.into() });
    }
    match parse_hub_id(spec) {
        Some((id, rev)) if !looks_like_path(spec) => hub_files(&id, &rev).map_err(|e| match e {
            // Say that it was not a local folder either: `org/name` may have been meant as one.
            ModelError::Hub { id, msg } => ModelError::Hub {
                id,
                msg: format!("{msg} (and no folder {spec} is here)"),
            },
            other => other,
        }),
        _ => Err(ModelError::NotFound(format!(
            "model not found: {spec} is not a folder or file here{}",
            if spec.contains('/') && !spec.starts_with(['.', '/', '~']) {
                ""
            } else {
                " (a hub id looks like org/name)"
            }
        ))),
    }
}

/// The files of a local Hugging Face model directory.
pub fn local_files(dir: &Path) -> Result<ModelFiles, ModelError> {
    let origin = ModelOrigin::Local {
        path: dir.display().to_string(),
    };
    files_in(dir, origin)
}

fn files_in(dir: &Path, origin: ModelOrigin) -> Result<ModelFiles, ModelError> {
    let config = dir.join("config.json");
    if !config.is_file() {
        return Err(ModelError::NotFound(format!(
            "{}: config.json not found in the model directory",
            dir.display()
        )));
    }
    let weights = weight_files(dir)?;
    let tok = dir.join("tokenizer.json");
    Ok(ModelFiles {
        config,
        weights,
        tokenizer: tok.is_file().then_some(tok),
        origin,
    })
}

/// `model.safetensors`, or the shards named by `model.safetensors.index.json`.
fn weight_files(dir: &Path) -> Result<Vec<PathBuf>, ModelError> {
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        let text = std::fs::read_to_string(&index).map_err(|e| ModelError::io(&index, e))?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| ModelError::Config {
            file: index.display().to_string(),
            msg: format!("invalid JSON: {e}"),
        })?;
        let map = v
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| ModelError::Config {
                file: index.display().to_string(),
                msg: "field `weight_map`: missing (expected an object of tensor name → file)"
                    .into(),
            })?;
        let mut files: Vec<String> = map
            .values()
            .filter_map(|f| f.as_str().map(str::to_string))
            .collect();
        files.sort();
        files.dedup();
        let mut out = Vec::new();
        for f in files {
            let p = dir.join(&f);
            if !p.is_file() {
                return Err(ModelError::NotFound(format!(
                    "{}: shard {f} listed in model.safetensors.index.json is missing",
                    dir.display()
                )));
            }
            out.push(p);
        }
        return Ok(out);
    }
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    Err(ModelError::NotFound(format!(
        "{}: no model.safetensors or model.safetensors.index.json in the model directory",
        dir.display()
    )))
}

/// The hub cache folder: HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub.
pub fn hub_cache_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("HF_HUB_CACHE").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("HF_HOME").filter(|p| !p.is_empty()) {
        return PathBuf::from(p).join("hub");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache").join("huggingface").join("hub")
}

fn hub_offline() -> bool {
    matches!(
        std::env::var("HF_HUB_OFFLINE")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Ok("1") | Ok("true") | Ok("yes") | Ok("on")
    )
}

/// The snapshot folder of a cached repo at `revision` (a branch/tag name in refs/, or a commit).
fn cached_snapshot(cache: &Path, id: &str, revision: &str) -> Option<(PathBuf, String)> {
    let repo = cache.join(format!("models--{}", id.replace('/', "--")));
    let commit = match std::fs::read_to_string(repo.join("refs").join(revision)) {
        Ok(c) => c.trim().to_string(),
        Err(_) => revision.to_string(),
    };
    let snap = repo.join("snapshots").join(&commit);
    snap.join("config.json").is_file().then_some((snap, commit))
}

fn hub_files(id: &str, revision: &str) -> Result<ModelFiles, ModelError> {
    let cache = hub_cache_dir();
    if let Some((snap, commit)) = cached_snapshot(&cache, id, revision) {
        // Everything might not be there yet (e.g. an interrupted download): fall through to a
        // download when online.
        let origin = ModelOrigin::Hub {
            id: id.into(),
            revision: revision.into(),
            commit: Some(commit),
        };
        match files_in(&snap, origin) {
            Ok(f) => return Ok(f),
            Err(e) if hub_offline() => return Err(e),
            Err(_) => {}
        }
    }
    if hub_offline() {
        return Err(ModelError::Hub {
            id: format!("{id}@{revision}"),
            msg: format!(
                "not in the Hugging Face cache at {} and HF_HUB_OFFLINE is set",
                cache.display()
            ),
        });
    }
    download(id, revision, &cache)
}

fn download(id: &str, revision: &str, cache: &Path) -> Result<ModelFiles, ModelError> {
    use hf_hub::api::sync::ApiBuilder;
    use hf_hub::{Cache, Repo, RepoType};
    let err = |msg: String| ModelError::Hub {
        id: format!("{id}@{revision}"),
        msg,
    };
    let api = ApiBuilder::from_cache(Cache::new(cache.to_path_buf()))
        .with_progress(true)
        .build()
        .map_err(|e| err(super::error::one_line(&e)))?;
    let repo = api.repo(Repo::with_revision(
        id.to_string(),
        RepoType::Model,
        revision.to_string(),
    ));
    let get = |f: &str| {
        repo.get(f)
            .map_err(|e| err(format!("{f}: {}", super::error::one_line(&e))))
    };
    let config = get("config.json")?;
    let dir = config.parent().unwrap_or(Path::new(".")).to_path_buf();
    if let Ok(index) = repo.get("model.safetensors.index.json") {
        let text = std::fs::read_to_string(&index).map_err(|e| ModelError::io(&index, e))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| err(format!("bad index: {e}")))?;
        let mut shards: Vec<String> = v
            .get("weight_map")
            .and_then(|m| m.as_object())
            .map(|m| {
                m.values()
                    .filter_map(|f| f.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        shards.sort();
        shards.dedup();
        for s in shards {
            get(&s)?;
        }
    } else {
        get("model.safetensors")?;
    }
    let _ = repo.get("tokenizer.json");
    let commit = dir.file_name().map(|c| c.to_string_lossy().to_string());
    files_in(
        &dir,
        ModelOrigin::Hub {
            id: id.into(),
            revision: revision.into(),
            commit,
        },
    )
}

/// How to load a model, beyond where it is and on what device.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadOptions {
    /// A tokenizer.json to use instead of the model's own.
    pub tokenizer: Option<PathBuf>,
    /// Load even when the config (or GGUF metadata) holds keys headhunt does not read: they are
    /// kept in `ModelConfig::ignored_keys`, which results record as a warning.
    pub allow_unknown_config_keys: bool,
}

/// Loads a model and its tokenizer. `tokenizer` overrides the model's own tokenizer.json.
pub fn load(
    spec: &str,
    tokenizer: Option<&Path>,
    device: &Device,
    dtype: DType,
) -> Result<LoadedModel, ModelError> {
    let opts = LoadOptions {
        tokenizer: tokenizer.map(Path::to_path_buf),
        allow_unknown_config_keys: false,
    };
    load_with_progress(
        spec,
        &opts,
        std::slice::from_ref(device),
        dtype,
        &mut |_, _| {},
    )
}

/// [`load`] with options, calling `progress(layers loaded, layers)` as the layers load (the
/// worker reports it: big checkpoints take a while). Every command and the explorer load
/// through here, so the checks that a model and its tokenizer belong together
/// ([`check_tokenizer`]) run before any work, everywhere.
pub fn load_with_progress(
    spec: &str,
    opts: &LoadOptions,
    devices: &[Device],
    dtype: DType,
    progress: super::transformer::LoadProgress,
) -> Result<LoadedModel, ModelError> {
    let started = Instant::now();
    let tokenizer = opts.tokenizer.as_deref();
    if spec.ends_with(".gguf")
        || (Path::new(spec).is_file() && super::gguf::is_gguf(Path::new(spec)))
    {
        let (model, tok) =
            super::gguf::load_with_progress(Path::new(spec), opts, devices, dtype, progress)?;
        return Ok(LoadedModel {
            model,
            tokenizer: tok,
            origin: ModelOrigin::Gguf {
                path: spec.to_string(),
            },
            load_seconds: started.elapsed().as_secs_f64(),
        });
    }
    let files = resolve(spec)?;
    let cfg = ModelConfig::from_file_with(&files.config, opts.allow_unknown_config_keys)?;
    let tok_path = match (tokenizer, &files.tokenizer) {
        (Some(t), _) => t.to_path_buf(),
        (None, Some(t)) => t.clone(),
        (None, None) => {
            return Err(ModelError::NoTokenizer {
                dir: files
                    .config
                    .parent()
                    .unwrap_or(Path::new("."))
                    .display()
                    .to_string(),
            })
        }
    };
    let tokenizer = Tokenizer::from_file(&tok_path)?;
    check_tokenizer(&cfg, &tokenizer, &files.config.display().to_string())?;
    let source = SafetensorsSource::open(&files.weights)?;
    let model = Model::load_placed(cfg, &source, devices, dtype, progress)?;
    Ok(LoadedModel {
        model,
        tokenizer,
        origin: files.origin,
        load_seconds: started.elapsed().as_secs_f64(),
    })
}

/// Refuses a tokenizer that does not belong to the model, before any weights load: ids past
/// the model's embedding rows (another model's vocabulary), a BOS its post-processor adds that
/// is not the config's, or config BOS/EOS ids that are not special tokens of the tokenizer, or
/// a PAD id outside it. Such a pair runs, and scores the wrong tokens with confidence.
pub fn check_tokenizer(
    cfg: &ModelConfig,
    tok: &Tokenizer,
    config_file: &str,
) -> Result<(), ModelError> {
    let refuse = |what: String| {
        Err(ModelError::Invalid(format!(
            "tokenizer {} does not belong to the model of {config_file}: {what}",
            tok.path
        )))
    };
    let max_id = tok.max_id();
    if max_id as usize >= cfg.vocab_size {
        return refuse(format!(
            "its ids reach {max_id}, past the model's {} embedding rows (vocab_size)",
            cfg.vocab_size
        ));
    }
    if let (Some(added), Some(bos)) = (tok.bos, cfg.bos_token_id) {
        if added != bos {
            return refuse(format!(
                "it puts token {added} ({:?}) before every prompt, the config's bos_token_id is {bos}",
                tok.token_text(added)
            ));
        }
    }
    let specials = tok.special_ids();
    let named = cfg.bos_token_id.iter().map(|&b| ("bos_token_id", b));
    for (field, id) in named.chain(cfg.eos_token_ids.iter().map(|&e| ("eos_token_id", e))) {
        if !specials.contains(&id) {
            let what = match id > max_id {
                true => "no token of the tokenizer".to_string(),
                false => format!("{:?}, an ordinary text token there", tok.token_text(id)),
            };
            return refuse(format!(
                "the config's {field} {id} is {what}, not a special token"
            ));
        }
    }
    match cfg.pad_token_id {
        Some(pad) if pad > max_id => refuse(format!(
            "the config's pad_token_id {pad} is past its largest id {max_id}"
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_ids() {
        assert_eq!(
            parse_hub_id("google/gemma-2-9b"),
            Some(("google/gemma-2-9b".into(), "main".into()))
        );
        assert_eq!(
            parse_hub_id("meta-llama/Llama-2-7b-hf@abc123"),
            Some(("meta-llama/Llama-2-7b-hf".into(), "abc123".into()))
        );
        assert_eq!(parse_hub_id("a/b/c"), None);
        assert_eq!(parse_hub_id("gpt2"), None);
        assert_eq!(parse_hub_id("../x"), None);
    }

    #[test]
    fn paths_never_go_to_the_hub() {
        for spec in [
            "./m",
            "../m/x",
            "/abs/m",
            "~/m",
            "a/b/c",
            "src/model-that-is-not-here",
        ] {
            assert!(looks_like_path(spec), "{spec}");
            match resolve(spec) {
                Err(ModelError::NotFound(m)) => assert!(m.contains(spec), "{m}"),
                other => panic!("{spec}: {:?}", other.map(|f| f.origin)),
            }
        }
        assert!(!looks_like_path("google/gemma-2-9b"));
        assert!(!looks_like_path("org/name@abc"));
    }

    #[test]
    fn offline_cache_lookup() {
        let tmp = std::env::temp_dir().join(format!("hh-cache-{}", std::process::id()));
        let repo = tmp.join("models--org--m");
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::create_dir_all(repo.join("snapshots/abc")).unwrap();
        std::fs::write(repo.join("refs/main"), "abc\n").unwrap();
        std::fs::write(repo.join("snapshots/abc/config.json"), "{}").unwrap();
        let (snap, commit) = cached_snapshot(&tmp, "org/m", "main").unwrap();
        assert_eq!(commit, "abc");
        assert!(snap.ends_with("snapshots/abc"));
        assert!(cached_snapshot(&tmp, "org/m", "abc").is_some());
        assert!(cached_snapshot(&tmp, "org/other", "main").is_none());
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
