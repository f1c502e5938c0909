//! A tiny stand-in denoiser for the trainer's tests: an MLP over the flattened sample (any
//! shape: images or clips) with a timestep and a label embedding.

use minisora::diffusion::{
    BetaSchedule, Condition, Denoiser, Diffusion, LossType, Prediction, Schedule,
    TrainableDenoiser, VarianceType,
};
use minisora::nn::timestep_embedding;
use minisora::nn::{ActivationCache, Embedding, EmbeddingCache, Linear, LinearCache, Silu};
use minisora::param::{join, Param, Parameters};
use minisora::tensor::Rng;
use minisora::train::ModelInfo;
use ndarray::{concatenate, Array2, ArrayD, Axis, Ix2, IxDyn};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

const EMB: usize = 16;

/// out = W₂ silu(W₁ [x, e(t)] + E[y]), reshaped to the input's shape.
#[derive(Clone)]
pub struct Tiny {
    lin1: Linear,
    label: Embedding,
    lin2: Linear,
    act: Silu,
    classes: usize,
    /// Every label the training forward saw (shared by the copies a training step makes).
    pub seen: Arc<Mutex<Vec<usize>>>,
}

pub struct TinyCache {
    shape: Vec<usize>,
    l1: LinearCache,
    emb: EmbeddingCache,
    act: ActivationCache<Ix2>,
    l2: LinearCache,
}

impl Tiny {
    pub fn new(dim: usize, hidden: usize, classes: usize, r: &mut Rng) -> Self {
        Tiny {
            lin1: Linear::new(dim + EMB, hidden, true, r),
            label: Embedding::new(classes + 1, hidden, r),
            lin2: Linear::new(hidden, dim, true, r),
            act: Silu,
            classes,
            seen: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn input(&self, x: &ArrayD<f32>, t: &[usize]) -> Array2<f32> {
        let b = x.shape()[0];
        let flat = x.to_shape((b, x.len() / b)).unwrap().to_owned();
        let tf: Vec<f32> = t.iter().map(|&s| s as f32).collect();
        let e = timestep_embedding(&tf, EMB, 10000.0);
        let h = concatenate(Axis(1), &[flat.view(), e.view()]).unwrap();
        h.as_standard_layout().into_owned()
    }

    fn labels(&self, b: usize, y: &Condition) -> Vec<usize> {
        y.label_ids(self.classes).unwrap_or(vec![self.classes; b])
    }

    pub fn info(&mut self, channels: usize) -> ModelInfo {
        ModelInfo {
            name: "tiny".into(),
            in_channels: channels,
            null_label: Some(self.classes),
            flops_per_sample: 1234,
            metadata: BTreeMap::from([("tiny.classes".to_string(), self.classes.to_string())]),
            buffers: Vec::new(),
            captions: false,
        }
    }
}

impl Denoiser for Tiny {
    fn predict(&self, x: &ArrayD<f32>, t: &[usize], y: &Condition) -> ArrayD<f32> {
        let h = self.lin1.forward_infer(&self.input(x, t))
            + self.label.forward_infer(&self.labels(x.shape()[0], y));
        let out = self.lin2.forward_infer(&self.act.forward_infer(&h));
        out.into_shape_with_order(IxDyn(x.shape())).unwrap()
    }
}

impl TrainableDenoiser for Tiny {
    type Cache = TinyCache;

    fn forward_train(
        &self,
        x: &ArrayD<f32>,
        t: &[usize],
        y: &Condition,
    ) -> (ArrayD<f32>, TinyCache) {
        let ids = self.labels(x.shape()[0], y);
        self.seen.lock().unwrap().extend(&ids);
        let (h, l1) = self.lin1.forward(&self.input(x, t));
        let (e, emb) = self.label.forward(&ids);
        let (a, act) = self.act.forward(&(h + e));
        let (out, l2) = self.lin2.forward(&a);
        let shape = x.shape().to_vec();
        let out = out.into_shape_with_order(IxDyn(&shape)).unwrap();
        (
            out,
            TinyCache {
                shape,
                l1,
                emb,
                act,
                l2,
            },
        )
    }

    fn backward_train(&mut self, c: &TinyCache, d_out: &ArrayD<f32>) {
        let b = c.shape[0];
        let dy = d_out.to_shape((b, d_out.len() / b)).unwrap().to_owned();
        let da = self.lin2.backward(&c.l2, &dy);
        let dh = self.act.backward(&c.act, &da);
        self.label.backward(&c.emb, &dh);
        self.lin1.backward(&c.l1, &dh);
    }
}

impl Parameters for Tiny {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.lin1.visit(&join(prefix, "lin1"), f);
        self.label.visit(&join(prefix, "label"), f);
        self.lin2.visit(&join(prefix, "lin2"), f);
    }
}

/// T = 100, ε-prediction, fixed variance: cheap to sample with 10 DDIM steps.
pub fn diffusion() -> Diffusion {
    Diffusion::new(
        Schedule::new(BetaSchedule::Linear, 100),
        Prediction::Epsilon,
        VarianceType::FixedSmall,
        LossType::Mse,
    )
}
