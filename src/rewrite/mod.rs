//! The rewrite engine: keeps the session's mirror of the customer document and
//! turns every customer snapshot and mutation batch into what the agent may
//! see, under the rules in force.
//!
//! One [`Rewriter`] per live session. It owns the unmasked mirror; nothing
//! unmasked leaves it except through [`Rewriter::cue`] (selectors only).
//!
//! How a batch is processed (per op, in order):
//! 1. the op is validated and applied to the mirror (an invalid op changes
//!    nothing);
//! 2. the invalidation map ([`crate::rules::Deps`]) says which elements may
//!    now match differently — the changed element's subtree for an attribute
//!    used by a selector, siblings for `+`/`~`/positional selectors,
//!    ancestors for `:has`, the parent for `:empty` — and only those are
//!    re-matched; effective states are re-derived top-down from there, pruned
//!    where nothing changed;
//! 3. the op is translated for the agent with the *new* state (unless it lies
//!    inside a re-sent subtree), then every topmost element whose effective
//!    state changed is re-sent as `remove` + `insert` of its freshly rendered
//!    subtree, at the same place with the same ids.
//!
//! End-state masking: restrictions are decided on the state at the end of
//! the batch. After the whole batch is applied, every piece of content the
//! output carries in clear is checked against that end state: content of a
//! node that is masked, hidden or gone at the end is masked; content of a
//! node emitted more than once in the batch (whose earlier emissions may be
//! an in-between state, e.g. the old secret of a field whose mask is lifted
//! and whose text is replaced in one batch) is replaced by its end-state
//! content. So no message ever carries a value that is not visible at the
//! end of its batch, including nodes inserted and removed within it.
//!
//! Fail closed: a batch that fails half-way poisons the mirror (nothing of it
//! is returned, and nothing more is applied) until the next snapshot; the
//! session asks the snippet for one.

mod oracle;
pub mod render;
pub mod urls;

pub use oracle::oracle;

use crate::dom::select::{AncestorFilter, Matcher};
use crate::dom::{Dom, DomError, Kind, Slot};
use crate::protocol::{Limits, Node, NodeId, Op, RulesCue, Snapshot, Viewport};
use crate::rules::{Action, CompiledRules, Deps, SiteSettings};
use render::{
    agent_attrs, agent_page, agent_text, agent_value, eff_of, full_state, own_bits, parent_eff,
    render, visible, ClearLog, E_BLOCKED, E_DISABLED, E_MASKED, O_BLOCK, O_DISABLE, O_MASK,
};
use rustc_hash::FxHashSet;
use std::sync::Arc;

/// Why a customer message could not be applied to the mirror.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    /// A mutation arrived before any snapshot.
    #[error("no snapshot received yet")]
    NoDocument,
    /// An op names a node id the mirror does not have.
    #[error("unknown node id {0}")]
    UnknownNode(NodeId),
    /// An inserted node reuses an id already in the document.
    #[error("duplicate node id {0}")]
    DuplicateNode(NodeId),
    /// An op is structurally impossible (e.g. insert under a text node).
    #[error("invalid op: {0}")]
    InvalidOp(String),
    /// The document would exceed the configured limits.
    #[error("limit exceeded: {0}")]
    Limit(String),
}

impl From<DomError> for RewriteError {
    fn from(e: DomError) -> Self {
        match e {
            DomError::UnknownNode(id) => RewriteError::UnknownNode(id),
            DomError::DuplicateNode(id) => RewriteError::DuplicateNode(id),
            DomError::InvalidOp(m) => RewriteError::InvalidOp(m),
            DomError::Limit(m) => RewriteError::Limit(m),
        }
    }
}

/// What the rules in force say about one node, for the policy check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restriction {
    /// The node or an ancestor is disabled for the agent.
    Disabled,
    /// The node is masked (no typing into it).
    Masked,
    /// The node is blocked or inside a blocked element (the agent never saw it).
    Blocked,
}

/// The three restriction flags of one node, each on its own (for rule
/// tests and previews; the policy uses [`Rewriter::restriction`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeState {
    pub masked: bool,
    /// Blocked itself or inside a blocked element.
    pub blocked: bool,
    pub disabled: bool,
}

/// Counters for session history.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RewriteStats {
    pub masked: usize,
    pub blocked: usize,
    pub disabled: usize,
}

/// Ids rendered in clear, each with the index (in the batch output) of the
/// op that carried it.
type BatchLog = Vec<(NodeId, usize)>;

/// A node's own content as the agent gets it at the end of a batch (no
/// children).
enum EndContent {
    /// Masked, hidden or gone at the end: mask whatever was emitted.
    Hidden,
    /// An element's attributes, value and checked state.
    Element {
        attrs: std::collections::BTreeMap<String, String>,
        value: Option<String>,
        checked: Option<bool>,
    },
    /// A text or comment node's data.
    Text(String),
}

/// Elements to re-match after one op.
#[derive(Default)]
struct Dirty {
    full: bool,
    own: Vec<Slot>,
    subtrees: Vec<Slot>,
    new_roots: Vec<Slot>,
}

/// The mirror of the current page plus what the engine derived from it.
struct Doc {
    dom: Dom,
    url: String,
    title: String,
    viewport: Viewport,
    /// Compiled rules (indexes) that apply on this URL.
    active: Vec<usize>,
    /// The same as a mask over the compiled rules.
    active_mask: Vec<bool>,
    deps: Deps,
    /// Ids that were password fields at some point on this page.
    sticky: FxHashSet<NodeId>,
    /// Estimated heap bytes of the mirror (the session's memory budget).
    bytes: usize,
    epoch: u32,
    /// Elements re-matched by incremental updates (a load-independent cost
    /// measure).
    rematched: u64,
    /// Resource proxy links with this document's base URL.
    links: Option<Arc<urls::ProxyLinks>>,
}

impl Doc {
    fn begin(&mut self) -> u32 {
        self.epoch = self.epoch.wrapping_add(1) & 0x3fff_ffff;
        self.dom.epoch = self.epoch;
        self.epoch
    }

    fn is_element(&self, s: Slot) -> bool {
        matches!(self.dom.node(s).kind, Kind::Element(_))
    }

    fn element_children(&self, p: Slot) -> impl Iterator<Item = Slot> + '_ {
        self.dom.children(p).filter(|&c| self.is_element(c))
    }

    fn sibling_elements(&self, x: Slot, forward: bool) -> Vec<Slot> {
        let mut out = Vec::new();
        let mut cur = if forward {
            self.dom.node(x).next
        } else {
            self.dom.node(x).prev
        };
        while let Some(s) = cur {
            if self.is_element(s) {
                out.push(s);
            }
            cur = if forward {
                self.dom.node(s).next
            } else {
                self.dom.node(s).prev
            };
        }
        out
    }

    fn push_sibling(&self, s: Slot, d: &mut Dirty) {
        if self.deps.deep_structural {
            d.subtrees.push(s);
        } else {
            d.own.push(s);
        }
    }

    /// Anchors of `:has` that a change at `x` can affect.
    fn has_ancestors(&self, x: Slot, d: &mut Dirty) {
        let mut cur = Some(x);
        while let Some(a) = cur {
            if self.is_element(a) {
                d.own.push(a);
                if self.deps.has_sibling {
                    d.own.extend(self.sibling_elements(a, false));
                }
            }
            cur = self.dom.parent(a);
        }
    }

    /// Element `x`'s own matchable state changed; `keys` name what changed
    /// (see [`Deps`]). Re-matches only where a selector reads those keys.
    fn changed_element(&self, x: Slot, keys: &[String], d: &mut Dirty) {
        if !self.is_element(x) {
            return;
        }
        self.form_scope(x, d);
        if self.deps.has_nonsubject {
            d.full = true;
            return;
        }
        if Deps::touches(&self.deps.ancestor_keys, keys) {
            d.subtrees.push(x);
        } else if Deps::touches(&self.deps.subject_keys, keys) {
            d.own.push(x);
        }
        let nth_of = Deps::touches(&self.deps.nth_of_keys, keys);
        if nth_of {
            for s in self.sibling_elements(x, false) {
                self.push_sibling(s, d);
            }
        }
        if nth_of || Deps::touches(&self.deps.sibling_keys, keys) {
            for s in self.sibling_elements(x, true) {
                self.push_sibling(s, d);
            }
        }
        if self.deps.has && Deps::touches(&self.deps.has_keys, keys) {
            self.has_ancestors(x, d);
        }
    }

    /// A change at `x` inside a `<select>`/`<fieldset>` may re-decide
    /// `:checked`/`:disabled` elsewhere in it (see `Deps::form_scope`).
    fn form_scope(&self, x: Slot, d: &mut Dirty) {
        if self.deps.form_scope {
            d.subtrees.extend(self.dom.form_scope(x));
        }
    }

    /// Children of `p` were inserted or removed.
    fn structural(&self, p: Slot, new: Option<Slot>, was_empty: bool, d: &mut Dirty) {
        self.form_scope(p, d);
        if self.deps.has_nonsubject {
            d.full = true;
            return;
        }
        if self.deps.sibling || self.deps.nth {
            for c in self.element_children(p) {
                if Some(c) != new {
                    self.push_sibling(c, d);
                }
            }
        }
        if self.deps.empty && self.is_element(p) && self.dom.is_empty_element(p) != was_empty {
            self.changed_element(p, &["empty".to_string()], d);
        }
        if self.deps.has {
            self.has_ancestors(p, d);
            if self.deps.has_sibling {
                d.own.extend(self.element_children(p));
            }
        }
    }

    /// Re-match the dirty elements and re-derive effective states; returns
    /// the topmost visible elements whose effective state changed.
    fn update(&mut self, rules: &CompiledRules, d: Dirty) -> Vec<Slot> {
        let e = self.epoch;
        let visit = e * 2;
        let effmark = e * 2 + 1;
        let level = rules.settings.privacy;
        let Some(root) = self.dom.root() else {
            return Vec::new();
        };
        let mut targets: Vec<Slot> = Vec::new();
        let mut eff_roots: Vec<Slot> = Vec::new();
        if d.full {
            targets = self.dom.subtree(root);
            eff_roots.extend(self.element_children(root));
        } else {
            for &r in &d.subtrees {
                self.dom.for_each_in_subtree(r, |s| targets.push(s));
            }
            targets.extend(d.own.iter().copied());
        }
        let mut matcher = Matcher::default();
        // a full re-match walks in pre-order: the ancestor filter applies
        // (the element itself in it too: a superset never rejects a match)
        let mut filter = d.full.then(AncestorFilter::default);
        for s in targets {
            if let Some(f) = filter.as_mut() {
                f.enter(&self.dom, s);
                f.push(&self.dom, s);
            }
            let n = self.dom.node(s);
            if n.meta.mark == visit || !matches!(n.kind, Kind::Element(_)) {
                continue;
            }
            self.rematched += 1;
            let own = own_bits(
                &self.dom,
                s,
                rules,
                &self.active_mask,
                &mut matcher,
                &self.sticky,
                filter.as_ref(),
            );
            let n = self.dom.node(s);
            if own & O_MASK != 0 && n.element().is_some_and(|el| el.was_password) {
                self.sticky.insert(n.id);
            }
            let is_new = n.meta.born == e;
            let changed = own != n.meta.own;
            let m = &mut self.dom.node_mut(s).meta;
            m.mark = visit;
            if changed || is_new {
                m.own = own;
                eff_roots.push(s);
            }
        }
        eff_roots.extend(d.new_roots.iter().copied());
        let mut keyed: Vec<(usize, Slot)> = eff_roots
            .into_iter()
            .map(|s| (self.dom.depth(s), s))
            .collect();
        keyed.sort_unstable();
        keyed.dedup();
        let mut changed = Vec::new();
        let mut stack = Vec::new();
        for (_, r) in keyed {
            if self.dom.node(r).meta.mark == effmark {
                continue;
            }
            stack.push(r);
            while let Some(x) = stack.pop() {
                let n = self.dom.node(x);
                if n.is_boundary() {
                    // a shadow root or frame document: its content inherits
                    // through it (see `parent_eff`), so the walk goes on
                    let parent_changed =
                        n.parent.is_some_and(|p| self.dom.node(p).meta.changed == e);
                    let m = &mut self.dom.node_mut(x).meta;
                    m.mark = effmark;
                    if parent_changed {
                        m.changed = e;
                    }
                    stack.extend(self.dom.children(x));
                    continue;
                }
                if !matches!(n.kind, Kind::Element(_)) {
                    self.dom.node_mut(x).meta.mark = effmark;
                    continue;
                }
                let pe = n.parent.map(|p| parent_eff(&self.dom, p)).unwrap_or(0);
                let new = eff_of(pe, n.meta.own, level);
                let old = n.meta.eff;
                let is_new = n.meta.born == e;
                let m = &mut self.dom.node_mut(x).meta;
                m.eff = new;
                m.mark = effmark;
                if new != old && !is_new {
                    m.changed = e;
                    changed.push(x);
                }
                // a full update (publish: the level may differ) visits every
                // element; otherwise unchanged states stop the walk
                if new != old || is_new || d.full {
                    stack.extend(self.dom.children(x));
                }
            }
        }
        changed
            .into_iter()
            .filter(|&x| {
                let topmost = self
                    .dom
                    .parent(x)
                    .is_none_or(|p| self.dom.node(p).meta.changed != e);
                topmost && visible(&self.dom, x)
            })
            .collect()
    }

    /// With proxied resource URLs, a change to the text of a `<style>` (`p`)
    /// re-sends the whole element (its CSS is rewritten as one piece, see
    /// `render::style_text`): queued in `top`, and `true` so the caller
    /// emits nothing else for the change.
    fn style_resent(&self, p: Slot, top: &mut Vec<Slot>) -> bool {
        if self.links.is_none() || !self.dom.element(p).is_some_and(render::is_style) {
            return false;
        }
        if !self.under_changed(p)
            && parent_eff(&self.dom, p) & E_BLOCKED == 0
            && visible(&self.dom, p)
        {
            top.push(p);
        }
        true
    }

    /// Whether `s` or an ancestor changed effective state in this update.
    fn under_changed(&self, s: Slot) -> bool {
        let e = self.epoch;
        let mut cur = Some(s);
        while let Some(x) = cur {
            if self.dom.node(x).meta.changed == e {
                return true;
            }
            cur = self.dom.parent(x);
        }
        false
    }

    /// Re-send each element as `remove` + `insert` of its fresh agent form.
    fn resend(
        &self,
        top: Vec<Slot>,
        settings: &SiteSettings,
        out: &mut Vec<Op>,
        log: &mut BatchLog,
    ) {
        let mut clear = ClearLog::new();
        for x in top {
            let n = self.dom.node(x);
            let Some(p) = n.parent else { continue };
            let before = n.next.map(|b| self.dom.node(b).id);
            out.push(Op::Remove { id: n.id });
            if let Some(node) = render(&self.dom, x, settings, &mut clear) {
                log.extend(clear.drain(..).map(|id| (id, out.len())));
                out.push(Op::Insert {
                    parent: self.dom.node(p).id,
                    before,
                    node,
                });
            }
        }
    }

    /// Replace the agent's document children (`pre`, as the agent has them)
    /// by the current ones.
    fn resync(&self, pre: &[NodeId], settings: &SiteSettings) -> Vec<Op> {
        let mut out: Vec<Op> = pre.iter().map(|&id| Op::Remove { id }).collect();
        if let Some(root) = self.dom.root() {
            let root_id = self.dom.node(root).id;
            for c in self.dom.children(root) {
                if let Some(node) = render(&self.dom, c, settings, &mut Vec::new()) {
                    out.push(Op::Insert {
                        parent: root_id,
                        before: None,
                        node,
                    });
                }
            }
        }
        out
    }

    fn root_children(&self) -> Vec<NodeId> {
        match self.dom.root() {
            Some(r) => self.dom.children(r).map(|c| self.dom.node(c).id).collect(),
            None => Vec::new(),
        }
    }

    /// Whether node `id`'s content is hidden from the agent right now.
    fn hidden(&self, id: NodeId) -> bool {
        let Some(s) = self.dom.slot(id) else {
            return false;
        };
        if !visible(&self.dom, s) {
            return true;
        }
        render::holder_eff(&self.dom, s) & (E_MASKED | E_BLOCKED) != 0
    }

    fn apply_op(
        &mut self,
        rules: &CompiledRules,
        limits: &Limits,
        op: Op,
        out: &mut Vec<Op>,
        clear: &mut BatchLog,
    ) -> Result<(), RewriteError> {
        self.begin();
        let settings = &rules.settings;
        let mut d = Dirty::default();
        match op {
            Op::Insert {
                parent,
                before,
                node,
            } => {
                let (p, _) = self.dom.check_insert(parent, before, &node, limits)?;
                let was_empty =
                    self.deps.empty && self.is_element(p) && self.dom.is_empty_element(p);
                let s = self.dom.insert(parent, before, &node, limits)?;
                d.subtrees.push(s);
                d.new_roots.push(s);
                self.structural(p, Some(s), was_empty, &mut d);
                let mut top = self.update(rules, d);
                if self.style_resent(p, &mut top) {
                } else if !self.under_changed(p) && parent_eff(&self.dom, p) & E_BLOCKED == 0 {
                    let mut tmp = ClearLog::new();
                    if let Some(node) = render(&self.dom, s, settings, &mut tmp) {
                        clear.extend(tmp.into_iter().map(|id| (id, out.len())));
                        out.push(Op::Insert {
                            parent,
                            before,
                            node,
                        });
                    }
                }
                self.resend(top, settings, out, clear);
            }
            Op::Remove { id } => {
                let s = self.dom.slot(id).ok_or(RewriteError::UnknownNode(id))?;
                let p = self.dom.parent(s).ok_or_else(|| {
                    RewriteError::InvalidOp("cannot remove the document root".into())
                })?;
                let was_empty =
                    self.deps.empty && self.is_element(p) && self.dom.is_empty_element(p);
                self.dom.remove(id)?;
                self.structural(p, None, was_empty, &mut d);
                let mut top = self.update(rules, d);
                if self.style_resent(p, &mut top) {
                } else if !self.under_changed(p) && parent_eff(&self.dom, p) & E_BLOCKED == 0 {
                    out.push(Op::Remove { id });
                }
                self.resend(top, settings, out, clear);
            }
            Op::Attr { id, name, value } => {
                // HTML attribute names are lower case in the mirror, and so
                // in what the agent is sent
                let name = self.dom.attr_name(id, &name).into_owned();
                let old = self
                    .dom
                    .slot(id)
                    .and_then(|s| self.dom.element(s))
                    .and_then(|e| e.attr(&name))
                    .map(str::to_string);
                let s = self.dom.set_attr(id, &name, value.as_deref())?;
                let keys = changed_keys(&name, old.as_deref(), value.as_deref());
                self.changed_element(s, &keys, &mut d);
                if render::affects_own_bits(&name) {
                    d.own.push(s);
                }
                let top = self.update(rules, d);
                if !self.under_changed(s) && visible(&self.dom, s) {
                    let n = self.dom.node(s);
                    if let Some(e) = n.element() {
                        let eff = n.meta.eff;
                        if eff & (E_MASKED | E_BLOCKED) == 0 {
                            clear.push((id, out.len()));
                        }
                        // the box measure of a blocked element is its `style`
                        let shown = render::agent_attr_name(&name).to_string();
                        let value = agent_attrs(e, eff, settings).remove(&shown);
                        // `type`, `autocomplete` and the password mark decide
                        // how the live value is shown (password: fixed-length
                        // mask; tel: card rule exempt): re-send it too.
                        let value_shown_differently =
                            render::affects_own_bits(&name) || name == "autocomplete";
                        let live = (value_shown_differently && eff & E_BLOCKED == 0)
                            .then(|| agent_value(e, eff, settings))
                            .filter(|(v, _)| v.is_some());
                        out.push(Op::Attr {
                            id,
                            name: shown,
                            value,
                        });
                        if let Some((v, checked)) = live {
                            if eff & (E_MASKED | E_BLOCKED) == 0 {
                                clear.push((id, out.len()));
                            }
                            out.push(Op::Value {
                                id,
                                value: v.unwrap_or_default(),
                                checked,
                            });
                        }
                    }
                }
                self.resend(top, settings, out, clear);
            }
            Op::Text { id, text } => {
                let (s, flipped) = self.dom.set_text(id, &text)?;
                let p = self
                    .dom
                    .parent(s)
                    .ok_or_else(|| RewriteError::InvalidOp(format!("node {id} has no parent")))?;
                if flipped && self.deps.empty {
                    self.changed_element(p, &["empty".to_string()], &mut d);
                }
                self.form_scope(p, &mut d);
                let mut top = self.update(rules, d);
                let pe = parent_eff(&self.dom, p);
                if self.style_resent(p, &mut top) {
                } else if !self.under_changed(p) && pe & E_BLOCKED == 0 {
                    if pe & E_MASKED == 0 {
                        clear.push((id, out.len()));
                    }
                    let text = match self.dom.node(s).kind {
                        // CSSOM rules: URLs proxied like a `<style>`'s
                        Kind::Sheet(_) => render::agent_css(&text, pe, settings),
                        _ => agent_text(&text, pe, settings),
                    };
                    out.push(Op::Text { id, text });
                }
                self.resend(top, settings, out, clear);
            }
            Op::Value { id, value, checked } => {
                let s = self.dom.set_value(id, &value, checked)?;
                if self.deps.live_state() {
                    self.changed_element(s, &["live".to_string()], &mut d);
                }
                let top = self.update(rules, d);
                if !self.under_changed(s) && visible(&self.dom, s) {
                    let n = self.dom.node(s);
                    if let Some(e) = n.element() {
                        let eff = n.meta.eff;
                        if eff & E_BLOCKED == 0 {
                            if eff & E_MASKED == 0 {
                                clear.push((id, out.len()));
                            }
                            let (value, checked) = agent_value(e, eff, settings);
                            out.push(Op::Value {
                                id,
                                value: value.unwrap_or_default(),
                                checked,
                            });
                        }
                    }
                }
                self.resend(top, settings, out, clear);
            }
        }
        Ok(())
    }
}

impl Doc {
    /// Put the rules `active` (indexes into `rules`) in force and re-match
    /// the whole document; returns the topmost elements whose state changed.
    fn switch_rules(&mut self, rules: &CompiledRules, active: Vec<usize>) -> Vec<Slot> {
        self.active_mask = rules.active_mask(&active);
        self.deps = rules.deps(&active);
        self.active = active;
        self.begin();
        self.update(
            rules,
            Dirty {
                full: true,
                ..Dirty::default()
            },
        )
    }

    /// End-state masking (see the module doc): bring every clear emission
    /// in `out` to the end state of its node.
    fn settle_to_end_state(&self, out: &mut [Op], clear: &BatchLog, settings: &SiteSettings) {
        let mut seen: rustc_hash::FxHashMap<NodeId, u32> = Default::default();
        for &(id, _) in clear {
            *seen.entry(id).or_default() += 1;
        }
        let mut ends: rustc_hash::FxHashMap<NodeId, EndContent> = Default::default();
        for &(id, idx) in clear {
            let end = ends
                .entry(id)
                .or_insert_with(|| self.end_content(id, settings));
            let repeated = seen.get(&id).is_some_and(|&n| n > 1);
            match end {
                EndContent::Hidden => {
                    if let Some(op) = out.get_mut(idx) {
                        scrub_op(op, id);
                    }
                }
                _ if repeated => {
                    if let Some(op) = out.get_mut(idx) {
                        settle_op(op, id, end);
                    }
                }
                _ => {}
            }
        }
    }

    /// What node `id` shows the agent at the end of the batch.
    fn end_content(&self, id: NodeId, settings: &SiteSettings) -> EndContent {
        if self.hidden(id) {
            return EndContent::Hidden;
        }
        let Some(s) = self.dom.slot(id) else {
            return EndContent::Hidden;
        };
        let n = self.dom.node(s);
        match &n.kind {
            Kind::Element(e) => {
                let eff = n.meta.eff;
                let (value, checked) = agent_value(e, eff, settings);
                EndContent::Element {
                    attrs: agent_attrs(e, eff, settings),
                    value,
                    checked,
                }
            }
            Kind::Text(_) => EndContent::Text(render::agent_text_at(&self.dom, s, settings)),
            Kind::Comment(t) => {
                let pe = n.parent.map(|p| parent_eff(&self.dom, p)).unwrap_or(0);
                EndContent::Text(agent_text(t, pe, settings))
            }
            Kind::Sheet(css) => {
                let pe = n.parent.map(|p| parent_eff(&self.dom, p)).unwrap_or(0);
                EndContent::Text(render::agent_css(css, pe, settings))
            }
            _ => EndContent::Hidden,
        }
    }
}

/// Replace node `id`'s own content inside one emitted op by its end state.
fn settle_op(op: &mut Op, id: NodeId, end: &EndContent) {
    match (op, end) {
        (Op::Insert { node, .. }, _) => settle_node(node, id, end),
        (Op::Text { id: x, text }, EndContent::Text(t)) if *x == id => text.clone_from(t),
        (Op::Attr { id: x, name, value }, EndContent::Element { attrs, .. }) if *x == id => {
            *value = attrs.get(name.as_str()).cloned();
        }
        (
            Op::Value {
                id: x,
                value,
                checked,
            },
            EndContent::Element {
                value: v,
                checked: c,
                ..
            },
        ) if *x == id => {
            *value = v.clone().unwrap_or_default();
            *checked = *c;
        }
        (op, _) => scrub_op(op, id),
    }
}

fn settle_node(n: &mut Node, id: NodeId, end: &EndContent) {
    let mut stack = vec![n];
    while let Some(n) = stack.pop() {
        match (n, end) {
            (
                Node::Text { id: x, text }
                | Node::Comment { id: x, text }
                | Node::Sheet { id: x, css: text },
                EndContent::Text(t),
            ) if *x == id => {
                text.clone_from(t);
                return;
            }
            (
                Node::Element {
                    id: x,
                    attrs,
                    value,
                    checked,
                    ..
                },
                EndContent::Element {
                    attrs: a,
                    value: v,
                    checked: c,
                },
            ) if *x == id => {
                attrs.clone_from(a);
                value.clone_from(v);
                *checked = *c;
                return;
            }
            (n, _) if n.id() == id => {
                scrub_node(n, id);
                return;
            }
            (n, _) => {
                if let Some(children) = n.children_mut() {
                    stack.extend(children.iter_mut());
                }
            }
        }
    }
}

/// Estimated heap bytes of one mirror node beyond its strings (node record,
/// index entry, attribute map nodes).
const NODE_OVERHEAD: usize = 192;

fn over_memory(bytes: usize, limit: usize) -> RewriteError {
    RewriteError::Limit(format!(
        "the page is too large to co-browse: its mirror would take about {} MiB (the limit is {} MiB)",
        bytes.div_ceil(1 << 20),
        limit >> 20
    ))
}

/// Estimated bytes of a wire node tree once mirrored (iterative).
fn payload_bytes(root: &Node) -> usize {
    let mut total = 0usize;
    let mut stack = vec![root];
    while let Some(n) = stack.pop() {
        total = total.saturating_add(NODE_OVERHEAD);
        match n {
            Node::Element {
                tag, attrs, value, ..
            } => {
                total = total.saturating_add(tag.len() + value.as_ref().map_or(0, String::len));
                for (k, v) in attrs {
                    total = total.saturating_add(k.len() + v.len() + 48);
                }
            }
            Node::Text { text, .. }
            | Node::Comment { text, .. }
            | Node::Sheet { css: text, .. } => {
                total = total.saturating_add(text.len());
            }
            Node::Doctype { name, .. } => total = total.saturating_add(name.len()),
            Node::Document { .. } | Node::Shadow { .. } | Node::Placeholder { .. } => {}
        }
        stack.extend(n.children());
    }
    total
}

/// Estimated bytes of a mirror subtree (the same measure as
/// [`payload_bytes`]).
fn mirror_bytes(dom: &Dom, slot: Slot) -> usize {
    let mut total = 0usize;
    dom.for_each_in_subtree(slot, |s| {
        total = total.saturating_add(NODE_OVERHEAD);
        total = total.saturating_add(match &dom.node(s).kind {
            Kind::Element(e) => {
                e.tag.len()
                    + e.value.as_ref().map_or(0, String::len)
                    + e.attrs
                        .iter()
                        .map(|(k, v)| k.len() + v.len() + 48)
                        .sum::<usize>()
            }
            Kind::Text(t) | Kind::Comment(t) | Kind::Doctype(t) | Kind::Sheet(t) => t.len(),
            Kind::Document | Kind::Shadow | Kind::Placeholder(..) => 0,
        });
    });
    total
}

impl Doc {
    /// How much an op changes the mirror's estimated bytes (before it is
    /// applied; unknown targets count 0 — the op is refused anyway).
    fn bytes_delta(&self, op: &Op) -> isize {
        let signed = |n: usize| isize::try_from(n).unwrap_or(isize::MAX);
        match op {
            Op::Insert { node, .. } => signed(payload_bytes(node)),
            Op::Remove { id } => self
                .dom
                .slot(*id)
                .map_or(0, |s| -signed(mirror_bytes(&self.dom, s))),
            Op::Attr { id, name, value } => {
                let old = self
                    .dom
                    .slot(*id)
                    .and_then(|s| self.dom.element(s))
                    .and_then(|e| e.attr(name))
                    .map_or(0, |v| v.len() + name.len() + 48);
                let new = value.as_ref().map_or(0, |v| v.len() + name.len() + 48);
                signed(new) - signed(old)
            }
            Op::Text { id, text } => {
                let old = self
                    .dom
                    .slot(*id)
                    .map_or(0, |s| match &self.dom.node(s).kind {
                        Kind::Text(t) | Kind::Comment(t) | Kind::Sheet(t) => t.len(),
                        _ => 0,
                    });
                signed(text.len()) - signed(old)
            }
            Op::Value { id, value, .. } => {
                let old = self
                    .dom
                    .slot(*id)
                    .and_then(|s| self.dom.element(s))
                    .and_then(|e| e.value.as_ref())
                    .map_or(0, String::len);
                signed(value.len()) - signed(old)
            }
        }
    }
}

/// The part of a URL that identifies a page for the password memory.
fn page_key(url: &str) -> String {
    let cut = url.find(['?', '#']).unwrap_or(url.len());
    url[..cut].to_string()
}

/// Mask every text-bearing part of node `id` inside one emitted op.
fn scrub_op(op: &mut Op, id: NodeId) {
    use crate::rules::detect::mask_chars;
    match op {
        Op::Insert { node, .. } => {
            scrub_node(node, id);
        }
        Op::Text { id: x, text } if *x == id => *text = mask_chars(text),
        Op::Attr {
            id: x,
            value: Some(v),
            ..
        } if *x == id => *v = mask_chars(v),
        Op::Value {
            id: x,
            value,
            checked,
        } if *x == id => {
            *value = mask_chars(value);
            *checked = None;
        }
        _ => {}
    }
}

fn scrub_node(n: &mut Node, id: NodeId) -> bool {
    use crate::rules::detect::mask_chars;
    match n {
        Node::Text { id: x, text }
        | Node::Comment { id: x, text }
        | Node::Sheet { id: x, css: text }
            if *x == id =>
        {
            *text = mask_chars(text);
            true
        }
        Node::Element {
            id: x,
            attrs,
            value,
            checked,
            ..
        } if *x == id => {
            for v in attrs.values_mut() {
                *v = mask_chars(v);
            }
            *value = value.as_deref().map(mask_chars);
            *checked = None;
            true
        }
        n => n
            .children_mut()
            .is_some_and(|children| children.iter_mut().any(|c| scrub_node(c, id))),
    }
}

/// The invalidation keys an attribute change touches: the attribute itself,
/// plus each class added or removed, plus the old and new id.
fn changed_keys(name: &str, old: Option<&str>, new: Option<&str>) -> Vec<String> {
    let lname = name.to_ascii_lowercase();
    let mut keys = vec![format!("a:{lname}")];
    match lname.as_str() {
        "class" => {
            let set = |v: Option<&str>| -> FxHashSet<String> {
                v.unwrap_or("")
                    .split_ascii_whitespace()
                    .map(str::to_string)
                    .collect()
            };
            let (o, n) = (set(old), set(new));
            keys.extend(o.symmetric_difference(&n).map(|c| Deps::class_key(c)));
        }
        "id" => {
            keys.extend(old.map(Deps::id_key));
            keys.extend(new.map(Deps::id_key));
        }
        _ => {}
    }
    keys
}

/// The per-session engine: mirror + rules → agent frames.
pub struct Rewriter {
    rules: Arc<CompiledRules>,
    limits: Limits,
    doc: Option<Doc>,
    /// The mirror may not match the customer's document (a batch failed
    /// half-way, or the session discarded it): nothing is rendered from it
    /// until the next snapshot.
    poisoned: bool,
    /// Ids that were ever password fields, remembered across re-snapshots
    /// of the same page (URL without query), e.g. after a show-password
    /// toggle and a reconnect.
    sticky_memory: (String, FxHashSet<NodeId>),
    /// The site's resource proxy links (`None`: URLs are not proxied).
    proxy: Option<Arc<urls::ProxyLinks>>,
}

/// The first `<base href>` of a document (URL resolution only; the element
/// itself never reaches the agent).
fn base_href(dom: &Dom) -> Option<String> {
    let root = dom.root()?;
    dom.subtree(root).into_iter().find_map(|s| {
        dom.element(s)
            .filter(|e| e.is_html("base"))
            .and_then(|e| e.attr("href"))
            .map(str::to_string)
    })
}

/// The proxy links for a document at `url`.
fn doc_links(
    proxy: &Option<Arc<urls::ProxyLinks>>,
    url: &str,
    dom: &Dom,
) -> Option<Arc<urls::ProxyLinks>> {
    proxy
        .as_ref()
        .map(|p| Arc::new(p.with_base(url, base_href(dom).as_deref())))
}

impl Rewriter {
    /// A rewriter with no document yet.
    pub fn new(rules: Arc<CompiledRules>, limits: Limits) -> Self {
        Rewriter {
            rules,
            limits,
            doc: None,
            poisoned: false,
            sticky_memory: (String::new(), FxHashSet::default()),
            proxy: None,
        }
    }

    /// Rewrite resource URLs to the site's resource proxy (see [`urls`]).
    pub fn with_proxy(mut self, links: Option<Arc<urls::ProxyLinks>>) -> Self {
        self.proxy = links;
        self
    }

    /// Forget that the mirror matches the customer's page: until the next
    /// snapshot nothing is applied, rendered or answered from it (the rules'
    /// cue keeps the last URL).
    pub fn discard_document(&mut self) {
        self.poisoned = true;
    }

    /// The document, unless it is poisoned.
    fn live_doc(&self) -> Option<&Doc> {
        if self.poisoned {
            None
        } else {
            self.doc.as_ref()
        }
    }

    /// Replace the document (a page load or navigation); returns the
    /// snapshot the agent may see. The root must be a document node. On
    /// `Err` the previous document (if any) stays in force unchanged.
    pub fn snapshot(&mut self, snap: Snapshot) -> Result<Snapshot, RewriteError> {
        if !matches!(snap.root, Node::Document { .. }) {
            return Err(RewriteError::InvalidOp(
                "snapshot root must be a document node".into(),
            ));
        }
        let Snapshot {
            url,
            title,
            viewport,
            root,
            ..
        } = snap;
        let snap_url = url;
        let mut dom = Dom::from_node_owned(root, &self.limits)?;
        let active = self.rules.active(&snap_url);
        let deps = self.rules.deps(&active);
        // Ids that were password fields on an earlier snapshot of this page
        // stay masked (show-password toggle, then reconnect or resync).
        let page = page_key(&snap_url);
        let mut sticky = if self.sticky_memory.0 == page {
            self.sticky_memory.1.clone()
        } else {
            FxHashSet::default()
        };
        if let Some(old) = self.doc.as_ref().filter(|d| page_key(&d.url) == page) {
            sticky.extend(old.sticky.iter().copied());
        }
        full_state(&mut dom, &self.rules, &active, &sticky);
        if let Some(root) = dom.root() {
            for s in dom.subtree(root) {
                let n = dom.node(s);
                if n.element().is_some_and(|e| e.was_password) {
                    sticky.insert(n.id);
                }
            }
        }
        let bytes = dom.root().map_or(0, |r| mirror_bytes(&dom, r));
        if bytes > self.limits.max_mirror_bytes {
            return Err(over_memory(bytes, self.limits.max_mirror_bytes));
        }
        self.sticky_memory = (page, sticky.clone());
        self.poisoned = false;
        let links = doc_links(&self.proxy, &snap_url, &dom);
        self.doc = Some(Doc {
            links,
            dom,
            url: snap_url,
            title,
            viewport,
            active_mask: self.rules.active_mask(&active),
            active,
            deps,
            sticky,
            bytes,
            epoch: 0,
            rematched: 0,
        });
        self.agent_snapshot()
            .ok_or_else(|| RewriteError::InvalidOp("empty document".into()))
    }

    /// Apply one batch; returns the ops that bring the agent's copy to the
    /// new masked state.
    ///
    /// Ops are validated one by one before they touch the mirror. Fails
    /// closed: on any `Err` (a refused batch too) nothing is returned for the
    /// batch and the document is poisoned, so every later `apply`/`navigate`
    /// is refused with [`RewriteError::NoDocument`] until a fresh
    /// [`Rewriter::snapshot`] (the session resyncs).
    pub fn apply(&mut self, ops: Vec<Op>) -> Result<Vec<Op>, RewriteError> {
        if self.poisoned {
            return Err(RewriteError::NoDocument);
        }
        let limits = self.limits;
        let doc = self.doc.as_ref().ok_or(RewriteError::NoDocument)?;
        if ops.len() > limits.max_ops {
            // Refused before any op is applied, but still fail closed: the
            // customer's page has moved on by ops the agent never got, so
            // the mirror is out of step until a fresh snapshot (issue 8, the
            // ops fuzz target found this path left the document usable).
            self.poisoned = true;
            return Err(RewriteError::Limit(format!(
                "more than {} ops in one batch",
                limits.max_ops
            )));
        }
        let links = doc.links.clone();
        urls::scoped(links, || self.apply_batch(ops))
    }

    fn apply_batch(&mut self, ops: Vec<Op>) -> Result<Vec<Op>, RewriteError> {
        let rules = Arc::clone(&self.rules);
        let limits = self.limits;
        let doc = self.doc.as_mut().ok_or(RewriteError::NoDocument)?;
        let mut out = Vec::new();
        let mut clear = BatchLog::new();
        let touched = render::text_touch_points(&doc.dom, &ops);
        for op in ops {
            doc.bytes = doc.bytes.saturating_add_signed(doc.bytes_delta(&op));
            if doc.bytes > limits.max_mirror_bytes {
                self.poisoned = true;
                return Err(over_memory(doc.bytes, limits.max_mirror_bytes));
            }
            if let Err(e) = doc.apply_op(&rules, &limits, op, &mut out, &mut clear) {
                // Atomic: nothing of a failed batch is returned, and the
                // half-applied mirror is not used again.
                self.poisoned = true;
                return Err(e);
            }
        }
        doc.settle_to_end_state(&mut out, &clear, &rules.settings);
        // Card numbers split across a block's inline elements: decided on the
        // end state too, after the per-node settling above.
        render::refresh_card_blocks(&doc.dom, &touched, &rules.settings, &mut out);
        Ok(out)
    }

    /// A same-document navigation (SPA: pushState, popstate, hashchange) or
    /// a title change: switch the URL-scoped rules at once. Returns the
    /// agent's `page` frame and the ops that re-mask its copy.
    pub fn navigate(
        &mut self,
        url: String,
        title: String,
    ) -> Result<(crate::protocol::ToAgent, Vec<Op>), RewriteError> {
        if self.poisoned {
            return Err(RewriteError::NoDocument);
        }
        let rules = Arc::clone(&self.rules);
        let doc = self.doc.as_mut().ok_or(RewriteError::NoDocument)?;
        let active = rules.active(&url);
        doc.links = doc_links(&self.proxy, &url, &doc.dom);
        doc.url = url;
        doc.title = title;
        let mut out = Vec::new();
        if active != doc.active {
            let top = doc.switch_rules(&rules, active);
            urls::scoped(doc.links.clone(), || {
                doc.resend(top, &rules.settings, &mut out, &mut BatchLog::new())
            });
        }
        let (url, title) = agent_page(&doc.url, &doc.title, &rules.settings);
        Ok((crate::protocol::ToAgent::Page { url, title }, out))
    }

    /// Switch to a new rule set (publish mid-session); returns the ops that
    /// re-mask (or unmask) the agent's copy.
    pub fn set_rules(&mut self, rules: Arc<CompiledRules>) -> Vec<Op> {
        let old = std::mem::replace(&mut self.rules, rules);
        let rules = Arc::clone(&self.rules);
        let Some(doc) = self.doc.as_mut() else {
            return Vec::new();
        };
        let active = rules.active(&doc.url);
        let top = doc.switch_rules(&rules, active);
        urls::scoped(doc.links.clone(), || {
            if old.settings.detectors != rules.settings.detectors {
                let pre = doc.root_children();
                return doc.resync(&pre, &rules.settings);
            }
            let mut out = Vec::new();
            doc.resend(top, &rules.settings, &mut out, &mut BatchLog::new());
            out
        })
    }

    /// The whole document as the agent may see it (agent join, resync).
    pub fn agent_snapshot(&self) -> Option<Snapshot> {
        let doc = self.live_doc()?;
        let root = doc.dom.root()?;
        let settings = &self.rules.settings;
        let node = urls::scoped(doc.links.clone(), || {
            render(&doc.dom, root, settings, &mut Vec::new())
        })?;
        let (url, title) = agent_page(&doc.url, &doc.title, settings);
        Some(Snapshot {
            epoch: 0,
            url,
            title,
            viewport: doc.viewport,
            root: node,
        })
    }

    /// Whether rewriting a frame of `frame_nodes` nodes (a snapshot's tree,
    /// or a batch's ops and inserted nodes) may take long enough that it
    /// should not run on an async I/O worker: the nodes times the rules
    /// that may be matched against them, and the whole document when the
    /// rules force full re-matching (`:has` in a non-subject position).
    pub fn is_heavy(&self, frame_nodes: usize) -> bool {
        const CHEAP: usize = 20_000;
        let rules = self.rules.compiled().len() + 1;
        let doc_nodes = match &self.doc {
            Some(d) if d.deps.has_nonsubject => d.dom.len(),
            _ => 0,
        };
        frame_nodes.saturating_add(doc_nodes).saturating_mul(rules) > CHEAP
    }

    /// The current page URL, if a snapshot was received.
    pub fn url(&self) -> Option<&str> {
        self.doc.as_ref().map(|d| d.url.as_str())
    }

    /// The selectors in force on the current page, for the customer's cue.
    /// Before any snapshot: the rules that apply on every page.
    pub fn cue(&self) -> RulesCue {
        let active = match &self.doc {
            Some(d) => d.active.clone(),
            None => self
                .rules
                .compiled()
                .iter()
                .enumerate()
                .filter(|(_, r)| r.url.is_none())
                .map(|(i, _)| i)
                .collect(),
        };
        let mut cue = RulesCue::default();
        for i in active {
            let Some(r) = self.rules.compiled().get(i) else {
                continue;
            };
            match r.action {
                Action::Mask => cue.mask.push(r.selector.clone()),
                Action::Block => cue.block.push(r.selector.clone()),
                Action::Disable => cue.disable.push(r.selector.clone()),
                Action::Unmask => {}
            }
        }
        cue
    }

    /// The restriction on a node under the rules in force, or `None` if the
    /// agent may act on it. Blocked wins (the agent cannot know the node),
    /// then disabled, then masked. Unknown ids are reported as `Err`.
    pub fn restriction(&self, id: NodeId) -> Result<Option<Restriction>, RewriteError> {
        let doc = self.live_doc().ok_or(RewriteError::NoDocument)?;
        let s = doc.dom.slot(id).ok_or(RewriteError::UnknownNode(id))?;
        if !visible(&doc.dom, s) {
            return Ok(Some(Restriction::Blocked));
        }
        let eff = render::holder_eff(&doc.dom, s);
        Ok(if eff & E_BLOCKED != 0 {
            Some(Restriction::Blocked)
        } else if eff & E_DISABLED != 0 {
            Some(Restriction::Disabled)
        } else if eff & E_MASKED != 0 || render::detector_masked(&doc.dom, s, &self.rules.settings)
        {
            Some(Restriction::Masked)
        } else {
            None
        })
    }

    /// Each restriction flag of a node under the rules in force; `None` for
    /// unknown ids or before any snapshot.
    pub fn node_state(&self, id: NodeId) -> Option<NodeState> {
        let doc = self.live_doc()?;
        let s = doc.dom.slot(id)?;
        let eff = render::holder_eff(&doc.dom, s);
        Some(NodeState {
            masked: eff & E_MASKED != 0,
            blocked: !visible(&doc.dom, s) || eff & E_BLOCKED != 0,
            disabled: eff & E_DISABLED != 0,
        })
    }

    /// How many elements incremental updates (batches, publishes) have
    /// re-matched against the rules on this page: a deterministic measure
    /// of their cost, used to show a batch does not scale with the document.
    pub fn rematched(&self) -> u64 {
        self.doc.as_ref().map_or(0, |d| d.rematched)
    }

    /// Counters of elements matched directly by mask/block/disable rules in
    /// the current document.
    pub fn stats(&self) -> RewriteStats {
        let mut st = RewriteStats::default();
        let Some(doc) = &self.doc else { return st };
        let Some(root) = doc.dom.root() else {
            return st;
        };
        doc.dom.for_each_in_subtree(root, |s| {
            let own = doc.dom.node(s).meta.own;
            st.masked += usize::from(own & O_MASK != 0);
            st.blocked += usize::from(own & O_BLOCK != 0);
            st.disabled += usize::from(own & O_DISABLE != 0);
        });
        st
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_static<T: Send + 'static>() {}
    fn assert_send_sync<T: Send + Sync + 'static>() {}

    #[test]
    fn rewriter_can_live_in_a_task_and_rules_can_be_shared() {
        assert_send_static::<Rewriter>();
        assert_send_sync::<CompiledRules>();
        assert_send_sync::<Arc<CompiledRules>>();
    }

    #[test]
    fn mutations_before_a_snapshot_and_non_document_roots_are_refused() {
        let mut rw = Rewriter::new(Arc::new(CompiledRules::default()), Limits::default());
        assert_eq!(rw.apply(vec![]), Err(RewriteError::NoDocument));
        assert_eq!(rw.restriction(1), Err(RewriteError::NoDocument));
        assert!(rw.agent_snapshot().is_none());
        let snap = Snapshot {
            epoch: 0,
            url: "/".into(),
            title: String::new(),
            viewport: Viewport { w: 1.0, h: 1.0 },
            root: Node::Text {
                id: 1,
                text: "x".into(),
            },
        };
        assert!(matches!(rw.snapshot(snap), Err(RewriteError::InvalidOp(_))));
    }

    #[test]
    fn oversized_batches_and_documents_are_refused() {
        let limits = Limits {
            max_ops: 1,
            max_nodes: 3,
            ..Limits::default()
        };
        let mut rw = Rewriter::new(Arc::new(CompiledRules::default()), limits);
        let doc = Node::Document {
            id: 1,
            children: vec![Node::Text {
                id: 2,
                text: "a".into(),
            }],
        };
        let snap = Snapshot {
            epoch: 0,
            url: "/".into(),
            title: String::new(),
            viewport: Viewport { w: 1.0, h: 1.0 },
            root: doc,
        };
        rw.snapshot(snap.clone()).unwrap();
        let op = || Op::Text {
            id: 2,
            text: "b".into(),
        };
        assert!(matches!(
            rw.apply(vec![op(), op()]),
            Err(RewriteError::Limit(_))
        ));
        // too many ops fails closed as well (a fresh snapshot is needed)
        assert_eq!(rw.apply(vec![op()]), Err(RewriteError::NoDocument));
        rw.snapshot(snap.clone()).unwrap();
        let big = Op::Insert {
            parent: 1,
            before: None,
            node: Node::Element {
                id: 3,
                tag: "p".into(),
                ns: None,
                attrs: Default::default(),
                children: vec![Node::Text {
                    id: 4,
                    text: "c".into(),
                }],
                value: None,
                checked: None,
            },
        };
        assert!(matches!(rw.apply(vec![big]), Err(RewriteError::Limit(_))));
        // A refused batch poisons the mirror until the next snapshot.
        assert_eq!(rw.apply(vec![op()]), Err(RewriteError::NoDocument));
        rw.snapshot(snap.clone()).unwrap();
        assert_eq!(rw.apply(vec![op()]), Ok(vec![op()]));
    }
}
