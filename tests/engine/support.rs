//! Shared helpers: a session harness that drives a real `Rewriter`, keeps a
//! customer copy and an agent copy (both real mirrors applying the ops they
//! receive) and checks the agent copy against the oracle after every step.

use cobrowse::dom::html::parse_document;
use cobrowse::dom::select::{self, Matcher};
use cobrowse::dom::Dom;
use cobrowse::protocol::{Limits, Node, NodeId, Op, Snapshot, Viewport};
use cobrowse::rewrite::{oracle, Rewriter};
use cobrowse::rules::{Action, CompiledRules, Rule, SiteSettings};
use std::sync::Arc;

pub fn rule(selector: &str, action: Action) -> Rule {
    Rule {
        selector: selector.into(),
        action,
        url: None,
        description: String::new(),
        enabled: true,
    }
}

pub fn scoped(selector: &str, action: Action, url: &str) -> Rule {
    Rule {
        url: Some(url.into()),
        ..rule(selector, action)
    }
}

pub fn compiled(rules: &[Rule], settings: SiteSettings) -> Arc<CompiledRules> {
    Arc::new(CompiledRules::compile(rules, settings).unwrap())
}

pub fn unlimited() -> Limits {
    Limits {
        max_nodes: usize::MAX,
        max_depth: usize::MAX,
        max_ops: usize::MAX,
        ..Limits::default()
    }
}

pub fn snap(url: &str, root: Node) -> Snapshot {
    Snapshot {
        epoch: 0,
        url: url.into(),
        title: String::new(),
        viewport: Viewport { w: 800.0, h: 600.0 },
        root,
    }
}

/// Apply one (agent- or customer-side) op to a mirror, as a viewer would.
pub fn apply_op(dom: &mut Dom, op: &Op) -> Result<(), String> {
    let l = unlimited();
    let r = match op {
        Op::Insert {
            parent,
            before,
            node,
        } => dom.insert(*parent, *before, node, &l).map(|_| ()),
        Op::Remove { id } => dom.remove(*id).map(|_| ()),
        Op::Attr { id, name, value } => dom.set_attr(*id, name, value.as_deref()).map(|_| ()),
        Op::Text { id, text } => dom.set_text(*id, text).map(|_| ()),
        Op::Value { id, value, checked } => dom.set_value(*id, value, *checked).map(|_| ()),
    };
    r.map_err(|e| format!("{op:?}: {e}"))
}

pub fn root_node(dom: &Dom) -> Node {
    dom.to_node(dom.root().unwrap())
}

/// A live session: rewriter + customer copy + agent copy.
pub struct Session {
    pub rw: Rewriter,
    pub rules: Arc<CompiledRules>,
    pub customer: Dom,
    pub agent: Dom,
    pub url: String,
    /// JSON of every message the agent received, in order.
    pub sent: Vec<String>,
}

impl Session {
    pub fn new(rules: Arc<CompiledRules>, html: &str, url: &str) -> Session {
        Session::from_node(rules, parse_document(html), url)
    }

    pub fn from_node(rules: Arc<CompiledRules>, root: Node, url: &str) -> Session {
        let mut rw = Rewriter::new(rules.clone(), unlimited());
        let agent_snap = rw.snapshot(snap(url, root.clone())).unwrap();
        let s = Session {
            rw,
            rules,
            customer: Dom::from_node(&root, &unlimited()).unwrap(),
            agent: Dom::from_node(&agent_snap.root, &unlimited()).unwrap(),
            url: url.into(),
            sent: vec![serde_json::to_string(&agent_snap).unwrap()],
        };
        s.check();
        s
    }

    /// The oracle's rewrite of the customer's document right now.
    pub fn expected(&self) -> Snapshot {
        oracle(&self.rules, &snap(&self.url, root_node(&self.customer)))
    }

    pub fn check(&self) {
        let want = self.expected().root;
        let got = root_node(&self.agent);
        assert_eq!(
            got,
            want,
            "agent copy differs from the oracle\ncustomer: {}",
            serde_json::to_string(&root_node(&self.customer)).unwrap()
        );
    }

    fn receive(&mut self, out: &[Op]) {
        self.sent.push(serde_json::to_string(out).unwrap());
        for op in out {
            apply_op(&mut self.agent, op)
                .unwrap_or_else(|e| panic!("agent cannot apply {e}; all: {out:?}"));
        }
    }

    /// Send a mutation batch; returns what the agent received.
    pub fn batch(&mut self, ops: Vec<Op>) -> Vec<Op> {
        for op in &ops {
            apply_op(&mut self.customer, op).unwrap();
        }
        let out = self.rw.apply(ops).unwrap();
        self.receive(&out);
        self.check();
        out
    }

    pub fn publish(&mut self, rules: Arc<CompiledRules>) -> Vec<Op> {
        self.rules = rules.clone();
        let out = self.rw.set_rules(rules);
        self.receive(&out);
        self.check();
        out
    }

    /// A navigation: a fresh snapshot at a new URL.
    pub fn navigate(&mut self, root: Node, url: &str) -> Snapshot {
        self.url = url.into();
        self.customer = Dom::from_node(&root, &unlimited()).unwrap();
        let s = self.rw.snapshot(snap(url, root)).unwrap();
        self.sent.push(serde_json::to_string(&s).unwrap());
        self.agent = Dom::from_node(&s.root, &unlimited()).unwrap();
        self.check();
        s
    }

    /// Id of the first customer element matching `css`.
    pub fn id(&self, css: &str) -> NodeId {
        let sel = select::parse(css).unwrap();
        let mut m = Matcher::default();
        let root = self.customer.root().unwrap();
        let slot = self
            .customer
            .subtree(root)
            .into_iter()
            .find(|&s| m.matches(&self.customer, s, &sel))
            .unwrap_or_else(|| panic!("no element matches {css}"));
        self.customer.node(slot).id
    }

    /// Id of the first child (any kind) of the element matching `css`.
    pub fn first_child(&self, css: &str) -> NodeId {
        let s = self.customer.slot(self.id(css)).unwrap();
        let c = self.customer.children(s).next().expect("no child");
        self.customer.node(c).id
    }

    /// The agent's copy as JSON.
    pub fn agent_json(&self) -> String {
        serde_json::to_string(&root_node(&self.agent)).unwrap()
    }

    /// Whether any message sent so far contains `needle`.
    pub fn ever_sent(&self, needle: &str) -> bool {
        self.sent.iter().any(|m| m.contains(needle))
    }
}

pub fn text(id: NodeId, t: &str) -> Node {
    Node::Text { id, text: t.into() }
}

pub fn el(id: NodeId, tag: &str, attrs: &[(&str, &str)], children: Vec<Node>) -> Node {
    Node::Element {
        id,
        tag: tag.into(),
        ns: None,
        attrs: attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        children,
        value: None,
        checked: None,
    }
}
