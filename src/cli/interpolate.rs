//! `minisora interpolate`: its flags.

use crate::interpolate::InterpolateRequest;
use clap::Args;
use std::path::PathBuf;

/// The long help of `minisora interpolate`.
pub const INTERPOLATE_HELP: &str = "Draw what a class-conditional checkpoint makes between two
classes (a \"dog-ball\": halfway between a dog and a ball).

The model reads its class as a row of a learned label table (DiT's y_embedder, whose row joins
the timestep embedding in c = e_t + e_y; the U-Net's label_emb). Here it is handed vectors
between the rows of --from and --to, at weights s = 0, 1/(steps-1), ..., 1: the first row of
the grid along the straight line, (1-s) e_from + s e_to, the second along the sphere (the angle
between the two rows walked evenly, the length interpolated linearly). Every sample starts from
the same noise x_T (from --seed) and is drawn with deterministic DDIM (eta = 0) over
--sample-steps steps, with classifier-free guidance --cfg-scale against the null label (1 =
none), so only the condition changes. Latent models are decoded by --vae.

Writes --out, a PNG grid of 2 rows x --steps columns, and beside it a GIF (same name, .gif) of
the spherical row there and back; the last line printed is one JSON object. Example:
    minisora interpolate --ckpt out/dit/dit.safetensors --from 3 --to 8 --steps 9 \\
        --out blend.png";

/// The flags of `minisora interpolate`.
#[derive(Args, Clone, Debug)]
pub struct InterpolateArgs {
    /// The class-conditional checkpoint to sample.
    #[arg(long)]
    pub ckpt: PathBuf,
    /// The class at weight 0 (the left column).
    #[arg(long)]
    pub from: usize,
    /// The class at weight 1 (the right column).
    #[arg(long)]
    pub to: usize,
    /// Columns: weights 0, 1/(steps-1), ..., 1 (at least 2).
    #[arg(long, default_value_t = 9)]
    pub steps: usize,
    /// The PNG grid to write; the GIF is written beside it.
    #[arg(long, default_value = "blend.png")]
    pub out: PathBuf,
    /// The VAE that decodes a latent model's samples.
    #[arg(long, default_value = "out/vae/vae.safetensors")]
    pub vae: PathBuf,
    /// Seed of the one starting noise all samples share.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// DDIM steps (respaced from the 1000 training steps).
    #[arg(long, default_value_t = 50)]
    pub sample_steps: usize,
    /// Classifier-free guidance scale (1 = none; DiT samples with 4).
    #[arg(long, default_value_t = 4.0)]
    pub cfg_scale: f32,
}

impl From<InterpolateArgs> for InterpolateRequest {
    fn from(a: InterpolateArgs) -> Self {
        InterpolateRequest {
            ckpt: a.ckpt,
            from: a.from,
            to: a.to,
            steps: a.steps,
            out: a.out,
            vae: a.vae,
            seed: a.seed,
            sample_steps: a.sample_steps,
            cfg_scale: a.cfg_scale,
        }
    }
}
