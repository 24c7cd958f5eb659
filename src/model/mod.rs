//! The model layer: configs for every supported family, weight loading (safetensors, GGUF,
//! the Hugging Face cache), the tokenizer, and the hookable forward pass.

pub mod config;
pub mod config_keys;
#[cfg(feature = "cuda")]
pub mod cuda_memory;
pub mod error;
mod families;
pub mod gguf;
pub mod gguf_vocab;
pub mod hooks;
pub mod ops;
pub mod placement;
pub mod presets;
pub mod rope;
pub mod source;
pub mod tokenizer;
pub mod transformer;
pub mod weights;

pub use config::{BlockShape, Family, ModelConfig, NormKind};
pub use error::ModelError;
pub use hooks::{ActivationCache, Capture, HookName, HookPoint, Hooks, Patch};
pub use placement::DeviceMap;
pub use source::{load, LoadedModel, ModelOrigin};
pub use tokenizer::Tokenizer;
pub use transformer::{ForwardOutput, HeadInput, Model, RunOptions, Start};
