//! The mirror: a server-side copy of one customer document as an arena of
//! nodes keyed by the snippet's node ids, with parent/child/sibling links.
//!
//! This module owns the tree structure and the primitive mutations (insert,
//! remove, attribute, text, value) with their validation. It knows nothing
//! about rules or masking: selector matching lives in [`select`], HTML import
//! and serialisation in [`html`], and the engine's per-node annotations
//! ([`Meta`]) are opaque bits that only the rewrite engine interprets.

pub mod html;
pub mod select;

use crate::protocol::{Limits, Node, NodeId, PlaceholderKind};
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::BTreeMap;

/// Index of a node in the arena (not a wire id).
pub type Slot = u32;

/// Why a node tree or a mutation cannot be applied to the mirror.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomError {
    /// An op names a node id the mirror does not have.
    #[error("unknown node id {0}")]
    UnknownNode(NodeId),
    /// A node id is used twice in the document.
    #[error("duplicate node id {0}")]
    DuplicateNode(NodeId),
    /// An op is structurally impossible (e.g. insert under a text node).
    #[error("invalid op: {0}")]
    InvalidOp(String),
    /// The document would exceed the configured limits.
    #[error("limit exceeded: {0}")]
    Limit(String),
}

/// The namespace of an element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ns {
    Html,
    Svg,
    Math,
}

impl Ns {
    /// The namespace URL, as selectors see it.
    pub fn url(self) -> &'static str {
        match self {
            Ns::Html => "http://www.w3.org/1999/xhtml",
            Ns::Svg => "http://www.w3.org/2000/svg",
            Ns::Math => "http://www.w3.org/1998/Math/MathML",
        }
    }

    /// The wire name (`None` for HTML).
    pub fn wire(self) -> Option<&'static str> {
        match self {
            Ns::Html => None,
            Ns::Svg => Some("svg"),
            Ns::Math => Some("math"),
        }
    }

    fn from_wire(ns: Option<&str>) -> Result<Ns, DomError> {
        match ns {
            None | Some("") | Some("html") => Ok(Ns::Html),
            Some("svg") => Ok(Ns::Svg),
            Some("math") => Ok(Ns::Math),
            Some(other) => Err(DomError::InvalidOp(format!("unknown namespace `{other}`"))),
        }
    }
}

/// The snippet's mark on an element that was ever `type=password` (protocol
/// v1.1). It makes [`ElementData::was_password`] true for good; the render
/// never forwards `data-cobrowse-*` attributes.
pub const PASSWORD_MARK: &str = "data-cobrowse-password";

/// Attribute names of HTML elements are ASCII-lower-cased, as an HTML
/// parser and `setAttribute` do; SVG and MathML keep their case (`viewBox`).
pub fn normalize_attr_name(ns: Ns, name: &str) -> std::borrow::Cow<'_, str> {
    if ns == Ns::Html && name.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(name.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(name)
    }
}

/// Lower-case the attribute names of an HTML element. When two names differ
/// only in case, the one already in lower case wins (else the first).
fn normalize_attrs(ns: Ns, attrs: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    if ns != Ns::Html
        || !attrs
            .keys()
            .any(|k| k.bytes().any(|b| b.is_ascii_uppercase()))
    {
        return attrs.clone();
    }
    let mut out = BTreeMap::new();
    for (k, v) in attrs {
        let lower = k.to_ascii_lowercase();
        if lower == *k {
            out.insert(lower, v.clone());
        } else {
            out.entry(lower).or_insert_with(|| v.clone());
        }
    }
    out
}

/// Element data: name, attributes and live form state.
#[derive(Debug, Clone, PartialEq)]
pub struct ElementData {
    /// Local name; lowercased for HTML elements.
    pub tag: String,
    pub ns: Ns,
    pub attrs: BTreeMap<String, String>,
    /// Live value of a form control (may differ from the attribute).
    pub value: Option<String>,
    /// Live checked state of a checkbox/radio.
    pub checked: Option<bool>,
    /// Sticky: this element was an `<input type=password>` at some point.
    pub was_password: bool,
}

impl ElementData {
    /// The value of an attribute.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.get(name).map(String::as_str)
    }

    /// Whether this is the HTML element `tag`.
    pub fn is_html(&self, tag: &str) -> bool {
        self.ns == Ns::Html && self.tag == tag
    }

    /// Sticky password memory: an `<input type=password>`, or any element
    /// the snippet marked with [`PASSWORD_MARK`] (it was a password field at
    /// some point of the page's life, e.g. before a show-password toggle).
    fn note_password(&mut self) {
        if self.attrs.contains_key(PASSWORD_MARK)
            || (self.is_html("input")
                && self
                    .attr("type")
                    .is_some_and(|t| t.trim().eq_ignore_ascii_case("password")))
        {
            self.was_password = true;
        }
    }
}

/// What a node is.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// The document root, or (with a parent) the document of a frame.
    Document,
    Doctype(String),
    Element(ElementData),
    Text(String),
    Comment(String),
    /// An open shadow root (child of its host element).
    Shadow,
    /// CSSOM rules: of the parent `<style>`, or an adopted sheet of the
    /// parent document / shadow root.
    Sheet(String),
    /// A box standing for content the snippet could not capture.
    Placeholder(PlaceholderKind, f64, f64),
}

impl Kind {
    /// A boundary node that rules see through: a shadow root, or the
    /// document of a frame. Its content inherits the state of the element
    /// above it, and ancestor walks pass through it.
    pub fn is_boundary(&self, has_parent: bool) -> bool {
        match self {
            Kind::Shadow => true,
            Kind::Document => has_parent,
            _ => false,
        }
    }
}

/// Per-node annotations owned by the rewrite engine (opaque here).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Meta {
    /// Bits of rules matching this element itself.
    pub own: u8,
    /// Effective (inherited) restriction bits.
    pub eff: u8,
    /// Scratch epoch mark used during one update.
    pub mark: u32,
    /// Scratch epoch mark for "changed in this update".
    pub changed: u32,
    /// Epoch in which the node was created.
    pub born: u32,
}

/// One node of the arena.
#[derive(Debug, Clone)]
pub struct NodeData {
    pub id: NodeId,
    pub parent: Option<Slot>,
    pub first_child: Option<Slot>,
    pub last_child: Option<Slot>,
    pub prev: Option<Slot>,
    pub next: Option<Slot>,
    pub kind: Kind,
    pub meta: Meta,
}

impl NodeData {
    /// Element data, if this node is an element.
    pub fn element(&self) -> Option<&ElementData> {
        match &self.kind {
            Kind::Element(e) => Some(e),
            _ => None,
        }
    }

    /// Whether this node is a shadow root or a frame's document (see
    /// [`Kind::is_boundary`]).
    pub fn is_boundary(&self) -> bool {
        self.kind.is_boundary(self.parent.is_some())
    }
}

/// The mirror document.
#[derive(Debug, Clone, Default)]
pub struct Dom {
    nodes: Vec<Option<NodeData>>,
    index: FxHashMap<NodeId, Slot>,
    free: Vec<Slot>,
    root: Option<Slot>,
    /// Epoch stamped into `Meta::born` of nodes created now.
    pub epoch: u32,
    /// The document is in quirks mode (no doctype, or not `<!DOCTYPE html>`):
    /// class and id selectors match ASCII-case-insensitively. Decided once,
    /// from the snapshot, as a browser decides it once at parse time.
    quirks: bool,
}

impl Dom {
    /// Build a mirror from a wire node tree, checking ids and limits.
    pub fn from_node(root: &Node, limits: &Limits) -> Result<Dom, DomError> {
        let mut dom = Dom::default();
        check_new_tree(root, &dom, limits, 1)?;
        let slot = dom.build(root, None);
        dom.root = Some(slot);
        dom.quirks = matches!(root, Node::Document { .. })
            && !root.children().iter().any(|c| {
                matches!(c, Node::Doctype { name, .. } if name.trim().eq_ignore_ascii_case("html"))
            });
        Ok(dom)
    }

    /// [`Dom::from_node`] taking the tree by value: strings and attribute
    /// maps move into the mirror instead of being copied (the snapshot
    /// path, where the wire tree is not needed afterwards).
    pub fn from_node_owned(root: Node, limits: &Limits) -> Result<Dom, DomError> {
        let mut dom = Dom::default();
        check_new_tree(&root, &dom, limits, 1)?;
        dom.quirks = matches!(root, Node::Document { .. })
            && !root.children().iter().any(|c| {
                matches!(c, Node::Doctype { name, .. } if name.trim().eq_ignore_ascii_case("html"))
            });
        let (top, children) = dom.alloc_owned(root, None);
        let mut stack = vec![(children.into_iter(), top)];
        while let Some((iter, parent)) = stack.last_mut() {
            let parent = *parent;
            match iter.next() {
                Some(child) => {
                    let (c, kids) = dom.alloc_owned(child, Some(parent));
                    dom.link_last(parent, c);
                    stack.push((kids.into_iter(), c));
                }
                None => {
                    stack.pop();
                }
            }
        }
        dom.root = Some(top);
        Ok(dom)
    }

    /// [`Dom::alloc_node`] by value: allocates the node (unlinked) and
    /// hands back its children (none for a `<template>`: its content is
    /// not part of the document).
    fn alloc_owned(&mut self, node: Node, parent: Option<Slot>) -> (Slot, Vec<Node>) {
        let id = node.id();
        let template = is_template(&node);
        let (kind, children) = match node {
            Node::Document { children, .. } => (Kind::Document, children),
            Node::Doctype { name, .. } => (Kind::Doctype(name), Vec::new()),
            Node::Element {
                mut tag,
                ns,
                attrs,
                value,
                checked,
                children,
                ..
            } => {
                let ns = Ns::from_wire(ns.as_deref()).unwrap_or(Ns::Html);
                if ns == Ns::Html {
                    tag.make_ascii_lowercase();
                }
                let attrs = if ns == Ns::Html
                    && attrs
                        .keys()
                        .any(|k| k.bytes().any(|b| b.is_ascii_uppercase()))
                {
                    normalize_attrs(ns, &attrs)
                } else {
                    attrs
                };
                let mut e = ElementData {
                    tag,
                    ns,
                    attrs,
                    value,
                    checked,
                    was_password: false,
                };
                e.note_password();
                (Kind::Element(e), children)
            }
            Node::Text { text, .. } => (Kind::Text(text), Vec::new()),
            Node::Comment { text, .. } => (Kind::Comment(text), Vec::new()),
            Node::Shadow { children, .. } => (Kind::Shadow, children),
            Node::Sheet { css, .. } => (Kind::Sheet(css), Vec::new()),
            Node::Placeholder { kind, w, h, .. } => (
                Kind::Placeholder(kind, PlaceholderKind::clamp(w), PlaceholderKind::clamp(h)),
                Vec::new(),
            ),
        };
        let slot = self.alloc_unlinked(id, parent, kind);
        (slot, if template { Vec::new() } else { children })
    }

    /// Whether the document is in quirks mode (see [`Dom::quirks`] field doc).
    pub fn quirks(&self) -> bool {
        self.quirks
    }

    /// The name an attribute op's `name` has in this mirror: lower-cased for
    /// HTML elements (unknown nodes: unchanged).
    pub fn attr_name<'a>(&self, id: NodeId, name: &'a str) -> std::borrow::Cow<'a, str> {
        match self.slot(id).and_then(|s| self.element(s)) {
            Some(e) => normalize_attr_name(e.ns, name),
            None => std::borrow::Cow::Borrowed(name),
        }
    }

    /// The root node (document), if any.
    pub fn root(&self) -> Option<Slot> {
        self.root
    }

    /// Number of live nodes.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether the mirror holds no node.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The slot of a wire id.
    pub fn slot(&self, id: NodeId) -> Option<Slot> {
        self.index.get(&id).copied()
    }

    /// The node in a slot. Slots handed out by this mirror are always valid
    /// until the node is removed.
    pub fn node(&self, slot: Slot) -> &NodeData {
        match self.nodes.get(slot as usize) {
            Some(Some(n)) => n,
            _ => panic_free_missing(),
        }
    }

    /// Mutable access to a node.
    pub fn node_mut(&mut self, slot: Slot) -> &mut NodeData {
        match self.nodes.get_mut(slot as usize) {
            Some(Some(n)) => n,
            _ => panic_free_missing(),
        }
    }

    /// Element data of a slot, if an element.
    pub fn element(&self, slot: Slot) -> Option<&ElementData> {
        self.node(slot).element()
    }

    /// Parent slot.
    pub fn parent(&self, slot: Slot) -> Option<Slot> {
        self.node(slot).parent
    }

    /// The element above `slot` for rules: its parent if an element; across
    /// a shadow root, the host; across a frame's document, the frame
    /// element. `None` at the top document.
    pub fn parent_element(&self, slot: Slot) -> Option<Slot> {
        let mut cur = self.node(slot).parent;
        while let Some(p) = cur {
            let n = self.node(p);
            match n.kind {
                Kind::Element(_) => return Some(p),
                _ if n.is_boundary() => cur = n.parent,
                _ => return None,
            }
        }
        None
    }

    /// Iterate the children of a node.
    pub fn children(&self, slot: Slot) -> Children<'_> {
        Children {
            dom: self,
            next: self.node(slot).first_child,
        }
    }

    /// Depth of a node (root = 0).
    pub fn depth(&self, slot: Slot) -> usize {
        let mut d = 0;
        let mut cur = self.node(slot).parent;
        while let Some(p) = cur {
            d += 1;
            cur = self.node(p).parent;
        }
        d
    }

    /// Pre-order list of the slots of a subtree (including `slot`).
    pub fn subtree(&self, slot: Slot) -> Vec<Slot> {
        let mut out = Vec::new();
        self.for_each_in_subtree(slot, |s| out.push(s));
        out
    }

    /// Visit every node of a subtree in pre-order without allocating a list.
    pub fn for_each_in_subtree(&self, slot: Slot, mut f: impl FnMut(Slot)) {
        let mut cur = Some(slot);
        while let Some(s) = cur {
            f(s);
            let n = self.node(s);
            if let Some(c) = n.first_child {
                cur = Some(c);
                continue;
            }
            // climb until a next sibling exists, without leaving the subtree
            let mut up = s;
            cur = None;
            while up != slot {
                let un = self.node(up);
                if let Some(nx) = un.next {
                    cur = Some(nx);
                    break;
                }
                match un.parent {
                    Some(p) => up = p,
                    None => break,
                }
            }
        }
    }

    /// The element whose subtree a change at `x` (an attribute, value or
    /// text change at `x`, or children of `x` inserted/removed) may re-decide
    /// form-state pseudo-classes in: the nearest `<select>` at or above `x`
    /// (option selectedness), else `x` itself when it is a `<fieldset>`
    /// (its `disabled` and which `<legend>` child comes first).
    pub fn form_scope(&self, x: Slot) -> Option<Slot> {
        let mut cur = Some(x);
        let mut hops = 0;
        while let Some(s) = cur {
            // an option's text sits at most option > optgroup > select away
            if hops > 6 {
                break;
            }
            if self.element(s).is_some_and(|e| e.is_html("select")) {
                return Some(s);
            }
            cur = self.node(s).parent;
            hops += 1;
        }
        self.element(x)
            .is_some_and(|e| e.is_html("fieldset"))
            .then_some(x)
    }

    /// Whether `anc` is `slot` or one of its ancestors.
    pub fn is_inclusive_ancestor(&self, anc: Slot, slot: Slot) -> bool {
        let mut cur = Some(slot);
        while let Some(s) = cur {
            if s == anc {
                return true;
            }
            cur = self.node(s).parent;
        }
        false
    }

    fn alloc(&mut self, data: NodeData) -> Slot {
        let id = data.id;
        let slot = if let Some(s) = self.free.pop() {
            self.nodes[s as usize] = Some(data);
            s
        } else {
            self.nodes.push(Some(data));
            (self.nodes.len() - 1) as Slot
        };
        self.index.insert(id, slot);
        slot
    }

    /// Build a (pre-validated) wire tree into the arena; returns its slot.
    /// Iterative, so no input depth can exhaust the stack. The content of an
    /// HTML `<template>` is not part of the document (as in a browser, where
    /// it lives in a separate fragment): it is left out of the mirror.
    fn build(&mut self, node: &Node, parent: Option<Slot>) -> Slot {
        let top = self.alloc_node(node, parent);
        let mut stack: Vec<(&Node, Slot)> = vec![(node, top)];
        while let Some((n, s)) = stack.pop() {
            if is_template(n) {
                continue;
            }
            for child in n.children() {
                let c = self.alloc_node(child, Some(s));
                self.link_last(s, c);
                stack.push((child, c));
            }
        }
        top
    }

    /// Allocate one wire node (without its children), unlinked.
    fn alloc_node(&mut self, node: &Node, parent: Option<Slot>) -> Slot {
        let kind = match node {
            Node::Document { .. } => Kind::Document,
            Node::Doctype { name, .. } => Kind::Doctype(name.clone()),
            Node::Element {
                tag,
                ns,
                attrs,
                value,
                checked,
                ..
            } => {
                let ns = Ns::from_wire(ns.as_deref()).unwrap_or(Ns::Html);
                let tag = if ns == Ns::Html {
                    tag.to_ascii_lowercase()
                } else {
                    tag.clone()
                };
                let mut e = ElementData {
                    tag,
                    ns,
                    attrs: normalize_attrs(ns, attrs),
                    value: value.clone(),
                    checked: *checked,
                    was_password: false,
                };
                e.note_password();
                Kind::Element(e)
            }
            Node::Text { text, .. } => Kind::Text(text.clone()),
            Node::Comment { text, .. } => Kind::Comment(text.clone()),
            Node::Shadow { .. } => Kind::Shadow,
            Node::Sheet { css, .. } => Kind::Sheet(css.clone()),
            Node::Placeholder { kind, w, h, .. } => Kind::Placeholder(
                *kind,
                PlaceholderKind::clamp(*w),
                PlaceholderKind::clamp(*h),
            ),
        };
        self.alloc_unlinked(node.id(), parent, kind)
    }

    /// Allocate a node of `kind` born in this epoch, not yet linked.
    fn alloc_unlinked(&mut self, id: NodeId, parent: Option<Slot>, kind: Kind) -> Slot {
        self.alloc(NodeData {
            id,
            parent,
            first_child: None,
            last_child: None,
            prev: None,
            next: None,
            kind,
            meta: Meta {
                born: self.epoch,
                ..Meta::default()
            },
        })
    }

    fn link_last(&mut self, parent: Slot, child: Slot) {
        let last = self.node(parent).last_child;
        {
            let c = self.node_mut(child);
            c.parent = Some(parent);
            c.prev = last;
            c.next = None;
        }
        match last {
            Some(l) => self.node_mut(l).next = Some(child),
            None => self.node_mut(parent).first_child = Some(child),
        }
        self.node_mut(parent).last_child = Some(child);
    }

    fn link_before(&mut self, parent: Slot, child: Slot, before: Slot) {
        let prev = self.node(before).prev;
        {
            let c = self.node_mut(child);
            c.parent = Some(parent);
            c.prev = prev;
            c.next = Some(before);
        }
        self.node_mut(before).prev = Some(child);
        match prev {
            Some(p) => self.node_mut(p).next = Some(child),
            None => self.node_mut(parent).first_child = Some(child),
        }
    }

    fn unlink(&mut self, slot: Slot) {
        let (parent, prev, next) = {
            let n = self.node(slot);
            (n.parent, n.prev, n.next)
        };
        if let Some(p) = prev {
            self.node_mut(p).next = next;
        } else if let Some(par) = parent {
            self.node_mut(par).first_child = next;
        }
        if let Some(nx) = next {
            self.node_mut(nx).prev = prev;
        } else if let Some(par) = parent {
            self.node_mut(par).last_child = prev;
        }
        let n = self.node_mut(slot);
        n.parent = None;
        n.prev = None;
        n.next = None;
    }

    /// Check that an insert would succeed, without changing anything.
    pub fn check_insert(
        &self,
        parent: NodeId,
        before: Option<NodeId>,
        node: &Node,
        limits: &Limits,
    ) -> Result<(Slot, Option<Slot>), DomError> {
        let p = self.slot(parent).ok_or(DomError::UnknownNode(parent))?;
        let place = match &self.node(p).kind {
            Kind::Document => Place::Document,
            Kind::Shadow => Place::Shadow,
            Kind::Element(e) => Place::of_element(e),
            _ => {
                return Err(DomError::InvalidOp(format!(
                    "node {parent} cannot have children"
                )))
            }
        };
        if matches!(node, Node::Document { .. }) && place != Place::Frame {
            return Err(DomError::InvalidOp(
                "a document node can only be inserted under a frame element".into(),
            ));
        }
        if self.element(p).is_some_and(|e| e.is_html("template")) {
            return Err(DomError::InvalidOp(format!(
                "node {parent} is a <template>: its content is not part of the document"
            )));
        }
        let b = match before {
            Some(b) => {
                let bs = self.slot(b).ok_or(DomError::UnknownNode(b))?;
                if self.node(bs).parent != Some(p) {
                    return Err(DomError::InvalidOp(format!(
                        "node {b} is not a child of {parent}"
                    )));
                }
                Some(bs)
            }
            None => None,
        };
        let depth = self.depth(p) + 2;
        check_new_tree_at(node, self, limits, depth, place)?;
        Ok((p, b))
    }

    /// Insert a wire subtree under `parent` before `before` (or last).
    pub fn insert(
        &mut self,
        parent: NodeId,
        before: Option<NodeId>,
        node: &Node,
        limits: &Limits,
    ) -> Result<Slot, DomError> {
        let (p, b) = self.check_insert(parent, before, node, limits)?;
        let s = self.build(node, Some(p));
        match b {
            Some(b) => self.link_before(p, s, b),
            None => self.link_last(p, s),
        }
        Ok(s)
    }

    /// Remove a node and its subtree; returns its former parent slot.
    pub fn remove(&mut self, id: NodeId) -> Result<Slot, DomError> {
        let s = self.slot(id).ok_or(DomError::UnknownNode(id))?;
        let parent = self
            .node(s)
            .parent
            .ok_or_else(|| DomError::InvalidOp("cannot remove the document root".into()))?;
        self.unlink(s);
        for d in self.subtree(s) {
            let nid = self.node(d).id;
            self.index.remove(&nid);
            self.nodes[d as usize] = None;
            self.free.push(d);
        }
        Ok(parent)
    }

    /// Set or remove an attribute of an element.
    pub fn set_attr(
        &mut self,
        id: NodeId,
        name: &str,
        value: Option<&str>,
    ) -> Result<Slot, DomError> {
        let s = self.slot(id).ok_or(DomError::UnknownNode(id))?;
        if name.is_empty() {
            return Err(DomError::InvalidOp("empty attribute name".into()));
        }
        match &mut self.node_mut(s).kind {
            Kind::Element(e) => {
                let name = normalize_attr_name(e.ns, name);
                match value {
                    Some(v) => {
                        e.attrs.insert(name.into_owned(), v.to_string());
                    }
                    None => {
                        e.attrs.remove(name.as_ref());
                    }
                }
                e.note_password();
                Ok(s)
            }
            _ => Err(DomError::InvalidOp(format!("node {id} is not an element"))),
        }
    }

    /// Replace the data of a text or comment node; returns the slot and
    /// whether the node's emptiness changed.
    pub fn set_text(&mut self, id: NodeId, text: &str) -> Result<(Slot, bool), DomError> {
        let s = self.slot(id).ok_or(DomError::UnknownNode(id))?;
        match &mut self.node_mut(s).kind {
            Kind::Text(t) => {
                let flipped = t.is_empty() != text.is_empty();
                *t = text.to_string();
                Ok((s, flipped))
            }
            Kind::Comment(t) | Kind::Sheet(t) => {
                *t = text.to_string();
                Ok((s, false))
            }
            _ => Err(DomError::InvalidOp(format!(
                "node {id} is not a text, comment or sheet node"
            ))),
        }
    }

    /// Set the live value (and optionally checked state) of an element.
    pub fn set_value(
        &mut self,
        id: NodeId,
        value: &str,
        checked: Option<bool>,
    ) -> Result<Slot, DomError> {
        let s = self.slot(id).ok_or(DomError::UnknownNode(id))?;
        match &mut self.node_mut(s).kind {
            Kind::Element(e) => {
                e.value = Some(value.to_string());
                if checked.is_some() {
                    e.checked = checked;
                }
                Ok(s)
            }
            _ => Err(DomError::InvalidOp(format!("node {id} is not an element"))),
        }
    }

    /// Serialise a subtree back to a wire node (unmodified). Iterative.
    pub fn to_node(&self, slot: Slot) -> Node {
        struct Frame {
            slot: Slot,
            kids: Vec<Node>,
            next: Option<Slot>,
        }
        let frame = |s: Slot| Frame {
            slot: s,
            kids: Vec::new(),
            next: self.node(s).first_child,
        };
        let mut stack = vec![frame(slot)];
        loop {
            let Some(top) = stack.last_mut() else {
                // unreachable: the loop returns when the last frame closes
                return Node::Document {
                    id: self.node(slot).id,
                    children: Vec::new(),
                };
            };
            if let Some(c) = top.next {
                top.next = self.node(c).next;
                stack.push(frame(c));
                continue;
            }
            let Some(done) = stack.pop() else { continue };
            let node = self.one_node(done.slot, done.kids);
            match stack.last_mut() {
                Some(parent) => parent.kids.push(node),
                None => return node,
            }
        }
    }

    fn one_node(&self, slot: Slot, children: Vec<Node>) -> Node {
        let n = self.node(slot);
        match &n.kind {
            Kind::Document => Node::Document { id: n.id, children },
            Kind::Doctype(name) => Node::Doctype {
                id: n.id,
                name: name.clone(),
            },
            Kind::Element(e) => Node::Element {
                id: n.id,
                tag: e.tag.clone(),
                ns: e.ns.wire().map(str::to_string),
                attrs: e.attrs.clone(),
                children,
                value: e.value.clone(),
                checked: e.checked,
            },
            Kind::Text(t) => Node::Text {
                id: n.id,
                text: t.clone(),
            },
            Kind::Comment(t) => Node::Comment {
                id: n.id,
                text: t.clone(),
            },
            Kind::Shadow => Node::Shadow { id: n.id, children },
            Kind::Sheet(css) => Node::Sheet {
                id: n.id,
                css: css.clone(),
            },
            Kind::Placeholder(kind, w, h) => Node::Placeholder {
                id: n.id,
                kind: *kind,
                w: *w,
                h: *h,
            },
        }
    }

    /// Whether an element has no element children and no non-empty text.
    pub fn is_empty_element(&self, slot: Slot) -> bool {
        self.children(slot).all(|c| match &self.node(c).kind {
            Kind::Element(_) => false,
            Kind::Text(t) => t.is_empty(),
            _ => true,
        })
    }
}

/// Iterator over the children of a node.
pub struct Children<'a> {
    dom: &'a Dom,
    next: Option<Slot>,
}

impl Iterator for Children<'_> {
    type Item = Slot;
    fn next(&mut self) -> Option<Slot> {
        let cur = self.next?;
        self.next = self.dom.node(cur).next;
        Some(cur)
    }
}

/// Whether a wire node is an HTML `<template>` element.
fn is_template(n: &Node) -> bool {
    matches!(n, Node::Element { tag, ns, .. }
        if tag.eq_ignore_ascii_case("template") && matches!(ns.as_deref(), None | Some("") | Some("html")))
}

#[cold]
fn panic_free_missing() -> ! {
    // Slots are only ever obtained from this arena and are invalidated
    // exclusively by `remove`, which also drops them from every index; a
    // dangling slot is a programming error inside the engine, not input.
    unreachable!("dangling mirror slot")
}

/// Where a node sits, for the placement rules of the v1.2 node kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// The top of a snapshot.
    Top,
    /// Under a document (the top one or a frame's).
    Document,
    /// Under a shadow root.
    Shadow,
    /// Under a frame element (`iframe`, `frame`): a document may go here.
    Frame,
    /// Under a `<style>` element.
    Style,
    /// Under any other element.
    Element,
    /// Under a node that holds no children (checked by the caller).
    Leaf,
}

impl Place {
    fn of_element(e: &ElementData) -> Place {
        if e.ns == Ns::Html && matches!(e.tag.as_str(), "iframe" | "frame") {
            Place::Frame
        } else if e.ns == Ns::Html && e.tag == "style" {
            Place::Style
        } else {
            Place::Element
        }
    }

    fn of_wire(n: &Node) -> Place {
        match n {
            Node::Document { .. } => Place::Document,
            Node::Shadow { .. } => Place::Shadow,
            Node::Element { tag, ns, .. } => {
                let html = matches!(ns.as_deref(), None | Some("") | Some("html"));
                if html && (tag.eq_ignore_ascii_case("iframe") || tag.eq_ignore_ascii_case("frame"))
                {
                    Place::Frame
                } else if html && tag.eq_ignore_ascii_case("style") {
                    Place::Style
                } else {
                    Place::Element
                }
            }
            _ => Place::Leaf,
        }
    }
}

/// Whether a node of this kind may sit at `place` (the v1.2 kinds have
/// fixed places: a document at the top or under a frame element, a shadow
/// root and a placeholder under an element, a sheet under a `<style>`, a
/// document or a shadow root).
fn placed_legally(node: &Node, place: Place) -> bool {
    let under_element = matches!(place, Place::Element | Place::Frame | Place::Style);
    match node {
        Node::Document { .. } => matches!(place, Place::Top | Place::Frame),
        Node::Shadow { .. } | Node::Placeholder { .. } => under_element,
        Node::Sheet { .. } => matches!(place, Place::Style | Place::Document | Place::Shadow),
        _ => true,
    }
}

/// Validate a wire tree about to be added: ids unique (within itself and
/// against the mirror), node kinds placed legally, depth and size limits.
fn check_new_tree(
    root: &Node,
    dom: &Dom,
    limits: &Limits,
    base_depth: usize,
) -> Result<(), DomError> {
    check_new_tree_at(root, dom, limits, base_depth, Place::Top)
}

fn check_new_tree_at(
    root: &Node,
    dom: &Dom,
    limits: &Limits,
    base_depth: usize,
    place: Place,
) -> Result<(), DomError> {
    let mut seen: FxHashSet<NodeId> = FxHashSet::default();
    let mut stack: Vec<(&Node, usize, Place)> = vec![(root, base_depth, place)];
    let mut count = 0usize;
    while let Some((node, depth, place)) = stack.pop() {
        if depth > limits.max_depth {
            return Err(DomError::Limit(format!(
                "document deeper than {} levels",
                limits.max_depth
            )));
        }
        count += 1;
        if dom.len() + count > limits.max_nodes {
            return Err(DomError::Limit(format!(
                "document larger than {} nodes",
                limits.max_nodes
            )));
        }
        let id = node.id();
        if !seen.insert(id) || dom.index.contains_key(&id) {
            return Err(DomError::DuplicateNode(id));
        }
        if !placed_legally(node, place) {
            return Err(DomError::InvalidOp(format!(
                "node {id} of this kind cannot be placed here (a document goes under a frame \
                 element, a shadow root or placeholder under an element, a sheet under a \
                 <style>, a document or a shadow root)"
            )));
        }
        if let Node::Element { ns, tag, .. } = node {
            Ns::from_wire(ns.as_deref())?;
            if tag.is_empty() {
                return Err(DomError::InvalidOp(format!(
                    "element {id} has an empty tag"
                )));
            }
        }
        let inner = Place::of_wire(node);
        for c in node.children() {
            stack.push((c, depth + 1, inner));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(id: NodeId, tag: &str, children: Vec<Node>) -> Node {
        Node::Element {
            id,
            tag: tag.into(),
            ns: None,
            attrs: BTreeMap::new(),
            children,
            value: None,
            checked: None,
        }
    }

    /// Building by move gives the same mirror as building by copy
    /// (templates, upper-case attribute names, foreign elements, shadow
    /// roots, sheets, placeholders, form state, password memory, quirks).
    #[test]
    fn building_by_move_equals_building_by_copy() {
        let html = r#"<!DOCTYPE html><html><body>
            <div ID="a" Data-X="1" class="c">text<!-- note --></div>
            <template><p>inert</p></template>
            <svg viewBox="0 0 1 1"><foreignObject><span>in</span></foreignObject></svg>
            <input type="password" value="pw"><select><option selected>o</option></select>
            </body></html>"#;
        let mut root = crate::dom::html::parse_document(html);
        // add a shadow root, a sheet and a placeholder under <body>
        if let Node::Document { children, .. } = &mut root {
            if let Some(Node::Element { children, .. }) = children.last_mut() {
                if let Some(Node::Element { children, .. }) = children.last_mut() {
                    children.push(Node::Shadow {
                        id: 9_000,
                        children: vec![Node::Sheet {
                            id: 9_001,
                            css: "b{color:red}".into(),
                        }],
                    });
                    children.push(Node::Placeholder {
                        id: 9_002,
                        kind: PlaceholderKind::Canvas,
                        w: 10.0,
                        h: f64::NAN,
                    });
                }
            }
        }
        let limits = Limits::default();
        let (copy, moved) = match (
            Dom::from_node(&root, &limits),
            Dom::from_node_owned(root.clone(), &limits),
        ) {
            (Ok(a), Ok(b)) => (a, b),
            (a, b) => panic!("mirror refused: {:?} {:?}", a.err(), b.err()),
        };
        let (Some(a), Some(b)) = (copy.root(), moved.root()) else {
            panic!("no root");
        };
        assert_eq!(copy.to_node(a), moved.to_node(b));
        assert_eq!(copy.len(), moved.len());
        assert_eq!(copy.quirks(), moved.quirks());
        let pw = |d: &Dom| {
            d.subtree(d.root().unwrap_or_default())
                .into_iter()
                .filter(|&s| d.element(s).is_some_and(|e| e.was_password))
                .count()
        };
        assert_eq!(pw(&copy), 1);
        assert_eq!(pw(&moved), 1);
    }

    #[test]
    fn insert_remove_keeps_links_and_index_consistent() {
        let l = Limits::default();
        let doc = Node::Document {
            id: 1,
            children: vec![el(2, "DIV", vec![el(3, "p", vec![]), el(4, "p", vec![])])],
        };
        let mut d = Dom::from_node(&doc, &l).unwrap();
        assert_eq!(d.element(d.slot(2).unwrap()).unwrap().tag, "div");
        d.insert(2, Some(4), &el(5, "span", vec![]), &l).unwrap();
        let kids: Vec<NodeId> = d
            .children(d.slot(2).unwrap())
            .map(|s| d.node(s).id)
            .collect();
        assert_eq!(kids, vec![3, 5, 4]);
        assert_eq!(
            d.insert(2, None, &el(3, "b", vec![]), &l),
            Err(DomError::DuplicateNode(3))
        );
        assert_eq!(
            d.insert(3, Some(4), &el(9, "b", vec![]), &l).unwrap_err(),
            DomError::InvalidOp("node 4 is not a child of 3".into())
        );
        d.remove(5).unwrap();
        assert!(d.slot(5).is_none());
        let kids: Vec<NodeId> = d
            .children(d.slot(2).unwrap())
            .map(|s| d.node(s).id)
            .collect();
        assert_eq!(kids, vec![3, 4]);
        assert!(matches!(d.remove(1), Err(DomError::InvalidOp(_))));
        assert_eq!(
            d.to_node(d.root().unwrap()),
            Node::Document {
                id: 1,
                children: vec![el(2, "div", vec![el(3, "p", vec![]), el(4, "p", vec![])])]
            }
        );
    }

    #[test]
    fn limits_are_enforced() {
        let l = Limits {
            max_nodes: 3,
            ..Limits::default()
        };
        let doc = Node::Document {
            id: 1,
            children: vec![el(2, "div", vec![el(3, "p", vec![])])],
        };
        let mut d = Dom::from_node(&doc, &l).unwrap();
        assert!(matches!(
            d.insert(2, None, &el(4, "p", vec![]), &l),
            Err(DomError::Limit(_))
        ));
    }
}
