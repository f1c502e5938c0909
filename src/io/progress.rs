//! Progress bars: [`Progress`] for training loops (step, loss, steps per second, time left),
//! and [`progress`] with [`say`] for loops that print lines as they go.
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

/// A progress bar over `len` items with a message slot (stderr; hidden off a terminal).
pub fn progress(len: u64, prefix: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ETA {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(prefix.to_string());
    bar
}

/// Prints `line` above `bar` (or plainly when the bar is hidden, off a terminal).
pub fn say(bar: &ProgressBar, line: String) {
    if bar.is_hidden() {
        println!("{line}");
    } else {
        bar.println(line);
    }
}
