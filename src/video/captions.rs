//! What a colour moving-digit clip shows, as a [`ClipSpec`], and the captions that say it: a
//! grammar that writes one of many phrasings from a seed ([`caption`]) and a parser that reads
//! them back, and short hand-written prompts too ([`parse_caption`]).
//!
//! A clip shows one or two digits, each in one pure colour — red, green or blue, one channel
//! each ([`Colour::channel`]) — moving left, right, up or down ([`Motion`]), slowly (1 px/frame)
//! or quickly (2 px/frame) ([`Speed`]). Two digits of a clip have different colours.
//!
//! **The grammar** (every choice drawn per digit from the generator):
//!
//! ```text
//! caption := clause | clause CONJ clause            CONJ ∈ {and, while, as}
//! clause  := ART COLOUR [NOUN] DIGIT VP             ART ∈ {a, the}, NOUN ∈ {digit, number}
//! VP      := VERB DIR SPEED | SPEED VERB DIR | VERB SPEED DIR
//! VERB ∈ {moving, going, moves, goes, sliding}      DIR ∈ {left, right, up, down}
//! SPEED ∈ {slowly, quickly}, left out when the spec has no speed
//! ```
//!
//! so `"a red 3 moving left slowly"`, `"the green digit 7 quickly goes up while a blue 1
//! sliding slowly down"`. The longest is 15 words (within the tokenizer's `MAX_LEN`).
//!
//! **The parser** tokenizes with [`crate::text::tokenizer`] (so an unknown word gets its
//! error there), splits at the conjunctions and reads each clause by the role of its words:
//! a clause needs exactly one digit, one colour and one direction, and may have one speed;
//! articles, nouns and verbs are optional and word order is free. Anything else is an error
//! naming the clause and what it lacks or repeats.

use super::moving_digits::{Motion, MOTIONS};
use crate::error::{Error, Result};
use crate::tensor::Rng;
use crate::text::tokenizer::{detokenize, tokenize};
use ndarray_rand::rand::Rng as _;

/// A digit's colour: one channel of the RGB clip.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Colour {
    Red,
    Green,
    Blue,
}

/// Every colour, in channel order.
pub const COLOURS: [Colour; 3] = [Colour::Red, Colour::Green, Colour::Blue];

impl Colour {
    /// The channel the colour lives in: red 0, green 1, blue 2.
    pub fn channel(self) -> usize {
        self as usize
    }

    /// `red`, `green`, `blue`.
    pub fn name(self) -> &'static str {
        match self {
            Colour::Red => "red",
            Colour::Green => "green",
            Colour::Blue => "blue",
        }
    }
}

/// How fast a digit moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Speed {
    /// 1 px/frame.
    Slowly,
    /// 2 px/frame.
    Quickly,
}

/// Both speeds, slow first.
pub const SPEEDS: [Speed; 2] = [Speed::Slowly, Speed::Quickly];

impl Speed {
    /// Pixels per frame: slowly 1, quickly 2 (the moving digits' default speeds).
    pub fn px_per_frame(self) -> usize {
        match self {
            Speed::Slowly => 1,
            Speed::Quickly => 2,
        }
    }

    /// `slowly`, `quickly`.
    pub fn name(self) -> &'static str {
        match self {
            Speed::Slowly => "slowly",
            Speed::Quickly => "quickly",
        }
    }
}

/// One digit of a clip: which, in what colour, which way, how fast (`None`: any speed, as in
/// a prompt that does not say).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DigitSpec {
    pub digit: usize,
    pub colour: Colour,
    pub motion: Motion,
    pub speed: Option<Speed>,
}

/// What a clip shows: one or two digits of different colours.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClipSpec {
    pub digits: Vec<DigitSpec>,
}

impl ClipSpec {
    /// Checks the spec: one or two digits, each 0–9, of different colours.
    pub fn validate(&self) -> Result<()> {
        let n = self.digits.len();
        if !(1..=2).contains(&n) {
            return Err(Error::new(
                format!("a clip of {n} digits"),
                "describe one or two digits, e.g. \"a red 3 moving left and a blue 7 moving up\"",
            ));
        }
        if let Some(d) = self.digits.iter().find(|d| d.digit > 9) {
            return Err(Error::new(
                format!("the digit {}", d.digit),
                "use a digit 0 to 9",
            ));
        }
        if n == 2 && self.digits[0].colour == self.digits[1].colour {
            return Err(Error::new(
                format!(
                    "two digits of one colour, {}: they would share a channel",
                    self.digits[0].colour.name()
                ),
                "give the two digits different colours (red, green, blue)",
            ));
        }
        Ok(())
    }
}

/// A random spec of one or two (`two`) different digits in different colours, with random
/// motions and speeds (always `Some`), as the training data draws them.
pub fn random_spec(r: &mut Rng, two: bool) -> ClipSpec {
    let first = r.random_range(0..10);
    let c0 = r.random_range(0..3);
    let mut digits = vec![random_digit(first, COLOURS[c0], r)];
    if two {
        let second = (first + r.random_range(1..10)) % 10; // another digit
        let c1 = (c0 + r.random_range(1..3)) % 3; // another colour
        digits.push(random_digit(second, COLOURS[c1], r));
    }
    ClipSpec { digits }
}

fn random_digit(digit: usize, colour: Colour, r: &mut Rng) -> DigitSpec {
    DigitSpec {
        digit,
        colour,
        motion: MOTIONS[r.random_range(0..4)],
        speed: Some(SPEEDS[r.random_range(0..2)]),
    }
}

const ARTICLES: [&str; 2] = ["a", "the"];
const NOUNS: [&str; 2] = ["digit", "number"];
const VERBS: [&str; 5] = ["moving", "going", "moves", "goes", "sliding"];
const CONJUNCTIONS: [&str; 3] = ["and", "while", "as"];

// ANCHOR: caption_grammar
/// A caption of `spec` in a phrasing drawn from `r` (the grammar of the module doc).
pub fn caption(spec: &ClipSpec, r: &mut Rng) -> String {
    let clauses: Vec<String> = spec.digits.iter().map(|d| clause(d, r)).collect();
    let conj = CONJUNCTIONS[r.random_range(0..CONJUNCTIONS.len())];
    clauses.join(&format!(" {conj} "))
}

/// One digit's clause: `ART COLOUR [NOUN] DIGIT VP`.
fn clause(d: &DigitSpec, r: &mut Rng) -> String {
    let mut w: Vec<String> = vec![
        ARTICLES[r.random_range(0..2)].into(),
        d.colour.name().into(),
    ];
    if r.random_bool(0.5) {
        w.push(NOUNS[r.random_range(0..2)].into());
    }
    w.push(d.digit.to_string());
    let verb = VERBS[r.random_range(0..VERBS.len())].to_string();
    let dir = d.motion.name().to_string();
    match d.speed.map(|s| s.name().to_string()) {
        None => w.extend([verb, dir]),
        Some(s) => match r.random_range(0..3) {
            0 => w.extend([verb, dir, s]),
            1 => w.extend([s, verb, dir]),
            _ => w.extend([verb, s, dir]),
        },
    }
    w.join(" ")
}
// ANCHOR_END: caption_grammar

/// Reads a caption or prompt into a spec (see the module doc); errors say what is missing.
pub fn parse_caption(text: &str) -> Result<ClipSpec> {
    let words = detokenize(&tokenize(text)?);
    let mut clauses: Vec<Vec<&str>> = vec![Vec::new()];
    for w in words.split(' ') {
        if CONJUNCTIONS.contains(&w) {
            clauses.push(Vec::new());
        } else {
            clauses.last_mut().expect("one clause at least").push(w);
        }
    }
    if clauses.len() > 2 {
        return Err(Error::new(
            format!("{text:?} describes {} digits", clauses.len()),
            "describe one or two digits, joined by one \"and\", \"while\" or \"as\"",
        ));
    }
    let digits = clauses
        .iter()
        .map(|c| parse_clause(c, text))
        .collect::<Result<Vec<_>>>()?;
    let spec = ClipSpec { digits };
    spec.validate()?;
    Ok(spec)
}

/// One clause's digit, colour, direction and optional speed, read by the words' roles.
fn parse_clause(words: &[&str], text: &str) -> Result<DigitSpec> {
    let said = words.join(" ");
    let mut digit = None;
    let mut colour = None;
    let mut motion = None;
    let mut speed = None;
    for &w in words {
        let twice = |what: &str| {
            Error::new(
                format!("{said:?} in {text:?} names two {what}s for one digit"),
                format!("give each digit one {what}; join two digits with \"and\""),
            )
        };
        if let Ok(d) = w.parse::<usize>() {
            if digit.replace(d).is_some() {
                return Err(twice("digit"));
            }
        } else if let Some(&c) = COLOURS.iter().find(|c| c.name() == w) {
            if colour.replace(c).is_some() {
                return Err(twice("colour"));
            }
        } else if let Some(&m) = MOTIONS.iter().find(|m| m.name() == w) {
            if motion.replace(m).is_some() {
                return Err(twice("direction"));
            }
        } else if let Some(&s) = SPEEDS.iter().find(|s| s.name() == w) {
            if speed.replace(s).is_some() {
                return Err(twice("speed"));
            }
        }
        // articles, nouns and verbs carry nothing the spec needs
    }
    let lacks = |what: &str, fix: &str| {
        Error::new(
            format!("{said:?} in {text:?} has no {what}"),
            format!("{fix}, e.g. \"a red 3 moving left\""),
        )
    };
    if words.is_empty() {
        return Err(Error::new(
            format!("{text:?} has a conjunction with no digit on one side"),
            "write a digit on each side of \"and\", \"while\" or \"as\"",
        ));
    }
    Ok(DigitSpec {
        digit: digit.ok_or_else(|| lacks("digit", "name a digit 0 to 9"))?,
        colour: colour.ok_or_else(|| lacks("colour", "say red, green or blue"))?,
        motion: motion.ok_or_else(|| lacks("direction", "say left, right, up or down"))?,
        speed,
    })
}
