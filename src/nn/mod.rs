//! Layers, one per file. Each is a struct of [`Param`](crate::param::Param)s with
//! `forward(&self, …) -> (y, cache)`, `forward_infer(&self, …) -> y` and
//! `backward(&mut self, &cache, dy) -> dx`, where backward **adds** into the parameter grads.

pub mod linear;

pub use linear::{Linear, LinearCache};
pub mod attention;
pub mod cross_attention;
pub mod softmax;

pub use attention::{Attention, AttentionCache};
pub use cross_attention::{CrossAttention, CrossAttentionCache};
pub use softmax::{Softmax, SoftmaxCache};
