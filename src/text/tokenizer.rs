//! A word-level tokenizer with a fixed vocabulary: a caption such as `"a red 3 moving left
//! slowly"` becomes [`MAX_LEN`] token ids, the words' places in [`VOCAB`], padded with
//! [`PAD`], and a mask that is true on the words.
//!
//! **The vocabulary** (32 words, the caption grammar of the colour moving digits and nothing
//! else; the id is the place in the list):
//!
//! | ids     | words                                          | role                        |
//! |---------|------------------------------------------------|-----------------------------|
//! | 0       | `<pad>`                                        | padding, never a word       |
//! | 1–2     | `a` `the`                                      | articles                    |
//! | 3–4     | `digit` `number`                               | optional noun ("a red digit 3") |
//! | 5–14    | `0` `1` … `9`                                  | the digit                   |
//! | 15–17   | `red` `green` `blue`                           | the colour (one channel each) |
//! | 18–22   | `moving` `going` `moves` `goes` `sliding`      | verbs                       |
//! | 23–26   | `left` `right` `up` `down`                     | the direction               |
//! | 27–28   | `slowly` `quickly`                             | the speed (1 or 2 px/frame) |
//! | 29–31   | `and` `while` `as`                             | joining two digits          |
//!
//! **Normalisation.** The text is lower-cased and split on whitespace; punctuation at the end
//! of a word (`,` `.` `;` `:` `!` `?`) is dropped, and a word that was only punctuation
//! vanishes. So `"A red 3, moving LEFT."` reads as `a red 3 moving left`.
//!
//! **Errors** name the problem and the fix: an empty prompt; more than [`MAX_LEN`] words; an
//! unknown word, with the whole vocabulary and the nearest known word by edit distance
//! (`unknown word "lfet" — did you mean "left"?`); a number other than 0–9, or a colour other
//! than red, green and blue, with a hint saying which ones there are.

use crate::error::{Error, Result};
use ndarray::Array2;

/// The id of `"<pad>"`, `VOCAB[0]`: fills the tokens after the last word.
pub const PAD: usize = 0;

/// Tokens per caption, padding included. The longest caption the grammar writes is 15 words
/// (`"the red digit 3 moving left slowly while the blue digit 7 moving up quickly"`: 7 words
/// per digit and a conjunction); 24 leaves room for hand-written prompts, and stays small for
/// the attention over words.
pub const MAX_LEN: usize = 24;

/// The fixed vocabulary (see the table in the module doc); a word's id is its place here.
pub const VOCAB: &[&str] = &[
    "<pad>", "a", "the", "digit", "number", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9",
    "red", "green", "blue", "moving", "going", "moves", "goes", "sliding", "left", "right", "up",
    "down", "slowly", "quickly", "and", "while", "as",
];

/// Colour names a user might try that the vocabulary lacks: they get a specific hint.
const OTHER_COLOURS: &[&str] = &[
    "purple", "yellow", "orange", "pink", "black", "white", "grey", "gray", "brown", "cyan",
    "magenta", "violet", "indigo", "gold", "silver",
];

/// One tokenized caption: `ids.len() == MAX_LEN`, the words in `ids[..len]`, `ids[len..]` all
/// [`PAD`], and `len ≥ 1`. The type is the diffusion code's ([`Condition::Captions`] holds
/// them), so the math does not depend on the tokenizer.
///
/// [`Condition::Captions`]: crate::diffusion::Condition::Captions
pub use crate::diffusion::condition::Tokens;

/// Number of words in the vocabulary, [`PAD`] included.
pub fn vocab_size() -> usize {
    VOCAB.len()
}

/// A string that identifies the vocabulary (its words in id order, joined by spaces). Stored
/// in a checkpoint's metadata, it lets a loader refuse a model trained on other words.
pub fn vocab_fingerprint() -> String {
    VOCAB.join(" ")
}

/// The id of a known word (never [`PAD`]).
fn id_of(word: &str) -> Option<usize> {
    VOCAB.iter().skip(1).position(|&w| w == word).map(|i| i + 1)
}

/// Lower-cases `text`, splits it on whitespace and drops trailing punctuation.
fn words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| {
            w.to_lowercase()
                .trim_end_matches([',', '.', ';', ':', '!', '?'])
                .to_string()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

// ANCHOR: tokenize
/// Tokenizes a caption (see the module doc for the normalisation and the errors).
pub fn tokenize(text: &str) -> Result<Tokens> {
    let words = words(text);
    if words.is_empty() {
        return Err(Error::new(
            format!("the prompt {text:?} has no words"),
            "describe the clip, e.g. \"a red 3 moving left\"",
        ));
    }
    if words.len() > MAX_LEN {
        return Err(Error::new(
            format!(
                "the prompt has {} words, more than the {MAX_LEN} a caption can hold",
                words.len()
            ),
            "shorten it: one or two digits, e.g. \"a red 3 moving left and a blue 7 moving up\"",
        ));
    }
    let mut ids = vec![PAD; MAX_LEN];
    for (slot, w) in ids.iter_mut().zip(&words) {
        *slot = id_of(w).ok_or_else(|| unknown_word(w))?;
    }
    Ok(Tokens {
        ids,
        len: words.len(),
    })
}
// ANCHOR_END: tokenize

/// The error for a word outside the vocabulary: a specific hint for numbers and colours, the
/// nearest known word, and the whole vocabulary.
fn unknown_word(word: &str) -> Error {
    let known = VOCAB[1..].join(" ");
    if word == VOCAB[PAD] {
        return Error::new(
            format!("{word:?} is the padding token, not a word"),
            "leave it out: captions are padded for you",
        );
    }
    if word.chars().all(|c| c.is_ascii_digit()) {
        return Error::new(
            format!("unknown word {word:?} — the digits are 0–9, one digit each"),
            format!("use a single digit 0 to 9; the words are: {known}"),
        );
    }
    if OTHER_COLOURS.contains(&word) {
        return Error::new(
            format!("unknown word {word:?} — the colours are red, green, blue"),
            format!("use red, green or blue; the words are: {known}"),
        );
    }
    let nearest = VOCAB[1..]
        .iter()
        .min_by_key(|w| edit_distance(word, w))
        .expect("the vocabulary has words");
    Error::new(
        format!("unknown word {word:?} — did you mean {nearest:?}?"),
        format!("use only these words: {known}"),
    )
}

/// The Levenshtein distance: the fewest single-character insertions, deletions and
/// substitutions turning `a` into `b`, by the row-by-row dynamic programme
/// $d_{i,j} = \min(d_{i-1,j} + 1,\ d_{i,j-1} + 1,\ d_{i-1,j-1} + [a_i \ne b_j])$.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect(); // d_{0, j} = j
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0]; // d_{i-1, j-1}
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let up = row[j + 1]; // d_{i-1, j}
            row[j + 1] = (up + 1).min(row[j] + 1).min(diag + usize::from(ca != cb));
            diag = up;
        }
    }
    row[b.len()]
}

/// The words of `t` joined by single spaces (an id outside the vocabulary reads `<?id>`).
pub fn detokenize(t: &Tokens) -> String {
    t.ids
        .iter()
        .take(t.len)
        .map(|&id| match VOCAB.get(id) {
            Some(w) => w.to_string(),
            None => format!("<?{id}>"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A batch of token lists as arrays: ids `(B, MAX_LEN)` and the mask `(B, MAX_LEN)`, true on
/// the words.
pub fn batch(tokens: &[Tokens]) -> (Array2<usize>, Array2<bool>) {
    let b = tokens.len();
    let mut ids = Array2::from_elem((b, MAX_LEN), PAD); // (B, L)
    let mut mask = Array2::from_elem((b, MAX_LEN), false); // (B, L)
    for (i, t) in tokens.iter().enumerate() {
        for (j, &id) in t.ids.iter().take(MAX_LEN).enumerate() {
            ids[[i, j]] = id;
            mask[[i, j]] = j < t.len;
        }
    }
    (ids, mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("lfet", "left"), 2);
        assert_eq!(edit_distance("", "up"), 2);
        assert_eq!(edit_distance("blue", "blue"), 0);
        assert_eq!(edit_distance("gren", "green"), 1);
    }
}
