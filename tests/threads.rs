//! Every model gives the same bits on one thread and on two: the output of a sampling pass
//! (`forward_infer`), and of a training pass (`forward`) with its `backward` — every
//! parameter gradient and the input gradient. One row of the table per model and
//! conditioning: the U-Net (scale-shift and additive timestep injection) and DiT with
//! adaLN-Zero, adaLN, cross-attention and in-context conditioning, each with and without a
//! learned variance, the video DiT in each attention layout, and the text-conditioned video
//! DiT (captions with a null entry; frozen encoder, and joint encoder with the pooled caption)
//! in each layout. Every parallel loop (GEMM blocks, per-sample adaLN, per-head attention,
//! elementwise chunks, GroupNorm groups) writes disjoint outputs and sums in a fixed order,
//! so the thread count must not show.
//!
//! One known exception, checked to 1e-5 instead of bit for bit: the U-Net's convolution
//! weight and bias gradients. `Conv2d::backward` sums per-group partial gradients, and its
//! group size follows `rayon::current_num_threads()` (`batch_groups` in `nn/conv2d.rs`), so
//! one thread sums the batch in another order than two. Changing that would change the bits
//! of U-Net and VAE training, so it is left for a decision of its own.
//!
//! The models are called through their inherent `forward_infer` / `forward` / `backward`, not
//! the `Denoiser` trait — except the text-conditioned video DiT's sampling pass, which only
//! `Denoiser::predict` runs with captions.

mod support;

use minisora::diffusion::{Condition, Denoiser};
use minisora::dit::{Conditioning, DiT, DiTConfig};
use minisora::tensor::{init, rng};
use minisora::text::encoder::TextEncoderConfig;
use minisora::text::tokenizer::{tokenize, vocab_size, MAX_LEN};
use minisora::unet::{UNet, UNetConfig};
use minisora::video::config::CaptionConfig;
use minisora::video::{Layout, VideoDiT, VideoDiTConfig};
use ndarray::{Array4, ArrayD, Ix4, Ix5};
use support::{grads, randomise_normal, rel_err};

const BATCH: usize = 6;

/// What one sampling pass and one training pass leave.
#[derive(PartialEq)]
struct Outputs {
    infer: ArrayD<f32>,
    out: ArrayD<f32>,
    dx: ArrayD<f32>,
    grads: Vec<(String, ArrayD<f32>)>,
}

/// A batch of 8×8×4 latents, its timesteps and labels, and a `d_out` of `out_channels`.
fn batch(out_channels: usize) -> (Array4<f32>, Vec<usize>, Vec<usize>, Array4<f32>) {
    let mut r = rng(4);
    let four = |a: ArrayD<f32>| a.into_dimensionality::<Ix4>().unwrap();
    let x = four(init::normal(&[BATCH, 4, 8, 8], 1.0, &mut r)); // (B, C, H, W)
    let d_out = four(init::normal(&[BATCH, out_channels, 8, 8], 1.0, &mut r));
    let t = (0..BATCH).map(|i| i * 151 % 1000).collect();
    let y = (0..BATCH).map(|i| i % 11).collect(); // 10 is the null label
    (x, t, y, d_out)
}

/// DiT-mini/2 on 8×8×4 latents with every parameter random (adaLN-Zero would hide most paths).
fn dit(conditioning: Conditioning, learn_sigma: bool) -> Outputs {
    let config = DiTConfig {
        conditioning,
        learn_sigma,
        ..DiTConfig::named("DiT-mini/2", 8, 4, 10).unwrap()
    };
    let mut model = DiT::new(config, &mut rng(3)).unwrap();
    randomise_normal(&mut model, 0.05, 5);
    let (x, t, y, d_out) = batch(model.config.out_channels());
    let infer = model.forward_infer(x.view(), &t, Some(&y)).into_dyn();
    let (out, cache) = model.forward(x.view(), &t, Some(&y));
    let dx = model.backward(&cache, d_out.view()).into_dyn();
    let grads = grads(&mut model);
    let out = out.into_dyn();
    Outputs {
        infer,
        out,
        dx,
        grads,
    }
}

/// The video DiT (`video-mini/2`, 4 frames of 8×8×4 latents) in `layout`, every parameter
/// random.
fn video(layout: Layout, learn_sigma: bool) -> Outputs {
    let mut config = VideoDiTConfig::named("video-mini/2", layout, 4, 1, 8, 4, 10).unwrap();
    config.dit.learn_sigma = learn_sigma;
    let mut model = VideoDiT::new(config, &mut rng(3)).unwrap();
    randomise_normal(&mut model, 0.05, 5);
    let mut r = rng(4);
    let five = |a: ArrayD<f32>| a.into_dimensionality::<Ix5>().unwrap();
    let x = five(init::normal(&[BATCH, 4, 4, 8, 8], 1.0, &mut r)); // (B, C, F, H, W)
    let c_out = model.config.dit.out_channels();
    let d_out = five(init::normal(&[BATCH, c_out, 4, 8, 8], 1.0, &mut r));
    let t: Vec<usize> = (0..BATCH).map(|i| i * 151 % 1000).collect();
    let y: Vec<usize> = (0..BATCH).map(|i| i % 11).collect();
    let e_y = model.y_embedder.forward_infer(Some(&y), BATCH);
    let infer = model.forward_infer_embedded(x.view(), &t, &e_y).into_dyn();
    let (out, cache) = model.forward(x.view(), &t, Some(&y));
    let dx = model.backward(&cache, d_out.view()).into_dyn();
    let grads = grads(&mut model);
    Outputs {
        infer,
        out: out.into_dyn(),
        dx,
        grads,
    }
}

/// The text-conditioned video DiT (`video-mini/2`, 4 frames of 8×8×4 latents, an encoder of
/// width 16 and depth 1) in `layout`, captions with a null entry, every parameter random (and
/// the frozen encoder's weights).
fn video_text(layout: Layout, pooled: bool, train_encoder: bool) -> Outputs {
    let mut config = VideoDiTConfig::named("video-mini/2", layout, 4, 1, 8, 4, 1).unwrap();
    config.text = Some(CaptionConfig {
        encoder: TextEncoderConfig {
            vocab: vocab_size(),
            max_len: MAX_LEN,
            width: 16,
            depth: 1,
            heads: 2,
        },
        pooled,
        train_encoder,
    });
    let mut model = VideoDiT::new(config, &mut rng(3)).unwrap();
    randomise_normal(&mut model, 0.05, 5);
    randomise_normal(&mut model.text.as_mut().unwrap().text_encoder, 0.3, 6);
    let mut r = rng(4);
    let five = |a: ArrayD<f32>| a.into_dimensionality::<Ix5>().unwrap();
    let x = init::normal(&[BATCH, 4, 4, 8, 8], 1.0, &mut r); // (B, C, F, H, W)
    let c_out = model.config.dit.out_channels();
    let d_out = five(init::normal(&[BATCH, c_out, 4, 8, 8], 1.0, &mut r));
    let t: Vec<usize> = (0..BATCH).map(|i| i * 151 % 1000).collect();
    let prompts = [
        "a red 3 moving left",
        "the blue digit 7 going up quickly",
        "a green 0",
    ];
    let y = Condition::Captions(
        (0..BATCH)
            .map(|i| (i % 4 != 3).then(|| tokenize(prompts[i % 3]).unwrap()))
            .collect(),
    );
    let infer = model.predict(&x, &t, &y);
    let (out, cache) = model.forward_cond(five(x).view(), &t, &y);
    let dx = model.backward(&cache, d_out.view()).into_dyn();
    let grads = grads(&mut model);
    Outputs {
        infer,
        out: out.into_dyn(),
        dx,
        grads,
    }
}

/// A class-conditional U-Net of widths 16 and 32, attention at the lower resolution.
fn unet(scale_shift: bool, learn_sigma: bool) -> Outputs {
    let config = UNetConfig {
        in_channels: 4,
        out_channels: if learn_sigma { 8 } else { 4 },
        model_channels: 16,
        channel_mult: vec![1, 2],
        num_res_blocks: 1,
        attention_ds: vec![2],
        num_heads: 2,
        groups: 4,
        num_classes: Some(10),
        scale_shift,
    };
    let mut model = UNet::new(config, &mut rng(3)).unwrap();
    randomise_normal(&mut model, 0.05, 5);
    let (x, t, y, d_out) = batch(model.config.out_channels);
    let infer = model.forward_infer(&x, &t, Some(&y)).into_dyn();
    let (out, cache) = model.forward(&x, &t, Some(&y));
    let dx = model.backward(&cache, &d_out).into_dyn();
    let grads = grads(&mut model);
    let out = out.into_dyn();
    Outputs {
        infer,
        out,
        dx,
        grads,
    }
}

/// `run` inside a fresh pool of `threads` threads.
fn on_threads(threads: usize, run: &(dyn Fn() -> Outputs + Sync)) -> Outputs {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(run)
}

#[test]
fn every_model_gives_the_same_bits_on_one_and_two_threads() {
    // (name, run, whether its conv gradients may differ in the last bits: the U-Net's)
    type Case = (String, Box<dyn Fn() -> Outputs + Sync>, bool);
    let mut table: Vec<Case> = Vec::new();
    for learn_sigma in [false, true] {
        for scale_shift in [true, false] {
            let name = format!("U-Net scale_shift {scale_shift} learn_sigma {learn_sigma}");
            table.push((name, Box::new(move || unet(scale_shift, learn_sigma)), true));
        }
        for conditioning in [
            Conditioning::AdaLnZero,
            Conditioning::AdaLn,
            Conditioning::CrossAttention,
            Conditioning::InContext,
        ] {
            let name = format!("DiT {conditioning} learn_sigma {learn_sigma}");
            table.push((
                name,
                Box::new(move || dit(conditioning, learn_sigma)),
                false,
            ));
        }
        for layout in Layout::ALL {
            let name = format!("video DiT {} learn_sigma {learn_sigma}", layout.name());
            table.push((name, Box::new(move || video(layout, learn_sigma)), false));
        }
    }
    for layout in Layout::ALL {
        for (pooled, joint) in [(false, false), (true, true)] {
            let name = format!(
                "text video DiT {} pooled {pooled} joint encoder {joint}",
                layout.name()
            );
            table.push((
                name,
                Box::new(move || video_text(layout, pooled, joint)),
                false,
            ));
        }
    }
    let mut differ = Vec::new();
    for (name, run, conv_sums_vary) in &table {
        let (one, two) = (on_threads(1, run.as_ref()), on_threads(2, run.as_ref()));
        let outputs = [
            ("forward_infer", &one.infer, &two.infer),
            ("forward", &one.out, &two.out),
            ("the input gradient", &one.dx, &two.dx),
        ];
        let params = one.grads.iter().zip(&two.grads);
        let params = params.map(|((p, g1), (_, g2))| (p.as_str(), g1, g2));
        // the U-Net's convolutions: a 4-D weight, and the bias beside it
        let convs: Vec<&str> = one
            .grads
            .iter()
            .filter(|(_, g)| *conv_sums_vary && g.ndim() == 4)
            .map(|(p, _)| p.trim_end_matches("weight"))
            .collect();
        for (what, a, b) in outputs.into_iter().chain(params) {
            let conv = convs.iter().any(|c| what.starts_with(c));
            let same = if conv { rel_err(a, b) <= 1e-5 } else { a == b };
            if !same {
                differ.push(format!("{name}: {what}"));
            }
        }
        assert!(
            one.infer == one.out,
            "{name}: forward and forward_infer differ"
        );
        for (p, g) in &one.grads {
            assert!(
                g.iter().any(|&v| v != 0.0),
                "{name}: {p} has a zero gradient"
            );
        }
    }
    assert!(
        differ.is_empty(),
        "1 and 2 threads differ:\n{}",
        differ.join("\n")
    );
}
