//! Errors a user can cause — a bad path, a bad image, a wrong shape, a bad config, a corrupt
//! checkpoint — as one type whose message names the problem and how to fix it.

use std::fmt;
use std::path::Path;

/// A user-facing error: what went wrong, and what to do about it.
#[derive(Debug)]
pub struct Error {
    pub problem: String,
    pub fix: String,
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An error with the problem and its fix.
    pub fn new(problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Error {
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    /// An I/O failure on `path`.
    pub fn io(path: &Path, err: std::io::Error, fix: impl Into<String>) -> Self {
        Error::new(format!("{}: {err}", path.display()), fix)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.fix.is_empty() {
            write!(f, "{}", self.problem)
        } else {
            write!(f, "{}\n  fix: {}", self.problem, self.fix)
        }
    }
}

impl std::error::Error for Error {}

/// Writes `bytes` to `path` atomically: into a temporary file beside it, then renamed over it,
/// so a crash or a full disk never leaves a half-written file under the real name.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(dir, e, "check that the folder can be created"))?;
    let name = path.file_name().ok_or_else(|| {
        Error::new(
            format!("{} is not a file path", path.display()),
            "give a file name",
        )
    })?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = std::fs::write(&tmp, bytes).and_then(|_| std::fs::rename(&tmp, path));
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e, "check the path and free disk space")
    })
}
