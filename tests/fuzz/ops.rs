//! Fuzzing op application: a `Rewriter` fed a generated snapshot, then
//! batches of mostly invalid ops (unknown and duplicate ids, inserts under
//! text nodes and under the inserted node's own descendants, moves of a node
//! into itself, removal of the root, documents nested in trees, huge
//! strings, limits hit). Every call returns `Ok` or a clean `Err`; after an
//! `Err` the rewriter refuses ops until a fresh snapshot, which then works.

use super::config;
use cobrowse::protocol::{check_tree, Limits, Node, NodeId, Op, Snapshot, Viewport};
use cobrowse::rewrite::{RewriteError, Rewriter};
use cobrowse::rules::{Action, CompiledRules, PrivacyLevel, Rule, SiteSettings};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;

const TAGS: &[&str] = &[
    "div", "span", "input", "p", "template", "svg", "iframe", "textarea", "select", "option",
    "form", "fieldset", "legend", "", "DIV", "script",
];
const ATTRS: &[&str] = &[
    "class",
    "id",
    "type",
    "value",
    "disabled",
    "contenteditable",
    "data-k",
    "style",
    "sandbox",
    "onclick",
    "SRC",
    "xlink:href",
];
const SELECTORS: &[(&str, Action)] = &[
    (".a", Action::Mask),
    ("div:has(> .b)", Action::Block),
    ("input", Action::Mask),
    (".c ~ span", Action::Disable),
    ("p:empty", Action::Unmask),
    ("li:nth-child(2 of .a)", Action::Mask),
    (":is(.a, #x) :not(.b)", Action::Block),
];

fn rules(level: u8) -> Arc<CompiledRules> {
    let rules: Vec<Rule> = SELECTORS
        .iter()
        .map(|(s, a)| Rule {
            selector: s.to_string(),
            action: *a,
            url: None,
            description: String::new(),
            enabled: true,
        })
        .collect();
    let settings = SiteSettings {
        privacy: match level {
            0 => PrivacyLevel::Allow,
            1 => PrivacyLevel::MaskInputs,
            _ => PrivacyLevel::MaskAll,
        },
        ..SiteSettings::default()
    };
    Arc::new(CompiledRules::compile(&rules, settings).expect("fixed rules compile"))
}

/// Text: usually short, sometimes huge, sometimes a card number.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => ".{0,8}",
        1 => Just("4111 1111 1111 1111".to_string()),
        1 => (1usize..200_000).prop_map(|n| "x".repeat(n)),
    ]
}

/// A generated wire subtree; ids from a small range, so they collide.
fn node(max_id: NodeId) -> impl Strategy<Value = Node> {
    let leaf = prop_oneof![
        (0..max_id, text()).prop_map(|(id, text)| Node::Text { id, text }),
        (0..max_id, text()).prop_map(|(id, text)| Node::Comment { id, text }),
        (0..max_id, ".{0,4}").prop_map(|(id, name)| Node::Doctype { id, name }),
        (0..max_id).prop_map(|id| Node::Document {
            id,
            children: vec![]
        }),
    ];
    leaf.prop_recursive(4, 24, 4, move |inner| {
        (
            0..max_id,
            prop::sample::select(TAGS),
            prop::option::weighted(
                0.2,
                prop::sample::select(&["svg", "math", "html", "bogus", ""][..]),
            ),
            prop::collection::btree_map(
                prop::sample::select(ATTRS).prop_map(str::to_string),
                text(),
                0..3,
            ),
            prop::collection::vec(inner, 0..4),
            prop::option::weighted(0.3, text()),
            prop::option::of(any::<bool>()),
        )
            .prop_map(
                |(id, tag, ns, attrs, children, value, checked)| Node::Element {
                    id,
                    tag: tag.to_string(),
                    ns: ns.map(str::to_string),
                    attrs,
                    children,
                    value,
                    checked,
                },
            )
    })
}

fn el(id: NodeId, tag: &str, class: &str, children: Vec<Node>) -> Node {
    let mut attrs = BTreeMap::new();
    if !class.is_empty() {
        attrs.insert("class".to_string(), class.to_string());
    }
    Node::Element {
        id,
        tag: tag.into(),
        ns: None,
        attrs,
        children,
        value: None,
        checked: None,
    }
}

/// A valid base document: ids 1..=12.
fn base_document() -> Node {
    Node::Document {
        id: 1,
        children: vec![el(
            2,
            "html",
            "",
            vec![el(
                3,
                "body",
                "",
                vec![
                    el(
                        4,
                        "div",
                        "a",
                        vec![Node::Text {
                            id: 5,
                            text: "hello".into(),
                        }],
                    ),
                    el(6, "div", "b c", vec![el(7, "span", "b", vec![])]),
                    el(8, "form", "", vec![el(9, "input", "", vec![])]),
                    el(
                        10,
                        "p",
                        "",
                        vec![Node::Text {
                            id: 11,
                            text: "4111".into(),
                        }],
                    ),
                    Node::Comment {
                        id: 12,
                        text: "c".into(),
                    },
                ],
            )],
        )],
    }
}

fn snapshot(root: Node) -> Snapshot {
    Snapshot {
        epoch: 0,
        url: "https://shop.example/checkout".into(),
        title: "t".into(),
        viewport: Viewport { w: 800.0, h: 600.0 },
        root,
    }
}

const MAX_ID: NodeId = 24;

fn op() -> impl Strategy<Value = Op> {
    let id = 0..MAX_ID;
    prop_oneof![
        4 => (id.clone(), prop::option::weighted(0.4, id.clone()), node(MAX_ID))
            .prop_map(|(parent, before, node)| Op::Insert { parent, before, node }),
        // a cycle: an existing node inserted under its own descendant or itself
        2 => (1..13 as NodeId, 1..13 as NodeId).prop_map(|(a, d)| Op::Insert {
            parent: a.max(d),
            before: None,
            node: el(a.min(d), "div", "", vec![]),
        }),
        2 => id.clone().prop_map(|id| Op::Remove { id }),
        2 => (id.clone(), prop::sample::select(ATTRS), prop::option::of(text()))
            .prop_map(|(id, name, value)| Op::Attr { id, name: name.to_string(), value }),
        1 => (id.clone(), ".{0,12}", prop::option::of(text()))
            .prop_map(|(id, name, value)| Op::Attr { id, name, value }),
        2 => (id.clone(), text()).prop_map(|(id, text)| Op::Text { id, text }),
        2 => (id, text(), prop::option::of(any::<bool>()))
            .prop_map(|(id, value, checked)| Op::Value { id, value, checked }),
    ]
}

fn limits(small: bool) -> Limits {
    if small {
        Limits {
            max_nodes: 20,
            max_depth: 6,
            max_ops: 5,
            ..Limits::default()
        }
    } else {
        Limits::default()
    }
}

proptest! {
    #![proptest_config(config(800))]

    #[test]
    fn random_ops_never_panic_and_failed_batches_fail_closed(
        level in 0u8..3,
        small in prop::bool::weighted(0.25),
        generated_root in prop::option::weighted(0.3, node(MAX_ID)),
        batches in prop::collection::vec(prop::collection::vec(op(), 0..7), 1..6),
    ) {
        let limits = limits(small);
        let mut rw = Rewriter::new(rules(level), limits);
        // a generated (usually invalid) snapshot first: refused cleanly or taken
        if let Some(root) = generated_root {
            let _ = rw.snapshot(snapshot(root));
        }
        let mut have_doc = rw.snapshot(snapshot(base_document())).is_ok();
        prop_assert!(have_doc || small);
        for ops in batches {
            match rw.apply(ops) {
                Ok(out) => {
                    prop_assert!(have_doc);
                    for o in &out {
                        if let Op::Insert { node, .. } = o {
                            prop_assert!(check_tree(node, &limits).is_ok());
                        }
                    }
                    // the agent's copy is a finite tree within the limits
                    let snap = rw.agent_snapshot();
                    prop_assert!(snap.is_some());
                    if let Some(s) = snap {
                        prop_assert!(check_tree(&s.root, &limits).is_ok());
                        prop_assert!(serde_json::to_string(&s).is_ok());
                    }
                }
                Err(_) => {
                    // fail closed: nothing more is applied until a snapshot
                    prop_assert_eq!(
                        rw.apply(vec![Op::Remove { id: 5 }]),
                        Err(RewriteError::NoDocument)
                    );
                    have_doc = rw.snapshot(snapshot(base_document())).is_ok();
                    prop_assert!(have_doc || small);
                }
            }
        }
        let _ = rw.cue();
        let _ = rw.stats();
        let _ = rw.navigate("https://shop.example/other?q=1".into(), "n".into());
        let _ = rw.set_rules(rules(2));
    }
}

#[test]
fn a_node_inserted_under_its_own_descendant_or_itself_is_refused() {
    let mut rw = Rewriter::new(rules(0), Limits::default());
    rw.snapshot(snapshot(base_document()))
        .expect("base snapshot");
    // 6 is the parent of 7: inserting 6 again under 7 (or under itself) must fail
    for (parent, id) in [(7, 6), (6, 6), (3, 1)] {
        let r = rw.apply(vec![Op::Insert {
            parent,
            before: None,
            node: el(id, "div", "", vec![]),
        }]);
        assert!(r.is_err(), "insert of {id} under {parent} accepted: {r:?}");
        rw.snapshot(snapshot(base_document())).expect("resnapshot");
    }
    // removing the document root is refused, and so is inserting under text
    assert!(rw.apply(vec![Op::Remove { id: 1 }]).is_err());
    rw.snapshot(snapshot(base_document())).expect("resnapshot");
    assert!(rw
        .apply(vec![Op::Insert {
            parent: 5,
            before: None,
            node: el(99, "b", "", vec![]),
        }])
        .is_err());
}

/// Regression (fuzz target above): a batch refused for having more than
/// `max_ops` ops left the document usable, so the next batch applied to a
/// mirror that had missed the customer's changes. It must fail closed.
#[test]
fn a_batch_over_max_ops_fails_closed_until_a_fresh_snapshot() {
    let limits = limits(true);
    let mut rw = Rewriter::new(rules(0), limits);
    rw.snapshot(snapshot(base_document()))
        .expect("base snapshot");
    let too_many = vec![Op::Remove { id: 12 }; limits.max_ops + 1];
    assert!(matches!(rw.apply(too_many), Err(RewriteError::Limit(_))));
    assert_eq!(
        rw.apply(vec![Op::Remove { id: 5 }]),
        Err(RewriteError::NoDocument)
    );
    assert!(rw.agent_snapshot().is_none(), "stale mirror still rendered");
    rw.snapshot(snapshot(base_document()))
        .expect("fresh snapshot");
    assert!(rw.apply(vec![Op::Remove { id: 5 }]).is_ok());
}
