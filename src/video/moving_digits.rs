//! Moving digits: Moving-MNIST-style clips (Srivastava et al. 2015,
//! <https://arxiv.org/abs/1502.04681>), one digit per clip, drawn here from a seed — nothing is
//! downloaded. A clip is `(C, F, H, W)` = `(1, F, 32, 32)` by default, pixels in `[−1, 1]`
//! (background −1, strokes towards +1), and a set of them `(N, 1, F, H, W)`.
//!
//! **The motion rule.** A clip's 16×16 sprite moves at a constant velocity $v = s\,d$ pixels per
//! frame, $s \in [s_{min}, s_{max}]$ an integer speed and $d$ one of the four unit directions
//! ([`Motion`]: x is the column, y the row, y pointing down). With $L = \text{canvas} -
//! \text{sprite}$ the room to move and $s(F-1)$ the distance travelled:
//!
//! - if $s(F-1) \le L$ the start is drawn so that the sprite stays on the canvas for the whole
//!   clip: position $p_t = p_0 + t\,s\,d$ for $t = 0, …, F-1$;
//! - otherwise (a long clip) the start is drawn anywhere and the sprite bounces off the walls,
//!   as in Moving MNIST: $p_t = \mathrm{tri}_L(p_0 + t\,s\,d)$, the triangle wave that reflects
//!   at 0 and $L$. The label keeps the initial direction.
//!
//! The other coordinate is drawn uniformly on `[0, L]` and stays put. Positions are whole
//! pixels, so frame $t+1$ is frame $t$ shifted by exactly $s\,d$. A non-square canvas
//! (`width`) has its own $L$ on each axis, $W - \text{sprite}$ for x and $H - \text{sprite}$ for y.
//!
//! The label is one class over (digit, motion), $\ell = 4\,\text{digit} + \text{motion}$, 40
//! classes ("3 left"), and the caption is plain English ("a 3 moving left"). Clip `i` has label
//! `i mod 40` and is drawn from its own generator seeded by `(seed, i)`
//! ([`digits::sample_seed`]), so the first `k` clips of a set are the same for any size of set
//! and any number of threads.

use super::clip_set::ClipSet;
use super::config::MAX_FRAMES;
use crate::data::{digits, DataSource};
use crate::error::{Error, Result};
use crate::tensor::{rng, Rng};
use ndarray::Array5;
use ndarray_rand::rand::Rng as _;
use rayon::prelude::*;

/// One of the four directions a digit moves in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Motion {
    Left,
    Right,
    Up,
    Down,
}

/// Every motion, in label order.
pub const MOTIONS: [Motion; 4] = [Motion::Left, Motion::Right, Motion::Up, Motion::Down];

/// Classes of (digit, motion): 10 digits × 4 motions.
pub const NUM_CLASSES: usize = 10 * MOTIONS.len();

impl Motion {
    /// Its place in [`MOTIONS`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// `left`, `right`, `up`, `down`.
    pub fn name(self) -> &'static str {
        match self {
            Motion::Left => "left",
            Motion::Right => "right",
            Motion::Up => "up",
            Motion::Down => "down",
        }
    }

    /// The motion named `s` (as [`Motion::name`] writes it).
    pub fn parse(s: &str) -> Result<Motion> {
        MOTIONS.into_iter().find(|m| m.name() == s).ok_or_else(|| {
            Error::new(
                format!("{s:?} is not a motion"),
                "use left, right, up or down",
            )
        })
    }

    /// The unit direction `(dx, dy)`: x the column (right positive), y the row (down positive).
    pub fn velocity(self) -> (i64, i64) {
        match self {
            Motion::Left => (-1, 0),
            Motion::Right => (1, 0),
            Motion::Up => (0, -1),
            Motion::Down => (0, 1),
        }
    }
}

/// The class of a digit moving one way: $\ell = 4\,\text{digit} + \text{motion}$.
pub fn label(digit: usize, motion: Motion) -> usize {
    digit * MOTIONS.len() + motion.index()
}

/// The digit and motion of a class (the inverse of [`label`]; `label` taken modulo 40).
pub fn unlabel(label: usize) -> (usize, Motion) {
    let label = label % NUM_CLASSES;
    (label / MOTIONS.len(), MOTIONS[label % MOTIONS.len()])
}

/// The name of a class, `"3 left"`.
pub fn class_name(label: usize) -> String {
    let (digit, motion) = unlabel(label);
    format!("{digit} {}", motion.name())
}

/// The caption of a class in plain English, `"a 3 moving left"`.
pub fn caption(label: usize) -> String {
    let (digit, motion) = unlabel(label);
    format!("a {digit} moving {}", motion.name())
}

/// Where the digit glyphs come from.
#[derive(Clone, Debug, PartialEq)]
pub enum Sprites {
    /// [`digits::render_digit`] at the sprite size, a new hand for every clip.
    Procedural,
    /// A random image of the wanted digit from a 10-class, 1-channel digit dataset (e.g.
    /// `uci-digits`, real scans), loaded at 32×32 and resized to the sprite size.
    /// `DataSource::Digits` is the same as [`Sprites::Procedural`].
    Dataset(DataSource),
}

/// The generator's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct MovingDigits {
    /// Frames per clip `F`, 1 to [`MAX_FRAMES`].
    pub frames: usize,
    /// Canvas height `H` (and width, unless `width` is given).
    pub canvas: usize,
    /// Canvas width `W` when it differs from the height (`None`: square, `W = H`).
    pub width: Option<usize>,
    /// Sprite side, smaller than the canvas.
    pub sprite: usize,
    /// Slowest speed, pixels per frame (at least 1).
    pub min_speed: usize,
    /// Fastest speed, pixels per frame.
    pub max_speed: usize,
    pub sprites: Sprites,
}

impl Default for MovingDigits {
    fn default() -> Self {
        MovingDigits {
            frames: 8,
            canvas: 32,
            width: None,
            sprite: 16,
            min_speed: 1,
            max_speed: 2,
            sprites: Sprites::Procedural,
        }
    }
}

/// Glyph coverage in `[0, 1]`, `(sprite · sprite)` row-major, per digit.
enum Bank {
    Render,
    Images(Vec<Vec<Vec<f32>>>),
}

impl Sprites {
    /// The clips' dataset name, as checkpoints record it: `moving-digits` for the procedural
    /// glyphs, `moving-<dataset>` otherwise (`moving-uci-digits`).
    pub fn dataset_name(&self) -> String {
        match self {
            Sprites::Procedural | Sprites::Dataset(DataSource::Digits) => "moving-digits".into(),
            Sprites::Dataset(d) => format!("moving-{}", d.name()),
        }
    }

    /// The sprites of a name [`dataset_name`](Self::dataset_name) wrote, or a dataset name
    /// (`digits`, `uci-digits`, …) for the glyphs themselves.
    pub fn parse(name: &str) -> Result<Self> {
        match name.strip_prefix("moving-").unwrap_or(name) {
            "digits" => Ok(Sprites::Procedural),
            other => Ok(Sprites::Dataset(DataSource::parse(other)?)),
        }
    }
}

impl MovingDigits {
    /// The clips' dataset name, as latent files and checkpoints record it: the sprites' name
    /// ([`Sprites::dataset_name`]), with `@<min>-<max>` when the speeds are not the default
    /// 1–2 px/frame (`moving-digits@2-3`).
    pub fn dataset_name(&self) -> String {
        let d = MovingDigits::default();
        let name = self.sprites.dataset_name();
        if (self.min_speed, self.max_speed) == (d.min_speed, d.max_speed) {
            name
        } else {
            format!("{name}@{}-{}", self.min_speed, self.max_speed)
        }
    }

    /// The generator a [`dataset_name`](Self::dataset_name) describes, for clips of `frames`.
    pub fn from_name(name: &str, frames: usize) -> Result<Self> {
        let (sprites, speeds) = match name.split_once('@') {
            Some((s, v)) => (s, Some(v)),
            None => (name, None),
        };
        let mut gen = MovingDigits {
            frames,
            sprites: Sprites::parse(sprites)?,
            ..MovingDigits::default()
        };
        if let Some(v) = speeds {
            let parsed = v
                .split_once('-')
                .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)));
            let Some((lo, hi)) = parsed else {
                return Err(Error::new(
                    format!("dataset {name:?}: speeds {v:?} are not <min>-<max>"),
                    "write the speeds as e.g. moving-digits@2-3",
                ));
            };
            (gen.min_speed, gen.max_speed) = (lo, hi);
        }
        gen.validate()?;
        Ok(gen)
    }

    /// Checks every setting, saying the valid range of a wrong one.
    pub fn validate(&self) -> Result<()> {
        if !(1..=MAX_FRAMES).contains(&self.frames) {
            return Err(Error::new(
                format!("{} frames per clip", self.frames),
                format!("use 1 to {MAX_FRAMES} frames"),
            ));
        }
        if self.sprite == 0 || self.sprite >= self.canvas.min(self.canvas_width()) {
            return Err(Error::new(
                format!(
                    "a {0}×{0} sprite on a {1}×{2} canvas",
                    self.sprite,
                    self.canvas,
                    self.canvas_width()
                ),
                "use a sprite of at least 1 pixel and smaller than the canvas (default 16 on 32)",
            ));
        }
        if self.min_speed == 0 || self.min_speed > self.max_speed {
            return Err(Error::new(
                format!("speeds {}..={} px/frame", self.min_speed, self.max_speed),
                "use 1 ≤ min_speed ≤ max_speed (default 1..=2)",
            ));
        }
        Ok(())
    }

    /// Canvas width `W`: `width`, or the height for a square canvas.
    pub fn canvas_width(&self) -> usize {
        self.width.unwrap_or(self.canvas)
    }

    /// `n` clips `(n, 1, F, H, W)`, clip `i` of class `i mod 40`, drawn from `seed`.
    pub fn generate(&self, n: usize, seed: u64) -> Result<ClipSet> {
        self.validate()?;
        let bank = self.bank()?;
        let (f, h, w) = (self.frames, self.canvas, self.canvas_width());
        let clip_len = f * h * w;
        let mut pixels = vec![-1.0f32; n * clip_len]; // (N, 1, F, H, W) flattened
        let speeds: Vec<usize> = pixels
            .par_chunks_mut(clip_len.max(1))
            .enumerate()
            .map(|(i, clip)| {
                self.draw(
                    clip,
                    i % NUM_CLASSES,
                    &bank,
                    &mut rng(digits::sample_seed(seed, i as u64)),
                )
            })
            .collect();
        let clips = Array5::from_shape_vec((n, 1, f, h, w), pixels).expect("sizes agree");
        let labels: Vec<usize> = (0..n).map(|i| i % NUM_CLASSES).collect();
        ClipSet::new(clips, labels, speeds)
    }

    /// Draws clip `(F, H, W)` of class `label` into `clip` (all −1); returns its speed.
    fn draw(&self, clip: &mut [f32], label: usize, bank: &Bank, r: &mut Rng) -> usize {
        let (digit, motion) = unlabel(label);
        let sp = self.sprite;
        let speed = r.random_range(self.min_speed..=self.max_speed);
        let ink = match bank {
            Bank::Render => digits::render_digit(digit, sp, r),
            Bank::Images(by_digit) => {
                let pool = &by_digit[digit];
                pool[r.random_range(0..pool.len())].clone()
            }
        };
        self.paint(clip, &ink, motion, speed, r);
        speed
    }

    /// Paints glyph `ink` (`sprite · sprite` coverage in `[0, 1]`) into `clip` `(F, H, W)` (all
    /// −1), moving by `motion` at `speed` px/frame by the motion rule of the module doc, the
    /// start drawn from `r`. Shared with the colour digits, one channel per digit.
    pub(crate) fn paint(
        &self,
        clip: &mut [f32],
        ink: &[f32],
        motion: Motion,
        speed: usize,
        r: &mut Rng,
    ) {
        let (h, w, sp) = (self.canvas, self.canvas_width(), self.sprite);
        // L on each axis: a wide canvas gives a left/right digit more room than an up/down one
        let (room_x, room_y) = ((w - sp) as i64, (h - sp) as i64);
        let travel = (speed * (self.frames - 1)) as i64; // s (F − 1)
        let (dx, dy) = motion.velocity();
        // start on the moving axis: the whole path on the canvas if it fits, else anywhere
        let start = |d: i64, room: i64, r: &mut Rng| match d {
            0 => r.random_range(0..=room),
            _ if travel > room => r.random_range(0..=room),
            1 => r.random_range(0..=room - travel),
            _ => r.random_range(travel..=room),
        };
        let (x0, y0) = (start(dx, room_x, r), start(dy, room_y, r));
        for (t, frame) in clip.chunks_mut(h * w).enumerate() {
            let step = (t * speed) as i64;
            let (x, y) = (
                bounce(x0 + dx * step, room_x) as usize,
                bounce(y0 + dy * step, room_y) as usize,
            );
            for (row, ink_row) in ink.chunks(sp).enumerate() {
                let out = &mut frame[(y + row) * w + x..][..sp];
                for (o, &c) in out.iter_mut().zip(ink_row) {
                    *o = 2.0 * c - 1.0; // $x = 2c - 1$
                }
            }
        }
    }

    /// The glyphs: rendered per clip, or a dataset's images by digit.
    fn bank(&self) -> Result<Bank> {
        let source = match &self.sprites {
            Sprites::Procedural | Sprites::Dataset(DataSource::Digits) => return Ok(Bank::Render),
            Sprites::Dataset(s) => s,
        };
        let wrong = |why: String| {
            Error::new(
                format!("{} cannot give digit sprites: {why}", source.name()),
                "use procedural sprites, uci-digits, mnist:DIR or a folder of 10 grey digit classes",
            )
        };
        if source.channels() != 1 {
            return Err(wrong(format!(
                "it has {} channels, not 1",
                source.channels()
            )));
        }
        let ds = source.load(usize::MAX, 32, 0)?;
        if ds.num_classes() != 10 {
            return Err(wrong(format!(
                "it has {} classes, not 10",
                ds.num_classes()
            )));
        }
        let mut by_digit = vec![Vec::new(); 10];
        for i in 0..ds.len() {
            let img = ds.image(i); // (1, 32, 32)
            let coverage = img
                .index_axis(ndarray::Axis(0), 0)
                .mapv(|v| ((v + 1.0) / 2.0).clamp(0.0, 1.0));
            by_digit[ds.labels[i]].push(resize(coverage.view(), self.sprite));
        }
        if let Some(d) = by_digit.iter().position(Vec::is_empty) {
            return Err(wrong(format!("it has no image of the digit {d}")));
        }
        Ok(Bank::Images(by_digit))
    }
}

/// The triangle wave that reflects `p` into `[0, L]`: $m = p \bmod 2L$, $\min(m, 2L - m)$.
fn bounce(p: i64, room: i64) -> i64 {
    if room == 0 {
        return 0;
    }
    let m = p.rem_euclid(2 * room);
    m.min(2 * room - m)
}

/// Bilinear resize of a square image to `size × size`, pixel centres aligned
/// ($u = (i + \frac12)\,\frac{S}{s} - \frac12$): halving averages 2×2 blocks.
fn resize(img: ndarray::ArrayView2<f32>, size: usize) -> Vec<f32> {
    let src = img.nrows();
    let scale = src as f32 / size as f32;
    let at = |i: usize| {
        let u = ((i as f32 + 0.5) * scale - 0.5).clamp(0.0, (src - 1) as f32);
        let lo = u.floor() as usize;
        (lo, (lo + 1).min(src - 1), u - lo as f32)
    };
    let mut out = Vec::with_capacity(size * size);
    for i in 0..size {
        let (y0, y1, fy) = at(i);
        for j in 0..size {
            let (x0, x1, fx) = at(j);
            let top = img[[y0, x0]] * (1.0 - fx) + img[[y0, x1]] * fx;
            let bottom = img[[y1, x0]] * (1.0 - fx) + img[[y1, x1]] * fx;
            out.push(top * (1.0 - fy) + bottom * fy);
        }
    }
    out
}
