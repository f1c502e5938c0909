//! The text-to-video demo, `cargo run --release -- demo-text`: type a sentence, get a clip —
//! latent space, space, time and language, at the scale of a laptop.
//!
//! 1. draw captioned colour moving digits (held-out compositions kept out) and train the
//!    image VAE on their RGB frames;
//! 2. pre-train the text encoder with a tiny CLIP against a small clip encoder, and measure
//!    caption→clip retrieval on held-out captions; the encoder is then frozen;
//! 3. encode every clip frame by frame into latent clips;
//! 4. train the text-conditioned video DiT (cross-attention to the caption in every block,
//!    caption dropout 0.1) on the latent clips and their captions;
//! 5. generate a clip for captions of seen and of held-out compositions, score them (caption
//!    accuracy, FVD), and draw a few prompts as a GIF.
//!
//! Everything goes to `out/demo-text/`; the last stdout line is one JSON object.

use crate::error::Result;
use crate::evaluate_text::{evaluate_captions, generate_clips, vae_ceiling, CaptionEvalRequest};
use crate::io::json::Json;
use crate::models::load_model;
use crate::models::video::{train_video, video_options};
use crate::models::Recipe;
use crate::sample::decoder;
use crate::tensor::rng;
use crate::text::encoder::TextEncoderConfig;
use crate::text::pretrain::{load_text_encoder, pretrain_clip, PretrainOptions};
use crate::text::tokenizer::{batch, tokenize, vocab_fingerprint, vocab_size, Tokens, MAX_LEN};
use crate::train::preview::save_samples;
use crate::train::{Source, TrainData, TrainOptions};
use crate::vae::train::{train_vae_on, TrainVaeOptions};
use crate::vae::Recon;
use crate::video::colour_digits::{ColourDigits, DATASET_NAME};
use crate::video::config::CaptionConfig;
use crate::video::encode::encode_captioned;
use crate::video::held_out::Split;
use crate::video::{Layout, VideoDiT, VideoDiTConfig};
use std::path::PathBuf;
use std::time::Instant;

/// Prompts drawn in the demo's GIF, one row each: seen and held-out compositions.
pub const DEMO_PROMPTS: [&str; 4] = [
    "a red 3 moving left and a blue 7 moving up",
    "a green 5 moving down quickly",
    "a blue 2 moving up slowly",
    "a red 0 moving left while a green 5 moving right",
];

/// What the text demo runs; the defaults are the README's.
#[derive(Clone, Debug)]
pub struct TextDemoOptions {
    pub out: PathBuf,
    pub seed: u64,
    pub frames: usize,
    /// Training clips (all of the training split).
    pub clips: usize,
    pub vae_steps: u64,
    /// CLIP pre-training steps of 64 pairs.
    pub clip_steps: u64,
    pub video_model: String,
    pub layout: Layout,
    pub temporal_patch: usize,
    pub video_steps: u64,
    pub video_batch: usize,
    /// Add the pooled caption to adaLN's conditioning too.
    pub pooled: bool,
    /// Train the text encoder jointly with the DiT from scratch instead of pre-training it
    /// with CLIP and freezing it (the chapter's comparison).
    pub joint: bool,
    /// Captions per split in the evaluation.
    pub eval_clips: usize,
    pub guidance: f32,
    pub sample_steps: usize,
    pub scorer_cache: PathBuf,
}

// ANCHOR: text_demo_options
impl Default for TextDemoOptions {
    /// Measured on two cores (the text chapter): the VAE at 1200 steps (29.5 dB; at 600,
    /// 25.3 dB, real clips through it kept only 44 % of seen captions right); the `full`
    /// layout over 2×2×2 tubelets (`alternating` from scratch left motion at chance in 3500
    /// steps, and costs 1.5× more a step); the pooled caption in adaLN (without it the model
    /// barely reads its captions); guidance 4.
    fn default() -> Self {
        TextDemoOptions {
            out: PathBuf::from("out/demo-text"),
            seed: 0,
            frames: 8,
            clips: 3000,
            vae_steps: 1200,
            clip_steps: 1500,
            video_model: "video-mini/2".into(),
            layout: Layout::Full,
            temporal_patch: 2,
            video_steps: 5000,
            video_batch: 32,
            pooled: true,
            joint: false,
            eval_clips: 64,
            guidance: 4.0,
            sample_steps: 25,
            scorer_cache: PathBuf::from("out/scorer"),
        }
    }
}
// ANCHOR_END: text_demo_options

fn stage(i: usize, what: &str) {
    println!();
    println!("[{i}/5] {what}");
}

/// Token ids and masks of captions.
fn tokens_of(captions: &[String]) -> Result<Vec<Tokens>> {
    captions.iter().map(|c| tokenize(c)).collect()
}

/// Runs the five stages; the last stdout line is one JSON object of the figures.
pub fn run_text_demo(opts: &TextDemoOptions) -> Result<Json> {
    let start = Instant::now();
    let gen = ColourDigits {
        frames: opts.frames,
        ..ColourDigits::default()
    };
    println!(
        "minisora demo-text: {DATASET_NAME} with captions → VAE on frames → text encoder (CLIP) \
         → latent clips → text-conditioned {} ({}) → clips from captions → scores; writing {}/",
        opts.video_model,
        opts.layout.name(),
        opts.out.display()
    );

    stage(
        1,
        "draw the captioned clips and train the VAE on their frames",
    );
    let train_set = gen.generate(opts.clips, opts.seed, Split::Train)?;
    let held_frames = gen
        .generate(16, opts.seed ^ 0x4e1d, Split::Train)?
        .frames()
        .images;
    let mut vae_opts = TrainVaeOptions {
        steps: opts.vae_steps,
        seed: opts.seed,
        out: opts.out.join("vae"),
        ..TrainVaeOptions::default()
    };
    // a frame is mostly background: the squared error keeps the digits (see demo-video)
    vae_opts.loss.recon = Recon::Mse;
    let frames_name = format!("{DATASET_NAME}-frames");
    let vae = train_vae_on(&vae_opts, &frames_name, train_set.frames(), held_frames)?;

    stage(2, "pre-train the text encoder with CLIP, then freeze it");
    let encoder_cfg = TextEncoderConfig::new(vocab_size());
    let (ids, mask) = batch(&tokens_of(&train_set.captions)?);
    let held = gen.generate(256, opts.seed ^ 0xc11b, Split::HeldOut)?;
    let (held_ids, held_mask) = batch(&tokens_of(&held.captions)?);
    let clip = if opts.joint {
        None
    } else {
        let clip_opts = PretrainOptions {
            steps: opts.clip_steps,
            seed: opts.seed,
            vocab_fingerprint: vocab_fingerprint(),
            ..PretrainOptions::new(opts.out.join("text/text_encoder.safetensors"))
        };
        let report = pretrain_clip(
            &ids,
            &mask,
            train_set.clips.view(),
            &held_ids,
            &held_mask,
            held.clips.view(),
            encoder_cfg,
            &clip_opts,
        )?;
        println!(
            "caption→clip retrieval on 256 held-out pairs: top-1 {:.1} %, top-5 {:.1} % \
             (train top-1 {:.1} %), {:.1} s",
            100.0 * report.top1,
            100.0 * report.top5,
            100.0 * report.train_top1,
            report.seconds
        );
        Some(report)
    };

    stage(3, "encode every clip frame by frame into latent clips");
    let latents = opts.out.join("latents.safetensors");
    let (n, secs) = encode_captioned(&vae.checkpoint, &train_set, &latents, DATASET_NAME)?;
    println!("encoded {n} clips of {} frames in {secs:.1} s", opts.frames);
    let video_opts = TrainOptions {
        data: Source::Latents(latents),
        vae: vae.checkpoint.clone(),
        seed: opts.seed,
        guidance: opts.guidance,
        steps: opts.video_steps,
        batch: opts.video_batch,
        out: opts.out.join("video-dit"),
        ..video_options(Recipe::Cpu)
    };
    let data = TrainData::load(&video_opts)?;

    stage(
        4,
        &format!(
            "train the text-conditioned {} on the latent clips and their captions{}",
            opts.video_model,
            if opts.joint {
                " (text encoder trained jointly, from scratch)"
            } else {
                " (text encoder frozen)"
            }
        ),
    );
    let &[c, f, h, _] = data.sample_shape() else {
        unreachable!("latent clips are (C, F, H, W)")
    };
    let mut config = VideoDiTConfig::named(
        &opts.video_model,
        opts.layout,
        f,
        opts.temporal_patch,
        h,
        c,
        1,
    )?;
    config.text = Some(CaptionConfig {
        encoder: encoder_cfg,
        pooled: opts.pooled,
        train_encoder: opts.joint,
    });
    let mut video = VideoDiT::new(config, &mut rng(opts.seed))?;
    if let (Some(report), Some(text)) = (&clip, &mut video.text) {
        let (encoder, vocabulary) = load_text_encoder(&report.checkpoint)?;
        if vocabulary != vocab_fingerprint() {
            return Err(crate::error::Error::new(
                format!(
                    "the text encoder in {} was trained on another vocabulary",
                    report.checkpoint.display()
                ),
                "pre-train it again with this version's tokenizer (minisora train-text)",
            ));
        }
        text.text_encoder = encoder;
    }
    let video_report = train_video(&mut video, &data, &video_opts)?;

    stage(5, "generate clips from captions and score them");
    let eval = evaluate_captions(&CaptionEvalRequest {
        ckpt: video_report.checkpoint.clone(),
        vae: vae.checkpoint.clone(),
        clips: opts.eval_clips,
        guidance: opts.guidance,
        steps: opts.sample_steps,
        seed: opts.seed,
        scorer_cache: opts.scorer_cache.clone(),
    })?;
    let (ceiling_seen, ceiling_held) = vae_ceiling(
        &vae.checkpoint,
        opts.frames,
        opts.eval_clips,
        &opts.scorer_cache,
    )?;
    println!(
        "real clips through the VAE (the ceiling): seen {ceiling_seen}; held out {ceiling_held}"
    );
    let loaded = load_model(&video_report.checkpoint)?;
    let dec = decoder(&vae.checkpoint, &video_report.checkpoint, &loaded)?;
    let per_prompt = 4;
    let prompts: Vec<Tokens> = tokens_of(&DEMO_PROMPTS.map(String::from))?
        .into_iter()
        .flat_map(|t| std::iter::repeat_n(t, per_prompt))
        .collect();
    let pixels = generate_clips(
        &loaded,
        dec.as_ref(),
        &prompts,
        opts.guidance,
        opts.sample_steps,
        opts.seed,
    )?;
    let gif = save_samples(
        &opts.out.join("prompts.png"),
        &pixels.into_dyn(),
        per_prompt,
    )?;
    println!("wrote {} (a row per prompt):", gif.display());
    for p in DEMO_PROMPTS {
        println!("  {p}");
    }

    let mut json = eval.to_json(opts.guidance);
    let clip_fig = |f: fn(&crate::text::pretrain::PretrainReport) -> f32| {
        clip.as_ref()
            .map_or(Json::Null, |r| Json::num(f(r) as f64, 4))
    };
    json.push("retrieval_top1", clip_fig(|r| r.top1));
    json.push("retrieval_top5", clip_fig(|r| r.top5));
    json.push(
        "text_encoder",
        Json::str(if opts.joint { "joint" } else { "frozen" }),
    );
    json.push("vae_ceiling_seen", Json::num(ceiling_seen.accuracy, 4));
    json.push("vae_ceiling_held_out", Json::num(ceiling_held.accuracy, 4));
    json.push("vae_psnr_db", Json::num(vae.psnr_db, 2));
    json.push("video_params", Json::num(video_report.params as f64, 0));
    json.push(
        "video_final_loss",
        Json::num(video_report.final_loss as f64, 5),
    );
    json.push(
        "video_train_seconds",
        Json::num(video_report.train_seconds, 1),
    );
    json.push("max_caption_tokens", Json::num(MAX_LEN as f64, 0));
    json.push("wall_seconds", Json::num(start.elapsed().as_secs_f64(), 1));
    println!("{}", json.to_line());
    Ok(json)
}
