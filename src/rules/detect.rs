//! Content detectors: find values by their shape (payment card numbers,
//! e-mail addresses, US social security numbers) and mask the matching
//! spans, whatever element or rule they are under.
//!
//! Card numbers follow the card-number rule of protocol v1.1 (the snippet
//! runs the same rule at the source):
//! - a *digit run* is a maximal sequence of digits (ASCII `0-9` and the mask
//!   character `•`, which counts as a digit) where consecutive digits are
//!   separated by at most 3 [`SEPARATORS`];
//! - the *value rule* (form-field values, contenteditable text): every run
//!   of 7 or more digits keeps its first 6 digits and the rest become `•`
//!   ([`mask_long_runs`]);
//! - the *text rule* (any other text): a Luhn-valid stretch of 13–19 digits
//!   on group boundaries of a run is masked whole ([`redact`]).
//!
//! Also owns the mask-character transforms shared by all masking.

use super::Detectors;
use std::borrow::Cow;

/// The mask character.
pub const MASK: char = '•';

/// The fixed-length mask for passwords and masked `<select>` values (no
/// length side channel).
pub const FIXED_MASK: &str = "••••••••";

/// Characters allowed between two digits of one digit run (at most 3 in a row).
pub const SEPARATORS: [char; 7] = [' ', '-', '.', '\u{a0}', '\u{2009}', '\u{202f}', '\u{2007}'];

/// How many digits of a long run the value rule keeps.
pub const KEEP_DIGITS: usize = 6;

/// Replace every non-whitespace character by [`MASK`] (whitespace kept, so
/// the character count and line structure are preserved).
pub fn mask_chars(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_whitespace() { c } else { MASK })
        .collect()
}

/// [`FIXED_MASK`] for a non-empty value, the empty string for an empty one.
pub fn fixed_mask(s: &str) -> String {
    if s.is_empty() {
        String::new()
    } else {
        FIXED_MASK.to_string()
    }
}

/// Whether `c` counts as a digit of a digit run.
pub fn is_run_digit(c: char) -> bool {
    c.is_ascii_digit() || c == MASK
}

fn is_sep(c: char) -> bool {
    SEPARATORS.contains(&c)
}

/// One digit run: char positions of its digits and the indexes (into
/// `digits`) where a group starts (after a separator, or at a forced
/// boundary such as the start of a text node).
struct Run {
    digits: Vec<usize>,
    groups: Vec<usize>,
}

/// The digit runs of `chars`; `starts` (sorted char positions) are extra
/// group boundaries.
fn runs(chars: &[char], starts: &[usize]) -> Vec<Run> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !is_run_digit(chars[i]) {
            i += 1;
            continue;
        }
        let mut run = Run {
            digits: vec![i],
            groups: vec![0],
        };
        let mut j = i + 1;
        loop {
            if j < chars.len() && is_run_digit(chars[j]) {
                if starts.binary_search(&j).is_ok() {
                    run.groups.push(run.digits.len());
                }
                run.digits.push(j);
                j += 1;
                continue;
            }
            let mut k = j;
            while k < chars.len() && k - j < 3 && is_sep(chars[k]) {
                k += 1;
            }
            if k > j && k < chars.len() && is_run_digit(chars[k]) {
                run.groups.push(run.digits.len());
                run.digits.push(k);
                j = k + 1;
            } else {
                break;
            }
        }
        out.push(run);
        i = j;
    }
    out
}

fn luhn(digits: &[u32]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

/// Mark card digits of `chars` in `hide`: with `value_rule`, every digit
/// after the sixth of a run of 7+ digits (exactly what the snippet sends);
/// else every digit of a Luhn-valid 13–19 digit stretch that starts and
/// ends on group boundaries (`starts` adds boundaries, e.g. where a text
/// node begins). Returns whether anything was marked.
pub fn card_hide(chars: &[char], starts: &[usize], value_rule: bool, hide: &mut [bool]) -> bool {
    let mut found = false;
    for run in runs(chars, starts) {
        let n = run.digits.len();
        if value_rule {
            if n > KEEP_DIGITS {
                for &p in &run.digits[KEEP_DIGITS..] {
                    hide[p] = true;
                }
                found = true;
            }
            continue;
        }
        if n < 13 {
            continue;
        }
        let mut bounds = run.groups.clone();
        bounds.push(n);
        for (si, &s) in bounds.iter().enumerate() {
            for &e in &bounds[si + 1..] {
                let len = e - s;
                if len > 19 {
                    break;
                }
                if len < 13 {
                    continue;
                }
                let ds: Option<Vec<u32>> = run.digits[s..e]
                    .iter()
                    .map(|&p| chars[p].to_digit(10))
                    .collect();
                if ds.is_some_and(|ds| luhn(&ds)) {
                    for &p in &run.digits[s..e] {
                        hide[p] = true;
                    }
                    found = true;
                }
            }
        }
    }
    found
}

/// Mark e-mail addresses and national ids (each if switched on).
pub fn other_hide(chars: &[char], d: &Detectors, hide: &mut [bool]) -> bool {
    let mut any = false;
    if d.email && chars.contains(&'@') {
        any |= emails(chars, hide);
    }
    if d.national_id && chars.iter().filter(|c| c.is_ascii_digit()).count() >= 9 {
        any |= ssns(chars, hide);
    }
    any
}

/// `chars` with every hidden non-whitespace character replaced by [`MASK`].
pub fn apply_hide(chars: &[char], hide: &[bool]) -> String {
    chars
        .iter()
        .zip(hide)
        .map(|(c, &h)| if h && !c.is_whitespace() { MASK } else { *c })
        .collect()
}

fn detect<'a>(text: &'a str, d: &Detectors, value_rule: bool) -> Cow<'a, str> {
    let digits = text.chars().filter(|&c| is_run_digit(c)).count();
    let card = d.card && (digits >= 13 || (value_rule && digits > KEEP_DIGITS));
    let email = d.email && text.contains('@');
    let national_id = d.national_id && digits >= 9;
    if !(card || email || national_id) {
        return Cow::Borrowed(text);
    }
    let chars: Vec<char> = text.chars().collect();
    let mut hide = vec![false; chars.len()];
    let mut any = false;
    if card {
        any |= card_hide(&chars, &[], value_rule, &mut hide);
    }
    any |= other_hide(&chars, d, &mut hide);
    if !any {
        return Cow::Borrowed(text);
    }
    Cow::Owned(apply_hide(&chars, &hide))
}

/// Mask every span of `text` that a switched-on detector recognises (the
/// text rule for cards).
pub fn redact<'a>(text: &'a str, d: &Detectors) -> Cow<'a, str> {
    detect(text, d, false)
}

/// [`redact`] plus the value rule for cards (form-field values and
/// contenteditable text).
pub fn redact_value<'a>(text: &'a str, d: &Detectors) -> Cow<'a, str> {
    detect(text, d, true)
}

/// The value rule alone: every digit run of 7+ digits keeps its first 6.
pub fn mask_long_runs(text: &str) -> Cow<'_, str> {
    let only_cards = Detectors {
        card: true,
        email: false,
        national_id: false,
    };
    detect(text, &only_cards, true)
}

/// Whether `text` holds a digit run of 7+ digits (the value rule applies:
/// the field is detector-masked).
pub fn has_long_run(text: &str) -> bool {
    if text.chars().filter(|&c| is_run_digit(c)).count() <= KEEP_DIGITS {
        return false;
    }
    let chars: Vec<char> = text.chars().collect();
    runs(&chars, &[])
        .iter()
        .any(|r| r.digits.len() > KEEP_DIGITS)
}

fn is_local(c: char) -> bool {
    c.is_ascii_alphanumeric() || "._%+-".contains(c)
}

fn is_domain(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '.' || c == '-'
}

fn emails(chars: &[char], hide: &mut [bool]) -> bool {
    let mut found = false;
    for at in 0..chars.len() {
        if chars[at] != '@' {
            continue;
        }
        let mut s = at;
        while s > 0 && is_local(chars[s - 1]) {
            s -= 1;
        }
        let mut e = at + 1;
        while e < chars.len() && is_domain(chars[e]) {
            e += 1;
        }
        // trim trailing dots/dashes from the domain
        while e > at + 1 && matches!(chars[e - 1], '.' | '-') {
            e -= 1;
        }
        let domain: String = chars[at + 1..e].iter().collect();
        let tld_ok = domain
            .rsplit('.')
            .next()
            .is_some_and(|t| t.len() >= 2 && t.chars().all(|c| c.is_ascii_alphabetic()));
        if s < at && domain.contains('.') && tld_ok {
            hide[s..e].iter_mut().for_each(|h| *h = true);
            found = true;
        }
    }
    found
}

/// US SSN `ddd-dd-dddd` with non-digit boundaries.
fn ssns(chars: &[char], hide: &mut [bool]) -> bool {
    const SHAPE: &[u8] = b"ddd-dd-dddd";
    let mut found = false;
    if chars.len() < SHAPE.len() {
        return false;
    }
    for s in 0..=chars.len() - SHAPE.len() {
        let ok = SHAPE.iter().enumerate().all(|(k, &p)| {
            let c = chars[s + k];
            if p == b'd' {
                c.is_ascii_digit()
            } else {
                c == '-'
            }
        });
        let before_ok = s == 0 || !chars[s - 1].is_ascii_alphanumeric();
        let after = s + SHAPE.len();
        let after_ok = after >= chars.len() || !chars[after].is_ascii_alphanumeric();
        if ok && before_ok && after_ok {
            hide[s..after].iter_mut().for_each(|h| *h = true);
            found = true;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Detectors = Detectors {
        card: true,
        email: true,
        national_id: true,
    };

    #[test]
    fn card_numbers_with_separators_are_masked_when_luhn_passes() {
        let d = Detectors::default();
        assert_eq!(
            redact("card 4111 1111 1111 1111 ok", &d),
            "card •••• •••• •••• •••• ok"
        );
        assert_eq!(redact("4111-1111-1111-1111", &d), "••••-••••-••••-••••");
        assert_eq!(redact("5500005555555559", &d), "••••••••••••••••");
        // fails Luhn: untouched
        assert_eq!(redact("4111 1111 1111 1112", &d), "4111 1111 1111 1112");
        // too short
        assert_eq!(redact("order 123456789012", &d), "order 123456789012");
        // card after an unrelated number in the same run
        assert_eq!(
            redact("ref 12 4111111111111111", &d),
            "ref 12 ••••••••••••••••"
        );
    }

    #[test]
    fn email_and_ssn_detectors_are_opt_in() {
        let d = Detectors::default();
        assert_eq!(
            redact("mail ann.lee@example.com now", &d),
            "mail ann.lee@example.com now"
        );
        assert_eq!(
            redact("mail ann.lee@example.com now", &ALL),
            "mail ••••••••••••••••••• now"
        );
        assert_eq!(redact("ssn 123-45-6789.", &ALL), "ssn •••••••••••.");
        assert_eq!(redact("1234-45-6789", &ALL), "1234-45-6789");
        assert_eq!(redact("a@b", &ALL), "a@b");
    }

    #[test]
    fn value_rule_keeps_six_digits_of_every_long_run_typed_key_by_key() {
        let card = "4111111111111111";
        for n in 1..=card.len() {
            let typed = &card[..n];
            let got = mask_long_runs(typed);
            let clear: usize = got.chars().filter(char::is_ascii_digit).count();
            assert!(clear <= 6, "{typed} -> {got}");
            assert_eq!(got.chars().count(), n);
            assert_eq!(has_long_run(typed), n >= 7, "{typed}");
        }
        assert_eq!(mask_long_runs("4111111"), "411111•");
        // separators (space, dash, dot, no-break, thin, narrow, figure) stay
        assert_eq!(mask_long_runs("4111 1111-1111.1111"), "4111 11••-••••.••••");
        assert_eq!(
            mask_long_runs("41\u{a0}11\u{2009}11\u{202f}11\u{2007}11"),
            "41\u{a0}11\u{2009}11\u{202f}••\u{2007}••"
        );
        // up to three separators join groups, four split the run
        assert_eq!(mask_long_runs("411 - 1111"), "411 - 111•");
        assert_eq!(mask_long_runs("4111    111"), "4111    111");
        // the snippet's dots count as digits: already masked at the source
        assert_eq!(mask_long_runs("411111••••"), "411111••••");
        assert!(has_long_run("411111••••"));
        // short numbers and letters between digits are left alone
        assert_eq!(mask_long_runs("12/26 CVC 123"), "12/26 CVC 123");
        assert_eq!(mask_long_runs("ab123456cd"), "ab123456cd");
    }

    #[test]
    fn luhn_text_rule_accepts_all_separators_and_node_boundaries() {
        let d = Detectors::default();
        assert_eq!(
            redact("4111\u{a0}1111\u{2009}1111.1111", &d),
            "••••\u{a0}••••\u{2009}••••.••••"
        );
        // a node boundary inside a group is a group boundary too
        let chars: Vec<char> = "x 4111 1111 1111 11115".chars().collect();
        let mut hide = vec![false; chars.len()];
        assert!(!card_hide(&chars, &[], false, &mut hide));
        assert!(card_hide(&chars, &[21], false, &mut hide));
        assert_eq!(apply_hide(&chars, &hide), "x •••• •••• •••• ••••5");
        // a stretch holding mask characters cannot be checked: left alone
        assert_eq!(redact("•••• •••• •••• 1111", &d), "•••• •••• •••• 1111");
    }

    #[test]
    fn mask_chars_keeps_whitespace_and_length() {
        assert_eq!(mask_chars("ab c\nd"), "•• •\n•");
    }
}
