//! Running the `minisora` binary as a user runs it, for the command-line tests.

use std::path::Path;
use std::process::Command;

/// Runs `minisora <args>` in `dir`: (exit success, stdout, stderr).
pub fn run(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_minisora"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `minisora <args>` in `dir`, asserting that it succeeds; its stdout.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    let (ok, out, err) = run(dir, args);
    assert!(ok, "{args:?} failed: {err}");
    out
}

/// Asserts that `minisora <args>` fails cleanly with every one of `needles` in its stderr.
pub fn fails(dir: &Path, args: &[&str], needles: &[&str]) {
    let (ok, _, err) = run(dir, args);
    assert!(!ok, "{args:?} succeeded");
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: no {n:?} in: {err}");
    }
}
