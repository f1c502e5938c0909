//! The five experiments by name: their settings (`--quick` and full), the guidance they score
//! at, and the long help of `dit_experiments`, generated from the settings so the text cannot
//! disagree with the code.

use crate::error::{Error, Result};

/// One experiment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Experiment {
    Scaling,
    Conditioning,
    UnetVsDit,
    Guidance,
    Samplers,
}

/// Training steps and samples per class of one setting.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Budget {
    /// Steps of every trained model (for guidance and samplers: of the reference DiT).
    pub steps: u64,
    /// Samples per class of every score.
    pub per_class: usize,
}

impl Experiment {
    pub const ALL: [Experiment; 5] = [
        Experiment::Scaling,
        Experiment::Conditioning,
        Experiment::UnetVsDit,
        Experiment::Guidance,
        Experiment::Samplers,
    ];

    /// The name on the command line and of the output folder.
    pub fn name(self) -> &'static str {
        match self {
            Experiment::Scaling => "scaling",
            Experiment::Conditioning => "conditioning",
            Experiment::UnetVsDit => "unet-vs-dit",
            Experiment::Guidance => "guidance",
            Experiment::Samplers => "samplers",
        }
    }

    /// `all`, or one name; anything else is an error listing the names.
    pub fn parse(name: &str) -> Result<Vec<Experiment>> {
        let lower = name.trim().to_ascii_lowercase();
        if lower == "all" {
            return Ok(Self::ALL.to_vec());
        }
        Self::ALL
            .into_iter()
            .find(|e| e.name() == lower)
            .map(|e| vec![e])
            .ok_or_else(|| {
                let names: Vec<_> = Self::ALL.iter().map(|e| e.name()).collect();
                Error::new(
                    format!("unknown experiment \"{name}\""),
                    format!("use one of {} or all", names.join(", ")),
                )
            })
    }

    /// The budget of `--quick` (≤ 10 minutes on two cores, including a setup made from
    /// scratch) and of the full setting.
    pub fn budget(self, quick: bool) -> Budget {
        let (steps, per_class) = match (self, quick) {
            (Experiment::Scaling, true) => (400, 40),
            (Experiment::Scaling, false) => (2000, 100),
            (Experiment::Conditioning, true) => (600, 40),
            (Experiment::Conditioning, false) => (3000, 100),
            (Experiment::UnetVsDit, true) => (600, 40),
            (Experiment::UnetVsDit, false) => (3000, 100),
            // The two share the reference DiT: the same steps in each setting.
            (Experiment::Guidance, true) => (1000, 40),
            (Experiment::Guidance, false) => (2000, 100),
            (Experiment::Samplers, true) => (1000, 40),
            (Experiment::Samplers, false) => (2000, 50),
        };
        Budget { steps, per_class }
    }

    /// The guidance scale of the scores (1 = none: the paper's scaling results are unguided).
    pub fn guidance(self) -> f32 {
        match self {
            Experiment::Samplers => crate::demo::DEMO_GUIDANCE,
            _ => 1.0,
        }
    }
}

impl Experiment {
    /// One paragraph for `--help`.
    pub fn about(self) -> String {
        let (q, f) = (self.budget(true), self.budget(false));
        let what = match self {
            Experiment::Scaling => {
                "DiT-mini/tiny/small × patch 2/4/8 (9 runs) trained for equal steps on the \
                 latents; final loss and Fréchet distance (guidance 1) against forward Gflops."
            }
            Experiment::Conditioning => {
                "DiT-tiny/2 with adaLN-Zero, adaLN, cross-attention and in-context \
                 conditioning at equal steps: loss curves, Fréchet distance, Gflops."
            }
            Experiment::UnetVsDit => {
                "the U-Net (width chosen to match the Gflops) against DiT-tiny/2 on the same \
                 data, steps and batch, each at its own learning rate (1e-3 and 3e-3)."
            }
            Experiment::Guidance => {
                "one DiT-tiny/2 (on digits the demo's if out/demo has it, else trained) sampled at \
                 guidance 1, 1.5, 2, 3, 4, 6, 8: class accuracy and Fréchet distance."
            }
            Experiment::Samplers => {
                "the same DiT sampled by DDPM and DDIM at 10, 25, 50, 250 steps (guidance 2): \
                 quality against measured sampling time."
            }
        };
        let text = format!(
            "{what} --quick: {} steps, {} samples per class; full: {} steps, {} per class.",
            q.steps, q.per_class, f.steps, f.per_class
        );
        format!("  {:<13}{}", self.name(), wrap(&text, 80, 15))
    }
}

/// `text` broken into lines of at most `width` characters, every line after the first
/// indented by `indent` spaces.
fn wrap(text: &str, width: usize, indent: usize) -> String {
    let mut out = String::new();
    let mut len = 0;
    for word in text.split_whitespace() {
        if len > 0 && len + 1 + word.chars().count() > width {
            out.push('\n');
            out.push_str(&" ".repeat(indent));
            len = 0;
        } else if len > 0 {
            out.push(' ');
            len += 1;
        }
        out.push_str(word);
        len += word.chars().count();
    }
    out
}

/// The long help of `dit_experiments`.
pub fn long_help() -> String {
    let mut s = wrap(
        "The DiT paper's experiments at CPU scale, on the latents of the built-in digits. Each \
         writes <out>/<name>/<name>.png, .md (the table) and .json, and prints one JSON line of \
         headline figures last. The VAE, latents and evaluation classifier are reused from \
         out/demo and out/classifier when present, else made first (about 95 s). --data NAME \
         runs on another dataset (shapes, uci-digits, mnist:DIR or an image folder): its own \
         VAE, latents, classifier and real images, made on first use, and every result under \
         <out>/<data>/<name>/; a set of few images (uci-digits: 1,437) may score fewer samples \
         per class than the setting's, as the report says. Every model \
         trains with the demo's recipe (lr 3e-3 with warm-up 100 and cosine decay, clipping, \
         batch 64) unless the experiment varies it. --quick finishes each experiment in under \
         10 minutes on two cores, setup included; without it, longer runs and more samples.",
        95,
        0,
    );
    s.push_str("\n\n");
    for e in Experiment::ALL {
        s.push_str(&e.about());
        s.push('\n');
    }
    s.push_str("\nExample: cargo run --release --example dit_experiments -- scaling --quick");
    s
}
