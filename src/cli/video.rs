//! The video commands' flags: `demo-video`, `encode-video`, `inflate`, `sample-video` and
//! `evaluate-video`. Each only reads flags; the work is the library function it names.

use crate::demo_video::VideoDemoOptions;
use crate::dit::load_dit;
use crate::error::{Error, Result};
use crate::evaluate_frames::FramesEvalRequest;
use crate::evaluate_text::{evaluate_captions, CaptionEvalRequest};
use crate::evaluate_video::{evaluate_video, VideoEvalRequest};
use crate::sample::{parse_size, sample, SampleRequest};
use crate::sample_frames::{sample_with_frames, GivenSpec};
use crate::tensor::rng;
use crate::video::checkpoint::save_video_dit;
use crate::video::encode::encode_clips;
use crate::video::inflate::inflate;
use crate::video::moving_digits::{label, Motion, MovingDigits, Sprites, MOTIONS};
use crate::video::Layout;
use clap::Args;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The flags of `minisora demo-video`; every default is [`VideoDemoOptions::default`]'s.
#[derive(Clone, Debug, Args)]
pub struct DemoVideoArgs {
    /// Folder for everything the demo writes.
    #[arg(long, default_value_os_t = VideoDemoOptions::default().out)]
    pub out: PathBuf,
    /// Seed of the clips, the initialisations, the batches and the samples.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The digit glyphs: `digits` (procedural) or a real digit set such as `uci-digits`.
    #[arg(long, default_value = "digits")]
    pub sprites: String,
    /// Training clips.
    #[arg(long, default_value_t = VideoDemoOptions::default().clips)]
    pub clips: usize,
    /// Slowest and fastest speed of the digits, pixels per frame.
    #[arg(long, default_value_t = VideoDemoOptions::default().min_speed)]
    pub min_speed: usize,
    #[arg(long, default_value_t = VideoDemoOptions::default().max_speed)]
    pub max_speed: usize,
    /// The image DiT inflated into the video DiT (DiT-mini/2, DiT-tiny/2, …).
    #[arg(long, default_value_t = VideoDemoOptions::default().image_dit)]
    pub image_dit: String,
    /// Video DiT training steps.
    #[arg(long, default_value_t = VideoDemoOptions::default().video_steps)]
    pub video_steps: u64,
    /// Clips per video DiT step.
    #[arg(long, default_value_t = VideoDemoOptions::default().video_batch)]
    pub video_batch: usize,
    /// VAE training steps.
    #[arg(long, default_value_t = VideoDemoOptions::default().vae_steps)]
    pub vae_steps: u64,
    /// Frames per spacetime patch of the video DiT: 1 (per frame) or 2 (tubelets).
    #[arg(long, default_value_t = VideoDemoOptions::default().temporal_patch)]
    pub temporal_patch: usize,
    /// Image DiT training steps (before inflation).
    #[arg(long, default_value_t = VideoDemoOptions::default().image_steps)]
    pub image_steps: u64,
    /// Clips sampled per class for the scores.
    #[arg(long, default_value_t = VideoDemoOptions::default().per_class)]
    pub per_class: usize,
    /// Classifier-free guidance of the samples.
    #[arg(long, default_value_t = VideoDemoOptions::default().guidance)]
    pub guidance: f32,
}

impl DemoVideoArgs {
    pub fn options(&self) -> Result<VideoDemoOptions> {
        Ok(VideoDemoOptions {
            out: self.out.clone(),
            seed: self.seed,
            sprites: Sprites::parse(&self.sprites)?,
            clips: self.clips,
            min_speed: self.min_speed,
            max_speed: self.max_speed,
            image_dit: self.image_dit.clone(),
            video_steps: self.video_steps,
            video_batch: self.video_batch,
            vae_steps: self.vae_steps,
            temporal_patch: self.temporal_patch,
            image_steps: self.image_steps,
            per_class: self.per_class,
            guidance: self.guidance,
            ..VideoDemoOptions::default()
        })
    }
}

/// The flags of `minisora encode-video`.
#[derive(Clone, Debug, Args)]
pub struct EncodeVideoArgs {
    /// The image VAE (trained on single frames, e.g. by `demo-video`).
    #[arg(long, default_value = "out/demo-video/vae/vae.safetensors")]
    pub vae: PathBuf,
    /// The digit glyphs: `digits` (procedural) or a real digit set such as `uci-digits`.
    #[arg(long, default_value = "digits")]
    pub sprites: String,
    /// Frames per clip (1 to 32).
    #[arg(long, default_value_t = 8)]
    pub frames: usize,
    /// Slowest and fastest speed of the digits, pixels per frame.
    #[arg(long, default_value_t = 1)]
    pub min_speed: usize,
    #[arg(long, default_value_t = 2)]
    pub max_speed: usize,
    /// Clips to draw and encode.
    #[arg(long, default_value_t = 2000)]
    pub n: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The latent clip file to write.
    #[arg(long, default_value = "out/video/latents.safetensors")]
    pub out: PathBuf,
}

impl EncodeVideoArgs {
    /// Draws the clips and encodes them.
    pub fn run(&self) -> Result<()> {
        let gen = MovingDigits {
            frames: self.frames,
            sprites: Sprites::parse(&self.sprites)?,
            min_speed: self.min_speed,
            max_speed: self.max_speed,
            ..MovingDigits::default()
        };
        let clips = gen.generate(self.n, self.seed)?;
        let name = gen.dataset_name();
        let (n, secs) = encode_clips(&self.vae, &clips, &self.out, &name)?;
        println!(
            "encoded {n} clips of {name} ({} frames) into {} in {secs:.1} s",
            self.frames,
            self.out.display()
        );
        println!(
            "{{\"clips\":{n},\"frames\":{},\"seconds\":{secs:.2}}}",
            self.frames
        );
        Ok(())
    }
}

/// The flags of `minisora inflate`.
#[derive(Clone, Debug, Args)]
pub struct InflateArgs {
    /// A trained image DiT (adaLN-Zero).
    #[arg(long)]
    pub ckpt: PathBuf,
    /// alternating (Latte) or factorized (STDiT).
    #[arg(long, default_value = "alternating")]
    pub layout: String,
    /// Latent frames per clip (1 to 32).
    #[arg(long, default_value_t = 8)]
    pub frames: usize,
    /// Frames per spacetime patch: 1, or tubelets whose kernel is the image kernel spread
    /// evenly over the frames (I3D's inflation).
    #[arg(long, default_value_t = 1)]
    pub temporal_patch: usize,
    /// Video classes per image class: video class `c·K + k` starts from image class `c`
    /// (4 for the moving digits' left, right, up, down).
    #[arg(long, default_value_t = MOTIONS.len())]
    pub motions: usize,
    /// The video checkpoint to write.
    #[arg(long)]
    pub out: PathBuf,
}

impl InflateArgs {
    pub fn run(&self) -> Result<()> {
        let image = load_dit(&self.ckpt)?;
        let layout = Layout::parse(&self.layout)?;
        let class_of: Vec<usize> = (0..image.config.num_classes * self.motions)
            .map(|v| v / self.motions.max(1))
            .collect();
        let mut video = inflate(
            &image,
            layout,
            self.frames,
            self.temporal_patch,
            &class_of,
            &mut rng(0),
        )?;
        save_video_dit(&self.out, &mut video, &BTreeMap::new())?;
        println!(
            "inflated {} into a {} video DiT of {} frames, {} classes: wrote {}",
            self.ckpt.display(),
            layout.name(),
            self.frames,
            class_of.len(),
            self.out.display()
        );
        Ok(())
    }
}

/// The flags of `minisora sample-video`.
#[derive(Clone, Debug, Args)]
pub struct SampleVideoArgs {
    /// A video checkpoint (`minisora train --model video-…` or `demo-video`).
    #[arg(long, default_value = "out/demo-video/video-dit/video.safetensors")]
    pub ckpt: PathBuf,
    /// The image VAE that decodes the frames.
    #[arg(long, default_value = "out/demo-video/vae/vae.safetensors")]
    pub vae: PathBuf,
    /// Only this class (digit·4 + motion); or give --digit and --motion.
    #[arg(long)]
    pub class: Option<usize>,
    /// The digit to draw (with --motion).
    #[arg(long)]
    pub digit: Option<usize>,
    /// left, right, up or down (with --digit).
    #[arg(long)]
    pub motion: Option<String>,
    /// Classifier-free guidance scale (1 = none).
    #[arg(long, default_value_t = 1.5)]
    pub cfg_scale: f32,
    /// Sampling steps.
    #[arg(long, default_value_t = 50)]
    pub steps: usize,
    /// ddim or ddpm.
    #[arg(long, default_value = "ddim")]
    pub sampler: String,
    /// Frames per clip (default: the trained length; up to 32).
    #[arg(long)]
    pub frames: Option<usize>,
    /// Frame size in pixels, WIDTHxHEIGHT (default: the trained size), e.g. 48x32: each side
    /// a multiple of the VAE's factor times the patch (8 for the demo's model).
    #[arg(long)]
    pub size: Option<String>,
    /// Clips per class.
    #[arg(long, default_value_t = 4)]
    pub n: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The GIF to write (and a PNG strip beside it).
    #[arg(long, default_value = "clip.gif")]
    pub out: PathBuf,
    /// Also write the denoising of the clips as a GIF here.
    #[arg(long)]
    pub trajectory: Option<PathBuf>,
    /// Image → video: this grayscale picture (the model's frame size) is the first frame.
    #[arg(long)]
    pub first_frame: Option<PathBuf>,
    /// This picture is the last frame (with --first-frame: interpolation).
    #[arg(long)]
    pub last_frame: Option<PathBuf>,
    /// Continue this clip (a GIF of frames at the model's size): its frames start the sample.
    #[arg(long)]
    pub extend: Option<PathBuf>,
    /// With given frames, also write the first clip at the model's size (`<out>-raw.gif`)
    /// and its first frame (`<out>-frame0.png`): inputs for --extend and --first-frame.
    #[arg(long)]
    pub raw: bool,
}

impl SampleVideoArgs {
    /// Samples: with --first-frame, --last-frame or --extend, with those frames given.
    pub fn run(&self) -> Result<()> {
        let spec = GivenSpec {
            first: self.first_frame.clone(),
            last: self.last_frame.clone(),
            extend: self.extend.clone(),
        };
        let req = self.request()?;
        if spec.is_empty() {
            if self.raw {
                return Err(Error::new(
                    "--raw without given frames",
                    "add --first-frame, --last-frame or --extend, or drop --raw",
                ));
            }
            return sample(&req).map(|_| ());
        }
        if self.trajectory.is_some() {
            return Err(Error::new(
                "--trajectory with given frames",
                "drop --trajectory (it draws the plain sampler's denoising)",
            ));
        }
        sample_with_frames(&req, &spec, self.raw)
    }

    /// The request: `--class`, or `--digit` with `--motion`.
    pub fn request(&self) -> Result<SampleRequest> {
        let class = match (self.class, self.digit, &self.motion) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(Error::new(
                    "--class with --digit/--motion",
                    "give either --class N or --digit D --motion M",
                ))
            }
            (c, None, None) => c,
            (None, Some(d), Some(m)) if d < 10 => Some(label(d, Motion::parse(m)?)),
            (None, Some(d), Some(_)) => {
                return Err(Error::new(
                    format!("--digit {d}"),
                    "use a digit from 0 to 9",
                ))
            }
            (None, _, _) => {
                return Err(Error::new(
                    "--digit and --motion go together",
                    "give both, e.g. --digit 3 --motion left",
                ))
            }
        };
        Ok(SampleRequest {
            ckpt: self.ckpt.clone(),
            class,
            cfg_scale: self.cfg_scale,
            steps: self.steps,
            sampler: self.sampler.clone(),
            eta: 0.0,
            seed: self.seed,
            n: self.n,
            out: self.out.with_extension("gif"),
            trajectory: self.trajectory.clone(),
            vae: self.vae.clone(),
            frames: self.frames,
            size: self.size.as_deref().map(parse_size).transpose()?,
        })
    }
}

/// The flags of `minisora evaluate-video`.
#[derive(Clone, Debug, Args)]
pub struct EvaluateVideoArgs {
    #[arg(long, default_value = "out/demo-video/video-dit/video.safetensors")]
    pub ckpt: PathBuf,
    #[arg(long, default_value = "out/demo-video/vae/vae.safetensors")]
    pub vae: PathBuf,
    /// Clips per class.
    #[arg(long, default_value_t = 4)]
    pub per_class: usize,
    /// Guidance scale (default: the one the run sampled with).
    #[arg(long)]
    pub cfg_scale: Option<f32>,
    /// DDIM steps.
    #[arg(long, default_value_t = 25)]
    pub steps: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The dataset that judges the clips (default: the checkpoint's), e.g. moving-uci-digits.
    #[arg(long)]
    pub data: Option<String>,
    /// Where the clip scorer is cached.
    #[arg(long, default_value = "out/scorer")]
    pub scorer_cache: PathBuf,
    /// Score a text-conditioned model on captions instead: caption accuracy on seen and on
    /// held-out compositions, and FVD.
    #[arg(long)]
    pub captions: bool,
    /// With --captions: captions (one clip each) per split.
    #[arg(long, default_value_t = 64)]
    pub clips: usize,
}

impl EvaluateVideoArgs {
    /// Scores the checkpoint (by class, or with `--captions` by caption); the last stdout
    /// line is one JSON object.
    pub fn run(self) -> Result<()> {
        if !self.captions {
            return evaluate_video(&self.into()).map(|_| ());
        }
        let guidance = self.cfg_scale.unwrap_or(4.0);
        let eval = evaluate_captions(&CaptionEvalRequest {
            ckpt: self.ckpt,
            vae: self.vae,
            clips: self.clips,
            guidance,
            steps: self.steps,
            seed: self.seed,
            scorer_cache: self.scorer_cache,
        })?;
        println!("{}", eval.to_json(guidance).to_line());
        Ok(())
    }
}

impl From<EvaluateVideoArgs> for VideoEvalRequest {
    fn from(a: EvaluateVideoArgs) -> Self {
        VideoEvalRequest {
            ckpt: a.ckpt,
            vae: a.vae,
            per_class: a.per_class,
            guidance: a.cfg_scale,
            steps: a.steps,
            seed: a.seed,
            data: a.data,
            scorer_cache: a.scorer_cache,
        }
    }
}

/// The flags of `minisora evaluate-frames`.
#[derive(Clone, Debug, Args)]
pub struct EvaluateFramesArgs {
    #[arg(long, default_value = "out/demo-video/video-dit/video.safetensors")]
    pub ckpt: PathBuf,
    #[arg(long, default_value = "out/demo-video/vae/vae.safetensors")]
    pub vae: PathBuf,
    /// Real clips whose frames are given (their classes are asked for).
    #[arg(long, default_value_t = 80)]
    pub clips: usize,
    /// DDIM steps.
    #[arg(long, default_value_t = 25)]
    pub steps: usize,
    /// Guidance scale (default: the one the run sampled with).
    #[arg(long)]
    pub cfg_scale: Option<f32>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where the clip scorer is cached.
    #[arg(long, default_value = "out/scorer")]
    pub scorer_cache: PathBuf,
    /// Folder of the figure (image_to_video.png).
    #[arg(long, default_value = "out/frames")]
    pub out: PathBuf,
}

impl EvaluateFramesArgs {
    pub fn request(&self) -> FramesEvalRequest {
        FramesEvalRequest {
            ckpt: self.ckpt.clone(),
            vae: self.vae.clone(),
            clips: self.clips,
            steps: self.steps,
            guidance: self.cfg_scale,
            seed: self.seed,
            scorer_cache: self.scorer_cache.clone(),
            out: self.out.clone(),
        }
    }
}
