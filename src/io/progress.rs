//! A progress bar for training loops: step, loss, steps per second and time left.
//! Drawn on stderr; hidden when stderr is not a terminal (logs stay clean).

use indicatif::{ProgressBar, ProgressStyle};

/// A training progress bar.
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar over `total` steps, labelled `label`.
    pub fn new(total: u64, label: &str) -> Self {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} {msg} {per_sec} ETA {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        Progress { bar }
    }

    /// Marks one more step done, showing its loss.
    pub fn step(&self, loss: f32) {
        self.bar.set_message(format!("loss {loss:.4}"));
        self.bar.inc(1);
    }

    /// Clears the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
