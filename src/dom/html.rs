//! HTML documents for the editor preview and the CLI: parse with html5ever
//! (our own tree sink) into wire nodes with ids assigned in document order,
//! and serialise wire nodes back to HTML (optionally without scripts).
//!
//! The parsed tree is then loaded into the mirror like any customer
//! snapshot, so previews go through exactly the engine the relay uses.
//!
//! Hostile input is expected (issue 8, item 7): parsing is linear whatever
//! the nesting, conversion and export are iterative, and the script-free
//! export stays script-free when a browser parses it again. The relay's
//! own sanitising of what the agent gets lives in `rewrite::render`, not
//! here.

use crate::protocol::{Node, NodeId};
use html5ever::tendril::StrTendril;
use html5ever::tokenizer::{
    BufferQueue, EndTag, StartTag, Tag, TagToken, Token, TokenSink, TokenSinkResult, Tokenizer,
    TokenizerOpts,
};
use html5ever::tree_builder::{
    ElementFlags, NodeOrText, QuirksMode, Tracer, TreeBuilder, TreeBuilderOpts, TreeSink,
};
use html5ever::{local_name, ns, Attribute, LocalName, Namespace, QualName, TokenizerResult};
use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

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
    /// Children as a doubly linked list (first, last; each child's prev,
    /// next), so inserting before a sibling (foster parenting) and
    /// detaching are O(1) however many siblings there are.
    first: Option<usize>,
    last: Option<usize>,
    prev: Option<usize>,
    next: Option<usize>,
    data: TData,
}

/// A temporary arena the parser builds into.
#[derive(Debug)]
struct Sink {
    nodes: RefCell<Vec<TNode>>,
    /// `<template>` element → its content fragment (a detached node, never
    /// converted: template content is not part of the document).
    templates: RefCell<HashMap<usize, Handle>>,
    /// The document node's handle (arena index 0).
    document: Handle,
}

/// What the tree builder holds for a node: its arena index and, for
/// elements, its (immutable) name. Carrying the name in the handle lets
/// [`TreeSink::elem_name`] answer with a borrow instead of a `RefCell`
/// borrow and two atom clones: the tree builder asks for names on every
/// scope check, which walks its stack of open elements.
#[derive(Debug)]
struct HandleData {
    index: usize,
    name: QualName,
}

type Handle = Rc<HandleData>;

/// An element name borrowed from a [`Handle`].
#[derive(Debug)]
pub struct NameRef<'a>(&'a QualName);

impl html5ever::tree_builder::ElemName for NameRef<'_> {
    fn ns(&self) -> &Namespace {
        &self.0.ns
    }
    fn local_name(&self) -> &LocalName {
        &self.0.local
    }
}

impl Sink {
    fn new() -> Self {
        let document = Rc::new(HandleData {
            index: 0,
            name: QualName::new(None, ns!(html), local_name!("")),
        });
        let sink = Sink {
            nodes: RefCell::new(Vec::new()),
            templates: RefCell::new(HashMap::new()),
            document,
        };
        sink.push_node(TData::Document);
        sink
    }

    fn push_node(&self, data: TData) -> usize {
        let mut nodes = self.nodes.borrow_mut();
        nodes.push(TNode {
            parent: None,
            first: None,
            last: None,
            prev: None,
            next: None,
            data,
        });
        nodes.len() - 1
    }

    /// A new non-element node and its handle.
    fn new_node(&self, data: TData) -> Handle {
        Rc::new(HandleData {
            index: self.push_node(data),
            name: QualName::new(None, ns!(html), local_name!("")),
        })
    }

    fn detach(&self, target: usize) {
        let mut nodes = self.nodes.borrow_mut();
        let Some(p) = nodes[target].parent.take() else {
            return;
        };
        let (prev, next) = (nodes[target].prev.take(), nodes[target].next.take());
        match prev {
            Some(x) => nodes[x].next = next,
            None => nodes[p].first = next,
        }
        match next {
            Some(x) => nodes[x].prev = prev,
            None => nodes[p].last = prev,
        }
    }

    /// Link the detached node `n` under `parent`, before `before` (a child
    /// of `parent`) or last.
    fn link(nodes: &mut [TNode], parent: usize, before: Option<usize>, n: usize) {
        let prev = match before {
            Some(b) => nodes[b].prev,
            None => nodes[parent].last,
        };
        nodes[n].parent = Some(parent);
        nodes[n].prev = prev;
        nodes[n].next = before;
        match prev {
            Some(x) => nodes[x].next = Some(n),
            None => nodes[parent].first = Some(n),
        }
        match before {
            Some(b) => nodes[b].prev = Some(n),
            None => nodes[parent].last = Some(n),
        }
    }

    /// Insert `child` under `parent`, before its child `before` or last,
    /// merging text into a text node just before.
    fn insert(&self, parent: usize, before: Option<usize>, child: NodeOrText<Handle>) {
        match child {
            NodeOrText::AppendText(text) => {
                let mut nodes = self.nodes.borrow_mut();
                let prev = match before {
                    Some(b) => nodes[b].prev,
                    None => nodes[parent].last,
                };
                if let Some(prev) = prev {
                    if let TData::Text(t) = &mut nodes[prev].data {
                        t.push_str(&text);
                        return;
                    }
                }
                drop(nodes);
                let n = self.push_node(TData::Text(text.to_string()));
                Self::link(&mut self.nodes.borrow_mut(), parent, before, n);
            }
            NodeOrText::AppendNode(n) => {
                let n = n.index;
                if n == parent || Some(n) == before {
                    return;
                }
                self.detach(n);
                Self::link(&mut self.nodes.borrow_mut(), parent, before, n);
            }
        }
    }

    /// The children of `i`, last first.
    fn children_rev(nodes: &[TNode], i: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut c = nodes[i].last;
        while let Some(x) = c {
            out.push(x);
            c = nodes[x].prev;
        }
        out
    }
}

impl TreeSink for Sink {
    type Handle = Handle;
    type Output = Self;
    type ElemName<'a> = NameRef<'a>;

    fn finish(self) -> Self {
        self
    }

    fn parse_error(&self, _msg: Cow<'static, str>) {}

    fn get_document(&self) -> Handle {
        Rc::clone(&self.document)
    }

    fn elem_name<'a>(&'a self, target: &'a Handle) -> NameRef<'a> {
        NameRef(&target.name)
    }

    fn create_element(
        &self,
        name: QualName,
        attrs: Vec<Attribute>,
        _flags: ElementFlags,
    ) -> Handle {
        let index = self.push_node(TData::Element {
            name: name.clone(),
            attrs,
        });
        Rc::new(HandleData { index, name })
    }

    fn create_comment(&self, text: StrTendril) -> Handle {
        self.new_node(TData::Comment(text.to_string()))
    }

    fn create_pi(&self, _target: StrTendril, data: StrTendril) -> Handle {
        self.new_node(TData::Comment(data.to_string()))
    }

    fn append(&self, parent: &Handle, child: NodeOrText<Handle>) {
        self.insert(parent.index, None, child);
    }

    fn append_based_on_parent_node(
        &self,
        element: &Handle,
        prev_element: &Handle,
        child: NodeOrText<Handle>,
    ) {
        if self.nodes.borrow()[element.index].parent.is_some() {
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
        self.append(&self.get_document(), NodeOrText::AppendNode(n));
    }

    fn get_template_contents(&self, target: &Handle) -> Handle {
        if let Some(f) = self.templates.borrow().get(&target.index) {
            return Rc::clone(f);
        }
        let f = self.new_node(TData::Document);
        self.templates
            .borrow_mut()
            .insert(target.index, Rc::clone(&f));
        f
    }

    fn same_node(&self, x: &Handle, y: &Handle) -> bool {
        x.index == y.index
    }

    fn set_quirks_mode(&self, _mode: QuirksMode) {}

    fn append_before_sibling(&self, sibling: &Handle, new_node: NodeOrText<Handle>) {
        let parent = self.nodes.borrow()[sibling.index].parent;
        if let Some(p) = parent {
            self.insert(p, Some(sibling.index), new_node);
        }
    }

    fn add_attrs_if_missing(&self, target: &Handle, attrs: Vec<Attribute>) {
        if let TData::Element {
            attrs: existing, ..
        } = &mut self.nodes.borrow_mut()[target.index].data
        {
            for a in attrs {
                if !existing.iter().any(|e| e.name == a.name) {
                    existing.push(a);
                }
            }
        }
    }

    fn remove_from_parent(&self, target: &Handle) {
        self.detach(target.index);
    }

    fn reparent_children(&self, node: &Handle, new_parent: &Handle) {
        let kids = {
            let nodes = self.nodes.borrow();
            let mut kids = Self::children_rev(&nodes, node.index);
            kids.reverse();
            kids
        };
        for k in kids {
            if k == new_parent.index {
                continue;
            }
            self.detach(k);
            Self::link(&mut self.nodes.borrow_mut(), new_parent.index, None, k);
        }
    }
}

/// Counts the handles the tree builder holds (document, open elements,
/// active formatting elements, head/form pointers): an upper bound on the
/// depth of its stack of open elements, which it cannot tell us directly.
struct HandleCount(Cell<usize>);

impl Tracer for HandleCount {
    type Handle = Handle;
    fn trace_handle(&self, _node: &Handle) {
        self.0.set(self.0.get() + 1);
    }
}

/// Between html5ever's tokenizer and tree builder: keeps the tree
/// builder's stack of open elements short, so parsing stays linear.
///
/// The tree builder's scope checks walk its whole stack of open elements
/// (a `<div>` start tag looks for an open `<p>` all the way down), so
/// `n` nested elements cost O(n²): 16,000 nested `<div>`s took 36 s in a
/// debug build, 100,000 would take hours (issue 8, item 7). Once the
/// builder holds [`FLATTEN_AT`] handles, every element that a start tag
/// leaves open is closed at once by a synthetic end tag, and the real end
/// tag is swallowed when it comes: the element stays (with its attributes),
/// its would-be children become its following siblings — the flattening
/// Chromium applies past 512 levels. Raw-text elements (`<style>`,
/// `<textarea>` …) are left to close themselves: they hold only text.
///
/// Should the stack still grow (an end tag the tree builder ignores), the
/// rest of the document is dropped beyond [`TRUNCATE_AT`] handles: less is
/// shown, never anything unmasked.
struct Flattener {
    tb: TreeBuilder<Handle, Sink>,
    /// End tags still to swallow, by name (their elements were closed early).
    swallow: RefCell<HashMap<LocalName, usize>>,
    /// A raw-text element (`<style>`, `<script>`, `<textarea>` …) is open:
    /// the next end tag is the tokenizer's own that closes it and must
    /// reach the tree builder, even if one of that name is to be swallowed
    /// (an SVG `<style>` closed early, then an HTML one), or the builder
    /// stays in its text mode and panics at the next tag (found by fuzzing).
    raw_open: Cell<bool>,
    truncated: Cell<bool>,
}

/// Handles held by the tree builder from which elements are flattened:
/// the live default `limits.max_depth` (deeper pages are refused in a live
/// session anyway). Each start tag then costs a scan of this many handles.
const FLATTEN_AT: usize = 256;
/// Handles held by the tree builder from which the rest is dropped (never
/// reached by any input the fuzz tests found; a last resort).
const TRUNCATE_AT: usize = MAX_PARSE_DEPTH;

impl Flattener {
    fn held(&self) -> usize {
        let count = HandleCount(Cell::new(0));
        self.tb.trace_handles(&count);
        count.0.get()
    }

    fn start_tag(&self, tag: Tag, line: u64) -> TokenSinkResult<Handle> {
        let before = self.held();
        if before >= TRUNCATE_AT {
            self.truncated.set(true);
        }
        if self.truncated.get() {
            return TokenSinkResult::Continue;
        }
        if before < FLATTEN_AT {
            let r = self.tb.process_token(TagToken(tag), line);
            if !matches!(r, TokenSinkResult::Continue) {
                self.raw_open.set(true);
            }
            return r;
        }
        let name = tag.name.clone();
        let r = self.tb.process_token(TagToken(tag), line);
        if !matches!(r, TokenSinkResult::Continue) {
            self.raw_open.set(true);
        } else if self.held() > before {
            let end = Tag {
                kind: EndTag,
                name: name.clone(),
                self_closing: false,
                had_duplicate_attributes: false,
                attrs: Vec::new(),
            };
            // `Script` can only come from `</script>` (svg script here),
            // and scripts are never run: nothing to hand back.
            let _ = self.tb.process_token(TagToken(end), line);
            *self.swallow.borrow_mut().entry(name).or_default() += 1;
        }
        r
    }
}

impl TokenSink for Flattener {
    type Handle = Handle;

    fn process_token(&self, token: Token, line: u64) -> TokenSinkResult<Handle> {
        match token {
            TagToken(tag) if tag.kind == StartTag => self.start_tag(tag, line),
            _ if self.truncated.get() => TokenSinkResult::Continue,
            TagToken(tag) if self.raw_open.replace(false) => {
                self.tb.process_token(TagToken(tag), line)
            }
            TagToken(tag) => {
                if let Some(n) = self.swallow.borrow_mut().get_mut(&tag.name) {
                    if *n > 0 {
                        *n -= 1;
                        return TokenSinkResult::Continue;
                    }
                }
                self.tb.process_token(TagToken(tag), line)
            }
            other => self.tb.process_token(other, line),
        }
    }

    fn end(&self) {
        self.tb.end();
    }

    fn adjusted_current_node_present_but_not_in_html_namespace(&self) -> bool {
        self.tb
            .adjusted_current_node_present_but_not_in_html_namespace()
    }
}

/// How deep a parsed tree may nest (the document node is level 1). Deeper
/// elements are attached to their ancestor at this level instead, as
/// Chromium's parser does past 512 levels: nothing is lost, and no later
/// walk (mirror limits, rendering, serialising) meets a deeper tree. (The
/// parser itself already flattens at about 256 open elements, see
/// [`Flattener`]; this is the bound the converted tree is guaranteed.)
pub const MAX_PARSE_DEPTH: usize = 512;

/// Parse an HTML document into a wire tree whose ids are 1, 2, 3 … in
/// document order (the document node is 1). Linear in the input: nesting
/// beyond about 256 open elements is flattened while parsing (see
/// [`Flattener`]), and the tree is never deeper than [`MAX_PARSE_DEPTH`].
pub fn parse_document(html: &str) -> Node {
    let flattener = Flattener {
        tb: TreeBuilder::new(Sink::new(), TreeBuilderOpts::default()),
        swallow: RefCell::new(HashMap::new()),
        raw_open: Cell::new(false),
        truncated: Cell::new(false),
    };
    let tokenizer = Tokenizer::new(flattener, TokenizerOpts::default());
    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(html));
    // `Script` results only pause for a script to run; none ever does.
    while !matches!(tokenizer.feed(&input), TokenizerResult::Done) {}
    tokenizer.end();
    let nodes = tokenizer.sink.tb.sink.nodes.into_inner();
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
    let rev = |i: usize| Sink::children_rev(nodes, i);
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

fn escape(s: &str, attr: bool, strict: bool, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' if !attr || strict => out.push_str("&lt;"),
            '>' if !attr || strict => out.push_str("&gt;"),
            '"' if attr => out.push_str("&quot;"),
            '\u{a0}' => out.push_str("&nbsp;"),
            c => out.push(c),
        }
    }
}

/// Whether a browser would run `v` as script if it were a URL: its scheme
/// read as the URL parser reads it (ASCII whitespace and controls removed
/// anywhere, which is stricter than the parser, any case). Checked on every
/// attribute, not only known URL ones: SVG, MathML and future attributes
/// take URLs too.
fn is_script_url(v: &str) -> bool {
    let head: String = v
        .chars()
        .filter(|c| !c.is_ascii_whitespace() && !c.is_ascii_control())
        .take(16)
        .collect::<String>()
        .to_ascii_lowercase();
    ["javascript:", "vbscript:", "livescript:"]
        .iter()
        .any(|s| head.starts_with(s))
}

/// Attributes the script-free export leaves out: event handlers (any
/// case), `srcdoc`, `http-equiv` (meta refresh), script URLs, and names a
/// browser would not read back as one attribute.
fn strips_attr(name: &str, value: &str) -> bool {
    let l = name.to_ascii_lowercase();
    crate::rewrite::render::is_event_handler(&l)
        || l == "srcdoc"
        || l == "http-equiv"
        || is_script_url(value)
        || !is_plain_name(name)
}

/// A tag or attribute name that reads back as itself: no whitespace,
/// controls, `/`, `>`, `=` or quotes.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && !name.chars().any(|c| {
            c.is_ascii_whitespace()
                || c.is_control()
                || matches!(c, '/' | '>' | '=' | '"' | '\'' | '<')
        })
}

/// Elements the script-free export leaves out with everything under them:
/// whatever the rewrite drops for the agent (`<script>` in any namespace,
/// plugins, `<base>`, SVG animation elements: see
/// [`crate::rewrite::render::is_dropped_name`]), and names that would not
/// read back as themselves.
fn strips_element(tag: &str, ns: Option<&str>) -> bool {
    use crate::dom::Ns;
    use crate::rewrite::render::is_dropped_name;
    let by_ns = match ns {
        None => is_dropped_name(Ns::Html, tag),
        Some("svg") => is_dropped_name(Ns::Svg, tag),
        Some("math") => is_dropped_name(Ns::Math, tag),
        // unknown namespace: as strict as any
        Some(_) => [Ns::Html, Ns::Svg, Ns::Math]
            .into_iter()
            .any(|n| is_dropped_name(n, tag)),
    };
    by_ns || !is_plain_name(tag)
}

/// Text of a raw-text element (`<style>`, `<xmp>` …) in the script-free
/// export. A raw-text element can end up in foreign content when a browser
/// parses the export again (mutation XSS: `<svg></p><style>…`), where its
/// text is read as markup; so no `<` is left in it: CSS gets its escape
/// `\3c `, which means the same inside strings and identifiers, the other
/// raw-text elements (never rendered as markup) an entity.
fn inert_raw_text(tag: &str, text: &str, out: &mut String) {
    if !text.contains('<') {
        out.push_str(text);
    } else if tag.eq_ignore_ascii_case("style") {
        out.push_str(&text.replace('<', "\\3c "));
    } else {
        escape(text, false, true, out);
    }
}

/// Serialise a wire tree as HTML. With `strip_scripts` the output never
/// runs customer code, also when a browser parses it again: see
/// [`strips_element`], [`strips_attr`] and [`inert_raw_text`]; attribute
/// values have `<` and `>` escaped too. Iterative: any depth is fine.
pub fn to_html(node: &Node, strip_scripts: bool) -> String {
    enum Step<'a> {
        Open(&'a Node, Option<&'a str>),
        Close(&'a str),
    }
    let strip = strip_scripts;
    let mut out = String::new();
    let mut stack = vec![Step::Open(node, None)];
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
                stack.extend(children.iter().rev().map(|c| Step::Open(c, None)));
            }
            Node::Doctype { name, .. } => {
                out.push_str("<!DOCTYPE ");
                out.extend(name.chars().filter(|c| *c != '>'));
                out.push('>');
            }
            Node::Element {
                tag,
                ns,
                attrs,
                children,
                ..
            } => {
                if strip && strips_element(tag, ns.as_deref()) {
                    continue;
                }
                out.push('<');
                out.push_str(tag);
                for (k, v) in attrs {
                    if strip && strips_attr(k, v) {
                        continue;
                    }
                    out.push(' ');
                    out.push_str(k);
                    out.push_str("=\"");
                    escape(v, true, strip, &mut out);
                    out.push('"');
                }
                out.push('>');
                let is_html = ns.is_none();
                if is_html && VOID.contains(&tag.as_str()) {
                    continue;
                }
                let raw_kids = (is_html && RAW.contains(&tag.as_str())).then_some(tag.as_str());
                stack.push(Step::Close(tag));
                stack.extend(children.iter().rev().map(|c| Step::Open(c, raw_kids)));
            }
            Node::Text { text, .. } => match raw {
                Some(tag) if strip => inert_raw_text(tag, text, &mut out),
                Some(_) => out.push_str(text),
                None => escape(text, false, false, &mut out),
            },
            Node::Comment { text, .. } => {
                // no `>` at all inside: `-->`, `--!>` and a leading `>` or
                // `->` would each end the comment early
                out.push_str("<!--");
                out.push_str(&text.replace('>', "&gt;"));
                out.push_str("-->");
            }
            // declarative shadow DOM, as a browser would parse it back
            Node::Shadow { children, .. } => {
                out.push_str("<template shadowrootmode=\"open\">");
                stack.push(Step::Close("template"));
                stack.extend(children.iter().rev().map(|c| Step::Open(c, None)));
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

    /// Every element of `n` as (namespace, tag, attributes), in any order.
    fn elements(n: &Node) -> Vec<(Option<String>, String, BTreeMap<String, String>)> {
        let mut out = Vec::new();
        let mut stack = vec![n];
        while let Some(n) = stack.pop() {
            if let Node::Element { tag, ns, attrs, .. } = n {
                out.push((ns.clone(), tag.clone(), attrs.clone()));
            }
            stack.extend(n.children());
        }
        out
    }

    fn depth(n: &Node) -> usize {
        let mut max = 0;
        let mut stack = vec![(n, 1)];
        while let Some((n, d)) = stack.pop() {
            max = max.max(d);
            stack.extend(n.children().iter().map(|c| (c, d + 1)));
        }
        max
    }

    /// Parse the script-free export of `html` again, as a browser would.
    fn export_reparsed(html: &str) -> (String, Node) {
        let out = to_html(&parse_document(html), true);
        let again = parse_document(&out);
        (out, again)
    }

    #[test]
    fn export_drops_entity_obfuscated_javascript_urls() {
        let (out, again) = export_reparsed(
            "<a href=\"jav&#x09;ascript:alert(1)\">a</a>\
             <a href=\"&#x6A;avascript&colon;alert(2)\">b</a>\
             <a href=\"&#1;  JaVaScRiPt:alert(3)\">c</a>\
             <form action=\"vbscript:x\"><button formaction=\"java\nscript:y\">d</button></form>\
             <svg><a xlink:href=\" javascript:z\"><text>e</text></a></svg>\
             <math href=\"javascript:m\"><mi>f</mi></math>\
             <iframe srcdoc=\"&lt;script&gt;x()&lt;/script&gt;\"></iframe>\
             <meta http-equiv=refresh content=\"0;url=https://evil.example/\">\
             <a href=\"https://shop.example/ok\" title=\"javascript is fine in prose\">g</a>",
        );
        assert!(!out.to_ascii_lowercase().contains("script:"), "{out}");
        for (_, tag, attrs) in elements(&again) {
            for k in attrs.keys() {
                assert!(
                    !matches!(k.as_str(), "srcdoc" | "http-equiv"),
                    "<{tag} {k}> kept: {out}"
                );
            }
        }
        assert!(out.contains("href=\"https://shop.example/ok\""), "{out}");
        assert!(out.contains(">g</a>"), "{out}");
    }

    #[test]
    fn export_drops_scripts_and_script_capable_elements_in_every_namespace() {
        let (out, again) = export_reparsed(
            "<svg><script>a()</script><a><animate attributeName=href values=\"javascript:b()\"/>\
             <set attributeName=href to=\"javascript:c()\"/></a></svg>\
             <math><script>d()</script></math><SCRIPT>e()</SCRIPT>\
             <object data=x></object><embed src=y><base href=\"https://evil.example/\"><p>kept</p>",
        );
        let tags: Vec<String> = elements(&again)
            .into_iter()
            .map(|(_, t, _)| t.to_ascii_lowercase())
            .collect();
        for bad in ["script", "animate", "set", "object", "embed", "base"] {
            assert!(!tags.iter().any(|t| t == bad), "<{bad}> kept: {out}");
        }
        assert!(out.contains("<p>kept</p>"), "{out}");
    }

    #[test]
    fn export_keeps_raw_text_and_comments_inert_when_parsed_again() {
        // An HTML <style> under an SVG element (the tree the mutation-XSS
        // payload `<svg></p><style>…` aims for): parsed again, the style
        // is SVG, its text markup, unless no `<` is left in it.
        let text = |id, text: &str| Node::Text {
            id,
            text: text.into(),
        };
        let el = |id, tag: &str, ns: Option<&str>, children| Node::Element {
            id,
            tag: tag.into(),
            ns: ns.map(str::to_string),
            attrs: BTreeMap::new(),
            children,
            value: None,
            checked: None,
        };
        let tree = Node::Document {
            id: 1,
            children: vec![el(
                2,
                "body",
                None,
                vec![
                    el(
                        3,
                        "svg",
                        Some("svg"),
                        vec![el(
                            4,
                            "style",
                            None,
                            vec![text(5, "a{}</style><img src=x onerror=alert(1)>")],
                        )],
                    ),
                    el(
                        6,
                        "xmp",
                        None,
                        vec![text(7, "</xmp><img src=x onerror=alert(2)>")],
                    ),
                    Node::Comment {
                        id: 8,
                        text: "--!><img src=x onerror=alert(3)>".into(),
                    },
                    Node::Comment {
                        id: 9,
                        text: "><img src=x onerror=alert(4)>".into(),
                    },
                ],
            )],
        };
        let out = to_html(&tree, true);
        let again = parse_document(&out);
        for (_, tag, attrs) in elements(&again) {
            assert!(
                !attrs.keys().any(|k| k.starts_with("on")),
                "<{tag}> with a handler: {out}"
            );
        }
        assert!(out.contains("a{}\\3c /style>"), "{out}");
    }

    #[test]
    fn deep_nesting_is_flattened_while_parsing_and_keeps_every_element() {
        let n = 2_000;
        let html = format!(
            "<div id=outer>{}<input type=password value=s>{}</div><p id=after>x</p>",
            "<div class=d>".repeat(n),
            "</div>".repeat(n)
        );
        let tree = parse_document(&html);
        assert!(depth(&tree) <= MAX_PARSE_DEPTH, "{}", depth(&tree));
        let els = elements(&tree);
        let count = |class: &str| {
            els.iter()
                .filter(|(_, _, a)| a.get("class").map(String::as_str) == Some(class))
                .count()
        };
        assert_eq!(count("d"), n);
        assert!(els
            .iter()
            .any(|(_, t, a)| t == "input" && a.contains_key("value")));
        // the swallowed end tags leave the outer structure as written:
        // `after` is a child of <body>, not of `outer`
        let Node::Document { children, .. } = &tree else {
            panic!("not a document")
        };
        let body = &children[0].children()[1];
        let ids: Vec<_> = body
            .children()
            .iter()
            .filter_map(|c| match c {
                Node::Element { attrs, .. } => attrs.get("id").cloned(),
                _ => None,
            })
            .collect();
        assert_eq!(ids, ["outer", "after"]);
    }

    #[test]
    fn foster_parented_siblings_keep_document_order() {
        // each foster-parented <div> goes before the <table>: O(1) each,
        // in document order
        let html = format!(
            "<table><tr><td>cell</td></tr>{}</table>",
            (0..5_000)
                .map(|i| format!("<div id=d{i}></div>"))
                .collect::<String>()
        );
        let tree = parse_document(&html);
        let Node::Document { children, .. } = &tree else {
            panic!("not a document")
        };
        let body = &children[0].children()[1];
        let ids: Vec<String> = body
            .children()
            .iter()
            .filter_map(|c| match c {
                Node::Element { attrs, .. } => attrs.get("id").cloned(),
                _ => None,
            })
            .collect();
        let want: Vec<String> = (0..5_000).map(|i| format!("d{i}")).collect();
        assert_eq!(ids, want);
        assert!(
            matches!(body.children().last(), Some(Node::Element { tag, .. }) if tag == "table")
        );
    }

    /// Regression (fuzz): past the flattening depth an SVG `<style>` was
    /// closed early and its end tag queued to be swallowed; the end tag
    /// closing a later HTML `<style>` was swallowed instead, leaving the
    /// tree builder in its text mode, which panics at the next tag.
    #[test]
    fn a_raw_text_end_tag_is_never_swallowed_while_flattening() {
        let html = format!(
            "{}<style><math><mtext><table><mglyph><style><img src=x onerror=y></style><mi>z",
            "<svg><g>".repeat(126)
        );
        let tree = parse_document(&html);
        assert!(depth(&tree) <= MAX_PARSE_DEPTH);
        let (out, again) = export_reparsed(&html);
        for (_, tag, attrs) in elements(&again) {
            assert!(!attrs.contains_key("onerror"), "<{tag} onerror>: {out}");
        }
    }
}
