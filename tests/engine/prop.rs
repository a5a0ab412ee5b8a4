//! Property test of the privacy invariant: random documents, random rule
//! sets, random mutation sequences (attribute/class toggles, inserts,
//! removes, moves, text and value ops, rule publishes, navigations). After
//! every message the agent's copy (a real mirror applying exactly the ops it
//! received) must equal the oracle's rewrite of the customer's document, and
//! no message may contain a planted secret that is not visible at the end of
//! its batch (end-state masking: in-between values of a batch never go out).
//!
//! Faults (fail closed): batches lost or refused on the way (the mirror falls
//! behind the page), batches with a bad op half-way (refused whole), and
//! reconnects; each is followed by a resync snapshot, after which the agent's
//! copy must equal the oracle again.
//!
//! Cases: `PROPTEST_CASES` (default 2000; 5000 take about 40 s in a debug build on an idle 2-core machine).

use super::support::*;
use cobrowse::dom::{Dom, Kind, Slot};
use cobrowse::protocol::{Node, NodeId, Op};
use cobrowse::rules::{Action, CompiledRules, PrivacyLevel, Rule, SiteSettings};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;

const TAGS: &[&str] = &["div", "span", "p", "li", "input", "section"];
const CLASSES: &[&str] = &["a", "b", "c"];
const SELECTORS: &[&str] = &[
    ".a",
    ".b",
    "div",
    "span.c",
    ".a span",
    ".a > p",
    "div + p",
    ".b ~ span",
    "li:nth-child(2)",
    "p:first-child",
    ":not(.c) > span",
    "div:has(.b)",
    "section:has(> .a)",
    "[data-k]",
    "[title^=Zq1]",
    "input",
    "p:empty",
    "span:last-child",
    ":is(.a, .b) li",
    ".c:has(+ .a)",
    "div:has(.a) span",
    "li:nth-child(odd of .a)",
    "section *",
    ".a ~ .b p",
    "li:nth-child(2) span",
    "input:checked",
    "div:empty + span",
];
const ACTIONS: &[Action] = &[Action::Mask, Action::Block, Action::Disable, Action::Unmask];

#[derive(Debug, Clone)]
struct RuleSpec {
    rules: Vec<(usize, usize, bool)>,
    level: u8,
}

fn rule_spec() -> impl Strategy<Value = RuleSpec> {
    (
        prop::collection::vec(
            (
                0..SELECTORS.len(),
                0..ACTIONS.len(),
                prop::bool::weighted(0.2),
            ),
            1..5,
        ),
        prop_oneof![6 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)],
    )
        .prop_map(|(rules, level)| RuleSpec { rules, level })
}

fn build_rules(spec: &RuleSpec) -> Arc<CompiledRules> {
    let rules: Vec<Rule> = spec
        .rules
        .iter()
        .map(|&(s, a, scoped)| Rule {
            selector: SELECTORS[s].into(),
            action: ACTIONS[a],
            url: scoped.then(|| "/x/*".to_string()),
            description: String::new(),
            enabled: true,
        })
        .collect();
    let privacy = match spec.level {
        0 => PrivacyLevel::Allow,
        1 => PrivacyLevel::MaskInputs,
        _ => PrivacyLevel::MaskAll,
    };
    Arc::new(
        CompiledRules::compile(
            &rules,
            SiteSettings {
                privacy,
                ..SiteSettings::default()
            },
        )
        .unwrap(),
    )
}

/// kind: 0..6 element tags, 6..8 text (8: empty text), 9 a `div` host
/// with an open shadow root (protocol v1.2); class 3/4 = none.
#[derive(Debug, Clone)]
struct NodeSpec {
    parent: usize,
    kind: u8,
    class: u8,
    title: bool,
    data: bool,
}

fn node_spec() -> impl Strategy<Value = NodeSpec> {
    (
        any::<usize>(),
        0u8..10,
        0u8..5,
        prop::bool::weighted(0.3),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(parent, kind, class, title, data)| NodeSpec {
            parent,
            kind,
            class,
            title,
            data,
        })
}

type AbstractOp = (u8, usize, usize, u8);

#[derive(Debug, Clone)]
enum Step {
    Batch(Vec<AbstractOp>),
    Publish(RuleSpec),
    Navigate(bool),
    /// The batch changes the page but never reaches the mirror (refused by a
    /// limit, lost with a connection); the session resyncs.
    LostBatch(Vec<AbstractOp>),
    /// The batch carries a bad op after its valid ones; it is refused whole
    /// and the session resyncs.
    BrokenBatch(Vec<AbstractOp>),
    /// The customer reconnects: a fresh snapshot of the same page.
    Reconnect,
    /// A card number typed key by key into a text input no rule marks
    /// (card index, separator index, input pick).
    TypeCard(usize, usize, usize),
    /// A show-password toggle: the input becomes a password field (the
    /// snippet adds its mark), a secret is typed, it is shown as text again.
    PasswordToggle(usize),
}

/// Luhn-valid test card numbers.
const CARDS: &[&str] = &["4111111111111111", "5500005555555559", "378282246310005"];
/// Separators customers and pages put between digit groups.
const SEPARATORS: &[&str] = &["", " ", "-", ".", "\u{a0}", "\u{2009}"];

fn ops_strategy() -> impl Strategy<Value = Vec<AbstractOp>> {
    prop::collection::vec((0u8..8, any::<usize>(), any::<usize>(), 0u8..6), 1..5)
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => ops_strategy().prop_map(Step::Batch),
        1 => rule_spec().prop_map(Step::Publish),
        1 => any::<bool>().prop_map(Step::Navigate),
        1 => ops_strategy().prop_map(Step::LostBatch),
        1 => ops_strategy().prop_map(Step::BrokenBatch),
        1 => Just(Step::Reconnect),
        1 => (0..CARDS.len(), 0..SEPARATORS.len(), any::<usize>())
            .prop_map(|(c, sep, i)| Step::TypeCard(c, sep, i)),
        1 => any::<usize>().prop_map(Step::PasswordToggle),
    ]
}

/// Fresh ids and unique secret strings (`Zq<n>x`).
struct Gen {
    id: NodeId,
    secret: u64,
}

impl Gen {
    fn id(&mut self) -> NodeId {
        self.id += 1;
        self.id
    }
    fn secret(&mut self) -> String {
        self.secret += 1;
        format!("Zq{}x", self.secret)
    }
}

fn make_node(g: &mut Gen, kind: u8, class: u8, title: bool, data: bool, with_text: bool) -> Node {
    if kind == 9 {
        // a web component: rules must apply inside its shadow tree as in
        // the light tree (the host's state is inherited, combinators see
        // through the boundary)
        let inner = make_node(g, 1, (class + 1) % 5, title, data, true);
        let field = make_node(g, 4, class, false, false, false);
        let shadow = Node::Shadow {
            id: g.id(),
            children: vec![
                Node::Text {
                    id: g.id(),
                    text: format!("s {}", g.secret()),
                },
                inner,
                field,
            ],
        };
        let mut host = make_node(g, 0, class, title, data, with_text);
        if let Node::Element { children, .. } = &mut host {
            children.insert(0, shadow);
        }
        return host;
    }
    if kind >= 6 {
        let text = if kind == 8 {
            String::new()
        } else {
            format!("t {}", g.secret())
        };
        return Node::Text { id: g.id(), text };
    }
    let tag = TAGS[kind as usize];
    let mut attrs = BTreeMap::new();
    if let Some(c) = CLASSES.get(class as usize) {
        attrs.insert("class".to_string(), c.to_string());
    }
    if title {
        attrs.insert("title".to_string(), g.secret());
    }
    if data {
        attrs.insert("data-k".to_string(), g.secret());
    }
    let id = g.id();
    let mut children = Vec::new();
    let mut value = None;
    let mut checked = None;
    if tag == "input" {
        attrs.insert(
            "type".into(),
            if class % 2 == 0 { "checkbox" } else { "text" }.into(),
        );
        value = Some(g.secret());
        checked = Some(title);
    } else if with_text {
        children.push(Node::Text {
            id: g.id(),
            text: format!("x {}", g.secret()),
        });
    }
    Node::Element {
        id,
        tag: tag.into(),
        ns: None,
        attrs,
        children,
        value,
        checked,
    }
}

fn elements(dom: &Dom) -> Vec<Slot> {
    dom.subtree(dom.root().unwrap())
        .into_iter()
        .filter(|&s| matches!(dom.node(s).kind, Kind::Element(_)))
        .collect()
}

/// Nodes that may be removed or moved (not document, html, body).
fn movable(dom: &Dom) -> Vec<Slot> {
    dom.subtree(dom.root().unwrap())
        .into_iter()
        .filter(|&s| dom.node(s).id >= 10)
        .collect()
}

fn initial_doc(g: &mut Gen, specs: &[NodeSpec]) -> Node {
    let base = Node::Document {
        id: 1,
        children: vec![el(2, "html", &[], vec![el(3, "body", &[], vec![])])],
    };
    let mut dom = Dom::from_node(&base, &unlimited()).unwrap();
    for sp in specs {
        let els: Vec<Slot> = elements(&dom)
            .into_iter()
            .filter(|&s| dom.node(s).id != 2)
            .collect();
        let p = els[sp.parent % els.len()];
        if dom.element(p).is_some_and(|e| e.tag == "input") {
            continue;
        }
        let node = make_node(g, sp.kind, sp.class, sp.title, sp.data, sp.parent % 3 == 0);
        let pid = dom.node(p).id;
        dom.insert(pid, None, &node, &unlimited()).unwrap();
    }
    root_node(&dom)
}

/// Turn an abstract op into concrete ops against the current document.
fn resolve(dom: &Dom, g: &mut Gen, (kind, a, b, c): (u8, usize, usize, u8)) -> Vec<Op> {
    let els: Vec<Slot> = elements(dom)
        .into_iter()
        .filter(|&s| dom.node(s).id != 2)
        .collect();
    let pick = |v: &[Slot], i: usize| v.get(i % v.len().max(1)).copied();
    match kind {
        0 => {
            let Some(e) = pick(&els, a) else {
                return vec![];
            };
            let cls = CLASSES[c as usize % 3];
            let cur = dom
                .element(e)
                .and_then(|d| d.attr("class"))
                .unwrap_or("")
                .to_string();
            let mut list: Vec<&str> = cur.split_ascii_whitespace().collect();
            if list.contains(&cls) {
                list.retain(|x| *x != cls);
            } else {
                list.push(cls);
            }
            let value = (!list.is_empty()).then(|| list.join(" "));
            vec![Op::Attr {
                id: dom.node(e).id,
                name: "class".into(),
                value,
            }]
        }
        1 | 2 => {
            let Some(e) = pick(&els, a) else {
                return vec![];
            };
            let name = if kind == 1 { "title" } else { "data-k" };
            let value = (c % 3 != 0).then(|| g.secret());
            vec![Op::Attr {
                id: dom.node(e).id,
                name: name.into(),
                value,
            }]
        }
        3 => {
            let parents: Vec<Slot> = els
                .iter()
                .copied()
                .filter(|&s| dom.element(s).is_some_and(|e| e.tag != "input"))
                .collect();
            let Some(p) = pick(&parents, a) else {
                return vec![];
            };
            let kids: Vec<Slot> = dom.children(p).collect();
            let pos = b % (kids.len() + 1);
            let before = kids.get(pos).map(|&k| dom.node(k).id);
            let node = make_node(
                g,
                (b / 7 % 10) as u8,
                c % 5,
                b % 4 == 0,
                b % 5 == 0,
                b % 2 == 0,
            );
            vec![Op::Insert {
                parent: dom.node(p).id,
                before,
                node,
            }]
        }
        4 => {
            let Some(x) = pick(&movable(dom), a) else {
                return vec![];
            };
            vec![Op::Remove { id: dom.node(x).id }]
        }
        5 => {
            let Some(x) = pick(&movable(dom), a) else {
                return vec![];
            };
            let targets: Vec<Slot> = els
                .iter()
                .copied()
                .filter(|&t| {
                    !dom.is_inclusive_ancestor(x, t)
                        && dom.element(t).is_some_and(|e| e.tag != "input")
                })
                .collect();
            let Some(t) = pick(&targets, b) else {
                return vec![];
            };
            let kids: Vec<Slot> = dom.children(t).filter(|&k| k != x).collect();
            let before = kids
                .get(c as usize % (kids.len() + 1))
                .map(|&k| dom.node(k).id);
            let id = dom.node(x).id;
            vec![
                Op::Remove { id },
                Op::Insert {
                    parent: dom.node(t).id,
                    before,
                    node: dom.to_node(x),
                },
            ]
        }
        6 => {
            let texts: Vec<Slot> = movable(dom)
                .into_iter()
                .filter(|&s| matches!(dom.node(s).kind, Kind::Text(_)))
                .collect();
            let Some(t) = pick(&texts, a) else {
                return vec![];
            };
            let text = if c == 0 {
                String::new()
            } else {
                format!("n {}", g.secret())
            };
            vec![Op::Text {
                id: dom.node(t).id,
                text,
            }]
        }
        _ => {
            let inputs: Vec<Slot> = els
                .iter()
                .copied()
                .filter(|&s| dom.element(s).is_some_and(|e| e.tag == "input"))
                .collect();
            let Some(i) = pick(&inputs, a) else {
                return vec![];
            };
            let checked = match c % 3 {
                0 => None,
                1 => Some(true),
                _ => Some(false),
            };
            vec![Op::Value {
                id: dom.node(i).id,
                value: g.secret(),
                checked,
            }]
        }
    }
}

/// Secrets present in the customer's document but not in clear in the
/// oracle's rewrite: none of them may appear in `message`.
fn assert_no_hidden_secret(s: &Session, message: &str) {
    let customer = serde_json::to_string(&root_node(&s.customer)).unwrap();
    let expected = serde_json::to_string(&s.expected()).unwrap();
    let mut rest = customer.as_str();
    while let Some(i) = rest.find("Zq") {
        let tail = &rest[i..];
        let end = tail.find('x').map(|e| e + 1).unwrap_or(tail.len());
        let secret = &tail[..end];
        if !expected.contains(secret) {
            assert!(
                !message.contains(secret),
                "hidden secret {secret} sent in {message}"
            );
        }
        rest = &tail[end.min(tail.len())..];
    }
}

/// End-state masking: every planted secret a message carries must be
/// visible in the oracle's rewrite at the end of its batch.
fn assert_only_visible_secrets(s: &Session, message: &str) {
    let expected = serde_json::to_string(&s.expected()).unwrap();
    let mut rest = message;
    while let Some(i) = rest.find("Zq") {
        let tail = &rest[i..];
        let end = tail.find('x').map(|e| e + 1).unwrap_or(tail.len());
        let secret = &tail[..end];
        assert!(
            expected.contains(secret),
            "{secret} is not visible at the end of the batch but was sent in {message}"
        );
        rest = &tail[end.min(tail.len())..];
    }
}

/// Concrete ops for abstract ones, applied to the customer's page as they
/// are resolved.
fn concrete_ops(s: &mut Session, g: &mut Gen, abstract_ops: Vec<AbstractOp>) -> Vec<Op> {
    let mut scratch = s.customer.clone();
    let mut ops = Vec::new();
    for aop in abstract_ops {
        for op in resolve(&scratch, g, aop) {
            apply_op(&mut scratch, &op).unwrap();
            ops.push(op);
        }
    }
    ops
}

/// No string in `message` holds a digit run (digits at most 3 separators
/// apart) of more than six digits: the most a card number may show.
fn assert_no_card_prefix(message: &str) {
    let v: serde_json::Value = serde_json::from_str(message).unwrap();
    let mut stack = vec![&v];
    while let Some(v) = stack.pop() {
        match v {
            serde_json::Value::String(text) => {
                let (mut digits, mut gap) = (0usize, 0usize);
                for c in text.chars() {
                    if c.is_ascii_digit() {
                        digits = if gap > 3 { 1 } else { digits + 1 };
                        gap = 0;
                        assert!(digits <= 6, "card prefix of {digits} digits in {message}");
                    } else if matches!(c, ' ' | '-' | '.' | '\u{a0}' | '\u{2009}' | '\u{202f}')
                        && digits > 0
                    {
                        gap += 1;
                    } else {
                        digits = 0;
                        gap = 0;
                    }
                }
            }
            serde_json::Value::Array(a) => stack.extend(a),
            serde_json::Value::Object(o) => stack.extend(o.values()),
            _ => {}
        }
    }
}

/// Text inputs of the customer's page.
fn text_inputs(dom: &Dom) -> Vec<NodeId> {
    elements(dom)
        .into_iter()
        .filter(|&s| {
            dom.element(s)
                .is_some_and(|e| e.tag == "input" && e.attr("type") == Some("text"))
        })
        .map(|s| dom.node(s).id)
        .collect()
}

/// The session's answer to a fault: a fresh snapshot of the page as it is.
fn resync(s: &mut Session) {
    let root = root_node(&s.customer);
    let url = s.url.clone();
    let snap = s.navigate(root, &url);
    assert_no_hidden_secret(s, &serde_json::to_string(&snap).unwrap());
}

fn run(rules0: RuleSpec, nodes: Vec<NodeSpec>, steps: Vec<Step>) {
    let mut g = Gen { id: 100, secret: 0 };
    let root = initial_doc(&mut g, &nodes);
    let mut s = Session::from_node(build_rules(&rules0), root, "https://h/x/start");
    let first = s.sent[0].clone();
    assert_no_hidden_secret(&s, &first);
    for step in steps {
        match step {
            Step::Batch(abstract_ops) => {
                let ops = concrete_ops(&mut s, &mut g, abstract_ops);
                let out = s.batch(ops);
                let json = serde_json::to_string(&out).unwrap();
                assert_no_hidden_secret(&s, &json);
                assert_only_visible_secrets(&s, &json);
            }
            Step::LostBatch(abstract_ops) => {
                for op in concrete_ops(&mut s, &mut g, abstract_ops) {
                    apply_op(&mut s.customer, &op).unwrap();
                }
                resync(&mut s);
            }
            Step::BrokenBatch(abstract_ops) => {
                let mut ops = concrete_ops(&mut s, &mut g, abstract_ops);
                for op in &ops {
                    apply_op(&mut s.customer, op).unwrap();
                }
                ops.push(Op::Remove { id: 9_999_999 });
                assert!(
                    s.rw.apply(ops).is_err(),
                    "a batch with a bad op must be refused"
                );
                assert!(
                    s.rw.agent_snapshot().is_none(),
                    "a half-applied mirror must not be rendered"
                );
                resync(&mut s);
            }
            Step::Reconnect => resync(&mut s),
            Step::TypeCard(card, sep, pick) => {
                let inputs = text_inputs(&s.customer);
                let Some(&id) = inputs.get(pick % inputs.len().max(1)) else {
                    continue;
                };
                let sep = SEPARATORS[sep];
                let mut typed = String::new();
                for (i, d) in CARDS[card].chars().enumerate() {
                    if i > 0 && i % 4 == 0 {
                        typed.push_str(sep);
                    }
                    typed.push(d);
                    let out = s.batch(vec![Op::Value {
                        id,
                        value: typed.clone(),
                        checked: None,
                    }]);
                    assert_no_card_prefix(&serde_json::to_string(&out).unwrap());
                }
            }
            Step::PasswordToggle(pick) => {
                let inputs = text_inputs(&s.customer);
                let Some(&id) = inputs.get(pick % inputs.len().max(1)) else {
                    continue;
                };
                let attr = |name: &str, value: &str| Op::Attr {
                    id,
                    name: name.into(),
                    value: Some(value.into()),
                };
                s.batch(vec![
                    attr("type", "password"),
                    attr("data-cobrowse-password", "1"),
                ]);
                let secret = g.secret();
                let out = s.batch(vec![Op::Value {
                    id,
                    value: secret.clone(),
                    checked: None,
                }]);
                assert!(!serde_json::to_string(&out).unwrap().contains(&secret));
                // shown as text again (show-password button): still masked
                let out = s.batch(vec![attr("type", "text")]);
                assert!(!serde_json::to_string(&out).unwrap().contains(&secret));
                assert!(!s.agent_json().contains(&secret), "{}", s.agent_json());
            }
            Step::Publish(spec) => {
                let out = s.publish(build_rules(&spec));
                assert_no_hidden_secret(&s, &serde_json::to_string(&out).unwrap());
            }
            Step::Navigate(scoped) => {
                let url = if scoped {
                    "https://h/x/page"
                } else {
                    "https://h/other"
                };
                let root = root_node(&s.customer);
                let snap = s.navigate(root, url);
                assert_no_hidden_secret(&s, &serde_json::to_string(&snap).unwrap());
            }
        }
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn agent_copy_equals_oracle_and_no_hidden_secret_is_sent(
        rules0 in rule_spec(),
        nodes in prop::collection::vec(node_spec(), 0..25),
        steps in prop::collection::vec(step(), 1..10),
    ) {
        run(rules0, nodes, steps);
    }
}
