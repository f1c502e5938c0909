//! `minisora sample-video --first-frame IMG.png` (image → video), `--extend CLIP.gif`
//! (continue a clip), `--first-frame A.png --last-frame B.png` (interpolate): clips sampled
//! with some frames given. The pictures are read and checked (size, channels, frames), encoded
//! frame by frame with the run's VAE and normalised as the training latents were; the sampler
//! holds them fixed at every step ([`HoldFrames`]) and the video DiT reads them at t = 0
//! ([`crate::video::frame_mask`]).

use crate::diffusion::{draw_from, Draw, FrameMask, HoldFrames};
use crate::error::{Error, Result};
use crate::io::image::{load_image, save_gif, save_grid, unit_to_byte, GridLayout};
use crate::models::load_model;
use crate::sample::{conditions, decoder, parse_sampler, set_frames, strips, SampleRequest};
use crate::train::latent_norm::LatentNorm;
use crate::train::preview::{save_samples, to_pixels};
use crate::vae::train::load_vae;
use crate::vae::Codec;
use crate::video::checkpoint::load_video_dit;
use crate::video::patch::{clips_to_frames, frames_to_clips};
use ndarray::{Array2, Array5, ArrayD, ArrayView5, Axis};
use std::path::{Path, PathBuf};

/// Frames encoded per call of the VAE.
const CHUNK: usize = 256;

/// Which frames a sampling run is given, as the flags name them.
#[derive(Clone, Debug, Default)]
pub struct GivenSpec {
    /// The first frame (`--first-frame`).
    pub first: Option<PathBuf>,
    /// The last frame (`--last-frame`).
    pub last: Option<PathBuf>,
    /// A clip whose frames start the sample (`--extend`).
    pub extend: Option<PathBuf>,
}

impl GivenSpec {
    pub fn is_empty(&self) -> bool {
        self.first.is_none() && self.last.is_none() && self.extend.is_none()
    }
}

/// The given frames of one clip of `frames` frames: which, and their pixels `(F, H, W)` in
/// [−1, 1] (zeros where not given).
pub struct GivenPixels {
    pub given: Vec<bool>,
    pub pixels: ndarray::Array3<f32>,
}

/// Reads the pictures `spec` names for clips of `frames` frames of `side`×`side` pixels with
/// `channels` channels; every bad input is an error that names the file and the fix.
pub fn read_given(
    spec: &GivenSpec,
    frames: usize,
    side: usize,
    channels: usize,
) -> Result<GivenPixels> {
    if spec.extend.is_some() && spec.first.is_some() {
        return Err(Error::new(
            "--extend with --first-frame",
            "give the first frame as the clip's first frame, or drop --extend",
        ));
    }
    let mut given = vec![false; frames];
    let mut pixels = ndarray::Array3::zeros((frames, side, side));
    let mut put = |f: usize, px: Array2<f32>| {
        given[f] = true;
        pixels.index_axis_mut(Axis(0), f).assign(&px);
    };
    if let Some(path) = &spec.first {
        put(0, read_frame(path, side, channels)?);
    }
    if let Some(path) = &spec.last {
        put(frames - 1, read_frame(path, side, channels)?);
    }
    if let Some(path) = &spec.extend {
        let clip = read_gif(path, side)?;
        if clip.len() >= frames {
            return Err(Error::new(
                format!(
                    "--extend {}: the clip has {} frames and the samples {frames}: nothing left to generate",
                    path.display(),
                    clip.len()
                ),
                "sample longer clips (--frames) or give a shorter clip",
            ));
        }
        for (f, px) in clip.into_iter().enumerate() {
            put(f, px);
        }
    }
    Ok(GivenPixels { given, pixels })
}

/// One picture as a `side`×`side` frame in [−1, 1]: grayscale for a 1-channel model.
fn read_frame(path: &Path, side: usize, channels: usize) -> Result<Array2<f32>> {
    let img = load_image(path)?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    if (w, h) != (side, side) {
        return Err(Error::new(
            format!(
                "{} is {w}×{h} pixels; the model's frames are {side}×{side}",
                path.display()
            ),
            format!("give a {side}×{side} picture (e.g. one frame of a moving-digits clip)"),
        ));
    }
    let has = img.color().channel_count() as usize;
    let gray = matches!(has, 1 | 2); // L8, or L8 with alpha
    if channels != 1 || !gray {
        return Err(Error::new(
            format!(
                "{} has {has} channels ({:?}); the model's frames have {channels}",
                path.display(),
                img.color()
            ),
            "give a grayscale picture (one channel), as the moving digits are",
        ));
    }
    Ok(luma(&img.to_luma8(), side))
}

/// The frames of a GIF, each `side`×`side`, as grayscale frames in [−1, 1].
fn read_gif(path: &Path, side: usize) -> Result<Vec<Array2<f32>>> {
    use image::codecs::gif::GifDecoder;
    use image::AnimationDecoder;
    let bytes = std::fs::read(path)
        .map_err(|e| Error::io(path, e, "check that the GIF exists and is readable"))?;
    let bad = |e: image::ImageError| {
        Error::new(
            format!("{} is not a readable GIF: {e}", path.display()),
            "give a GIF clip (e.g. one `minisora sample-video --raw` wrote)",
        )
    };
    let decoder = GifDecoder::new(std::io::Cursor::new(bytes)).map_err(bad)?;
    let frames = decoder.into_frames().collect_frames().map_err(bad)?;
    if frames.is_empty() {
        return Err(Error::new(
            format!("{} has no frames", path.display()),
            "give a GIF of at least one frame",
        ));
    }
    frames
        .into_iter()
        .map(|f| {
            let img = image::DynamicImage::ImageRgba8(f.into_buffer());
            let (w, h) = (img.width() as usize, img.height() as usize);
            if (w, h) != (side, side) {
                return Err(Error::new(
                    format!(
                        "{}'s frames are {w}×{h} pixels; the model's are {side}×{side}",
                        path.display()
                    ),
                    "give a GIF of one clip at the model's size (`sample-video --raw` writes one)",
                ));
            }
            Ok(luma(&img.to_luma8(), side))
        })
        .collect()
}

/// Bytes 0..255 → [−1, 1].
fn luma(img: &image::GrayImage, side: usize) -> Array2<f32> {
    Array2::from_shape_fn((side, side), |(y, x)| {
        img.get_pixel(x as u32, y as u32)[0] as f32 / 127.5 - 1.0
    })
}

// ANCHOR: encode_given
/// Pixel clips `(N, 1, F, H, W)` in [−1, 1] → the model's latents `(N, C, F, h, w)`: each
/// frame through the VAE's encoder (the posterior mean), normalised as the training latents.
pub fn encode_frames(vae: &Path, clips: ArrayView5<f32>, norm: &LatentNorm) -> Result<ArrayD<f32>> {
    let (model, _) = load_vae(vae)?;
    let f = clips.shape()[2];
    let frames = clips_to_frames(clips); // (N·F, 1, H, W)
    let means: Vec<_> = frames
        .axis_chunks_iter(Axis(0), CHUNK)
        .map(|chunk| model.encode(&chunk.to_owned()).mean) // (b, C, h, w)
        .collect();
    let views: Vec<_> = means.iter().map(|m| m.view()).collect();
    let mean = ndarray::concatenate(Axis(0), &views).expect("same shape"); // (N·F, C, h, w)
    let mut z = frames_to_clips(mean, f).into_dyn(); // (N, C, F, h, w)
    norm.normalise(&mut z);
    Ok(z)
}
// ANCHOR_END: encode_given

/// The pixels of `given` repeated for `n` clips, `(n, 1, F, H, W)`.
pub fn repeat_pixels(given: &GivenPixels, n: usize) -> Array5<f32> {
    let (f, h, w) = given.pixels.dim();
    let one = given.pixels.view().into_shape_with_order((1, 1, f, h, w));
    let one = one.expect("contiguous");
    let views = vec![one; n];
    ndarray::concatenate(Axis(0), &views).expect("same shape")
}

/// Samples with the frames of `mask` held at `x0` (latents, `(N, C, F, h, w)`) from the
/// noise `noise`, guided as `how` says; the given frames are written into the result.
pub fn draw_given(
    model: &dyn crate::diffusion::FrameConditioned,
    diffusion: &crate::diffusion::Diffusion,
    noise: ArrayD<f32>,
    y: &crate::diffusion::Condition,
    how: &Draw,
    x0: ArrayD<f32>,
    mask: FrameMask,
) -> Result<ArrayD<f32>> {
    let held = HoldFrames { model, x0, mask };
    let x = draw_from(&held, diffusion, noise, y, how, &mut |_| {})?;
    Ok(held.finish(x))
}

/// `minisora sample-video` with given frames: loads and checks everything, samples, decodes,
/// and writes `req.out` (GIF) and its PNG strip; with `raw`, also the first clip at the
/// model's size (`<out>-raw.gif`, the input `--extend` reads) and its first frame
/// (`<out>-frame0.png`, a grayscale picture `--first-frame` reads).
pub fn sample_with_frames(req: &SampleRequest, spec: &GivenSpec, raw: bool) -> Result<()> {
    let start = std::time::Instant::now();
    let mut loaded = load_model(&req.ckpt)?;
    if loaded.shape.len() != 4 || !loaded.latent {
        return Err(Error::new(
            format!("{} is not a latent video model", req.ckpt.display()),
            "give frames to a video checkpoint (`minisora train --model video-…`, `demo-video`)",
        ));
    }
    let (count, y) = conditions(req, &loaded)?;
    if let Some(f) = req.frames {
        set_frames(&mut loaded, f, &req.ckpt)?;
    }
    let how = Draw {
        kind: parse_sampler(&req.sampler, req.eta)?,
        steps: req.steps,
        guidance: req.cfg_scale,
        clip_x0: false,
        seed: req.seed,
    };
    how.respace(&loaded.diffusion)?; // a bad --steps fails before any work
    let vae = decoder(&req.vae, &req.ckpt, &loaded)?.expect("a latent model");
    let Codec::Image(image_vae) = &vae else {
        return Err(Error::new(
            format!(
                "{} decodes latents compressed in time; given frames are held as latent \
                 frames of the image VAE",
                req.vae.display()
            ),
            "give frames to a model trained on per-frame latents (`encode-video` with an \
             image VAE, as demo-video does)",
        ));
    };
    let (side, channels) = (
        loaded.shape[2] * image_vae.config.downsample_factor(),
        image_vae.config.in_channels,
    );
    let frames = loaded.shape[1];
    let given = read_given(spec, frames, side, channels)?;
    let model = load_video_dit(&req.ckpt)?;
    let x0 = encode_frames(&req.vae, repeat_pixels(&given, count).view(), &loaded.norm)?;
    let mask = FrameMask::repeat(&given.given, count);
    let noise = how.noise(count, &loaded.shape);
    let x = draw_given(&model, &loaded.diffusion, noise, &y, &how, x0, mask)?;
    let pixels = to_pixels(&x, Some(&vae), &loaded.norm);
    let written = save_samples(&req.out, &pixels, req.n)?;
    let strip = req.out.with_extension("png");
    save_grid(
        &strip,
        strips(&pixels).view(),
        GridLayout::new(frames).pad(2).upscale(2),
    )?;
    let which: Vec<String> = (0..frames)
        .filter(|&f| given.given[f])
        .map(|f| f.to_string())
        .collect();
    println!(
        "sampled {count} clips of {frames} frames from {} with frames {} given ({} {} steps, \
         guidance {}): wrote {} and {} (one clip per row)",
        req.ckpt.display(),
        which.join(", "),
        req.steps,
        req.sampler,
        req.cfg_scale,
        written.display(),
        strip.display()
    );
    if raw {
        let (gif, png) = raw_paths(&req.out);
        let clip = pixels.index_axis(Axis(0), 0); // (1, F, H, W)
        let per_frame: Vec<_> = (0..frames)
            .map(|f| {
                clip.slice(ndarray::s![.., f..f + 1, .., ..])
                    .permuted_axes([1, 0, 2, 3])
            })
            .collect();
        save_gif(&gif, &per_frame, GridLayout::new(1).pad(0), 120)?;
        save_gray_png(&png, clip.slice(ndarray::s![0, 0, .., ..]))?;
        println!(
            "wrote {} and {} (the first clip at the model's size)",
            gif.display(),
            png.display()
        );
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{{\"clips\":{count},\"given\":[{}],\"seconds\":{seconds:.2}}}",
        which.join(",")
    );
    Ok(())
}

/// `<out>-raw.gif` and `<out>-frame0.png` beside `out`.
pub fn raw_paths(out: &Path) -> (PathBuf, PathBuf) {
    let stem = out
        .file_stem()
        .map_or("clip".into(), |s| s.to_string_lossy().into_owned());
    (
        out.with_file_name(format!("{stem}-raw.gif")),
        out.with_file_name(format!("{stem}-frame0.png")),
    )
}

/// A frame `(H, W)` in [−1, 1] as an 8-bit grayscale PNG.
pub fn save_gray_png(path: &Path, frame: ndarray::ArrayView2<f32>) -> Result<()> {
    let (h, w) = frame.dim();
    let img = image::GrayImage::from_fn(w as u32, h as u32, |x, y| {
        image::Luma([unit_to_byte(frame[[y as usize, x as usize]])])
    });
    img.save(path).map_err(|e| {
        Error::new(
            format!("writing {}: {e}", path.display()),
            "check the folder",
        )
    })
}
