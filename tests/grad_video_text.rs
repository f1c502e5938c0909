//! The text-conditioned video DiT's gradients and invariances: DiT's block with a caption
//! branch (tokens, conditioning, the captions' context and every parameter, with a padding
//! mask), the whole model in every layout, with and without the pooled caption in adaLN, with
//! a frozen and a jointly trained text encoder (the clip and every parameter), a planted 3 %
//! error that the check must catch, every parameter reached (the null caption only through a
//! null entry), and what must not change an output bit: the ids at padded positions, any
//! caption while the caption branches are at their zero init, and `Condition::None` against
//! all-null captions.
//!
//! The caption branch's `proj` and the adaLN-Zero modulations start at zero, which would make
//! the gradients through `q`, `kv` and the gates trivially zero: every check first gives every
//! parameter (or every all-zero one) a random value.

mod support;

use minisora::diffusion::{Condition, Denoiser, TrainableDenoiser};
use minisora::dit::{Context, DiTBlock};
use minisora::gradcheck::{check, random_input, GradCheck, Report};
use minisora::param::Parameters;
use minisora::tensor::{rng, Rng};
use minisora::text::encoder::TextEncoderConfig;
use minisora::text::tokenizer::{self, tokenize, Tokens, PAD};
use minisora::video::config::CaptionConfig;
use minisora::video::text_path::TextPath;
use minisora::video::{Layout, VideoDiT, VideoDiTConfig};
use ndarray::{s, Array2, Array3, ArrayD, Ix5, IxDyn};
use ndarray_rand::rand::Rng as _;
use proptest::prelude::*;
use support::{grads, randomise_normal, randomise_zeros, three, tokens, two};

/// Caption length `L`: the tokenizer's, which the encoder's `max_len` (the null caption's
/// rows) must equal.
const LEN: usize = tokenizer::MAX_LEN;

/// Three prompts, one to seven words.
const PROMPTS: [&str; 3] = [
    "a red 3 moving left",
    "the blue digit 7 going up quickly",
    "a green 0",
];

/// `prompt` tokenized and cut to `len` tokens (its words all fit).
fn caption(prompt: &str, len: usize) -> Tokens {
    let t = tokenize(prompt).unwrap();
    assert!(t.len <= len, "{prompt:?} is longer than {len} tokens");
    Tokens {
        ids: t.ids[..len].to_vec(),
        len: t.len,
    }
}

/// `b` captions of length `len`, the last of them null when `null_last`.
fn captions(b: usize, len: usize, null_last: bool) -> Condition {
    Condition::Captions(
        (0..b)
            .map(|i| (!(null_last && i + 1 == b)).then(|| caption(PROMPTS[i % 3], len)))
            .collect(),
    )
}

/// `(B, L)`: row `b` keeps a random prefix of length `1..=L`.
fn prefix_mask(b: usize, l: usize, r: &mut Rng) -> Array2<bool> {
    let lens: Vec<usize> = (0..b).map(|_| r.random_range(1..=l)).collect();
    Array2::from_shape_fn((b, l), |(i, j)| j < lens[i])
}

/// A tiny text-conditioned video DiT: 2 channels, 4×4 latents, patch 2 (S = 4), width 16,
/// 2 heads, 2 blocks; an encoder of width 8, one block, 2 heads, captions of `len` tokens.
fn text_config(
    layout: Layout,
    frames: usize,
    pt: usize,
    len: usize,
    pooled: bool,
    train_encoder: bool,
) -> VideoDiTConfig {
    let mut config = VideoDiTConfig::named("video-mini/2", layout, frames, pt, 4, 2, 1).unwrap();
    config.dit.hidden_size = 16;
    config.dit.num_heads = 2;
    config.dit.depth = 2;
    config.dit.mlp_ratio = 2.0;
    config.text = Some(CaptionConfig {
        encoder: TextEncoderConfig {
            vocab: tokenizer::vocab_size(),
            max_len: len,
            width: 8,
            depth: 1,
            heads: 2,
        },
        pooled,
        train_encoder,
    });
    config
}

/// The model of `config` with every all-zero tensor random (adaLN-Zero, the final layer, the
/// caption branches' `proj`, `pool`, zero biases), and its text encoder — frozen or not — at
/// unit-scale embeddings: at CLIP's init (std 0.02) the encoder's first LayerNorm divides by
/// that small std, and the finite-difference step would no longer be small there
/// (`grad_text.rs`).
fn random_model(config: VideoDiTConfig, r: &mut Rng) -> VideoDiT {
    let mut net = VideoDiT::new(config, r).unwrap();
    randomise_zeros(&mut net, r);
    let enc = &mut net.text.as_mut().expect("a text model").text_encoder;
    randomise_zeros(enc, r);
    let (v, l, e) = (enc.config.vocab, enc.config.max_len, enc.config.width);
    enc.token_embedding.weight.value = tokens(&[v, e], r);
    enc.positional_embedding.value = random_input(&[l, e], r) * 0.3;
    net
}

/// The whole model's checker: a finer step and fewer sampled coordinates, as grad_video's.
fn model_check(seed: u64) -> GradCheck {
    GradCheck {
        seed,
        step: 1e-2,
        max_coords: 4,
        ..GradCheck::default()
    }
}

/// Checks the clip's and every parameter's gradient of `net` at `x`, `t`, `y`; `plant` may
/// spoil the analytic gradients after backward.
fn check_text_video(
    net: &mut VideoDiT,
    x: ArrayD<f32>,
    t: &[usize],
    y: &Condition,
    cfg: &GradCheck,
    plant: impl Fn(&mut VideoDiT),
) -> Report {
    check(
        net,
        &[x],
        |m, xs| m.predict(&xs[0], t, y),
        |m, xs, dy| {
            let (out, cache) = m.forward_train(&xs[0], t, y);
            assert_eq!(out, m.predict(&xs[0], t, y), "forward and predict differ");
            let dx = m.backward(&cache, dy.view().into_dimensionality::<Ix5>().unwrap());
            plant(m);
            vec![dx.into_dyn()]
        },
        cfg,
    )
}

/// Every combination the whole-model checks cover: layout × pooled × joint encoder.
fn variants() -> Vec<(Layout, bool, bool)> {
    let mut v = Vec::new();
    for layout in Layout::ALL {
        for pooled in [false, true] {
            for joint in [false, true] {
                v.push((layout, pooled, joint));
            }
        }
    }
    v
}

fn timesteps(b: usize, seed: u64) -> Vec<usize> {
    (0..b)
        .map(|i| (37 + 400 * i + seed as usize) % 1000)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// DiT's block with a caption branch, attending within sub-sequences of `seq` tokens and
    /// to padded captions of `l` tokens: tokens, conditioning, the captions' context and every
    /// parameter, all of them random (the branch's `proj` and the modulation included). The
    /// context's padded rows get exactly zero gradient.
    #[test]
    fn caption_block_gradients_match_finite_differences(
        b in 1usize..3, groups in 1usize..3, seq in 1usize..4, heads in 1usize..3,
        l in 1usize..5, seed in any::<u64>(),
    ) {
        let d = 4 * heads;
        let mut r = rng(seed ^ 0xca97);
        let mut block = DiTBlock::new(d, heads, 2 * d, &mut r).with_caption(&mut r);
        randomise_normal(&mut block, 0.3, seed ^ 1);
        let mask = prefix_mask(b, l, &mut r);
        let x = tokens(&[b * groups * seq, d], &mut r);
        let c = random_input(&[b, d], &mut r);
        let ctx = random_input(&[b, l, d], &mut r);
        let context = |a: &ArrayD<f32>| Context { tokens: three(a), mask: mask.clone() };
        let report = check(
            &mut block,
            &[x, c, ctx],
            |m, xs| {
                let ctx = context(&xs[2]);
                m.forward_infer_seq(&two(&xs[0]), &two(&xs[1]), seq, Some(&ctx)).into_dyn()
            },
            |m, xs, dy| {
                let (x, c, ctx) = (two(&xs[0]), two(&xs[1]), context(&xs[2]));
                let (y, cache) = m.forward_seq(&x, &c, seq, Some(&ctx));
                assert_eq!(y, m.forward_infer_seq(&x, &c, seq, Some(&ctx)));
                let mut dc = Array2::zeros(c.raw_dim());
                let mut dctx = Array3::zeros(ctx.tokens.raw_dim());
                let dx = m.backward_seq(&cache, &two(dy), &mut dc, Some(&mut dctx));
                for ((i, j), &valid) in mask.indexed_iter() {
                    if !valid {
                        assert!(dctx.slice(s![i, j, ..]).iter().all(|&g| g == 0.0), "a pad got gradient");
                    }
                }
                vec![dx.into_dyn(), dc.into_dyn(), dctx.into_dyn()]
            },
            &support::seeded(seed),
        );
        prop_assert!(report.passed, "b {b} groups {groups} seq {seq} heads {heads} l {l}: {report:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// The whole text-conditioned video DiT, one random case per variant run of this
    /// property, and every variant in [`whole_model_every_variant`].
    #[test]
    fn text_video_dit_gradients_match_finite_differences(
        b in 2usize..4,
        (layout, pooled, joint) in prop::sample::select(variants()),
        (frames, pt) in prop::sample::select(vec![(2usize, 1usize), (4, 2), (2, 2)]),
        seed in any::<u64>(),
    ) {
        let mut r = rng(seed ^ 0x7e47);
        let mut net = random_model(text_config(layout, frames, pt, LEN, pooled, joint), &mut r);
        let x = random_input(&[b, 2, frames, 4, 4], &mut r);
        let y = captions(b, LEN, true);
        let report = check_text_video(&mut net, x, &timesteps(b, seed), &y, &model_check(seed), |_| {});
        prop_assert!(
            report.passed,
            "{} pooled {pooled} joint {joint} frames {frames} pt {pt}: {report:?}",
            layout.name()
        );
    }
}

/// Every layout × pooled × frozen/joint once (captions and a null entry); the parameters are
/// `text_encoder.*` only when the encoder is trained.
#[test]
fn whole_model_every_variant() {
    for (i, (layout, pooled, joint)) in variants().into_iter().enumerate() {
        let len = LEN;
        let mut r = rng(i as u64);
        let mut net = random_model(text_config(layout, 2, 1, len, pooled, joint), &mut r);
        let names: Vec<String> = net.param_shapes().into_iter().map(|(n, _)| n).collect();
        let encoder = names
            .iter()
            .filter(|n| n.starts_with("text_encoder."))
            .count();
        assert_eq!(
            encoder > 0,
            joint,
            "{} joint {joint}: {encoder} text_encoder.* parameters",
            layout.name()
        );
        assert_eq!(names.iter().any(|n| n == "y_embedder.pool.weight"), pooled);
        assert!(names.iter().any(|n| n == "y_embedder.y_embedding"));
        assert!(names.iter().any(|n| n.contains("cross_attn.kv.weight")));
        let x = random_input(&[3, 2, 2, 4, 4], &mut r);
        let y = captions(3, len, true);
        let report = check_text_video(
            &mut net,
            x,
            &timesteps(3, i as u64),
            &y,
            &model_check(i as u64),
            |_| {},
        );
        assert!(
            report.passed,
            "{} pooled {pooled} joint {joint} len {len}: {report:?}",
            layout.name()
        );
    }
}

/// The whole-model check catches a gradient 3 % off in the caption path (the caption
/// embedder's first Linear; the encoder's final LayerNorm when it is trained), in every
/// layout. (The encoder's token table is too far from the output for the whole-model check:
/// its gradients, ~0.1, sit under the f32 noise floor of the model's loss, so a 3 % error
/// there passes; [`caption_path_gradients_and_a_planted_error`] checks it on the path alone.)
#[test]
fn the_whole_text_check_catches_a_small_error() {
    for layout in Layout::ALL {
        for joint in [false, true] {
            let mut caught = 0;
            for seed in 0..3u64 {
                let mut r = rng(seed);
                let mut net = random_model(text_config(layout, 2, 1, LEN, true, joint), &mut r);
                let x = random_input(&[2, 2, 2, 4, 4], &mut r);
                let y = captions(2, LEN, true);
                let report =
                    check_text_video(&mut net, x, &[500, 40], &y, &model_check(seed), |m| {
                        let path = m.text.as_mut().unwrap();
                        if joint {
                            path.text_encoder.ln_final.weight.as_mut().unwrap().grad *= 1.03;
                        } else {
                            path.y_embedder.y_proj.fc1.weight.grad *= 1.03;
                        }
                    });
                caught += usize::from(!report.passed);
            }
            assert_eq!(
                caught,
                3,
                "{} joint {joint}: a 3 % error in the caption path's gradient went unnoticed",
                layout.name()
            );
        }
    }
}

/// With captions and one null entry every parameter gets a gradient, the null caption
/// `y_embedding` too; without a null entry `y_embedding` gets none, and with one its gradient
/// is the null sample's alone (the same as from that sample by itself).
#[test]
fn every_parameter_is_reached_and_the_null_caption_only_through_a_null_entry() {
    for (layout, pooled, joint) in variants() {
        let what = format!("{} pooled {pooled} joint {joint}", layout.name());
        let mut r = rng(4);
        let mut net = random_model(text_config(layout, 2, 1, LEN, pooled, joint), &mut r);
        let x = random_input(&[2, 2, 2, 4, 4], &mut r);
        let c_out = net.config.dit.out_channels();
        let d_out = random_input(&[2, c_out, 2, 4, 4], &mut r);
        let t = [3, 700];
        let run =
            |net: &mut VideoDiT, x: &ArrayD<f32>, d: &ArrayD<f32>, t: &[usize], y: Condition| {
                let (_, cache) = net.forward_train(x, t, &y);
                net.zero_grad();
                net.backward_train(&cache, d);
            };
        run(&mut net, &x, &d_out, &t, captions(2, LEN, true));
        net.visit("", &mut |name, p| {
            assert!(
                p.grad.iter().any(|&g| g != 0.0),
                "{what}: {name} got no gradient"
            );
        });
        let null_grad = net
            .text
            .as_ref()
            .unwrap()
            .y_embedder
            .y_embedding
            .grad
            .clone();

        // the null sample by itself: the same gradient for the null caption
        let one = |a: &ArrayD<f32>| a.slice(s![1..2, .., .., .., ..]).to_owned().into_dyn();
        run(
            &mut net,
            &one(&x),
            &one(&d_out),
            &t[1..],
            Condition::Captions(vec![None]),
        );
        let alone = &net.text.as_ref().unwrap().y_embedder.y_embedding.grad;
        let err = support::rel_err(&null_grad, alone);
        assert!(
            err < 1e-5,
            "{what}: y_embedding's gradient {err:e} off the null sample's"
        );

        // no null entry: no gradient for the null caption
        run(&mut net, &x, &d_out, &t, captions(2, LEN, false));
        let g = &net.text.as_ref().unwrap().y_embedder.y_embedding.grad;
        assert!(
            g.iter().all(|&v| v == 0.0),
            "{what}: y_embedding got gradient without a null caption"
        );
    }
}

/// Output and every gradient of one training pass.
fn pass(net: &mut VideoDiT, x: &ArrayD<f32>, t: &[usize], y: &Condition) -> Vec<ArrayD<f32>> {
    let (out, cache) = net.forward_train(x, t, y);
    net.zero_grad();
    net.backward_train(&cache, &out);
    let mut all = vec![net.predict(x, t, y), out];
    all.extend(grads(net).into_iter().map(|(_, g)| g));
    all
}

/// Whatever id sits at a caption's padded positions, no output bit and no gradient bit
/// changes (frozen and joint encoder, pooled caption on, every layout).
#[test]
fn padded_ids_change_nothing() {
    for layout in Layout::ALL {
        for joint in [false, true] {
            let mut r = rng(9);
            let mut net = random_model(text_config(layout, 2, 1, LEN, true, joint), &mut r);
            let x = random_input(&[3, 2, 2, 4, 4], &mut r);
            let y = captions(3, LEN, true);
            let Condition::Captions(caps) = &y else {
                unreachable!()
            };
            let scrambled = Condition::Captions(
                caps.iter()
                    .map(|c| {
                        c.clone().map(|mut t| {
                            for id in &mut t.ids[t.len..] {
                                *id = r.random_range(1..tokenizer::vocab_size());
                            }
                            t
                        })
                    })
                    .collect(),
            );
            assert_ne!(y, scrambled);
            let t = [10, 500, 999];
            assert!(
                pass(&mut net, &x, &t, &y) == pass(&mut net, &x, &t, &scrambled),
                "{} joint {joint}: a padded id changed the output or a gradient",
                layout.name()
            );
        }
    }
}

/// While the caption branches' `proj` (and `pool`) are at their zero init, the caption
/// changes no output bit: the branch starts silent. Opening one branch makes it speak.
#[test]
fn zero_init_caption_branches_are_silent() {
    for layout in Layout::ALL {
        for pooled in [false, true] {
            let mut r = rng(11);
            let mut net =
                VideoDiT::new(text_config(layout, 2, 1, LEN, pooled, false), &mut r).unwrap();
            // every other zero tensor random, the branches' proj and pool back at zero
            randomise_zeros(&mut net, &mut r);
            net.visit("", &mut |name, p| {
                if name.contains("cross_attn.proj.") || name.starts_with("y_embedder.pool.") {
                    p.value.fill(0.0);
                }
            });
            let x = random_input(&[3, 2, 2, 4, 4], &mut r);
            let t = [10, 500, 999];
            let base = net.predict(&x, &t, &captions(3, LEN, true));
            let others = [
                Condition::Captions(vec![
                    Some(caption(PROMPTS[2], LEN)),
                    None,
                    Some(caption(PROMPTS[0], LEN)),
                ]),
                Condition::Captions(vec![None; 3]),
                Condition::None,
            ];
            for y in &others {
                assert!(
                    net.predict(&x, &t, y) == base,
                    "{} pooled {pooled}: the silent branch heard {y:?}",
                    layout.name()
                );
            }
            net.visit("", &mut |name, p| {
                if name == "blocks.0.cross_attn.proj.bias" {
                    p.value.fill(0.0);
                }
                if name == "blocks.0.cross_attn.proj.weight" {
                    p.value.fill(0.5);
                }
            });
            assert!(
                net.predict(&x, &t, &others[0]) != base,
                "{}: an open branch ignores the caption",
                layout.name()
            );
        }
    }
}

/// `Condition::None` is every caption null, in sampling and in training.
#[test]
fn no_condition_is_all_null_captions() {
    for layout in Layout::ALL {
        for (len, joint) in [(LEN, false), (LEN, true)] {
            let mut r = rng(12);
            let mut net = random_model(text_config(layout, 2, 1, len, true, joint), &mut r);
            let x = random_input(&[2, 2, 2, 4, 4], &mut r);
            let t = [10, 500];
            let nulls = Condition::Captions(vec![None, None]);
            assert!(
                pass(&mut net, &x, &t, &Condition::None) == pass(&mut net, &x, &t, &nulls),
                "{} len {len}: Condition::None is not all-null captions",
                layout.name()
            );
            // and the null caption is not the empty one: a caption of one PAD word differs
            let pad = Condition::Captions(vec![
                None,
                Some(Tokens {
                    ids: vec![PAD; len],
                    len: 1,
                }),
            ]);
            assert!(net.predict(&x, &t, &pad) != net.predict(&x, &t, &nulls));
        }
    }
}

/// A text encoder whose `max_len` is not the tokenizer's length is refused when the model is
/// built (captions are always padded to the tokenizer's length, and the null caption has
/// `max_len` rows): before, every forward pass panicked inside the encoder.
#[test]
fn an_encoder_of_another_length_is_refused() {
    for len in [8, LEN + 1] {
        let config = text_config(Layout::Factorized, 2, 1, len, false, false);
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("max_len"), "{err}");
        assert!(VideoDiT::new(config, &mut rng(0)).is_err());
    }
}

/// The caption path's outputs as the checker sees them: the context (B, L, D) and, with
/// `pooled`, the adaLN term (B, D), flattened and joined.
fn path_output(ctx: &Context, pooled: Option<&Array2<f32>>) -> ArrayD<f32> {
    let mut v: Vec<f32> = ctx.tokens.iter().copied().collect();
    v.extend(pooled.into_iter().flat_map(|p| p.iter().copied()));
    ArrayD::from_shape_vec(IxDyn(&[v.len()]), v).unwrap()
}

/// The caption path alone — the jointly trained encoder and the caption embedder, with a null
/// entry — checks every parameter, the encoder's token table included, and catches that
/// table's gradient 3 % off.
#[test]
fn caption_path_gradients_and_a_planted_error() {
    for pooled in [false, true] {
        for seed in 0..3u64 {
            let mut r = rng(seed ^ 0x9a7);
            let mut net = random_model(text_config(Layout::Full, 2, 1, LEN, pooled, true), &mut r);
            let mut path: TextPath = net.text.take().unwrap();
            let y = captions(3, LEN, true);
            let d = 16;
            let run = |path: &mut TextPath, plant: bool| {
                check(
                    path,
                    &[],
                    |m, _| {
                        let (ctx, p) = m.forward_infer(&y, 3);
                        path_output(&ctx, p.as_ref())
                    },
                    |m, _, dy| {
                        let (ctx, p, cache) = m.forward(&y, 3);
                        assert_eq!(path_output(&ctx, p.as_ref()), {
                            let (ctx, p) = m.forward_infer(&y, 3);
                            path_output(&ctx, p.as_ref())
                        });
                        let n = 3 * LEN * d;
                        let dy = dy.as_slice().unwrap();
                        let dctx = Array3::from_shape_vec((3, LEN, d), dy[..n].to_vec()).unwrap();
                        let dc = match pooled {
                            true => Array2::from_shape_vec((3, d), dy[n..].to_vec()).unwrap(),
                            false => Array2::zeros((3, d)),
                        };
                        m.backward(&cache, &dctx, &dc);
                        if plant {
                            m.text_encoder.token_embedding.weight.grad *= 1.03;
                        }
                        vec![]
                    },
                    &GradCheck {
                        max_coords: 16,
                        ..support::seeded(seed)
                    },
                )
            };
            let report = run(&mut path, false);
            assert!(report.passed, "pooled {pooled} seed {seed}: {report:?}");
            let report = run(&mut path, true);
            assert!(
                !report.passed,
                "pooled {pooled} seed {seed}: a 3 % error in the token table went unnoticed: {report:?}"
            );
        }
    }
}
