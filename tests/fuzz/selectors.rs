//! Fuzzing the selector parser (`dom::select::parse`) and rule validation
//! (`CompiledRules::validate_all`, which also applies the complexity
//! budget): arbitrary text, selector-like token soup and deep
//! `:is(:not(:has(…)))` nesting; selectors that validate are then matched
//! against a small document through the rewrite engine.

use super::config;
use cobrowse::dom::select::parse;
use cobrowse::protocol::{Limits, Node, Snapshot, Viewport};
use cobrowse::rewrite::Rewriter;
use cobrowse::rules::{Action, CompiledRules, Rule, SiteSettings};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;

fn rule(selector: &str) -> Rule {
    Rule {
        selector: selector.to_string(),
        action: Action::Mask,
        url: None,
        description: String::new(),
        enabled: true,
    }
}

fn page() -> Snapshot {
    let mut attrs = BTreeMap::new();
    attrs.insert("class".to_string(), "a b".to_string());
    attrs.insert("id".to_string(), "x".to_string());
    let leaf = |id| Node::Element {
        id,
        tag: "input".into(),
        ns: None,
        attrs: attrs.clone(),
        children: vec![],
        value: Some("v".into()),
        checked: Some(true),
    };
    Snapshot {
        epoch: 0,
        url: "https://shop.example/".into(),
        title: String::new(),
        viewport: Viewport { w: 1.0, h: 1.0 },
        root: Node::Document {
            id: 1,
            children: vec![Node::Element {
                id: 2,
                tag: "html".into(),
                ns: None,
                attrs: BTreeMap::new(),
                children: vec![
                    leaf(3),
                    Node::Text {
                        id: 4,
                        text: "t".into(),
                    },
                    leaf(5),
                ],
                value: None,
                checked: None,
            }],
        },
    }
}

/// Parse, validate and, when valid, match through the engine.
fn exercise(selector: &str) {
    let _ = parse(selector);
    let rules = vec![rule(selector)];
    if CompiledRules::validate_all(&rules).is_empty() {
        if let Ok(compiled) = CompiledRules::compile(&rules, SiteSettings::default()) {
            let mut rw = Rewriter::new(Arc::new(compiled), Limits::default());
            let _ = rw.snapshot(page());
        }
    }
}

const PIECES: &[&str] = &[
    "div",
    "*",
    "|",
    "*|*",
    "svg|a",
    ".a",
    "#x",
    "[",
    "]",
    "[data-k",
    "=",
    "~=",
    "|=",
    "^=",
    "$=",
    "*=",
    "\"v\"",
    "'v'",
    " i",
    " s",
    ">",
    "+",
    "~",
    " ",
    ",",
    "(",
    ")",
    ":is(",
    ":where(",
    ":not(",
    ":has(",
    ":nth-child(",
    ":nth-last-of-type(",
    "2n+1",
    "-n+3",
    "odd",
    " of ",
    ":first-child",
    ":empty",
    ":checked",
    ":disabled",
    ":root",
    ":hover",
    ":nope",
    "::before",
    "::slotted(",
    ":host",
    "&",
    "\\",
    "\\0",
    "\\110000",
    "/*",
    "*/",
    "@media",
    "{",
    "}",
    ";",
    "!important",
    "\u{0}",
    "é",
    "\n",
    "%",
    "9999999999999999999n",
];

fn selectorish() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 0..40).prop_map(|v| v.concat())
}

fn nested() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(
            prop::sample::select(&[":is(", ":not(", ":has(", ":where(", ":nth-child(2n of "][..]),
            1..300,
        ),
        prop::bool::ANY,
    )
        .prop_map(|(opens, close)| {
            let mut s = opens.concat();
            s.push_str(".a");
            if close {
                s.push_str(&")".repeat(opens.len()));
            }
            s
        })
}

proptest! {
    #![proptest_config(config(1500))]

    #[test]
    fn selector_parser_survives_arbitrary_text(text in any::<String>()) {
        exercise(&text);
    }

    #[test]
    fn selector_parser_survives_selector_token_soup(text in selectorish()) {
        exercise(&text);
    }
}

proptest! {
    #![proptest_config(config(200))]

    #[test]
    fn deeply_nested_pseudo_classes_never_panic(text in nested()) {
        exercise(&text);
    }
}

#[test]
fn selectors_nested_thousands_deep_are_refused_not_overflowing() {
    for n in [1_000usize, 10_000, 100_000] {
        let ok = super::on_worker_stack(move || {
            let s = format!("{}.a{}", ":is(:not(:has(".repeat(n), ")))".repeat(n));
            let errs = CompiledRules::validate_all(&[rule(&s)]);
            !errs.is_empty()
        });
        assert!(ok, "selector nested {n}×3 deep accepted");
    }
}
