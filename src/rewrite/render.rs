//! The two functions every path shares (snapshot, mutation batch, rule
//! publish, oracle, HTML preview):
//!
//! - [`own_bits`] + [`eff_of`]: an element's restriction state — which rules
//!   match it, and what it inherits (mask/block/disable/unmask flow down to
//!   descendants; block wins over mask for visibility).
//! - [`render`] (with [`agent_attrs`], [`agent_value`], [`agent_text`]): one
//!   mirror node turned into its agent form under that state.
//!
//! Nothing else in the engine decides what the agent may see.
//!
//! Layout attributes kept on a blocked element: `class`, `width`, `height`,
//! `hidden`, `dir`, and `style` without `url(...)`, quotes or `content`.
//! Always dropped: `srcdoc` (its HTML is not rewritten), `on*` handlers and
//! customer attributes named `data-cobrowse-*` (markers are ours).

use crate::dom::select::Matcher;
use crate::dom::{Dom, ElementData, Kind, Ns, Slot};
use crate::protocol::{Node, NodeId};
use crate::rules::detect::{mask_chars, redact};
use crate::rules::{Action, CompiledRules, PrivacyLevel, SelectorRef, SiteSettings};
use rustc_hash::FxHashSet;
use std::collections::BTreeMap;

/// Own bit: a `mask` rule matches the element (or it was a password field).
pub const O_MASK: u8 = 1;
/// Own bit: a `block` rule matches.
pub const O_BLOCK: u8 = 2;
/// Own bit: a `disable` rule matches.
pub const O_DISABLE: u8 = 4;
/// Own bit: an `unmask` rule matches.
pub const O_UNMASK: u8 = 8;
/// Own bit: the element is a form control holding a value.
pub const O_CONTROL: u8 = 16;

/// Effective bit: the element or an ancestor is blocked.
pub const E_BLOCKED: u8 = 1;
const E_MASK_RULE: u8 = 2;
const E_UNMASK: u8 = 4;
/// Effective bit: the element or an ancestor is disabled.
pub const E_DISABLED: u8 = 8;
const E_CONTROL: u8 = 16;
/// Effective bit: text, values and text-bearing attributes are masked.
pub const E_MASKED: u8 = 32;

/// Marker attributes on rewritten elements.
pub const MARK_MASKED: &str = "data-cobrowse-masked";
pub const MARK_BLOCKED: &str = "data-cobrowse-blocked";
pub const MARK_DISABLED: &str = "data-cobrowse-disabled";

fn action_bit(a: Action) -> u8 {
    match a {
        Action::Mask => O_MASK,
        Action::Block => O_BLOCK,
        Action::Disable => O_DISABLE,
        Action::Unmask => O_UNMASK,
    }
}

fn is_value_control(e: &ElementData) -> bool {
    e.ns == Ns::Html && matches!(e.tag.as_str(), "input" | "textarea" | "select")
}

fn is_form_control(e: &ElementData) -> bool {
    e.ns == Ns::Html
        && matches!(
            e.tag.as_str(),
            "button" | "input" | "select" | "textarea" | "optgroup" | "option" | "fieldset"
        )
}

/// Which active rules match element `slot` itself, plus the sticky password
/// flag and the form-control flag. `active` is a mask over
/// [`CompiledRules::compiled`]; `sticky` holds ids that were ever password
/// fields on this page. Only the selectors bucketed under the element's id,
/// classes and tag (plus the universal ones) are tried.
pub fn own_bits(
    dom: &Dom,
    slot: Slot,
    rules: &CompiledRules,
    active: &[bool],
    matcher: &mut Matcher,
    sticky: &FxHashSet<NodeId>,
) -> u8 {
    let n = dom.node(slot);
    let Some(e) = n.element() else { return 0 };
    let mut bits = 0;
    let compiled = rules.compiled();
    let b = rules.buckets();
    let mut try_refs = |refs: &[SelectorRef], bits: &mut u8| {
        for &(ri, si) in refs {
            let ri = ri as usize;
            if !active.get(ri).copied().unwrap_or(false) {
                continue;
            }
            let Some(r) = compiled.get(ri) else { continue };
            let bit = action_bit(r.action);
            if *bits & bit != 0 {
                continue;
            }
            if let Some(sel) = r.selectors.slice().get(si as usize) {
                if matcher.matches_one(dom, slot, sel) {
                    *bits |= bit;
                }
            }
        }
    };
    try_refs(&b.universal, &mut bits);
    let tag_refs = if e.ns == Ns::Html {
        b.by_tag.get(e.tag.as_str())
    } else {
        b.by_tag.get(e.tag.to_ascii_lowercase().as_str())
    };
    if let Some(refs) = tag_refs {
        try_refs(refs, &mut bits);
    }
    if let Some(id) = e.attr("id") {
        if let Some(refs) = b.id_refs(id) {
            try_refs(refs, &mut bits);
        }
    }
    if let Some(classes) = e.attr("class") {
        for c in classes.split_ascii_whitespace() {
            if let Some(refs) = b.class_refs(c) {
                try_refs(refs, &mut bits);
            }
        }
    }
    if e.was_password || sticky.contains(&n.id) {
        bits |= O_MASK;
    }
    if is_value_control(e) {
        bits |= O_CONTROL;
    }
    bits
}

/// The effective state of an element from its parent's and its own bits.
pub fn eff_of(parent: u8, own: u8, level: PrivacyLevel) -> u8 {
    let mut e = parent & (E_BLOCKED | E_MASK_RULE | E_UNMASK | E_DISABLED | E_CONTROL);
    if own & O_BLOCK != 0 {
        e |= E_BLOCKED;
    }
    if own & O_MASK != 0 {
        e |= E_MASK_RULE;
    }
    if own & O_UNMASK != 0 {
        e |= E_UNMASK;
    }
    if own & O_DISABLE != 0 {
        e |= E_DISABLED;
    }
    if own & O_CONTROL != 0 {
        e |= E_CONTROL;
    }
    let lifted = e & E_UNMASK != 0;
    let by_level = match level {
        PrivacyLevel::Allow => false,
        PrivacyLevel::MaskInputs => !lifted && e & E_CONTROL != 0,
        PrivacyLevel::MaskAll => !lifted,
    };
    if e & E_MASK_RULE != 0 || by_level {
        e |= E_MASKED;
    }
    e
}

/// The effective bits of the element holding `slot` (itself if an element,
/// else its parent); 0 for the document.
pub fn holder_eff(dom: &Dom, slot: Slot) -> u8 {
    let n = dom.node(slot);
    match n.kind {
        Kind::Element(_) => n.meta.eff,
        _ => n.parent.map(|p| parent_eff(dom, p)).unwrap_or(0),
    }
}

/// Effective bits that a node's children inherit from `slot`.
pub fn parent_eff(dom: &Dom, slot: Slot) -> u8 {
    let n = dom.node(slot);
    match n.kind {
        Kind::Element(_) => n.meta.eff,
        _ => 0,
    }
}

const TEXT_ATTRS: &[&str] = &[
    "value",
    "placeholder",
    "title",
    "alt",
    "aria-label",
    "aria-valuetext",
    "aria-description",
    "aria-placeholder",
    "aria-roledescription",
    "name",
    "label",
    "content",
    "summary",
    "abbr",
    "download",
];

const URL_ATTRS: &[&str] = &[
    "href",
    "src",
    "action",
    "formaction",
    "poster",
    "cite",
    "background",
    "xlink:href",
    "ping",
    "data",
];

const LAYOUT_ATTRS: &[&str] = &["class", "width", "height", "hidden", "dir"];

/// `on*` event handler attributes (customer script is never forwarded).
pub fn is_event_handler(name: &str) -> bool {
    name.len() > 2 && name.starts_with("on") && name != "open"
}

fn is_text_attr(name: &str) -> bool {
    TEXT_ATTRS.contains(&name) || name.starts_with("data-") || name.starts_with("aria-")
}

/// Keep only CSS declarations that cannot carry text: no `url(...)`,
/// no quoted strings, no escapes, no `content`.
pub fn sanitize_style(style: &str) -> String {
    style
        .split(';')
        .filter(|d| {
            let l = d.to_ascii_lowercase();
            let prop = l.split(':').next().unwrap_or("").trim().to_string();
            !d.trim().is_empty()
                && !l.contains("url(")
                && !l.contains("image")
                && !l.contains(['"', '\'', '\\'])
                && prop != "content"
        })
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("; ")
}

fn strip_query(url: &str) -> String {
    let cut = url.find(['?', '#']).unwrap_or(url.len());
    url[..cut].to_string()
}

/// The attributes the agent gets for an element in state `eff`, given
/// whether it is the blocked box itself.
pub fn agent_attrs(e: &ElementData, eff: u8, settings: &SiteSettings) -> BTreeMap<String, String> {
    let d = &settings.detectors;
    let mut out = BTreeMap::new();
    let disabled = eff & E_DISABLED != 0;
    if eff & E_BLOCKED != 0 {
        for (k, v) in &e.attrs {
            if LAYOUT_ATTRS.contains(&k.as_str()) {
                out.insert(k.clone(), redact(v, d).into_owned());
            } else if k == "style" {
                let s = sanitize_style(v);
                if !s.is_empty() {
                    out.insert(k.clone(), redact(&s, d).into_owned());
                }
            }
        }
        out.insert(MARK_BLOCKED.into(), String::new());
        if disabled {
            out.insert(MARK_DISABLED.into(), String::new());
        }
        return out;
    }
    let masked = eff & E_MASKED != 0;
    for (k, v) in &e.attrs {
        let k_str = k.as_str();
        if k_str.starts_with("data-cobrowse-") || k_str == "srcdoc" || is_event_handler(k_str) {
            continue;
        }
        let value = if masked {
            if matches!(k_str, "checked" | "selected" | "srcset") {
                continue;
            } else if is_text_attr(k_str) {
                mask_chars(v)
            } else if URL_ATTRS.contains(&k_str) {
                redact(&strip_query(v), d).into_owned()
            } else if k_str == "style" {
                sanitize_style(v)
            } else {
                redact(v, d).into_owned()
            }
        } else {
            redact(v, d).into_owned()
        };
        out.insert(k.clone(), value);
    }
    if masked {
        out.insert(MARK_MASKED.into(), String::new());
    }
    if disabled {
        out.insert(MARK_DISABLED.into(), String::new());
        if is_form_control(e) {
            out.insert("disabled".into(), String::new());
        }
    }
    out
}

/// The live value and checked state the agent gets.
pub fn agent_value(
    e: &ElementData,
    eff: u8,
    settings: &SiteSettings,
) -> (Option<String>, Option<bool>) {
    if eff & E_BLOCKED != 0 {
        return (None, None);
    }
    if eff & E_MASKED != 0 {
        return (e.value.as_deref().map(mask_chars), None);
    }
    (
        e.value
            .as_deref()
            .map(|v| redact(v, &settings.detectors).into_owned()),
        e.checked,
    )
}

/// Text (or comment data) under a parent in state `parent_eff`.
pub fn agent_text(text: &str, parent_eff: u8, settings: &SiteSettings) -> String {
    if parent_eff & E_MASKED != 0 {
        mask_chars(text)
    } else {
        redact(text, &settings.detectors).into_owned()
    }
}

/// Whether the agent's copy contains this node at all (no proper ancestor
/// is blocked).
pub fn visible(dom: &Dom, slot: Slot) -> bool {
    match dom.node(slot).parent {
        None => true,
        Some(p) => parent_eff(dom, p) & E_BLOCKED == 0,
    }
}

/// Ids of nodes rendered with clear (unmasked) content, for the batch leak check.
pub type ClearLog = Vec<NodeId>;

/// A mirror node (and its subtree) in agent form, or `None` if the agent
/// must not have it. Uses the `eff` bits stored in the mirror.
pub fn render(
    dom: &Dom,
    slot: Slot,
    settings: &SiteSettings,
    clear: &mut ClearLog,
) -> Option<Node> {
    if !visible(dom, slot) {
        return None;
    }
    Some(render_visible(dom, slot, settings, clear))
}

fn render_visible(dom: &Dom, slot: Slot, settings: &SiteSettings, clear: &mut ClearLog) -> Node {
    let n = dom.node(slot);
    let id = n.id;
    match &n.kind {
        Kind::Document => Node::Document {
            id,
            children: dom
                .children(slot)
                .map(|c| render_visible(dom, c, settings, clear))
                .collect(),
        },
        Kind::Doctype(name) => Node::Doctype {
            id,
            name: name.clone(),
        },
        Kind::Element(e) => {
            let eff = n.meta.eff;
            if eff & (E_MASKED | E_BLOCKED) == 0 {
                clear.push(id);
            }
            let (value, checked) = agent_value(e, eff, settings);
            let children = if eff & E_BLOCKED != 0 {
                Vec::new()
            } else {
                dom.children(slot)
                    .map(|c| render_visible(dom, c, settings, clear))
                    .collect()
            };
            Node::Element {
                id,
                tag: e.tag.clone(),
                ns: e.ns.wire().map(str::to_string),
                attrs: agent_attrs(e, eff, settings),
                children,
                value,
                checked,
            }
        }
        Kind::Text(t) | Kind::Comment(t) => {
            let pe = n.parent.map(|p| parent_eff(dom, p)).unwrap_or(0);
            if pe & E_MASKED == 0 {
                clear.push(id);
            }
            let text = agent_text(t, pe, settings);
            if matches!(n.kind, Kind::Text(_)) {
                Node::Text { id, text }
            } else {
                Node::Comment { id, text }
            }
        }
    }
}

/// Match every element of `dom` and compute every effective state from
/// scratch (snapshot, rule publish, oracle).
pub fn full_state(
    dom: &mut Dom,
    rules: &CompiledRules,
    active: &[usize],
    sticky: &FxHashSet<NodeId>,
) {
    let Some(root) = dom.root() else { return };
    let level = rules.settings.privacy;
    let mut matcher = Matcher::default();
    let active = rules.active_mask(active);
    let order = dom.subtree(root);
    let owns: Vec<u8> = order
        .iter()
        .map(|&s| own_bits(dom, s, rules, &active, &mut matcher, sticky))
        .collect();
    // pre-order: parents are computed before children
    for (&s, &own) in order.iter().zip(&owns) {
        let pe = dom.parent(s).map(|p| parent_eff(dom, p)).unwrap_or(0);
        let eff = if matches!(dom.node(s).kind, Kind::Element(_)) {
            eff_of(pe, own, level)
        } else {
            0
        };
        let m = &mut dom.node_mut(s).meta;
        m.own = own;
        m.eff = eff;
    }
}

/// The page URL and title as the agent gets them.
pub fn agent_page(url: &str, title: &str, settings: &SiteSettings) -> (String, String) {
    let d = &settings.detectors;
    let title = if settings.privacy == PrivacyLevel::MaskAll {
        mask_chars(title)
    } else {
        redact(title, d).into_owned()
    };
    (redact(url, d).into_owned(), title)
}
