//! Layers, one per file. Each is a struct of [`Param`](crate::param::Param)s with
//! `forward(&self, …) -> (y, cache)`, `forward_infer(&self, …) -> y` and
//! `backward(&mut self, &cache, dy) -> dx`, where backward **adds** into the parameter grads.

pub mod activation;
pub mod embedding;
pub mod groupnorm;
pub mod layernorm;
pub mod linear;
pub mod loss;

pub use activation::{erf, erfc, ActivationCache, Gelu, GeluKind, Silu};
pub use embedding::{Embedding, EmbeddingCache};
pub use groupnorm::{GroupNorm, GroupNormCache};
pub use layernorm::{LayerNorm, LayerNormCache};
pub use linear::{Linear, LinearCache};
pub use loss::{l1, mse};
