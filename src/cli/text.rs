//! The text-to-video commands' flags: `demo-text`, `train-text` and `generate` (and the
//! `--captions` mode of `evaluate-video`, whose flags live with the other video commands).
//! Each only reads flags; the work is the library function it names.

use crate::demo_text::TextDemoOptions;
use crate::error::{Error, Result};
use crate::generate::{read_prompts, GenerateRequest};
use crate::io::json::Json;
use crate::text::encoder::TextEncoderConfig;
use crate::text::pretrain::{pretrain_clip, PretrainOptions};
use crate::text::tokenizer::{batch, tokenize, vocab_fingerprint, vocab_size, Tokens};
use crate::video::colour_digits::ColourDigits;
use crate::video::held_out::Split;
use crate::video::Layout;
use clap::Args;
use std::path::PathBuf;

/// The flags of `minisora demo-text`; every default is [`TextDemoOptions::default`]'s.
#[derive(Clone, Debug, Args)]
pub struct DemoTextArgs {
    /// Folder for everything the demo writes.
    #[arg(long, default_value_os_t = TextDemoOptions::default().out)]
    pub out: PathBuf,
    /// Seed of the clips, the initialisations, the batches and the samples.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Training clips (the held-out compositions are never among them).
    #[arg(long, default_value_t = TextDemoOptions::default().clips)]
    pub clips: usize,
    /// VAE training steps.
    #[arg(long, default_value_t = TextDemoOptions::default().vae_steps)]
    pub vae_steps: u64,
    /// CLIP pre-training steps (64 caption–clip pairs each).
    #[arg(long, default_value_t = TextDemoOptions::default().clip_steps)]
    pub clip_steps: u64,
    /// The video DiT's size: video-mini/2, video-tiny/2, …
    #[arg(long, default_value_t = TextDemoOptions::default().video_model)]
    pub video_model: String,
    /// Attention layout: full, alternating or factorized.
    #[arg(long, default_value = "full")]
    pub layout: String,
    /// Frames per spacetime patch: 1 (per frame) or 2 (tubelets).
    #[arg(long, default_value_t = TextDemoOptions::default().temporal_patch)]
    pub temporal_patch: usize,
    /// Video DiT training steps.
    #[arg(long, default_value_t = TextDemoOptions::default().video_steps)]
    pub video_steps: u64,
    /// Clips per video DiT step.
    #[arg(long, default_value_t = TextDemoOptions::default().video_batch)]
    pub video_batch: usize,
    /// Feed the pooled caption to adaLN too (true) or cross-attention only (false).
    #[arg(long, default_value_t = TextDemoOptions::default().pooled, action = clap::ArgAction::Set)]
    pub pooled: bool,
    /// Train the text encoder with the DiT from scratch instead of CLIP-pre-trained and frozen.
    #[arg(long)]
    pub joint: bool,
    /// Captions per split (seen, held out) in the evaluation.
    #[arg(long, default_value_t = TextDemoOptions::default().eval_clips)]
    pub eval_clips: usize,
    /// Classifier-free guidance scale on the text.
    #[arg(long, default_value_t = TextDemoOptions::default().guidance)]
    pub cfg_scale: f32,
    /// DDIM steps.
    #[arg(long, default_value_t = TextDemoOptions::default().sample_steps)]
    pub sample_steps: usize,
}

impl DemoTextArgs {
    pub fn options(self) -> Result<TextDemoOptions> {
        Ok(TextDemoOptions {
            out: self.out,
            seed: self.seed,
            clips: self.clips,
            vae_steps: self.vae_steps,
            clip_steps: self.clip_steps,
            video_model: self.video_model,
            layout: Layout::parse(&self.layout)?,
            temporal_patch: self.temporal_patch,
            video_steps: self.video_steps,
            video_batch: self.video_batch,
            pooled: self.pooled,
            joint: self.joint,
            eval_clips: self.eval_clips,
            guidance: self.cfg_scale,
            sample_steps: self.sample_steps,
            ..TextDemoOptions::default()
        })
    }
}

/// The flags of `minisora train-text`.
#[derive(Clone, Debug, Args)]
pub struct TrainTextArgs {
    /// Caption–clip pairs to train on (colour digits, training split).
    #[arg(long, default_value_t = 3000)]
    pub clips: usize,
    /// Held-out pairs the retrieval is measured on (held-out compositions only).
    #[arg(long, default_value_t = 256)]
    pub eval_clips: usize,
    #[arg(long, default_value_t = 1500)]
    pub steps: u64,
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f32,
    #[arg(long, default_value_t = 8)]
    pub frames: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The encoder's checkpoint.
    #[arg(long, default_value = "out/text/text_encoder.safetensors")]
    pub out: PathBuf,
}

fn tokens(captions: &[String]) -> Result<Vec<Tokens>> {
    captions.iter().map(|c| tokenize(c)).collect()
}

impl TrainTextArgs {
    /// Pre-trains the text encoder; the last stdout line is one JSON object.
    pub fn run(self) -> Result<()> {
        let gen = ColourDigits {
            frames: self.frames,
            ..ColourDigits::default()
        };
        let train = gen.generate(self.clips, self.seed, Split::Train)?;
        let eval = gen.generate(self.eval_clips, self.seed ^ 0xc11b, Split::HeldOut)?;
        let (ids, mask) = batch(&tokens(&train.captions)?);
        let (eval_ids, eval_mask) = batch(&tokens(&eval.captions)?);
        let opts = PretrainOptions {
            steps: self.steps,
            batch: self.batch,
            lr: self.lr,
            seed: self.seed,
            vocab_fingerprint: vocab_fingerprint(),
            ..PretrainOptions::new(self.out)
        };
        let r = pretrain_clip(
            &ids,
            &mask,
            train.clips.view(),
            &eval_ids,
            &eval_mask,
            eval.clips.view(),
            TextEncoderConfig::new(vocab_size()),
            &opts,
        )?;
        println!(
            "caption→clip retrieval on {} held-out pairs: top-1 {:.1} %, top-5 {:.1} %; wrote {}",
            self.eval_clips,
            100.0 * r.top1,
            100.0 * r.top5,
            r.checkpoint.display()
        );
        let json = Json::obj([
            ("retrieval_top1", Json::num(r.top1 as f64, 4)),
            ("retrieval_top5", Json::num(r.top5 as f64, 4)),
            ("train_top1", Json::num(r.train_top1 as f64, 4)),
            ("final_loss", Json::num(r.final_loss as f64, 5)),
            ("seconds", Json::num(r.seconds as f64, 1)),
        ]);
        println!("{}", json.to_line());
        Ok(())
    }
}

/// The flags of `minisora generate`.
#[derive(Clone, Debug, Args)]
pub struct GenerateArgs {
    /// The prompt, e.g. "a red 3 moving left and a blue 7 moving up".
    pub prompt: Option<String>,
    /// A file of prompts, one per line: a grid GIF with a row per prompt.
    #[arg(long)]
    pub prompts: Option<PathBuf>,
    /// A text-conditioned video DiT.
    #[arg(long, default_value = "out/demo-text/video-dit/video.safetensors")]
    pub ckpt: PathBuf,
    /// The VAE that decodes its latent frames.
    #[arg(long, default_value = "out/demo-text/vae/vae.safetensors")]
    pub vae: PathBuf,
    /// Frames per clip (default: the trained length).
    #[arg(long)]
    pub frames: Option<usize>,
    /// Classifier-free guidance scale on the text.
    #[arg(long, default_value_t = 4.0)]
    pub cfg_scale: f32,
    /// DDIM steps.
    #[arg(long, default_value_t = 25)]
    pub steps: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Clips per prompt.
    #[arg(long, default_value_t = 4)]
    pub n: usize,
    /// The GIF (the PNG strips are written beside it).
    #[arg(long, default_value = "out/generate/clip.gif")]
    pub out: PathBuf,
}

impl GenerateArgs {
    pub fn request(self) -> Result<GenerateRequest> {
        let prompts = match (self.prompt, &self.prompts) {
            // `generate` checks every prompt before any work
            (Some(p), None) => vec![p],
            (None, Some(file)) => read_prompts(file)?,
            _ => {
                return Err(Error::new(
                    "give either one prompt or --prompts FILE",
                    "e.g. minisora generate \"a red 3 moving left\"",
                ))
            }
        };
        Ok(GenerateRequest {
            prompts,
            ckpt: self.ckpt,
            vae: self.vae,
            frames: self.frames,
            guidance: self.cfg_scale,
            steps: self.steps,
            seed: self.seed,
            n: self.n,
            out: self.out,
        })
    }
}
