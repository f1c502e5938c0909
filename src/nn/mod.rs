//! Layers, one per file. Each is a struct of [`Param`](crate::param::Param)s with
//! `forward(&self, …) -> (y, cache)`, `forward_infer(&self, …) -> y` and
//! `backward(&mut self, &cache, dy) -> dx`, where backward **adds** into the parameter grads.

pub mod activation;
pub mod attention;
pub mod attention_kernel;
pub mod conv2d;
pub mod conv3d;
pub mod cross_attention;
pub mod embedding;
pub mod fast_gelu;
pub mod flash_attention;
pub mod groupnorm;
pub mod im2col;
pub mod layernorm;
pub mod linear;
pub mod loss;
pub mod pool;
pub mod resample;
pub mod softmax;
pub mod timestep_embedding;
pub mod upsample;
pub mod vol2col;

pub use activation::{erf, erfc, ActivationCache, Gelu, GeluKind, Silu};
pub use attention::{Attention, AttentionCache};
pub use attention_kernel::Kernel;
pub use conv2d::{Conv2d, Conv2dCache};
pub use conv3d::{Conv3d, Conv3dCache, Padding3d, TimePadding};
pub use cross_attention::{CrossAttention, CrossAttentionCache};
pub use embedding::{Embedding, EmbeddingCache};
pub use fast_gelu::{fast_gelu, fast_gelu_with_slope};
pub use flash_attention::{flash_backward, flash_forward, Tiles};
pub use groupnorm::{GroupNorm, GroupNormCache};
pub use layernorm::{LayerNorm, LayerNormCache};
pub use linear::{xavier_linear, zero_linear, Linear, LinearCache};
pub use loss::{l1, mse};
pub use pool::AvgPool2x;
pub use resample::{Downsample, DownsampleCache, Upsample, UpsampleCache};
pub use softmax::{Softmax, SoftmaxCache};
pub use timestep_embedding::timestep_embedding;
pub use upsample::Upsample2x;
