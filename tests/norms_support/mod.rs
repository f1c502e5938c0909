//! Shared by the `grad_*` tests of the activation, norm, embedding and loss layers.

use minisora::gradcheck::{GradCheck, Report};

/// Runs a gradient check with the default tolerances and the case's own checker seed (its
/// `dy`, sampled coordinates and directions), so every proptest case draws fresh ones.
pub fn check_seeded(seed: u64, run: impl Fn(&GradCheck) -> Report) -> Report {
    run(&GradCheck {
        seed,
        ..GradCheck::default()
    })
}
