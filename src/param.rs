//! Trainable parameters and the one walk that visits them by name.
//!
//! A [`Param`] is a tensor and its gradient, side by side. Every layer and model implements
//! [`Parameters`], whose single method calls a closure once per parameter with a hierarchical
//! name such as `blocks.3.attn.qkv.weight`. Zeroing gradients, the optimizers, checkpoints and
//! gradient dumps are all written against that one walk, so they all agree on the names.

use ndarray::{ArrayD, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, IxDyn};

// ANCHOR: param
/// A trainable tensor `value` and the gradient `grad` that backward passes **add** into.
#[derive(Clone, Debug)]
pub struct Param {
    pub value: ArrayD<f32>,
    pub grad: ArrayD<f32>,
}
// ANCHOR_END: param

impl Param {
    /// Wraps a value (made contiguous, row-major) with a zero gradient of the same shape.
    pub fn new(value: ArrayD<f32>) -> Self {
        let value = value.as_standard_layout().into_owned();
        let grad = ArrayD::zeros(value.raw_dim());
        Param { value, grad }
    }

    /// A parameter of zeros with the given shape.
    pub fn zeros(shape: &[usize]) -> Self {
        Param::new(ArrayD::zeros(IxDyn(shape)))
    }

    /// Number of scalars in the tensor.
    pub fn len(&self) -> usize {
        self.value.len()
    }

    /// True for a parameter with no elements.
    pub fn is_empty(&self) -> bool {
        self.value.is_empty()
    }

    /// The shape of the tensor.
    pub fn shape(&self) -> &[usize] {
        self.value.shape()
    }

    /// The value seen as a vector (for biases and norm scales). Panics if it is not 1-D:
    /// a layer's own parameters have fixed ranks, so that would be a bug in the layer.
    pub fn v1(&self) -> ArrayView1<'_, f32> {
        self.value
            .view()
            .into_dimensionality()
            .expect("parameter is not 1-D")
    }

    /// The value seen as a matrix (for weights). Panics if it is not 2-D.
    pub fn v2(&self) -> ArrayView2<'_, f32> {
        self.value
            .view()
            .into_dimensionality()
            .expect("parameter is not 2-D")
    }

    /// The gradient seen as a mutable vector.
    pub fn g1(&mut self) -> ArrayViewMut1<'_, f32> {
        self.grad
            .view_mut()
            .into_dimensionality()
            .expect("parameter is not 1-D")
    }

    /// The gradient seen as a mutable matrix.
    pub fn g2(&mut self) -> ArrayViewMut2<'_, f32> {
        self.grad
            .view_mut()
            .into_dimensionality()
            .expect("parameter is not 2-D")
    }

    /// The value seen as a matrix of shape `(rows, len / rows)`: a conv weight `(O, I, k, k)`
    /// becomes `(O, I·k·k)` without copying.
    pub fn v_rows(&self, rows: usize) -> ArrayView2<'_, f32> {
        let cols = self.value.len() / rows;
        self.value
            .view()
            .into_shape_with_order((rows, cols))
            .expect("parameter is contiguous")
    }

    /// The gradient seen as a mutable matrix of shape `(rows, len / rows)`.
    pub fn g_rows(&mut self, rows: usize) -> ArrayViewMut2<'_, f32> {
        let cols = self.grad.len() / rows;
        self.grad
            .view_mut()
            .into_shape_with_order((rows, cols))
            .expect("parameter is contiguous")
    }
}

// ANCHOR: parameters
/// Anything that owns parameters: a layer, a block, a whole model.
///
/// `visit` calls `f(name, param)` once for every parameter, in a fixed order, with names
/// prefixed by `prefix` (use [`join`] to build child prefixes). Composite models visit their
/// children with `child.visit(&join(prefix, "child"), f)`.
pub trait Parameters {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param));

    /// Sets every gradient to zero (backward passes accumulate, so call this once per step).
    fn zero_grad(&mut self) {
        self.visit("", &mut |_, p| p.grad.fill(0.0));
    }

    /// Total number of trainable scalars.
    fn num_params(&mut self) -> usize {
        let mut n = 0;
        self.visit("", &mut |_, p| n += p.len());
        n
    }

    /// Every parameter's name and shape, in visiting order.
    fn param_shapes(&mut self) -> Vec<(String, Vec<usize>)> {
        let mut out = Vec::new();
        self.visit("", &mut |name, p| {
            out.push((name.to_string(), p.shape().to_vec()))
        });
        out
    }
}
// ANCHOR_END: parameters

/// `join("blocks.3", "attn")` is `"blocks.3.attn"`; an empty prefix adds no dot.
pub fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

impl<T: Parameters> Parameters for Vec<T> {
    /// A list of layers is visited as `prefix.0`, `prefix.1`, … as in PyTorch's `ModuleList`.
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        for (i, layer) in self.iter_mut().enumerate() {
            layer.visit(&join(prefix, &i.to_string()), f);
        }
    }
}

impl<T: Parameters> Parameters for Option<T> {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        if let Some(layer) = self {
            layer.visit(prefix, f);
        }
    }
}

impl Parameters for Param {
    /// A bare parameter is visited under the prefix itself (e.g. DiT's `pos_embed`).
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        f(prefix, self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Two {
        a: Param,
        b: Vec<Param>,
    }
    impl Parameters for Two {
        fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
            self.a.visit(&join(prefix, "a"), f);
            self.b.visit(&join(prefix, "b"), f);
        }
    }

    #[test]
    fn names_are_hierarchical_and_counts_add_up() {
        let mut m = Two {
            a: Param::zeros(&[2, 3]),
            b: vec![Param::zeros(&[4]), Param::zeros(&[1])],
        };
        let names: Vec<String> = m.param_shapes().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["a", "b.0", "b.1"]);
        assert_eq!(m.num_params(), 11);
        m.a.grad.fill(3.0);
        m.zero_grad();
        assert!(m.a.grad.iter().all(|&g| g == 0.0));
    }
}
