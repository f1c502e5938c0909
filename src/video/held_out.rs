//! The compositions the colour digits hold out of training, so a text-to-video model can be
//! asked for combinations it never saw: does it compose "green", "7" and "down", or only
//! remember them together?
//!
//! **Held-out triples** (digit, colour, direction): for each digit $d$ exactly one, the colour
//! $d \bmod 3$ (red, green, blue) and the direction $d \bmod 4$ (left, right, up, down). As
//! $\mathrm{lcm}(3, 4) = 12$, the ten triples use ten different (colour, direction) pairs, each
//! colour 3–4 times and each direction 2–3 times:
//!
//! | digit | colour | direction |   | digit | colour | direction |
//! |-------|--------|-----------|---|-------|--------|-----------|
//! | 0     | red    | left      |   | 5     | blue   | right     |
//! | 1     | green  | right     |   | 6     | red    | up        |
//! | 2     | blue   | up        |   | 7     | green  | down      |
//! | 3     | red    | down      |   | 8     | blue   | left      |
//! | 4     | green  | left      |   | 9     | red    | right     |
//!
//! **Held-out pairs** (two digits in one clip, any colours and directions): {0, 5}, {1, 6},
//! {2, 7}, {3, 8}, {4, 9} — 5 of the 45 pairs, each digit in exactly one.
//!
//! A clip is held out ([`is_held_out`]) when any of its digits is a held-out triple (at any
//! speed) or its two digits are a held-out pair. What training keeps: every digit in 11 of
//! its 12 (colour, direction) combinations, every digit with each colour and each direction,
//! every digit in 8 pairs — so each word of a held-out caption has been seen, only not
//! together.

use super::captions::{ClipSpec, Colour, DigitSpec};
use super::moving_digits::Motion;

/// The held-out (digit, colour, direction) triples, indexed by digit (see the table above).
pub const HELD_OUT_TRIPLES: [(usize, Colour, Motion); 10] = [
    (0, Colour::Red, Motion::Left),
    (1, Colour::Green, Motion::Right),
    (2, Colour::Blue, Motion::Up),
    (3, Colour::Red, Motion::Down),
    (4, Colour::Green, Motion::Left),
    (5, Colour::Blue, Motion::Right),
    (6, Colour::Red, Motion::Up),
    (7, Colour::Green, Motion::Down),
    (8, Colour::Blue, Motion::Left),
    (9, Colour::Red, Motion::Right),
];

/// The held-out unordered digit pairs, smaller digit first.
pub const HELD_OUT_PAIRS: [(usize, usize); 5] = [(0, 5), (1, 6), (2, 7), (3, 8), (4, 9)];

/// Which compositions a generated set may show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Split {
    /// No held-out composition, ever.
    Train,
    /// Only clips with at least one held-out composition.
    HeldOut,
}

impl Split {
    /// Whether a clip of `spec` belongs to this split.
    pub fn admits(self, spec: &ClipSpec) -> bool {
        is_held_out(spec) == (self == Split::HeldOut)
    }

    /// `train`, `held-out`.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::HeldOut => "held-out",
        }
    }
}

// ANCHOR: is_held_out
/// Whether this digit, colour and direction together are a held-out triple.
pub fn is_held_out_triple(d: &DigitSpec) -> bool {
    HELD_OUT_TRIPLES
        .get(d.digit)
        .is_some_and(|&(_, c, m)| c == d.colour && m == d.motion)
}

/// Whether digits `a` and `b` (in either order) are a held-out pair.
pub fn is_held_out_pair(a: usize, b: usize) -> bool {
    HELD_OUT_PAIRS.contains(&(a.min(b), a.max(b)))
}

/// True when any digit of `spec` is a held-out triple, or its two digits a held-out pair.
pub fn is_held_out(spec: &ClipSpec) -> bool {
    let triple = spec.digits.iter().any(is_held_out_triple);
    let pair = match spec.digits.as_slice() {
        [a, b] => is_held_out_pair(a.digit, b.digit),
        _ => false,
    };
    triple || pair
}
// ANCHOR_END: is_held_out

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::moving_digits::MOTIONS;

    #[test]
    fn the_triples_follow_the_documented_rule() {
        for (d, &(digit, colour, motion)) in HELD_OUT_TRIPLES.iter().enumerate() {
            assert_eq!(digit, d);
            assert_eq!(colour.channel(), d % 3);
            assert_eq!(motion, MOTIONS[d % 4]);
        }
        for d in 0..10 {
            let pairs = HELD_OUT_PAIRS.iter().filter(|&&(a, b)| a == d || b == d);
            assert_eq!(pairs.count(), 1, "digit {d}");
        }
    }
}
