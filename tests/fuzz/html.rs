//! Fuzzing HTML import and export (`dom::html`, behind the editor preview
//! and `cobrowse rules apply`): hostile generated markup (deep nesting,
//! unclosed tags, templates, SVG/MathML foreign content, tables, raw-text
//! elements, huge attributes, broken entities) must parse to a tree within
//! [`MAX_PARSE_DEPTH`] with unique ids, and the script-free export must stay
//! script-free when a browser parses it again.

use super::config;
use cobrowse::dom::html::{parse_document, to_html, MAX_PARSE_DEPTH};
use cobrowse::protocol::{check_tree, Limits, Node};
use cobrowse::rules::{tooling, RulePack, DEFAULT_PACK_YAML};
use proptest::prelude::*;
use std::collections::HashSet;

const PIECES: &[&str] = &[
    "<div>",
    "</div>",
    "<p>",
    "</p>",
    "<span class=a>",
    "</span>",
    "<template>",
    "</template>",
    "<svg>",
    "</svg>",
    "<math>",
    "</math>",
    "<foreignObject>",
    "</foreignObject>",
    "<mi>",
    "<mglyph>",
    "<malignmark>",
    "<annotation-xml encoding=\"text/html\">",
    "<desc>",
    "<title>",
    "</title>",
    "<table>",
    "<tr>",
    "<td>",
    "</table>",
    "<select>",
    "<option>",
    "</select>",
    "<textarea>",
    "</textarea>",
    "<style>",
    "</style>",
    "<script>",
    "</script>",
    "<SCRIPT>",
    "<noscript>",
    "</noscript>",
    "<iframe>",
    "</iframe>",
    "<xmp>",
    "<plaintext>",
    "<frameset>",
    "<form>",
    "<input value=x>",
    "<input type=password value=secret>",
    "<button>",
    "<a href=x>",
    "</a>",
    "<b>",
    "</b>",
    "<i>",
    "<nobr>",
    "<li>",
    "<dd>",
    "<body onload=x()>",
    "<html lang=x>",
    "<head>",
    "</head>",
    "<!--",
    "-->",
    "<!-->",
    "<![CDATA[",
    "]]>",
    "<!DOCTYPE html>",
    "<!DOCTYPE",
    "<?xml ?>",
    "&amp;",
    "&#x110000;",
    "&#0;",
    "&#xD800;",
    "&notin",
    "&",
    "<",
    ">",
    "\"",
    "'",
    "=",
    "/",
    " ",
    "\n",
    "\u{0}",
    "text",
    "4111 1111 1111 1111",
    "<svg><script>",
    "<img src=x onerror=alert(1)>",
    "<a href=\"jav&#x09;ascript:alert(1)\">",
    "<iframe srcdoc=\"<script>x()</script>\">",
    "<svg><a xlink:href=javascript:alert(1)>",
    "<math><mtext><table><mglyph><style><img src=x onerror=y>",
    "<svg></p><style><a id=\"</style><img src=1 onerror=alert(1)>\">",
];

fn hostile_html() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            20 => prop::sample::select(PIECES).prop_map(str::to_string),
            1 => (1usize..20_000).prop_map(|n| format!("<div title=\"{}\">", "a".repeat(n))),
            1 => (1usize..1_000).prop_map(|n| "<b>".repeat(n)),
            1 => (1usize..1_000).prop_map(|n| "<svg><g>".repeat(n)),
            1 => ".{0,16}",
        ],
        0..80,
    )
    .prop_map(|v| v.concat())
}

/// Every element of a tree, with its namespace, tag and attributes.
fn elements(
    root: &Node,
    mut f: impl FnMut(Option<&str>, &str, &std::collections::BTreeMap<String, String>),
) {
    let mut stack = vec![root];
    while let Some(n) = stack.pop() {
        if let Node::Element { tag, ns, attrs, .. } = n {
            f(ns.as_deref(), tag, attrs);
        }
        stack.extend(n.children());
    }
}

/// A URL a browser would run as script (after stripping ASCII tab/newline
/// and leading C0 controls and spaces, as the URL parser does).
fn is_script_url(v: &str) -> bool {
    let v: String = v
        .trim_start_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect::<String>()
        .to_ascii_lowercase();
    v.starts_with("javascript:") || v.starts_with("vbscript:")
}

fn assert_well_formed(tree: &Node) -> Result<(), TestCaseError> {
    let limits = Limits {
        max_depth: MAX_PARSE_DEPTH,
        max_nodes: usize::MAX,
        ..Limits::default()
    };
    prop_assert!(
        check_tree(tree, &limits).is_ok(),
        "tree deeper than {}",
        MAX_PARSE_DEPTH
    );
    let mut ids = HashSet::new();
    let mut stack = vec![tree];
    while let Some(n) = stack.pop() {
        prop_assert!(ids.insert(n.id()), "duplicate id {}", n.id());
        stack.extend(n.children());
    }
    Ok(())
}

fn assert_script_free(html: &str) -> Result<(), TestCaseError> {
    let again = parse_document(html);
    let mut bad = Vec::new();
    elements(&again, |_ns, tag, attrs| {
        if tag.eq_ignore_ascii_case("script") {
            bad.push(format!("<{tag}> element"));
        }
        for (k, v) in attrs {
            let k = k.to_ascii_lowercase();
            if k.starts_with("on") || k == "srcdoc" || is_script_url(v) {
                bad.push(format!("<{tag} {k}={v:?}>"));
            }
        }
    });
    prop_assert!(
        bad.is_empty(),
        "export runs script when parsed again: {:?}\n{}",
        bad,
        html
    );
    Ok(())
}

proptest! {
    #![proptest_config(config(600))]

    #[test]
    fn hostile_html_imports_within_the_depth_limit_and_exports_script_free(html in hostile_html()) {
        let tree = parse_document(&html);
        assert_well_formed(&tree)?;
        assert_script_free(&to_html(&tree, true))?;
        let _ = to_html(&tree, false);
    }

    #[test]
    fn arbitrary_text_imports_and_exports(html in any::<String>()) {
        let tree = parse_document(&html);
        assert_well_formed(&tree)?;
        assert_script_free(&to_html(&tree, true))?;
    }
}

proptest! {
    #![proptest_config(config(150))]

    /// The whole `rules apply` path (import, mirror, rewrite, export) on
    /// hostile markup with the default pack.
    #[test]
    fn rules_apply_on_hostile_html_never_panics(html in hostile_html()) {
        let pack = RulePack::from_yaml(DEFAULT_PACK_YAML).map_err(|e| TestCaseError::fail(e.to_string()))?;
        if let Ok(out) = tooling::apply_to_html(&pack, &html, "https://shop.example/") {
            assert_script_free(&out)?;
        }
    }
}
