//! Fuzzing the YAML rule-pack loader (`RulePack::from_yaml`, behind the
//! editor's import and `cobrowse rules check`): arbitrary text, YAML-ish
//! token soup with anchors, aliases, merge keys, tags and flow collections,
//! then validation of whatever loads.

use super::config;
use cobrowse::rules::{CompiledRules, RulePack};
use proptest::prelude::*;

fn exercise(text: &str) {
    if let Ok(pack) = RulePack::from_yaml(text) {
        let _ = CompiledRules::validate_all(&pack.rules);
        let _ = CompiledRules::from_pack(&pack);
        let _ = RulePack::from_yaml(&pack.to_yaml());
    }
}

const PIECES: &[&str] = &[
    "version: 1\n",
    "version: 2\n",
    "version: 99999999999999999999\n",
    "rules:\n",
    "rules: ",
    "settings:\n",
    "  privacy: mask-all\n",
    "  privacy: nope\n",
    "  detectors: {card: false}\n",
    "  - selector: ",
    "    action: mask\n",
    "    action: block\n",
    "    action: unmask\n",
    "    url: /account/*\n",
    "    enabled: false\n",
    "    description: d\n",
    "    bogus: 1\n",
    "\".a\"\n",
    "'input'\n",
    "\":is(:not(\"\n",
    "&a ",
    "*a",
    "&b ",
    "*b",
    "<<: *a\n",
    "!!binary ",
    "!!str ",
    "!custom ",
    "? ",
    ": ",
    "- ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "\"",
    "'",
    "\\",
    "#c\n",
    "---\n",
    "...\n",
    "%YAML 1.2\n",
    "|\n",
    ">-\n",
    "\t",
    "  ",
    "\n",
    "~",
    "null",
    "0x1F",
    "1e400",
    ".inf",
    "\u{feff}",
    "\u{0}",
    "é",
];

fn yamlish() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 0..60).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(config(1500))]

    #[test]
    fn yaml_loader_survives_arbitrary_text(text in any::<String>()) {
        exercise(&text);
    }

    #[test]
    fn yaml_loader_survives_yaml_token_soup(text in yamlish()) {
        exercise(&text);
    }
}

proptest! {
    #![proptest_config(config(100))]

    /// Alias fan-out of every shape: refused or loaded, never expanded
    /// without bound.
    #[test]
    fn yaml_alias_fan_out_is_bounded(levels in 1usize..12, width in 1usize..12) {
        exercise(&laughs(levels, width));
    }
}

/// "Billion laughs": each level lists the previous level `width` times.
fn laughs(levels: usize, width: usize) -> String {
    let mut s = String::from("version: 1\nx0: &x0 [\"lol\"]\n");
    for i in 1..=levels {
        let refs = vec![format!("*x{}", i - 1); width].join(",");
        s.push_str(&format!("x{i}: &x{i} [{refs}]\n"));
    }
    s.push_str(&format!("rules: *x{levels}\n"));
    s
}

#[test]
fn billion_laughs_rule_pack_is_refused_without_expanding() {
    // 10^9 "lol"s if expanded
    let r = RulePack::from_yaml(&laughs(9, 10));
    assert!(r.is_err(), "{r:?}");
}

#[test]
fn deeply_nested_yaml_is_refused_not_overflowing() {
    for text in [
        format!(
            "version: 1\nrules: {}{}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        ),
        format!("version: 1\nrules: {}", "{a: ".repeat(50_000)),
        format!(
            "version: 1\nrules:\n{}",
            (0..5_000)
                .map(|i| format!("{}- \n", " ".repeat(i)))
                .collect::<String>()
        ),
    ] {
        let r = super::on_worker_stack(move || RulePack::from_yaml(&text).is_err());
        assert!(r, "deep YAML accepted");
    }
}
