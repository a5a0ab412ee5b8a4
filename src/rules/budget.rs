//! The complexity budget of one rule's selector, checked at validation so a
//! pathological selector (`:not(.c0, …, .c29999)`, deeply nested `:is`/`:has`)
//! is refused with a message before it can make every snapshot slow.
//!
//! The budget counts what matching one element may have to evaluate: every
//! simple selector, including those nested in `:not`, `:is`, `:where` and
//! `:has`, with `:has` arguments weighted (they are matched against a
//! subtree). It owns nothing else; parsing is in [`crate::dom::select`].

use crate::dom::select::{Impl, Selectors};
use selectors::parser::{Component, RelativeSelector, Selector};
use selectors::visitor::{SelectorListKind, SelectorVisitor};

/// Longest selector text accepted, in bytes.
pub const MAX_SELECTOR_BYTES: usize = 4096;
/// Most weighted simple selectors in one rule's selector list.
pub const MAX_COMPONENTS: usize = 512;
/// Deepest nesting of `:not`/`:is`/`:where`/`:has`.
pub const MAX_NESTING: usize = 4;
/// Weight of a simple selector inside `:has()`.
const HAS_WEIGHT: usize = 8;

/// Why a selector is over budget; `None` when it is within.
pub fn over_budget(text: &str, selectors: &Selectors) -> Option<String> {
    if text.len() > MAX_SELECTOR_BYTES {
        return Some(format!(
            "selector too long ({} bytes; at most {MAX_SELECTOR_BYTES})",
            text.len()
        ));
    }
    let mut v = Counter {
        weight: 1,
        depth: 0,
        components: 0,
        deepest: 0,
    };
    for s in selectors.slice() {
        s.visit(&mut v);
    }
    if v.deepest > MAX_NESTING {
        return Some(format!(
            "selector too complex: nested {} levels deep (at most {MAX_NESTING})",
            v.deepest
        ));
    }
    if v.components > MAX_COMPONENTS {
        return Some(format!(
            "selector too complex: {} simple selectors to evaluate (at most {MAX_COMPONENTS}); split it into several rules",
            v.components
        ));
    }
    None
}

/// Whether a text is over the length budget (checked before parsing).
pub fn too_long(text: &str) -> bool {
    text.len() > MAX_SELECTOR_BYTES
}

struct Counter {
    weight: usize,
    depth: usize,
    components: usize,
    deepest: usize,
}

impl Counter {
    fn nested<F: FnOnce(&mut Counter) -> bool>(&mut self, weight: usize, f: F) -> bool {
        self.depth += 1;
        self.deepest = self.deepest.max(self.depth);
        let saved = self.weight;
        self.weight = self.weight.saturating_mul(weight);
        let r = f(self);
        self.weight = saved;
        self.depth -= 1;
        // stop walking once over budget: the answer is known
        r && self.components <= MAX_COMPONENTS && self.deepest <= MAX_NESTING
    }
}

impl SelectorVisitor for Counter {
    type Impl = Impl;

    fn visit_simple_selector(&mut self, c: &Component<Impl>) -> bool {
        if !matches!(
            c,
            Component::Negation(_) | Component::Is(_) | Component::Where(_) | Component::Has(_)
        ) {
            self.components = self.components.saturating_add(self.weight);
        }
        self.components <= MAX_COMPONENTS
    }

    fn visit_selector_list(&mut self, _kind: SelectorListKind, list: &[Selector<Impl>]) -> bool {
        self.nested(1, |v| list.iter().all(|s| s.visit(v)))
    }

    fn visit_relative_selector_list(&mut self, list: &[RelativeSelector<Impl>]) -> bool {
        self.nested(HAS_WEIGHT, |v| list.iter().all(|r| r.selector.visit(v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dom::select::parse;

    fn check(s: &str) -> Option<String> {
        over_budget(s, &parse(s).unwrap())
    }

    #[test]
    fn real_world_selectors_are_within_budget() {
        for s in [
            "input[type=password]",
            "[type=submit], input[type=image], form button:not([type])",
            "form:has(input[autocomplete^=cc-]) input:not([type=hidden])",
            ".a .b > .c ~ .d + .e:nth-child(2n+1 of .x)",
            ":is(header, footer) nav :where(a, button):not(.skip)",
        ] {
            assert_eq!(check(s), None, "{s}");
        }
    }

    #[test]
    fn a_huge_negation_is_refused_with_a_message() {
        let list: Vec<String> = (0..600).map(|i| format!(".c{i}")).collect();
        let s = format!(":not({})", list.join(","));
        let m = check(&s).expect("over budget");
        assert!(m.contains("too complex"), "{m}");
        let long: Vec<String> = (0..30_000).map(|i| format!(".c{i}")).collect();
        assert!(too_long(&format!(":not({})", long.join(","))));
    }

    #[test]
    fn deep_nesting_and_heavy_has_are_refused() {
        let s = ":is(:is(:is(:is(:is(.a)))))";
        assert!(check(s).expect("too deep").contains("nested"));
        let parts: Vec<String> = (0..70).map(|i| format!(".h{i}")).collect();
        let s = format!("div:has({})", parts.join(" "));
        assert!(check(&s).is_some());
    }
}
