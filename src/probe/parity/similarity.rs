//! How alike two bodies are, fast enough to run on every parity probe:
//! the Dice coefficient of their multisets of token bigrams (w-shingling,
//! as near-duplicate detection does), with the volatile parts learned from
//! two answers of the old side left out.
//!
//! A token is a run of letters and digits, or one punctuation character;
//! white space only separates, so a re-indented page is the same page.
//! Bigrams (each token with the next) keep some of the order: a page with
//! its paragraphs swapped differs at the seams. Everything is hashed to
//! `u64` and sorted, so comparing is a merge of sorted lists: linear in
//! the size of the bodies (a 1 MiB body is about 200,000 tokens), with no
//! diff whose cost grows with the square of the differences.

use std::cmp::Ordering;

/// A body reduced to its sorted bigram hashes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Shingles(Vec<u64>);

impl Shingles {
    pub fn of(text: &str) -> Shingles {
        let mut tokens = Vec::with_capacity(text.len() / 4);
        let mut word: Option<usize> = None;
        for (i, c) in text.char_indices() {
            if c.is_alphanumeric() || c == '_' {
                word.get_or_insert(i);
                continue;
            }
            if let Some(start) = word.take() {
                tokens.push(fnv(&text.as_bytes()[start..i]));
            }
            if !c.is_whitespace() {
                tokens.push(fnv(&text.as_bytes()[i..i + c.len_utf8()]));
            }
        }
        if let Some(start) = word {
            tokens.push(fnv(&text.as_bytes()[start..]));
        }
        // A body of one token still has one shingle: itself.
        let mut bigrams: Vec<u64> = if tokens.len() == 1 {
            tokens
        } else {
            tokens
                .windows(2)
                .map(|w| w[0].rotate_left(17) ^ w[1].wrapping_mul(0x9e37_79b9_7f4a_7c15))
                .collect()
        };
        bigrams.sort_unstable();
        Shingles(bigrams)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// FNV-1a: stable across Rust releases and fast on short tokens.
fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Walk two sorted multisets together: `both` for each element in common
/// (as many times as it is in both), `only_a` and `only_b` for the rest.
fn merge(a: &[u64], b: &[u64], mut f: impl FnMut(Side, u64)) {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            Ordering::Equal => {
                f(Side::Both, a[i]);
                i += 1;
                j += 1;
            }
            Ordering::Less => {
                f(Side::A, a[i]);
                i += 1;
            }
            Ordering::Greater => {
                f(Side::B, b[j]);
                j += 1;
            }
        }
    }
    a[i..].iter().for_each(|x| f(Side::A, *x));
    b[j..].iter().for_each(|x| f(Side::B, *x));
}

#[derive(Clone, Copy, PartialEq)]
enum Side {
    Both,
    A,
    B,
}

/// The similarity of `new` to `old`, from 0 (nothing in common) to 1 (the
/// same, volatile parts aside), and how many of old's bigrams were
/// volatile.
///
/// `noise` is a second answer of the old side (the Diffy way): the bigrams
/// by which the two old answers differ are volatile (a date, a CSRF
/// token). Each of old's volatile bigrams that new lacks is discounted
/// from both sides, with one of new's unmatched bigrams (the value new has
/// in that place): a timestamp that differs on every request then leaves
/// the similarity at 1.
pub fn similarity(new: &Shingles, old: &Shingles, noise: Option<&Shingles>) -> (f64, usize) {
    let mut volatile: Vec<u64> = Vec::new();
    if let Some(other) = noise {
        merge(&old.0, &other.0, |side, h| {
            if side == Side::A {
                volatile.push(h);
            }
        });
    }
    let (mut common, mut only_old, mut only_new) = (0usize, Vec::new(), 0usize);
    merge(&new.0, &old.0, |side, h| match side {
        Side::Both => common += 1,
        Side::A => only_new += 1,
        Side::B => only_old.push(h),
    });
    let mut discounted = 0usize;
    merge(&only_old, &volatile, |side, _| {
        if side == Side::Both {
            discounted += 1;
        }
    });
    let old_len = old.len() - discounted;
    let new_len = new.len() - discounted.min(only_new);
    if old_len + new_len == 0 {
        return (1.0, discounted);
    }
    ((2 * common) as f64 / (old_len + new_len) as f64, discounted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sim(new: &str, old: &str, noise: Option<&str>) -> f64 {
        let n = noise.map(Shingles::of);
        similarity(&Shingles::of(new), &Shingles::of(old), n.as_ref()).0
    }

    #[test]
    fn the_same_body_is_fully_similar_and_white_space_does_not_count() {
        assert_eq!(
            sim(
                "<p>Welkom bij de gemeente</p>",
                "<p>Welkom bij de gemeente</p>",
                None
            ),
            1.0
        );
        assert_eq!(
            sim(
                "<p>Welkom  bij\n de gemeente</p>",
                "<p>Welkom bij de gemeente</p>",
                None
            ),
            1.0
        );
        assert_eq!(sim("", "", None), 1.0);
    }

    #[test]
    fn a_different_body_is_dissimilar_in_proportion() {
        let old = "een twee drie vier vijf zes zeven acht negen tien";
        let one_word = "een twee drie vier vijf zes zeven acht negen elf";
        let s = sim(one_word, old, None);
        assert!(s > 0.85 && s < 1.0, "{s}");
        assert!(sim("totally other content here", old, None) < 0.1);
        assert_eq!(sim("", old, None), 0.0);
    }

    #[test]
    fn swapped_paragraphs_differ_at_the_seams() {
        let s = sim("b b b. a a a.", "a a a. b b b.", None);
        assert!(s < 1.0 && s > 0.5, "{s}");
    }

    #[test]
    fn what_differs_between_two_old_answers_is_noise() {
        let page =
            |t: &str| format!("<html><p>Welkom</p><footer>generated {t} by portal</footer></html>");
        let (old, again, new) = (
            page("23:01:07.113"),
            page("23:01:07.421"),
            page("23:01:07.998"),
        );
        assert!(sim(&new, &old, None) < 1.0);
        assert_eq!(sim(&new, &old, Some(&again)), 1.0);
        // Noise does not hide a real change elsewhere.
        let changed = new.replace("Welkom", "Storing");
        assert!(sim(&changed, &old, Some(&again)) < 1.0);
    }
}
