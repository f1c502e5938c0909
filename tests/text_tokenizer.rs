//! The word tokenizer: detokenize ∘ tokenize is the identity on every caption the grammar
//! writes and on any words of the vocabulary; padding and mask; every user error, with its
//! message.

use minisora::tensor::rng;
use minisora::text::tokenizer::{
    batch, detokenize, tokenize, vocab_fingerprint, vocab_size, Tokens, MAX_LEN, PAD, VOCAB,
};
use minisora::video::captions::{caption, random_spec};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every caption the grammar writes, for random specs and phrasings, survives the round trip.
    #[test]
    fn grammar_captions_round_trip(seed in any::<u64>()) {
        let mut r = rng(seed);
        let spec = random_spec(&mut r, seed % 2 == 0);
        let text = caption(&spec, &mut r);
        let t = tokenize(&text).unwrap();
        prop_assert_eq!(detokenize(&t), text.clone());
        prop_assert_eq!(t.len, text.split(' ').count());
    }

    /// Any sequence of vocabulary words (not `<pad>`) round-trips, whatever the case and with
    /// trailing punctuation.
    #[test]
    fn any_vocabulary_words_round_trip(
        picks in prop::collection::vec(1usize..VOCAB.len(), 1..=MAX_LEN),
        shout in any::<bool>(),
    ) {
        let plain: Vec<&str> = picks.iter().map(|&i| VOCAB[i]).collect();
        let plain = plain.join(" ");
        let typed = if shout { plain.to_uppercase() + "." } else { plain.replace(' ', ",  ") };
        let t = tokenize(&typed).unwrap();
        prop_assert_eq!(&t.ids[..t.len], &picks[..]);
        prop_assert_eq!(detokenize(&t), plain);
    }
}

#[test]
fn padding_and_mask() {
    let t = tokenize("A red 3, moving LEFT.").unwrap();
    assert_eq!(t.len, 5);
    assert_eq!(t.ids.len(), MAX_LEN);
    assert!(t.ids[..5].iter().all(|&id| id != PAD));
    assert!(t.ids[5..].iter().all(|&id| id == PAD));
    assert_eq!(VOCAB[t.ids[1]], "red");
    let mask = t.mask();
    assert_eq!(mask.len(), MAX_LEN);
    assert_eq!(mask.iter().filter(|&&m| m).count(), 5);
    assert!(mask[4] && !mask[5]);
    assert_eq!(detokenize(&t), "a red 3 moving left");

    let u = tokenize("the blue digit 7 goes up quickly while a green 1 moves down").unwrap();
    let (ids, masks) = batch(&[t.clone(), u.clone()]);
    assert_eq!(ids.dim(), (2, MAX_LEN));
    assert_eq!(masks.dim(), (2, MAX_LEN));
    assert_eq!(ids.row(1).to_vec(), u.ids);
    assert_eq!(masks.row(0).to_vec(), t.mask());
    assert_eq!(masks.row(1).iter().filter(|&&m| m).count(), u.len);
}

#[test]
fn the_vocabulary_is_fixed_and_fingerprinted() {
    assert_eq!(VOCAB[PAD], "<pad>");
    assert_eq!(vocab_size(), VOCAB.len());
    assert!((30..=60).contains(&vocab_size()), "{}", vocab_size());
    let mut sorted = VOCAB.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), VOCAB.len(), "a word twice");
    let fp = vocab_fingerprint();
    assert!(fp.starts_with("<pad> a "), "{fp}");
    assert_eq!(fp.split(' ').count(), vocab_size());
}

#[test]
fn an_empty_prompt_is_refused() {
    for text in ["", "   ", " , . "] {
        let e = tokenize(text).unwrap_err();
        assert!(e.problem.contains("no words"), "{e}");
        assert!(e.fix.contains("a red 3 moving left"), "{e}");
    }
}

#[test]
fn an_unknown_word_names_the_nearest_and_the_vocabulary() {
    let e = tokenize("a red 3 moving lfet").unwrap_err();
    assert_eq!(e.problem, "unknown word \"lfet\" — did you mean \"left\"?");
    for w in &VOCAB[1..] {
        assert!(e.fix.contains(w), "{w} missing from {e}");
    }
    let e = tokenize("a gren 3 moving left").unwrap_err();
    assert!(e.problem.contains("did you mean \"green\""), "{e}");
    let e = tokenize("a red 3 moving left <pad>").unwrap_err();
    assert!(e.problem.contains("padding"), "{e}");
}

#[test]
fn a_missing_colour_or_digit_gets_a_specific_hint() {
    let e = tokenize("a purple 3 moving left").unwrap_err();
    assert!(e.problem.contains("\"purple\""), "{e}");
    assert!(e.problem.contains("red, green, blue"), "{e}");
    let e = tokenize("a 12 moving left").unwrap_err();
    assert!(e.problem.contains("\"12\""), "{e}");
    assert!(e.problem.contains("0–9"), "{e}");
}

#[test]
fn a_prompt_longer_than_max_len_is_refused() {
    let ok = vec!["a"; MAX_LEN].join(" ");
    assert_eq!(tokenize(&ok).unwrap().len, MAX_LEN);
    let long = vec!["a"; MAX_LEN + 1].join(" ");
    let e = tokenize(&long).unwrap_err();
    assert!(e.problem.contains(&format!("{} words", MAX_LEN + 1)), "{e}");
    assert!(e.problem.contains(&MAX_LEN.to_string()), "{e}");
    let t = Tokens {
        ids: vec![PAD; MAX_LEN],
        len: 0,
    };
    assert_eq!(detokenize(&t), "");
}
