//! The command line's names for the core's enums: clap's `ValueEnum` for each, so that the core
//! needs no clap. The accepted names are the core's own `name()`s; the help of each value is
//! the command line's wording.

use clap::builder::PossibleValue;
use clap::ValueEnum;

use crate::data::generate::Setting;
use crate::data::{AnswerTokenRule, TaskChoice};
use crate::patching::attention::RunKind;
use crate::patching::Algorithm;

/// A `ValueEnum` for a core enum with `ALL` and `name()`; each `Variant => "help"` pair gives
/// a value's help (values without one have none).
macro_rules! value_enum {
    ($t:ty { $($v:ident => $help:expr),* $(,)? }) => {
        impl ValueEnum for $t {
            fn value_variants<'a>() -> &'a [Self] {
                &<$t>::ALL
            }
            fn to_possible_value(&self) -> Option<PossibleValue> {
                let help: Option<&'static str> = match self {
                    $(<$t>::$v => $help,)*
                };
                let value = PossibleValue::new(self.name());
                Some(match help {
                    Some(h) => value.help(h),
                    None => value,
                })
            }
        }
    };
}

value_enum!(Algorithm {
    Fast => Some("Exact and fast: frozen attention, MLP-only chains, senders of a layer batched"),
    Reference => Some("The paper's literal algorithm: two full forward passes per sender"),
});

value_enum!(RunKind {
    Normal => None,
    Contrast => None,
});

value_enum!(AnswerTokenRule {
    Last => Some("The last token of the tokenized answer string, BOS included (the paper's choice)"),
    First => Some("The first token of the answer as a continuation of the prompt"),
});

value_enum!(Setting {
    Normal => None,
    Setting1 => None,
    Setting2 => None,
    Setting3 => Some("Base-k addition only"),
});

value_enum!(TaskChoice {
    Auto => Some(
        "Prompt pairs if lines have `normal_input`; cipher if the operands are strings; base-k \
         addition if the file name ends in `_base<B>.jsonl` (or --base is given); else addition"
    ),
    Addition => None,
    Base => None,
    Cipher => None,
    Pairs => None,
});

#[cfg(test)]
mod tests {
    use super::*;

    /// Every core value round-trips through its command-line name.
    #[test]
    fn names_round_trip() {
        for a in Algorithm::ALL {
            assert_eq!(Algorithm::from_str(a.name(), false), Ok(a));
        }
        for t in TaskChoice::ALL {
            assert_eq!(TaskChoice::from_str(t.name(), false), Ok(t));
        }
        assert!(Algorithm::from_str("slow", false).is_err());
    }
}
