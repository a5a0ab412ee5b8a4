//! Content detectors: find values by their shape (payment card numbers
//! passing Luhn, e-mail addresses, US social security numbers) and mask the
//! matching spans, whatever element or rule they are under.
//!
//! Also owns the mask-character transform shared by all masking.

use super::Detectors;
use std::borrow::Cow;

/// The mask character.
pub const MASK: char = '•';

/// Replace every non-whitespace character by [`MASK`] (whitespace kept, so
/// the character count and line structure are preserved).
pub fn mask_chars(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_whitespace() { c } else { MASK })
        .collect()
}

/// Mask every span of `text` that a switched-on detector recognises.
pub fn redact<'a>(text: &'a str, d: &Detectors) -> Cow<'a, str> {
    if !(d.card || d.email || d.national_id) || text.len() < 5 {
        return Cow::Borrowed(text);
    }
    // fast path without allocation: too few digits for a card or an SSN,
    // no `@` for an e-mail
    let digits = text.bytes().filter(u8::is_ascii_digit).count();
    let card = d.card && digits >= 13;
    let email = d.email && text.contains('@');
    let national_id = d.national_id && digits >= 9;
    if !(card || email || national_id) {
        return Cow::Borrowed(text);
    }
    let chars: Vec<char> = text.chars().collect();
    let mut hide = vec![false; chars.len()];
    let mut any = false;
    if card {
        any |= cards(&chars, &mut hide);
    }
    if email {
        any |= emails(&chars, &mut hide);
    }
    if national_id {
        any |= ssns(&chars, &mut hide);
    }
    if !any {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        chars
            .iter()
            .zip(hide)
            .map(|(c, h)| if h && !c.is_whitespace() { MASK } else { *c })
            .collect(),
    )
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

/// Card numbers: runs of digit groups separated by single spaces or dashes;
/// any 13–19 digit stretch starting and ending on group boundaries that
/// passes Luhn is hidden.
fn cards(chars: &[char], hide: &mut [bool]) -> bool {
    let mut found = false;
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() || (i > 0 && chars[i - 1].is_ascii_alphanumeric()) {
            i += 1;
            continue;
        }
        // collect the run: positions of digits and group starts/ends
        let mut digits: Vec<(usize, u32)> = Vec::new();
        let mut group_start = vec![0usize];
        let mut j = i;
        loop {
            if j < chars.len() && chars[j].is_ascii_digit() {
                digits.push((j, chars[j].to_digit(10).unwrap_or(0)));
                j += 1;
            } else if j + 1 < chars.len()
                && (chars[j] == ' ' || chars[j] == '-')
                && chars[j + 1].is_ascii_digit()
                && !digits.is_empty()
            {
                group_start.push(digits.len());
                j += 1;
            } else {
                break;
            }
        }
        let ends_cleanly = j >= chars.len() || !chars[j].is_ascii_alphanumeric();
        if digits.len() >= 13 && ends_cleanly {
            let mut bounds = group_start.clone();
            bounds.push(digits.len());
            for (si, &s) in bounds.iter().enumerate() {
                for &e in &bounds[si + 1..] {
                    let n = e - s;
                    if (13..=19).contains(&n) {
                        let ds: Vec<u32> = digits[s..e].iter().map(|x| x.1).collect();
                        if luhn(&ds) {
                            for &(pos, _) in &digits[s..e] {
                                hide[pos] = true;
                            }
                            found = true;
                        }
                    }
                }
            }
        }
        i = j.max(i + 1);
    }
    found
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
    fn mask_chars_keeps_whitespace_and_length() {
        assert_eq!(mask_chars("ab c\nd"), "•• •\n•");
    }
}
