//! Receivers: where the sender heads' effect is read — the residual stream at some layers, one
//! or more heads' q/k/v inputs, or one layer's MLP input.

use std::fmt;

use crate::model::{BlockShape, HeadInput, HookPoint};

use super::SpecError;

/// Which residual stream of a layer.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ResidKind {
    /// Entering the block (before attention).
    ResidPre,
    /// After attention, before the MLP.
    ResidMid,
    /// After the block.
    ResidPost,
}

impl ResidKind {
    pub fn name(self) -> &'static str {
        match self {
            ResidKind::ResidPre => "resid_pre",
            ResidKind::ResidMid => "resid_mid",
            ResidKind::ResidPost => "resid_post",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "resid_pre" => Some(ResidKind::ResidPre),
            "resid_mid" => Some(ResidKind::ResidMid),
            "resid_post" => Some(ResidKind::ResidPost),
            _ => None,
        }
    }
    pub fn hook_point(self) -> HookPoint {
        match self {
            ResidKind::ResidPre => HookPoint::ResidPre,
            ResidKind::ResidMid => HookPoint::ResidMid,
            ResidKind::ResidPost => HookPoint::ResidPost,
        }
    }
}

/// One receiver head and the input of it that is patched.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct HeadReceiver {
    pub layer: usize,
    pub head: usize,
    pub input: HeadInput,
}

impl fmt::Display for HeadReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.layer, self.head, self.input.letter())
    }
}

/// Where the senders' effect is read.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Receiver {
    /// The residual stream (one kind) at one or more layers.
    Resid { kind: ResidKind, layers: Vec<usize> },
    /// One or more heads, each with its own patched input.
    Heads { heads: Vec<HeadReceiver> },
    /// The input of one layer's MLP (TransformerLens' `blocks.L.hook_mlp_in`): resid_mid in a
    /// sequential block, resid_pre in a parallel one (`parallel`, set from the model by
    /// [`Receiver::for_block`], since which heads reach it depends on it). Pass 2 replaces
    /// only what the MLP reads; the residual stream itself stays the contrast run's.
    MlpIn {
        layer: usize,
        #[serde(default)]
        parallel: bool,
    },
}

impl Receiver {
    pub fn resid_post(layer: usize) -> Self {
        Receiver::Resid {
            kind: ResidKind::ResidPost,
            layers: vec![layer],
        }
    }
    pub fn head(layer: usize, head: usize, input: HeadInput) -> Self {
        Receiver::Heads {
            heads: vec![HeadReceiver { layer, head, input }],
        }
    }

    /// An `mlp_in:L` receiver for a sequential block (see [`Receiver::for_block`]).
    pub fn mlp_in(layer: usize) -> Self {
        Receiver::MlpIn {
            layer,
            parallel: false,
        }
    }

    /// The receiver for a model of block shape `shape`: an `mlp_in` receiver learns whether
    /// its MLP reads resid_pre (parallel) or resid_mid (sequential); others are unchanged.
    pub fn for_block(mut self, shape: BlockShape) -> Self {
        if let Receiver::MlpIn { parallel, .. } = &mut self {
            *parallel = shape == BlockShape::Parallel;
        }
        self
    }

    /// Parses one receiver value: `resid_post:41`, `resid_pre:3,5`, `mlp_in:12` or `39.7.v`.
    pub fn parse_one(s: &str) -> Result<Self, SpecError> {
        let bad = |why: &'static str| SpecError::ReceiverSyntax {
            text: s.to_string(),
            why,
        };
        if let Some(layer) = s.strip_prefix("mlp_in:") {
            let layer = layer
                .trim()
                .parse::<usize>()
                .map_err(|_| bad("mlp_in takes one layer number"))?;
            return Ok(Receiver::mlp_in(layer));
        }
        if let Some((kind, layers)) = s.split_once(':') {
            let kind = ResidKind::parse(kind).ok_or_else(|| bad("unknown residual stream"))?;
            let layers = layers
                .split(',')
                .map(|l| {
                    l.trim()
                        .parse::<usize>()
                        .map_err(|_| bad("layer is not a number"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(Receiver::Resid { kind, layers });
        }
        let parts: Vec<&str> = s.split('.').collect();
        if parts.len() != 3 {
            return Err(bad("not a residual stream or a head"));
        }
        let layer = parts[0].parse().map_err(|_| bad("layer is not a number"))?;
        let head = parts[1].parse().map_err(|_| bad("head is not a number"))?;
        let input = HeadInput::parse(parts[2]).ok_or_else(|| bad("input must be q, k or v"))?;
        Ok(Receiver::head(layer, head, input))
    }

    /// Combines several receiver values into one receiver (all residual of one kind, or all
    /// heads). A value may hold several, separated by spaces or commas (`39.7.v,39.12.v`,
    /// `resid_post:2,resid_post:3`), as the explorer's prompt takes them.
    pub fn parse_many(values: &[String]) -> Result<Self, SpecError> {
        let mut out: Option<Receiver> = None;
        for v in values.iter().flat_map(|v| split_values(v)) {
            let r = Receiver::parse_one(&v)?;
            out = Some(match (out, r) {
                (None, r) => r,
                (
                    Some(Receiver::Resid {
                        kind: k1,
                        layers: mut l1,
                    }),
                    Receiver::Resid {
                        kind: k2,
                        layers: l2,
                    },
                ) => {
                    if k1 != k2 {
                        return Err(SpecError::ReceiverKinds {
                            first: k1.name(),
                            second: k2.name(),
                        });
                    }
                    l1.extend(l2);
                    Receiver::Resid {
                        kind: k1,
                        layers: l1,
                    }
                }
                (Some(Receiver::Heads { heads: mut h1 }), Receiver::Heads { heads: h2 }) => {
                    h1.extend(h2);
                    Receiver::Heads { heads: h1 }
                }
                (Some(a @ Receiver::MlpIn { .. }), b @ Receiver::MlpIn { .. }) if a == b => a,
                _ => return Err(SpecError::ReceiverMixed),
            });
        }
        let mut r = out.ok_or(SpecError::NoReceiver)?;
        r.normalize();
        Ok(r)
    }

    /// Parses receiver values that may carry a position set each (`39.7.q@last`,
    /// `resid_post:20@pos:9`, `mlp_in:12@role:S2`): the receiver, and per part
    /// ([`Receiver::parts`], in its sorted order) the set's text, `None` where none was given
    /// (every position). The sets are parsed against the data later
    /// (`data::PositionSet::parse`).
    pub fn parse_positioned(values: &[String]) -> Result<(Self, Vec<Option<String>>), SpecError> {
        let mut bare: Vec<String> = Vec::new();
        // (receiver of one value, its set)
        let mut given: Vec<(Receiver, Option<String>)> = Vec::new();
        for v in values.iter().flat_map(|v| split_values(v)) {
            let (text, set) = match v.split_once('@') {
                Some((t, s)) => (t.to_string(), Some(s.to_string())),
                None => (v.clone(), None),
            };
            given.push((Receiver::parse_one(&text)?, set));
            bare.push(text);
        }
        let receiver = Receiver::parse_many(&bare)?;
        let keys = receiver.part_keys();
        let mut sets: Vec<Option<String>> = vec![None; keys.len()];
        let mut seen = vec![false; keys.len()];
        for (r, set) in given {
            for key in r.part_keys() {
                let i = keys
                    .iter()
                    .position(|k| *k == key)
                    .expect("a part of the whole");
                if seen[i] && sets[i] != set {
                    return Err(SpecError::ReceiverSyntax {
                        text: key,
                        why: "given twice with different position sets",
                    });
                }
                seen[i] = true;
                sets[i] = set.clone();
            }
        }
        Ok((receiver, sets))
    }

    /// One text per part, as `--receiver` names it: `resid_post:3`, `39.7.q`, `mlp_in:12`.
    fn part_keys(&self) -> Vec<String> {
        match self {
            Receiver::Resid { kind, layers } => layers
                .iter()
                .map(|l| format!("{}:{l}", kind.name()))
                .collect(),
            Receiver::Heads { heads } => heads.iter().map(|h| h.to_string()).collect(),
            Receiver::MlpIn { .. } => vec![self.cli_text()],
        }
    }

    /// The receiver as `--receiver` values take it with each part's position set
    /// (`39.7.q@last 40.2.k`, `resid_post:20@pos:9`); parts without one are written bare.
    pub fn positioned_text(&self, sets: &[Option<String>]) -> String {
        if sets.iter().all(|s| s.is_none()) {
            return self.cli_text();
        }
        self.part_keys()
            .iter()
            .zip(sets.iter().chain(std::iter::repeat(&None)))
            .map(|(k, s)| match s {
                Some(s) => format!("{k}@{s}"),
                None => k.clone(),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// [`Receiver::slug`] with the position sets, filesystem-safe: `h39_7_q_at_last`.
    pub fn positioned_slug(&self, sets: &[Option<String>]) -> String {
        if sets.iter().all(|s| s.is_none()) {
            return self.slug();
        }
        let text = self.positioned_text(sets).replace('@', "_at_");
        let safe: String = text
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        safe.trim_matches('_').to_string()
    }

    /// Parses the receiver notation of the reference fixtures' `expected.json`:
    /// `["resid", ["resid_post", [L, ...]]]`, `["heads", [[L, H, "v"], ...]]` or
    /// `["mlp_in", L]`.
    pub fn from_fixture_json(v: &serde_json::Value) -> Option<Self> {
        let mut r = match v.get(0)?.as_str()? {
            "resid" => Receiver::Resid {
                kind: ResidKind::parse(v[1][0].as_str()?)?,
                layers: v[1][1]
                    .as_array()?
                    .iter()
                    .map(|l| l.as_u64().map(|l| l as usize))
                    .collect::<Option<_>>()?,
            },
            "heads" => Receiver::Heads {
                heads: v[1]
                    .as_array()?
                    .iter()
                    .map(|h| {
                        Some(HeadReceiver {
                            layer: h[0].as_u64()? as usize,
                            head: h[1].as_u64()? as usize,
                            input: HeadInput::parse(h[2].as_str()?)?,
                        })
                    })
                    .collect::<Option<_>>()?,
            },
            "mlp_in" => Receiver::mlp_in(v[1].as_u64()? as usize),
            _ => return None,
        };
        r.normalize();
        Some(r)
    }

    /// Sorts and deduplicates layers and heads.
    pub fn normalize(&mut self) {
        match self {
            Receiver::Resid { layers, .. } => {
                layers.sort_unstable();
                layers.dedup();
            }
            Receiver::Heads { heads } => {
                heads.sort_unstable();
                heads.dedup();
            }
            Receiver::MlpIn { .. } => {}
        }
    }

    /// How many parts the receiver has, each with its own position set in pass 2: a residual
    /// receiver's layers, the heads (in their sorted order), the one MLP input.
    pub fn parts(&self) -> usize {
        match self {
            Receiver::Resid { layers, .. } => layers.len(),
            Receiver::Heads { heads } => heads.len(),
            Receiver::MlpIn { .. } => 1,
        }
    }

    /// The last layer the receiver reads at: senders go up to it.
    pub fn max_layer(&self) -> usize {
        match self {
            Receiver::Resid { layers, .. } => layers.iter().copied().max().unwrap_or(0),
            Receiver::Heads { heads } => heads.iter().map(|h| h.layer).max().unwrap_or(0),
            Receiver::MlpIn { layer, .. } => *layer,
        }
    }

    /// Whether the receiver needs only the last position of the patched run: a residual stream
    /// after the last layer's attention (its `resid_mid` or `resid_post`), where everything left
    /// is per position and only the last one enters the metric. `resid_pre` of the last layer
    /// feeds that layer's attention, which reads every position; head receivers read keys and
    /// values at every position. The last layer's MLP input is read per position too. The one
    /// rule the fast sweep, chunk sizing and the explorer's estimate use.
    pub fn last_position_only(&self, n_layers: usize) -> bool {
        match self {
            Receiver::Resid { kind, .. } => {
                *kind != ResidKind::ResidPre && self.max_layer() + 1 == n_layers
            }
            Receiver::Heads { .. } => false,
            Receiver::MlpIn { layer, .. } => layer + 1 == n_layers,
        }
    }

    /// Checks layers and heads against the model.
    pub fn validate(&self, n_layers: usize, n_heads: usize) -> Result<(), SpecError> {
        match self {
            Receiver::Resid { layers, kind } => {
                if layers.is_empty() {
                    return Err(SpecError::ReceiverEmpty { what: "layers" });
                }
                for &l in layers {
                    if l >= n_layers {
                        return Err(SpecError::ReceiverLayer {
                            receiver: format!("{}:{l}", kind.name()),
                            n_layers,
                        });
                    }
                }
            }
            Receiver::Heads { heads } => {
                if heads.is_empty() {
                    return Err(SpecError::ReceiverEmpty { what: "heads" });
                }
                for h in heads {
                    if h.layer >= n_layers {
                        return Err(SpecError::ReceiverLayer {
                            receiver: h.to_string(),
                            n_layers,
                        });
                    }
                    if h.head >= n_heads {
                        return Err(SpecError::ReceiverHead {
                            receiver: h.to_string(),
                            n_heads,
                        });
                    }
                }
            }
            Receiver::MlpIn { layer, .. } => {
                if *layer >= n_layers {
                    return Err(SpecError::ReceiverLayer {
                        receiver: self.cli_text(),
                        n_layers,
                    });
                }
            }
        }
        Ok(())
    }

    /// Whether a head sender in `layer` can reach the receiver at all. Senders in the
    /// receiver's layer reach resid_mid and resid_post of that layer, not resid_pre nor a
    /// head's input; they reach their layer's MLP input in a sequential block (it is
    /// resid_mid), not in a parallel one (it is resid_pre, read beside the attention).
    pub fn reachable_from(&self, layer: usize) -> bool {
        match self {
            Receiver::Resid {
                kind: ResidKind::ResidPre,
                ..
            }
            | Receiver::Heads { .. }
            | Receiver::MlpIn { parallel: true, .. } => layer < self.max_layer(),
            Receiver::Resid { .. } | Receiver::MlpIn { .. } => layer <= self.max_layer(),
        }
    }

    /// Whether the MLP of sender layer `layer` reaches the receiver: as the layer's heads do,
    /// except that an MLP writes after resid_mid, so it cannot reach its own layer's resid_mid
    /// nor its own input.
    pub fn mlp_reachable_from(&self, layer: usize) -> bool {
        match self {
            Receiver::Resid {
                kind: ResidKind::ResidMid,
                ..
            }
            | Receiver::MlpIn { .. } => layer < self.max_layer(),
            _ => self.reachable_from(layer),
        }
    }

    /// The highest sender layer that reaches the receiver, if any does (none for heads of
    /// layer 0 only, or `resid_pre:0`): where a begin layer is clamped to.
    pub fn last_sender_layer(&self) -> Option<usize> {
        (0..=self.max_layer())
            .rev()
            .find(|&l| self.reachable_from(l))
    }

    /// Whether any sender from `begin_layer` up reaches the receiver.
    pub fn reached_from_begin(&self, begin_layer: usize) -> bool {
        self.last_sender_layer().is_some_and(|l| l >= begin_layer)
    }

    /// The receiver heads a sender in `layer` reaches: those in later layers (none for a
    /// residual receiver, which is reached as a whole: see [`Receiver::reachable_from`]).
    pub fn heads_reached_from(&self, layer: usize) -> Vec<HeadReceiver> {
        match self {
            Receiver::Resid { .. } | Receiver::MlpIn { .. } => Vec::new(),
            Receiver::Heads { heads } => {
                heads.iter().copied().filter(|r| r.layer > layer).collect()
            }
        }
    }

    /// Short label: `resid_post 41`, `mlp_in 12`, `39.7.v`, `39.7.v + 40.2.k`.
    pub fn label(&self) -> String {
        self.joined(" ", " + ")
    }

    /// As `--receiver` values take it: `resid_post:41`, `mlp_in:12`, `39.7.v 40.2.k`.
    pub fn cli_text(&self) -> String {
        self.joined(":", " ")
    }

    fn joined(&self, kind_sep: &str, head_sep: &str) -> String {
        match self {
            Receiver::Resid { kind, layers } => {
                let layers: Vec<String> = layers.iter().map(|l| l.to_string()).collect();
                format!("{}{kind_sep}{}", kind.name(), layers.join(","))
            }
            Receiver::Heads { heads } => heads
                .iter()
                .map(|h| h.to_string())
                .collect::<Vec<_>>()
                .join(head_sep),
            Receiver::MlpIn { layer, .. } => format!("mlp_in{kind_sep}{layer}"),
        }
    }

    /// A file-name-friendly slug: `resid_post_41`, `mlp_in_12`, `h39_7_v`.
    pub fn slug(&self) -> String {
        match self {
            Receiver::Resid { kind, layers } => format!(
                "{}_{}",
                kind.name(),
                layers
                    .iter()
                    .map(|l| l.to_string())
                    .collect::<Vec<_>>()
                    .join("_")
            ),
            Receiver::Heads { heads } => heads
                .iter()
                .map(|h| format!("h{}_{}_{}", h.layer, h.head, h.input.letter()))
                .collect::<Vec<_>>()
                .join("+"),
            Receiver::MlpIn { layer, .. } => format!("mlp_in_{layer}"),
        }
    }
}

/// The receiver values in one text: split at spaces and commas, where a bare layer number
/// continues the residual value before it (`resid_post:2,3` stays one value, a layer list).
fn split_values(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for part in text.split(|c: char| c == ',' || c.is_whitespace()) {
        if part.is_empty() {
            continue;
        }
        // `2` of `resid_post:1,2`, also as `2@last` (the set is the whole value's).
        let layer = part.split('@').next().unwrap_or(part);
        let bare_layer = !layer.is_empty() && layer.chars().all(|c| c.is_ascii_digit());
        // A position set's list (`@pos:9,-1`, `@role:IO,S1`) goes on too.
        let set_item = !part.contains(['.', ':', '@']);
        match out.last_mut() {
            Some(last)
                if (bare_layer && last.contains(':')) || (set_item && last.contains('@')) =>
            {
                last.push(',');
                last.push_str(part);
            }
            _ => out.push(part.to_string()),
        }
    }
    out
}

impl fmt::Display for Receiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_receivers() {
        assert_eq!(
            Receiver::parse_one("resid_post:41").unwrap(),
            Receiver::resid_post(41)
        );
        assert_eq!(
            Receiver::parse_one("39.7.v").unwrap(),
            Receiver::head(39, 7, HeadInput::V)
        );
        let r = Receiver::parse_many(&["40.2.k".into(), "39.7.v".into()]).unwrap();
        assert_eq!(r.max_layer(), 40);
        assert_eq!(r.label(), "39.7.v + 40.2.k");
        assert!(Receiver::parse_many(&["39.7.v".into(), "resid_post:3".into()]).is_err());
        assert!(Receiver::parse_one("39.7.x").is_err());
        assert!(Receiver::parse_one("resid_foo:3").is_err());
    }

    /// One value may hold several receivers, as the explorer's `:` prompt takes them; a bare
    /// number after a residual value is one more of its layers.
    #[test]
    fn one_value_holds_a_list() {
        let many = |s: &str| Receiver::parse_many(&[s.to_string()]);
        let heads = Receiver::parse_many(&["39.7.v".into(), "39.12.q".into()]).unwrap();
        assert_eq!(many("39.7.v,39.12.q").unwrap(), heads);
        assert_eq!(many(" 39.12.q  39.7.v ").unwrap(), heads);
        let resid = Receiver::parse_one("resid_post:2,3").unwrap();
        assert_eq!(many("resid_post:2,resid_post:3").unwrap(), resid);
        assert_eq!(many("resid_post:2, 3").unwrap(), resid);
        assert_eq!(many("resid_post:3 resid_post:2").unwrap(), resid);
        assert!(matches!(
            many("resid_post:2,3.1.v"),
            Err(SpecError::ReceiverMixed)
        ));
        assert!(many("3.1.v,2").is_err());
        assert!(matches!(many(" , "), Err(SpecError::NoReceiver)));
    }

    /// `TEXT@SET` values: each part gets its value's set, in the receiver's sorted order; a
    /// set's own commas stay with it; a part given twice with two sets is refused.
    #[test]
    fn parses_position_sets() {
        let many = |v: &[&str]| {
            Receiver::parse_positioned(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        };
        let (r, sets) = many(&["40.2.k", "39.7.q@last"]).unwrap();
        assert_eq!(r.label(), "39.7.q + 40.2.k");
        assert_eq!(sets, vec![Some("last".to_string()), None]);
        assert_eq!(r.positioned_text(&sets), "39.7.q@last 40.2.k");
        assert_eq!(r.positioned_slug(&sets), "39_7_q_at_last_40_2_k");
        let (r, sets) = many(&["resid_post:20@pos:9,-1"]).unwrap();
        assert_eq!(r, Receiver::resid_post(20));
        assert_eq!(sets, vec![Some("pos:9,-1".to_string())]);
        let (_, sets) = many(&["mlp_in:12@role:S2,IO"]).unwrap();
        assert_eq!(sets, vec![Some("role:S2,IO".to_string())]);
        let (r, sets) = many(&["resid_post:1,2@last"]).unwrap();
        assert_eq!(r.parts(), 2);
        assert_eq!(sets, vec![Some("last".to_string()); 2]);
        let (_, sets) = many(&["39.7.q,39.8.v"]).unwrap();
        assert_eq!(sets, vec![None, None]);
        assert!(many(&["39.7.q@last", "39.7.q@all"]).is_err());
    }

    #[test]
    fn validates_ranges() {
        let e = Receiver::parse_one("50.1.v")
            .unwrap()
            .validate(42, 16)
            .unwrap_err()
            .to_string();
        assert!(e.contains("layer out of range") && e.contains("42"), "{e}");
        let e = Receiver::parse_one("3.16.q")
            .unwrap()
            .validate(42, 16)
            .unwrap_err()
            .to_string();
        assert!(e.contains("head out of range"), "{e}");
        assert!(Receiver::parse_one("resid_post:42")
            .unwrap()
            .validate(42, 16)
            .is_err());
    }

    #[test]
    fn reachability() {
        let r = Receiver::resid_post(3);
        assert!(r.reachable_from(3) && !r.reachable_from(4));
        let r = Receiver::parse_one("resid_pre:3").unwrap();
        assert!(r.reachable_from(2) && !r.reachable_from(3));
        let r = Receiver::head(3, 1, HeadInput::V);
        assert!(r.reachable_from(2) && !r.reachable_from(3));
        let r = Receiver::parse_many(&["1.0.q".into(), "3.1.v".into()]).unwrap();
        assert_eq!(r.heads_reached_from(0).len(), 2);
        assert_eq!(
            r.heads_reached_from(1),
            vec![HeadReceiver {
                layer: 3,
                head: 1,
                input: HeadInput::V
            }]
        );
        assert!(r.heads_reached_from(3).is_empty());
        assert!(Receiver::resid_post(3).heads_reached_from(0).is_empty());
        assert_eq!(r.last_sender_layer(), Some(2));
        assert_eq!(Receiver::head(0, 1, HeadInput::V).last_sender_layer(), None);
        assert_eq!(Receiver::resid_post(3).last_sender_layer(), Some(3));
        assert!(r.reached_from_begin(2) && !r.reached_from_begin(3));
    }

    #[test]
    fn sender_layers_stop_where_senders_stop_reaching() {
        let spec = |text: &str, begin_layer| crate::patching::PatchSpec {
            receiver: Receiver::parse_one(text).unwrap(),
            begin_layer,
            batch_size: 1,
            algorithm: Default::default(),
            chunk_rows: 0,
            metric: Default::default(),
            senders: Default::default(),
        };
        // Heads of layer 3 cannot reach resid_pre of layer 3: row 3 is never computed.
        assert_eq!(spec("resid_pre:3", 0).sender_layers(), vec![2, 1, 0]);
        assert_eq!(spec("resid_post:3", 1).sender_layers(), vec![3, 2, 1]);
        assert_eq!(spec("3.1.q", 2).sender_layers(), vec![2]);
        assert!(spec("resid_pre:0", 0).sender_layers().is_empty());
    }
}
