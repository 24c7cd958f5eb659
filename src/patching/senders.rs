//! Which senders a sweep patches: the attention heads of each sender layer, its MLP, or both.
//!
//! An MLP sender at layer l is patched the way a head is: in pass 1 every head's output stays
//! frozen to the contrast run, the MLPs are recomputed except the sender's, whose output
//! (TransformerLens' `hook_mlp_out`, after any post-MLP norm) is the normal run's. Receivers
//! and the score r are the same as for head senders.

use serde::{Deserialize, Serialize};

/// The kinds of sender a sweep computes (default: heads, the paper's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Senders {
    #[default]
    #[serde(rename = "heads")]
    Heads,
    #[serde(rename = "mlp")]
    Mlp,
    #[serde(rename = "heads,mlp")]
    HeadsAndMlp,
}

impl Senders {
    /// Every value, in the order the command line lists them.
    pub const ALL: [Senders; 3] = [Senders::Heads, Senders::Mlp, Senders::HeadsAndMlp];

    /// Whether the heads of each sender layer are senders.
    pub fn heads(self) -> bool {
        self != Senders::Mlp
    }

    /// Whether the MLP of each sender layer is a sender.
    pub fn mlp(self) -> bool {
        self != Senders::Heads
    }

    /// The name `--senders` takes and results record: `heads`, `mlp`, `heads,mlp`.
    pub fn name(self) -> &'static str {
        match self {
            Senders::Heads => "heads",
            Senders::Mlp => "mlp",
            Senders::HeadsAndMlp => "heads,mlp",
        }
    }

    /// Parses a comma-separated list of `heads` and `mlp` (either order, no repeats).
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts: Vec<&str> = s.split(',').map(str::trim).collect();
        parts.sort_unstable();
        match parts.as_slice() {
            ["heads"] => Some(Senders::Heads),
            ["mlp"] => Some(Senders::Mlp),
            ["heads", "mlp"] => Some(Senders::HeadsAndMlp),
            _ => None,
        }
    }
}

/// The patched metric per prompt of one chunk of sender layers, by kind of sender; a kind not
/// asked for is `None`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChunkValues {
    /// [layer][head][prompt], layers in the order asked.
    pub heads: Option<Vec<Vec<Vec<f32>>>>,
    /// [layer][prompt], layers in the order asked.
    pub mlp: Option<Vec<Vec<f32>>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_serde_uses_them() {
        for s in Senders::ALL {
            assert_eq!(Senders::parse(s.name()), Some(s));
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.name())
            );
        }
        assert_eq!(Senders::parse("mlp,heads"), Some(Senders::HeadsAndMlp));
        for bad in ["", "head", "mlp,mlp", "heads,mlp,heads", "attn"] {
            assert_eq!(Senders::parse(bad), None, "{bad}");
        }
        assert!(Senders::Heads.heads() && !Senders::Heads.mlp());
        assert!(!Senders::Mlp.heads() && Senders::Mlp.mlp());
    }
}
