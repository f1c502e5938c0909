//! Layers, one per file. Each is a struct of [`Param`](crate::param::Param)s with
//! `forward(&self, …) -> (y, cache)`, `forward_infer(&self, …) -> y` and
//! `backward(&mut self, &cache, dy) -> dx`, where backward **adds** into the parameter grads.

pub mod linear;

pub use linear::{Linear, LinearCache};
pub mod conv2d;
pub mod im2col;
pub mod pool;
pub mod upsample;

pub use conv2d::{Conv2d, Conv2dCache};
pub use pool::AvgPool2x;
pub use upsample::Upsample2x;
