//! How a DiT block reads the conditioning `c` (timestep + class): the four designs the DiT
//! paper compares (Peebles & Xie 2023, section 3.2 and Figure 5).
//!
//! - **adaLN-Zero** (the reference, `models.py`): LayerNorms without parameters whose scale
//!   and shift, and a gate on each residual branch, are regressed from `c`; the regression
//!   starts at zero, so every block starts as the identity.
//! - **adaLN**: the same scale and shift, no gates, the regression initialised like any Linear.
//! - **cross-attention**: the timestep and label embeddings form a sequence of two tokens;
//!   every block adds a multi-head cross-attention from the image tokens to them, after its
//!   self-attention.
//! - **in-context**: the two embeddings are appended to the image tokens as two more tokens
//!   and the blocks are plain ViT blocks; they are dropped after the last block.

use crate::error::{Error, Result};

// ANCHOR: conditioning
/// Which conditioning mechanism the DiT blocks use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Conditioning {
    /// Adaptive LayerNorm with zero-initialised gates (the reference DiT).
    #[default]
    AdaLnZero,
    /// Adaptive LayerNorm: scale and shift from `c`, no gates, no zero init.
    AdaLn,
    /// Cross-attention from the image tokens to the two conditioning tokens.
    CrossAttention,
    /// The two conditioning tokens appended to the image tokens.
    InContext,
}
// ANCHOR_END: conditioning

impl Conditioning {
    /// Every mechanism, in the paper's order of Figure 5.
    pub const ALL: [Conditioning; 4] = [
        Conditioning::InContext,
        Conditioning::CrossAttention,
        Conditioning::AdaLn,
        Conditioning::AdaLnZero,
    ];

    /// The name used on the command line and in checkpoints.
    pub fn name(self) -> &'static str {
        match self {
            Conditioning::AdaLnZero => "adaln-zero",
            Conditioning::AdaLn => "adaln",
            Conditioning::CrossAttention => "cross-attention",
            Conditioning::InContext => "in-context",
        }
    }

    /// Parses a [`name`](Self::name) (case-insensitive; `_` for `-` allowed).
    pub fn parse(name: &str) -> Result<Self> {
        let lower = name.trim().to_ascii_lowercase().replace('_', "-");
        Self::ALL
            .into_iter()
            .find(|c| c.name() == lower)
            .ok_or_else(|| {
                let names: Vec<_> = Self::ALL.iter().map(|c| c.name()).collect();
                Error::new(
                    format!("unknown DiT conditioning \"{name}\""),
                    format!("use one of {}", names.join(", ")),
                )
            })
    }
}

impl std::fmt::Display for Conditioning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bad_names_are_refused() {
        for c in Conditioning::ALL {
            assert_eq!(Conditioning::parse(c.name()).unwrap(), c);
            assert_eq!(Conditioning::parse(&c.name().to_uppercase()).unwrap(), c);
        }
        assert_eq!(
            Conditioning::parse("cross_attention").unwrap(),
            Conditioning::CrossAttention
        );
        let err = Conditioning::parse("adalnzero").unwrap_err().to_string();
        assert!(
            err.contains("adaln-zero") && err.contains("in-context"),
            "{err}"
        );
    }
}
