//! Pictures in and out: a batch of images `(N, C, H, W)` in `[−1, 1]` saved as one PNG grid,
//! a sequence of grids saved as an animated GIF, and one picture file loaded for the
//! [`folder`](crate::data::folder) loader.
//!
//! Files are encoded in memory with the `image` crate, then written with
//! [`write_atomic`], so an interrupted run never leaves half a file.

use crate::error::{write_atomic, Error, Result};
use image::{DynamicImage, ImageFormat, RgbImage, RgbaImage};
use ndarray::ArrayView4;
use std::io::Cursor;
use std::path::Path;

/// A value in `[−1, 1]` back to a byte (clamped, rounded).
#[inline]
pub fn unit_to_byte(x: f32) -> u8 {
    ((x.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8
}

/// How to lay images out in a grid.
#[derive(Clone, Copy, Debug)]
pub struct GridLayout {
    /// Images per row.
    pub cols: usize,
    /// Pixels of padding between images and around the border (before upscaling).
    pub pad: usize,
    /// Each pixel becomes an `upscale × upscale` block (nearest neighbour), for small images.
    pub upscale: usize,
}

impl GridLayout {
    /// `cols` per row, 1 pixel of padding, no upscaling.
    pub fn new(cols: usize) -> Self {
        GridLayout {
            cols,
            pad: 1,
            upscale: 1,
        }
    }

    /// With `pad` pixels of padding.
    pub fn pad(mut self, pad: usize) -> Self {
        self.pad = pad;
        self
    }

    /// With each pixel drawn `upscale × upscale`.
    pub fn upscale(mut self, upscale: usize) -> Self {
        self.upscale = upscale.max(1);
        self
    }
}

/// Lays `images` `(N, C, H, W)` (C = 1 grey or 3 RGB, values in `[−1, 1]`) out in a grid,
/// padding in mid grey. Grey images are repeated over the three channels.
pub fn grid(images: ArrayView4<f32>, layout: GridLayout) -> Result<RgbImage> {
    let (n, c, h, w) = images.dim();
    if c != 1 && c != 3 {
        return Err(Error::new(
            format!("cannot draw images with {c} channels"),
            "pass 1 (grey) or 3 (RGB) channels",
        ));
    }
    if n == 0 || layout.cols == 0 {
        return Err(Error::new(
            "no images to draw (or zero columns)",
            "pass at least one image and one column",
        ));
    }
    let cols = layout.cols.min(n);
    let rows = n.div_ceil(cols);
    let (pad, up) = (layout.pad, layout.upscale.max(1));
    let gw = (cols * (w + pad) + pad) * up;
    let gh = (rows * (h + pad) + pad) * up;
    let mut out = RgbImage::from_pixel(gw as u32, gh as u32, image::Rgb([128, 128, 128]));
    for i in 0..n {
        let (gy, gx) = (i / cols, i % cols);
        let (oy, ox) = (pad + gy * (h + pad), pad + gx * (w + pad));
        for y in 0..h {
            for x in 0..w {
                let px = if c == 1 {
                    let v = unit_to_byte(images[[i, 0, y, x]]);
                    [v, v, v]
                } else {
                    [0, 1, 2].map(|k| unit_to_byte(images[[i, k, y, x]]))
                };
                for uy in 0..up {
                    for ux in 0..up {
                        let (px_x, px_y) = ((ox + x) * up + ux, (oy + y) * up + uy);
                        out.put_pixel(px_x as u32, px_y as u32, image::Rgb(px));
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Saves `images` `(N, C, H, W)` in `[−1, 1]` as one PNG grid at `path`.
pub fn save_grid(path: &Path, images: ArrayView4<f32>, layout: GridLayout) -> Result<()> {
    let img = grid(images, layout)?;
    let mut bytes = Vec::new();
    let encoded = if images.shape()[1] == 1 {
        DynamicImage::ImageRgb8(img)
            .into_luma8()
            .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
    } else {
        img.write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
    };
    encoded.map_err(|e| Error::new(format!("encoding {}: {e}", path.display()), ""))?;
    write_atomic(path, &bytes)
}

/// Saves a sequence of grids (e.g. the steps of a sampler, or the frames of a video) as an
/// animated GIF that loops forever, `delay_ms` per frame. All frames must have the same shape.
pub fn save_gif(
    path: &Path,
    frames: &[ArrayView4<f32>],
    layout: GridLayout,
    delay_ms: u32,
) -> Result<()> {
    use image::codecs::gif::{GifEncoder, Repeat};
    if frames.is_empty() {
        return Err(Error::new(
            format!("no frames for {}", path.display()),
            "pass at least one frame",
        ));
    }
    if frames.iter().any(|f| f.dim() != frames[0].dim()) {
        return Err(Error::new(
            format!("frames for {} differ in shape", path.display()),
            "pass frames of one shape (N, C, H, W)",
        ));
    }
    let mut bytes = Vec::new();
    {
        let mut enc = GifEncoder::new_with_speed(&mut bytes, 10);
        let err =
            |e: image::ImageError| Error::new(format!("encoding {}: {e}", path.display()), "");
        enc.set_repeat(Repeat::Infinite).map_err(err)?;
        for f in frames {
            let rgb = grid(*f, layout)?;
            let rgba: RgbaImage = DynamicImage::ImageRgb8(rgb).into_rgba8();
            let delay = image::Delay::from_numer_denom_ms(delay_ms, 1);
            enc.encode_frame(image::Frame::from_parts(rgba, 0, 0, delay))
                .map_err(err)?;
        }
    }
    write_atomic(path, &bytes)
}

/// Loads one picture in any format the `image` crate reads (PNG, JPEG, GIF, BMP, WebP).
/// The error names the file and says whether it is missing or unreadable.
pub fn load_image(path: &Path) -> Result<DynamicImage> {
    let bytes = std::fs::read(path)
        .map_err(|e| Error::io(path, e, "check that the file exists and is readable"))?;
    image::load_from_memory(&bytes).map_err(|e| {
        Error::new(
            format!("{} is not a readable image: {e}", path.display()),
            "replace or delete the file (PNG, JPEG, GIF, BMP and WebP are read)",
        )
    })
}
