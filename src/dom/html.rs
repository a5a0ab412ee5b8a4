//! HTML documents for the editor preview and the CLI: parse with html5ever
//! (our own tree sink) into wire nodes with ids assigned in document order,
//! and serialise wire nodes back to HTML (optionally without scripts).
//!
//! The parsed tree is then loaded into the mirror like any customer
//! snapshot, so previews go through exactly the engine the relay uses.

use crate::protocol::{Node, NodeId};
use html5ever::tendril::{StrTendril, TendrilSink};
use html5ever::tree_builder::{ElementFlags, NodeOrText, QuirksMode, TreeSink};
use html5ever::{ns, Attribute, LocalName, Namespace, QualName};
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeMap;

#[derive(Debug)]
enum TData {
    Document,
    Doctype(String),
    Element {
        name: QualName,
        attrs: Vec<Attribute>,
    },
    Text(String),
    Comment(String),
}

#[derive(Debug)]
struct TNode {
    parent: Option<usize>,
    children: Vec<usize>,
    data: TData,
}

/// A temporary arena the parser builds into.
#[derive(Debug)]
struct Sink {
    nodes: RefCell<Vec<TNode>>,
    /// `<template>` element → its content fragment (a detached node, never
    /// converted: template content is not part of the document).
    templates: RefCell<std::collections::HashMap<usize, usize>>,
}

/// An element name owned by value (the arena is behind a `RefCell`).
#[derive(Debug)]
pub struct OwnedName {
    ns: Namespace,
    local: LocalName,
}

impl html5ever::tree_builder::ElemName for OwnedName {
    fn ns(&self) -> &Namespace {
        &self.ns
    }
    fn local_name(&self) -> &LocalName {
        &self.local
    }
}

impl Sink {
    fn new_node(&self, data: TData) -> usize {
        let mut nodes = self.nodes.borrow_mut();
        nodes.push(TNode {
            parent: None,
            children: Vec::new(),
            data,
        });
        nodes.len() - 1
    }

    fn detach(&self, target: usize) {
        let mut nodes = self.nodes.borrow_mut();
        if let Some(p) = nodes[target].parent.take() {
            nodes[p].children.retain(|&c| c != target);
        }
    }

    /// Insert `child` into `parent` at `pos`, merging adjacent text.
    fn insert_at(&self, parent: usize, pos: usize, child: NodeOrText<usize>) {
        match child {
            NodeOrText::AppendText(text) => {
                let mut nodes = self.nodes.borrow_mut();
                if pos > 0 {
                    let prev = nodes[parent].children[pos - 1];
                    if let TData::Text(t) = &mut nodes[prev].data {
                        t.push_str(&text);
                        return;
                    }
                }
                drop(nodes);
                let n = self.new_node(TData::Text(text.to_string()));
                let mut nodes = self.nodes.borrow_mut();
                nodes[n].parent = Some(parent);
                nodes[parent].children.insert(pos, n);
            }
            NodeOrText::AppendNode(n) => {
                self.detach(n);
                let mut nodes = self.nodes.borrow_mut();
                let pos = pos.min(nodes[parent].children.len());
                nodes[n].parent = Some(parent);
                nodes[parent].children.insert(pos, n);
            }
        }
    }
}

impl TreeSink for Sink {
    type Handle = usize;
    type Output = Self;
    type ElemName<'a> = OwnedName;

    fn finish(self) -> Self {
        self
    }

    fn parse_error(&self, _msg: Cow<'static, str>) {}

    fn get_document(&self) -> usize {
        0
    }

    fn elem_name<'a>(&'a self, target: &'a usize) -> OwnedName {
        match &self.nodes.borrow()[*target].data {
            TData::Element { name, .. } => OwnedName {
                ns: name.ns.clone(),
                local: name.local.clone(),
            },
            _ => OwnedName {
                ns: ns!(html),
                local: LocalName::from(""),
            },
        }
    }

    fn create_element(&self, name: QualName, attrs: Vec<Attribute>, _flags: ElementFlags) -> usize {
        self.new_node(TData::Element { name, attrs })
    }

    fn create_comment(&self, text: StrTendril) -> usize {
        self.new_node(TData::Comment(text.to_string()))
    }

    fn create_pi(&self, _target: StrTendril, data: StrTendril) -> usize {
        self.new_node(TData::Comment(data.to_string()))
    }

    fn append(&self, parent: &usize, child: NodeOrText<usize>) {
        let pos = self.nodes.borrow()[*parent].children.len();
        self.insert_at(*parent, pos, child);
    }

    fn append_based_on_parent_node(
        &self,
        element: &usize,
        prev_element: &usize,
        child: NodeOrText<usize>,
    ) {
        if self.nodes.borrow()[*element].parent.is_some() {
            self.append_before_sibling(element, child);
        } else {
            self.append(prev_element, child);
        }
    }

    fn append_doctype_to_document(
        &self,
        name: StrTendril,
        _public_id: StrTendril,
        _system_id: StrTendril,
    ) {
        let n = self.new_node(TData::Doctype(name.to_string()));
        self.append(&0, NodeOrText::AppendNode(n));
    }

    fn get_template_contents(&self, target: &usize) -> usize {
        if let Some(&f) = self.templates.borrow().get(target) {
            return f;
        }
        let f = self.new_node(TData::Document);
        self.templates.borrow_mut().insert(*target, f);
        f
    }

    fn same_node(&self, x: &usize, y: &usize) -> bool {
        x == y
    }

    fn set_quirks_mode(&self, _mode: QuirksMode) {}

    fn append_before_sibling(&self, sibling: &usize, new_node: NodeOrText<usize>) {
        let parent = self.nodes.borrow()[*sibling].parent;
        if let Some(p) = parent {
            let pos = self.nodes.borrow()[p]
                .children
                .iter()
                .position(|c| c == sibling)
                .unwrap_or(0);
            self.insert_at(p, pos, new_node);
        }
    }

    fn add_attrs_if_missing(&self, target: &usize, attrs: Vec<Attribute>) {
        if let TData::Element {
            attrs: existing, ..
        } = &mut self.nodes.borrow_mut()[*target].data
        {
            for a in attrs {
                if !existing.iter().any(|e| e.name == a.name) {
                    existing.push(a);
                }
            }
        }
    }

    fn remove_from_parent(&self, target: &usize) {
        self.detach(*target);
    }

    fn reparent_children(&self, node: &usize, new_parent: &usize) {
        let kids = std::mem::take(&mut self.nodes.borrow_mut()[*node].children);
        let mut nodes = self.nodes.borrow_mut();
        for k in kids {
            nodes[k].parent = Some(*new_parent);
            nodes[*new_parent].children.push(k);
        }
    }
}

/// How deep a parsed tree may nest (the document node is level 1). Deeper
/// elements are attached to their ancestor at this level instead, as
/// Chromium's parser does past 512 levels: nothing is lost, and no later
/// walk (mirror limits, rendering, serialising) meets a deeper tree.
pub const MAX_PARSE_DEPTH: usize = 512;

/// Parse an HTML document into a wire tree whose ids are 1, 2, 3 … in
/// document order (the document node is 1). Trees deeper than
/// [`MAX_PARSE_DEPTH`] are flattened at that depth.
pub fn parse_document(html: &str) -> Node {
    let sink = Sink {
        nodes: RefCell::new(Vec::new()),
        templates: RefCell::new(Default::default()),
    };
    sink.new_node(TData::Document);
    let sink = html5ever::parse_document(sink, Default::default()).one(html);
    let nodes = sink.nodes.into_inner();
    convert(&nodes, MAX_PARSE_DEPTH)
}

/// Convert the arena (from node 0) to a wire tree, iteratively; ids in
/// document order. Below `max_depth`, children are hoisted to the ancestor
/// at `max_depth` (in document order).
fn convert(nodes: &[TNode], max_depth: usize) -> Node {
    struct Frame {
        node: Node,
        /// Arena indexes still to visit under this frame, in reverse order.
        todo: Vec<usize>,
    }
    let mut next: NodeId = 1;
    let mut make = |i: usize| -> Node {
        let id = next;
        next += 1;
        one_node(&nodes[i].data, id)
    };
    let rev = |i: usize| -> Vec<usize> { nodes[i].children.iter().rev().copied().collect() };
    let mut stack = vec![Frame {
        node: make(0),
        todo: rev(0),
    }];
    loop {
        let depth = stack.len();
        let Some(top) = stack.last_mut() else {
            return Node::Document {
                id: 1,
                children: Vec::new(),
            };
        };
        if let Some(i) = top.todo.pop() {
            let node = make(i);
            if depth + 1 >= max_depth {
                // too deep: this node's children become its later siblings
                top.todo.extend(rev(i));
                push_child(&mut top.node, node);
            } else {
                stack.push(Frame { node, todo: rev(i) });
            }
            continue;
        }
        let Some(done) = stack.pop() else { continue };
        match stack.last_mut() {
            Some(parent) => push_child(&mut parent.node, done.node),
            None => return done.node,
        }
    }
}

fn push_child(parent: &mut Node, child: Node) {
    if let Node::Document { children, .. } | Node::Element { children, .. } = parent {
        children.push(child);
    }
}

/// One arena node as a wire node without children.
fn one_node(data: &TData, id: NodeId) -> Node {
    match data {
        TData::Document => Node::Document {
            id,
            children: Vec::new(),
        },
        TData::Doctype(name) => Node::Doctype {
            id,
            name: name.clone(),
        },
        TData::Element { name, attrs } => {
            let ns = if name.ns == ns!(svg) {
                Some("svg".to_string())
            } else if name.ns == ns!(mathml) {
                Some("math".to_string())
            } else {
                None
            };
            let attrs: BTreeMap<String, String> = attrs
                .iter()
                .map(|a| {
                    let key = match &a.name.prefix {
                        Some(p) => format!("{}:{}", p, a.name.local),
                        None => a.name.local.to_string(),
                    };
                    (key, a.value.to_string())
                })
                .collect();
            Node::Element {
                id,
                tag: name.local.to_string(),
                ns,
                attrs,
                children: Vec::new(),
                value: None,
                checked: None,
            }
        }
        TData::Text(t) => Node::Text {
            id,
            text: t.clone(),
        },
        TData::Comment(t) => Node::Comment {
            id,
            text: t.clone(),
        },
    }
}

const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
    "wbr",
];
const RAW: &[&str] = &[
    "style", "script", "xmp", "iframe", "noembed", "noframes", "noscript",
];

fn escape(s: &str, attr: bool, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' if !attr => out.push_str("&lt;"),
            '>' if !attr => out.push_str("&gt;"),
            '"' if attr => out.push_str("&quot;"),
            '\u{a0}' => out.push_str("&nbsp;"),
            c => out.push(c),
        }
    }
}

/// Serialise a wire tree as HTML. With `strip_scripts`, `<script>`
/// elements, `on*` handlers and `javascript:` URLs are left out, so the
/// output never runs customer code. Iterative: any depth is fine.
pub fn to_html(node: &Node, strip_scripts: bool) -> String {
    enum Step<'a> {
        Open(&'a Node, bool),
        Close(&'a str),
    }
    let strip = strip_scripts;
    let mut out = String::new();
    let mut stack = vec![Step::Open(node, false)];
    while let Some(step) = stack.pop() {
        let (node, raw) = match step {
            Step::Close(tag) => {
                out.push_str("</");
                out.push_str(tag);
                out.push('>');
                continue;
            }
            Step::Open(n, raw) => (n, raw),
        };
        match node {
            Node::Document { children, .. } => {
                stack.extend(children.iter().rev().map(|c| Step::Open(c, false)));
            }
            Node::Doctype { name, .. } => {
                out.push_str("<!DOCTYPE ");
                out.push_str(name);
                out.push('>');
            }
            Node::Element {
                tag,
                ns,
                attrs,
                children,
                ..
            } => {
                if strip && tag.eq_ignore_ascii_case("script") {
                    continue;
                }
                out.push('<');
                out.push_str(tag);
                for (k, v) in attrs {
                    if strip
                        && (crate::rewrite::render::is_event_handler(k)
                            || v.trim_start()
                                .to_ascii_lowercase()
                                .starts_with("javascript:"))
                    {
                        continue;
                    }
                    out.push(' ');
                    out.push_str(k);
                    out.push_str("=\"");
                    escape(v, true, &mut out);
                    out.push('"');
                }
                out.push('>');
                let is_html = ns.is_none();
                if is_html && VOID.contains(&tag.as_str()) {
                    continue;
                }
                let raw_kids = is_html && RAW.contains(&tag.as_str());
                stack.push(Step::Close(tag));
                stack.extend(children.iter().rev().map(|c| Step::Open(c, raw_kids)));
            }
            Node::Text { text, .. } => {
                if raw {
                    out.push_str(text);
                } else {
                    escape(text, false, &mut out);
                }
            }
            Node::Comment { text, .. } => {
                out.push_str("<!--");
                out.push_str(&text.replace("-->", "-- >"));
                out.push_str("-->");
            }
            // declarative shadow DOM, as a browser would parse it back
            Node::Shadow { children, .. } => {
                out.push_str("<template shadowrootmode=\"open\">");
                stack.push(Step::Close("template"));
                stack.extend(children.iter().rev().map(|c| Step::Open(c, false)));
            }
            // CSSOM rules and placeholders have no markup form
            Node::Sheet { .. } | Node::Placeholder { .. } => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_document_order_ids_and_round_trips() {
        let n = parse_document("<!DOCTYPE html><p class=a>x<b>y</b></p><svg><text>t</text></svg><script>evil()</script>");
        let html = to_html(&n, true);
        assert_eq!(
            html,
            "<!DOCTYPE html><html><head></head><body><p class=\"a\">x<b>y</b></p><svg><text>t</text></svg></body></html>"
        );
        // ids: document 1, doctype 2, html 3, head 4, body 5, p 6 ...
        let Node::Document { children, .. } = &n else {
            panic!()
        };
        assert_eq!(children[0].id(), 2);
        assert_eq!(children[1].id(), 3);
        let body = &children[1].children()[1];
        assert_eq!(body.id(), 5);
        assert_eq!(body.children()[0].id(), 6);
        match &body.children()[1] {
            Node::Element { ns, tag, .. } => {
                assert_eq!((ns.as_deref(), tag.as_str()), (Some("svg"), "svg"))
            }
            o => panic!("{o:?}"),
        }
    }
}
