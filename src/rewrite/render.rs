//! The two functions every path shares (snapshot, mutation batch, rule
//! publish, oracle, HTML preview):
//!
//! - [`own_bits`] + [`eff_of`]: an element's restriction state — which rules
//!   match it, and what it inherits (mask/block/disable/unmask flow down to
//!   descendants; block wins over mask for visibility).
//! - [`render`] (with [`agent_attrs`], [`agent_value`], [`agent_text`]): one
//!   mirror node turned into its agent form under that state.
//!
//! - [`agent_text_at`] + [`refresh_card_blocks`]: card numbers split across
//!   the inline elements of one block (the block's text decides; each text
//!   node is redacted where a detected run overlaps it).
//!
//! Nothing else in the engine decides what the agent may see.
//!
//! Masked and blocked elements (and everything under a masked element) keep
//! only the layout attributes of [`LAYOUT_ATTRS`] and a `style` reduced to
//! layout properties ([`sanitize_style`]); `value`/`placeholder` of masked
//! elements are masked, everything else is dropped. Passwords and masked
//! `<select>` values get a fixed-length mask. Always dropped: `srcdoc` (its
//! HTML is not rewritten), `on*` handlers and customer attributes named
//! `data-cobrowse-*` (markers are ours). Attribute names are compared
//! ASCII case-insensitively.
//!
//! The output is inert by itself (see [`is_dropped`], [`safe_url`]): no
//! script elements or text, no `javascript:`/`vbscript:` or non-image
//! `data:` URLs, no `http-equiv`, no `<object>`/`<embed>`/`<base>`, frames
//! only as sandboxed placeholder boxes.

use super::urls;
use crate::dom::select::{AncestorFilter, Matcher};
use crate::dom::{Dom, ElementData, Kind, Ns, Slot};
use crate::protocol::{Node, NodeId, Op};
use crate::rules::detect::{
    apply_hide, card_hide, fixed_mask, has_long_run, is_run_digit, mask_chars, other_hide, redact,
    redact_value, MASK,
};
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
/// Own bit: the element starts an editable region (`contenteditable`,
/// `<textarea>`): its text follows the card value rule, and mask-inputs
/// masks it.
pub const O_EDIT: u8 = 32;
/// Own bit: `contenteditable=false` ends an editable region.
pub const O_NOEDIT: u8 = 64;
/// Own bit: the privacy level leaves this element's content alone (button
/// labels, `<style>` text, stylesheet links); rules still apply.
pub const O_KEEP: u8 = 128;

/// Effective bit: the element or an ancestor is blocked.
pub const E_BLOCKED: u8 = 1;
const E_MASK_RULE: u8 = 2;
const E_UNMASK: u8 = 4;
/// Effective bit: the element or an ancestor is disabled.
pub const E_DISABLED: u8 = 8;
const E_CONTROL: u8 = 16;
/// Effective bit: text, values and text-bearing attributes are masked.
pub const E_MASKED: u8 = 32;
/// Effective bit: inside an editable region.
pub const E_EDITABLE: u8 = 64;
/// Effective bit: exempt from the privacy level (see [`O_KEEP`]).
const E_KEEP: u8 = 128;

/// The snippet's measure of a blocked element (protocol v1.3): its
/// border-box size as `"W H"` in CSS pixels. Never forwarded as such: a
/// blocked element's inline size is built from these two numbers alone
/// ([`blocked_box_style`]).
pub const BOX_MARK: &str = "data-cobrowse-box";

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

/// The lower-cased, trimmed `type` of an element ("" if none).
fn input_type(e: &ElementData) -> String {
    attr_ci(e, "type")
        .map(|t| t.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// An attribute by ASCII case-insensitive name.
fn attr_ci<'a>(e: &'a ElementData, name: &str) -> Option<&'a str> {
    e.attr(name).or_else(|| {
        e.attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    })
}

/// `<input type=submit|button|reset>`: its value is a label, not data.
fn is_button_input(e: &ElementData) -> bool {
    e.is_html("input") && matches!(input_type(e).as_str(), "submit" | "button" | "reset")
}

fn is_value_control(e: &ElementData) -> bool {
    e.ns == Ns::Html
        && matches!(e.tag.as_str(), "input" | "textarea" | "select")
        && !is_button_input(e)
}

/// A password field now or at any time on this page (snippet mark or the
/// mirror's memory).
pub fn is_password(e: &ElementData) -> bool {
    e.was_password || (e.is_html("input") && input_type(e) == "password")
}

/// The free-text fields whose values follow the card value rule:
/// `<textarea>` and `<input>` of type text/search/number/email/url/password
/// (or no type, or a type the browser does not know, which it shows as
/// text); never `type=tel` or `autocomplete=tel*`.
pub fn is_free_text(e: &ElementData) -> bool {
    if e.is_html("textarea") {
        return true;
    }
    if !e.is_html("input") {
        return false;
    }
    if attr_ci(e, "autocomplete").is_some_and(|a| a.trim().to_ascii_lowercase().starts_with("tel"))
    {
        return false;
    }
    !matches!(
        input_type(e).as_str(),
        "tel"
            | "date"
            | "time"
            | "datetime-local"
            | "month"
            | "week"
            | "color"
            | "range"
            | "checkbox"
            | "radio"
            | "file"
            | "hidden"
            | "submit"
            | "button"
            | "reset"
            | "image"
    )
}

/// Attributes whose change can alter [`own_bits`] without any rule reading
/// them (the engine must re-derive the element's own bits).
pub fn affects_own_bits(name: &str) -> bool {
    ["type", "contenteditable", "rel"]
        .iter()
        .any(|a| name.eq_ignore_ascii_case(a))
}

/// The editable-region bits of an element.
fn edit_bits(e: &ElementData) -> u8 {
    if e.is_html("textarea") {
        return O_EDIT;
    }
    match attr_ci(e, "contenteditable").map(|v| v.trim().to_ascii_lowercase()) {
        Some(v) if v.is_empty() || v == "true" || v == "plaintext-only" => O_EDIT,
        Some(v) if v == "false" => O_NOEDIT,
        _ => 0,
    }
}

/// Whether the privacy level leaves this element's content alone.
fn is_kept(e: &ElementData) -> bool {
    if e.ns != Ns::Html {
        return false;
    }
    match e.tag.as_str() {
        "button" | "style" => true,
        "input" => is_button_input(e),
        "link" => attr_ci(e, "rel").is_some_and(|r| {
            r.split_ascii_whitespace()
                .any(|t| t.eq_ignore_ascii_case("stylesheet"))
        }),
        _ => false,
    }
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
    filter: Option<&AncestorFilter>,
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
                let pre = filter.zip(r.ancestor_hashes.get(si as usize));
                if matcher.matches_one_filtered(dom, slot, sel, pre) {
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
    if is_kept(e) {
        bits |= O_KEEP;
    }
    if is_dropped(e) {
        // no content and no working attributes, whatever the rules
        bits |= O_BLOCK;
    }
    bits | edit_bits(e)
}

/// The effective state of an element from its parent's and its own bits.
pub fn eff_of(parent: u8, own: u8, level: PrivacyLevel) -> u8 {
    let mut e = parent
        & (E_BLOCKED | E_MASK_RULE | E_UNMASK | E_DISABLED | E_CONTROL | E_EDITABLE | E_KEEP);
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
    if own & O_EDIT != 0 {
        e |= E_EDITABLE;
    } else if own & O_NOEDIT != 0 {
        e &= !E_EDITABLE;
    }
    if own & O_KEEP != 0 {
        e |= E_KEEP;
    }
    let lifted = e & E_UNMASK != 0;
    let by_level = match level {
        PrivacyLevel::Allow => false,
        PrivacyLevel::MaskInputs => !lifted && e & (E_CONTROL | E_EDITABLE) != 0,
        PrivacyLevel::MaskAll => !lifted && e & E_KEEP == 0,
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

/// Effective bits that a node's children inherit from `slot`. A shadow
/// root or a frame's document passes on the state of the element above it
/// (fail closed: a masked host masks its shadow content, a masked frame
/// element its document).
pub fn parent_eff(dom: &Dom, slot: Slot) -> u8 {
    let mut cur = slot;
    loop {
        let n = dom.node(cur);
        match n.kind {
            Kind::Element(_) => return n.meta.eff,
            _ if n.is_boundary() => match n.parent {
                Some(p) => cur = p,
                None => return 0,
            },
            _ => return 0,
        }
    }
}

/// The attributes a masked or blocked element (and anything under a masked
/// element) keeps: what layout needs and nothing that carries text.
pub const LAYOUT_ATTRS: &[&str] = &[
    "class",
    "id",
    "type",
    "role",
    "width",
    "height",
    "dir",
    "hidden",
    "colspan",
    "rowspan",
    "span",
    "size",
    "cols",
    "rows",
    "lang",
    "tabindex",
    "aria-hidden",
    "disabled",
    "multiple",
    "viewbox",
];

/// Attributes of a masked element that are kept in masked form (their
/// text shows as mask characters, the box keeps its look).
const MASKED_ATTRS: &[&str] = &["value", "placeholder"];

/// CSS properties kept in the `style` of masked and blocked elements.
const LAYOUT_PROPS: &[&str] = &[
    "display",
    "position",
    "width",
    "height",
    "min-width",
    "min-height",
    "max-width",
    "max-height",
    "box-sizing",
    "float",
    "clear",
    "overflow",
    "overflow-x",
    "overflow-y",
    "visibility",
    "top",
    "left",
    "right",
    "bottom",
    "inset",
    "z-index",
    "font-size",
    "line-height",
    "border-width",
    "border-style",
    "flex",
    "flex-direction",
    "flex-wrap",
    "flex-flow",
    "flex-grow",
    "flex-shrink",
    "flex-basis",
    "order",
    "align-items",
    "align-self",
    "align-content",
    "justify-content",
    "justify-items",
    "justify-self",
    "place-items",
    "place-content",
    "gap",
    "row-gap",
    "column-gap",
    "grid-template-columns",
    "grid-template-rows",
    "grid-auto-flow",
    "grid-auto-columns",
    "grid-auto-rows",
    "grid-column",
    "grid-row",
    "grid-column-start",
    "grid-column-end",
    "grid-row-start",
    "grid-row-end",
];

fn is_layout_prop(p: &str) -> bool {
    LAYOUT_PROPS.contains(&p)
        || p.starts_with("margin")
        || p.starts_with("padding")
        || (p.starts_with("border-") && (p.ends_with("-width") || p.ends_with("-style")))
}

/// `on*` event handler attributes (customer script is never forwarded);
/// any ASCII case.
pub fn is_event_handler(name: &str) -> bool {
    name.len() > 2
        && name.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("on"))
        && !name.eq_ignore_ascii_case("open")
}

/// Attributes never forwarded, in any state: handlers, `srcdoc`, forged
/// `data-cobrowse-*` markers (names lower-cased by the caller).
fn is_forbidden(lname: &str) -> bool {
    lname.starts_with("data-cobrowse-") || lname == "srcdoc" || is_event_handler(lname)
}

/// The tag the agent gets for an element it must not have in working form
/// (see [`is_dropped`]): an unknown, attribute-less, empty element.
pub const DROPPED_TAG: &str = "cobrowse-dropped";

/// Elements never sent in working form, in any namespace and any case:
/// script, plugins, `<base>`, and SVG animation elements (which can set a
/// `javascript:` `href`). They reach the agent as an empty
/// [`DROPPED_TAG`] with only `hidden`, and nothing under them.
pub fn is_dropped(e: &ElementData) -> bool {
    is_dropped_name(e.ns, &e.tag)
}

/// [`is_dropped`] by namespace and tag name (any case), for callers that
/// hold wire nodes rather than mirror elements (the CLI's HTML export).
pub fn is_dropped_name(ns: Ns, tag: &str) -> bool {
    let t = tag.to_ascii_lowercase();
    match ns {
        Ns::Svg => matches!(
            t.as_str(),
            "script"
                | "set"
                | "animate"
                | "animatemotion"
                | "animatetransform"
                | "animatecolor"
                | "discard"
                | "handler"
                | "listener"
        ),
        Ns::Html => matches!(
            t.as_str(),
            "script" | "object" | "embed" | "applet" | "base" | "portal" | "param"
        ),
        _ => t == "script",
    }
}

/// Nested frames: sent as empty placeholder boxes (layout attributes and
/// an inert `style` only, never a `src`) with `sandbox` forced empty.
pub fn is_frame(e: &ElementData) -> bool {
    e.ns == Ns::Html && matches!(e.tag.as_str(), "iframe" | "frame" | "fencedframe")
}

/// URL-bearing attributes (by lower-cased name); `true` when the browser
/// fetches it as an image (so `data:image/...` may stay).
fn url_attr(lname: &str) -> Option<bool> {
    match lname {
        "src" | "poster" | "background" | "lowsrc" | "dynsrc" => Some(true),
        "href" | "xlink:href" => Some(true),
        "action" | "formaction" | "data" | "cite" | "longdesc" | "usemap" | "manifest"
        | "codebase" | "icon" | "profile" | "classid" | "archive" | "xml:base" => Some(false),
        _ => None,
    }
}

/// Image types a `data:` URL may carry (never SVG: it is a document).
const DATA_IMAGES: &[&str] = &[
    "image/png",
    "image/gif",
    "image/jpeg",
    "image/jpg",
    "image/webp",
    "image/avif",
    "image/bmp",
    "image/x-icon",
    "image/vnd.microsoft.icon",
];

/// A URL as the agent may get it, or `None` to drop it: no scheme
/// (relative), `http`, `https`, `mailto`, `tel`, or (where `image`) a
/// `data:` URL of a raster image type. The scheme is read the way a
/// browser does (ASCII whitespace and control characters removed, any
/// case); anything odd in it (`&`, `%`, entities) means dropped.
pub fn safe_url(v: &str, image: bool) -> Option<&str> {
    let cleaned: String = v
        .chars()
        .filter(|c| !c.is_ascii_control() && *c != ' ')
        .collect::<String>()
        .to_ascii_lowercase();
    let head = &cleaned[..cleaned.find(['/', '?', '#']).unwrap_or(cleaned.len())];
    if head.contains(['&', '\\']) {
        // an entity or escape where the scheme would be
        return None;
    }
    let Some(colon) = cleaned.find(':') else {
        return Some(v);
    };
    let before = &cleaned[..colon];
    if before.contains(['/', '?', '#']) {
        // a relative path with a colon later on
        return Some(v);
    }
    match before {
        "http" | "https" | "mailto" | "tel" => Some(v),
        "data" if image => {
            let rest = &cleaned[colon + 1..];
            let mime = rest.split([';', ',']).next().unwrap_or("");
            DATA_IMAGES.contains(&mime).then_some(v)
        }
        _ => None,
    }
}

/// Script-ish CSS in a declaration (old engines ran these).
fn css_is_scripty(decl: &str) -> bool {
    let l: String = decl
        .chars()
        .filter(|c| !c.is_ascii_whitespace() && !c.is_ascii_control() && *c != '\\')
        .collect::<String>()
        .to_ascii_lowercase();
    l.contains("javascript:")
        || l.contains("vbscript:")
        || l.contains("expression(")
        || l.contains("behavior:")
        || l.contains("-moz-binding")
}

/// The `style` of an unrestricted element without script-ish declarations.
fn inert_style(style: &str) -> String {
    if !css_is_scripty(style) {
        return style.to_string();
    }
    style
        .split(';')
        .filter(|d| !css_is_scripty(d))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("; ")
}

/// An attribute of an unrestricted element made inert: `None` drops it.
fn inert_attr(e: &ElementData, lname: &str, v: &str) -> Option<String> {
    match lname {
        "http-equiv" | "ping" | "target" | "formtarget" | "imagesrcset" | "sandbox" | "allow"
        | "attributename" | "is" => return None,
        "style" => {
            let s = inert_style(v);
            return Some(match urls::current() {
                Some(l) => l.css(&s),
                None => s,
            });
        }
        "content" if e.is_html("meta") => {
            let l: String = v
                .chars()
                .filter(|c| !c.is_ascii_whitespace() && !c.is_ascii_control())
                .collect::<String>()
                .to_ascii_lowercase();
            let scripty = l.contains("url=") || l.contains("script:");
            return (!scripty).then(|| v.to_string());
        }
        "srcset" if urls::current().is_some() => {
            return urls::current().and_then(|l| l.srcset(v));
        }
        "srcset" => {
            let ok = v.split(',').all(|c| {
                let u = c.split_ascii_whitespace().next().unwrap_or("");
                safe_url(u, true).is_some() && safe_url(c, true).is_some()
            });
            return ok.then(|| v.to_string());
        }
        "rel" if e.is_html("link") => {
            let sheet = v
                .split_ascii_whitespace()
                .any(|t| t.eq_ignore_ascii_case("stylesheet"));
            return sheet.then(|| "stylesheet".to_string());
        }
        _ => {}
    }
    if lname.starts_with("xmlns") {
        return None;
    }
    if let Some(l) = urls::current() {
        // resources go through the proxy (or are dropped)
        if fetches(e, lname) {
            return l.resource(v);
        }
        if e.ns == Ns::Svg && v.to_ascii_lowercase().contains("url") {
            // presentation attributes are CSS values (`fill="url(…)"`)
            return Some(l.css(v));
        }
    }
    match url_attr(lname) {
        Some(image) => safe_url(v, image).map(str::to_string),
        None => Some(v.to_string()),
    }
}

/// Whether attribute `lname` of `e` names a resource the browser fetches
/// (rewritten to the resource proxy when the site has one).
fn fetches(e: &ElementData, lname: &str) -> bool {
    match lname {
        "src" | "poster" | "background" | "lowsrc" | "dynsrc" => true,
        "href" | "xlink:href" => {
            e.is_html("link")
                || (e.ns == Ns::Svg
                    && matches!(
                        e.tag.to_ascii_lowercase().as_str(),
                        "image" | "use" | "feimage"
                    ))
        }
        _ => false,
    }
}

/// The CSS a `<style>` text node carries to the agent when resource URLs
/// are proxied: the element's whole text (its text children joined, so a
/// URL split across them is still seen) rewritten on its first text child,
/// nothing on the others. `None` when `slot` is not such a node.
fn style_text(dom: &Dom, slot: Slot, settings: &SiteSettings) -> Option<String> {
    let links = urls::current()?;
    let p = dom.parent(slot)?;
    if !dom.element(p).is_some_and(is_style) {
        return None;
    }
    let mut first = None;
    let mut all = String::new();
    for c in dom.children(p) {
        if let Kind::Text(t) = &dom.node(c).kind {
            first.get_or_insert(c);
            all.push_str(t);
        }
    }
    if first != Some(slot) {
        return Some(String::new());
    }
    Some(links.css(&redact(&all, &settings.detectors)))
}

/// `<style>` in HTML or SVG.
pub fn is_style(e: &ElementData) -> bool {
    matches!(e.ns, Ns::Html | Ns::Svg) && e.tag.eq_ignore_ascii_case("style")
}

/// Keep only the layout declarations of a `style` attribute: properties in
/// the layout list, and values without strings, escapes, comments,
/// `url()`, `image`, `var()`, `attr()`, `env()` or custom properties.
pub fn sanitize_style(style: &str) -> String {
    style
        .split(';')
        .filter(|d| {
            let l = d.to_ascii_lowercase();
            let Some((prop, value)) = l.split_once(':') else {
                return false;
            };
            let prop = prop.trim();
            is_layout_prop(prop)
                && !value.contains(['"', '\'', '\\', '(', '@', '<', '>'])
                && !value.contains("--")
                && !value.contains("/*")
                && !value.contains("image")
        })
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The page URL without its query string and fragment.
pub fn strip_query(url: &str) -> &str {
    let cut = url.find(['?', '#']).unwrap_or(url.len());
    &url[..cut]
}

/// The masked form of a value: fixed length for passwords and `<select>`s.
fn masked_value(e: &ElementData, v: &str) -> String {
    if is_password(e) || e.is_html("select") {
        fixed_mask(v)
    } else {
        mask_chars(v)
    }
}

/// The attributes the agent gets for an element in state `eff`.
pub fn agent_attrs(e: &ElementData, eff: u8, settings: &SiteSettings) -> BTreeMap<String, String> {
    let d = &settings.detectors;
    let mut out = BTreeMap::new();
    let disabled = eff & E_DISABLED != 0;
    let blocked = eff & E_BLOCKED != 0;
    let masked = eff & E_MASKED != 0;
    if is_dropped(e) {
        out.insert("hidden".into(), String::new());
        return out;
    }
    for (k, v) in &e.attrs {
        let lname = k.to_ascii_lowercase();
        let l = lname.as_str();
        if is_forbidden(l) {
            continue;
        }
        if is_frame(e) && !LAYOUT_ATTRS.contains(&l) && l != "style" {
            continue;
        }
        let value = if blocked || masked {
            if LAYOUT_ATTRS.contains(&l) {
                redact(v, d).into_owned()
            } else if l == "style" {
                let s = sanitize_style(v);
                if s.is_empty() {
                    continue;
                }
                s
            } else if masked && !blocked && l == "value" {
                masked_value(e, v)
            } else if masked && !blocked && MASKED_ATTRS.contains(&l) {
                mask_chars(v)
            } else {
                continue;
            }
        } else if l == "value" && is_free_text(e) {
            redact_value(v, d).into_owned()
        } else {
            // detectors see the URL as the page has it, before it is proxied
            let v = redact(v, d);
            let Some(v) = inert_attr(e, l, &v) else {
                continue;
            };
            redact(&v, d).into_owned()
        };
        out.insert(k.clone(), value);
    }
    if is_frame(e) {
        out.insert("sandbox".into(), String::new());
    }
    if blocked {
        if let Some(size) = attr_ci(e, BOX_MARK).and_then(blocked_box_style) {
            let style = match out.iter().find(|(k, _)| k.eq_ignore_ascii_case("style")) {
                Some((k, s)) if !s.is_empty() => Some((k.clone(), format!("{s}; {size}"))),
                _ => None,
            };
            let (k, v) = style.unwrap_or_else(|| ("style".to_string(), size));
            out.insert(k, v);
        }
        out.insert(MARK_BLOCKED.into(), String::new());
        if disabled {
            out.insert(MARK_DISABLED.into(), String::new());
        }
        return out;
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

/// Largest box side taken from the snippet (CSS px); larger sizes are
/// clamped to it.
pub const MAX_BOX_PX: f64 = 1_000_000.0;

/// One side of a box in the snippet's measure: a plain non-negative decimal
/// number (digits, at most one `.`; no sign, exponent, unit or other text),
/// finite, clamped to [`MAX_BOX_PX`], in hundredths of a pixel.
fn box_side(t: &str) -> Option<u64> {
    if t.is_empty() || t.len() > 24 || !t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    if t.bytes().filter(|&b| b == b'.').count() > 1 || t == "." {
        return None;
    }
    let v: f64 = t.parse().ok()?;
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    // in range and finite: the conversion is exact enough and cannot wrap
    Some((v.min(MAX_BOX_PX) * 100.0).round() as u64)
}

/// The inline size a blocked element gets in the agent's copy, built from
/// the snippet's `data-cobrowse-box="W H"` measure (its border-box in CSS
/// pixels), or `None` if the value is not exactly two valid numbers. Only
/// the two numbers, re-formatted here, reach the agent: no text of the
/// attribute is passed on. `display` is left as the page has it.
pub fn blocked_box_style(v: &str) -> Option<String> {
    let mut parts = v.split_ascii_whitespace();
    let (w, h) = (box_side(parts.next()?)?, box_side(parts.next()?)?);
    if parts.next().is_some() {
        return None;
    }
    let px = |c: u64| format!("{}.{:02}px", c / 100, c % 100);
    let (w, h) = (px(w), px(h));
    Some(format!(
        "box-sizing: border-box !important; width: {w} !important; min-width: {w} !important; \
         max-width: {w} !important; height: {h} !important; min-height: {h} !important; \
         max-height: {h} !important"
    ))
}

/// The name an attribute change goes out under: the snippet's box measure
/// of a blocked element changes its `style` (see [`blocked_box_style`]).
pub fn agent_attr_name(name: &str) -> &str {
    if name.eq_ignore_ascii_case(BOX_MARK) {
        "style"
    } else {
        name
    }
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
        return (e.value.as_deref().map(|v| masked_value(e, v)), None);
    }
    let d = &settings.detectors;
    let value = e.value.as_deref().map(|v| {
        if is_free_text(e) {
            redact_value(v, d).into_owned()
        } else {
            redact(v, d).into_owned()
        }
    });
    (value, e.checked)
}

/// Text (or comment data) under a parent in state `parent_eff`, judged on
/// its own (see [`agent_text_at`] for the block-aware form of text nodes).
pub fn agent_text(text: &str, parent_eff: u8, settings: &SiteSettings) -> String {
    if parent_eff & E_MASKED != 0 {
        mask_chars(text)
    } else if parent_eff & E_EDITABLE != 0 {
        redact_value(text, &settings.detectors).into_owned()
    } else {
        redact(text, &settings.detectors).into_owned()
    }
}

/// CSS built through the CSSOM (a [`Kind::Sheet`]) as the agent gets it:
/// the same treatment as the text of a `<style>` element under a parent in
/// state `parent_eff`, its URLs rewritten to the resource proxy (or
/// dropped) when the site has one.
pub fn agent_css(css: &str, parent_eff: u8, settings: &SiteSettings) -> String {
    let text = agent_text(css, parent_eff, settings);
    match urls::current() {
        Some(l) => l.css(&text),
        None => text,
    }
}

/// Inline elements: their text joins the text around them (a card number
/// may be split across them). Everything else starts or ends a block.
const INLINE_TAGS: &[&str] = &[
    "a", "abbr", "b", "bdi", "bdo", "br", "cite", "code", "data", "del", "dfn", "em", "font", "i",
    "ins", "kbd", "label", "mark", "nobr", "q", "s", "samp", "small", "span", "strike", "strong",
    "sub", "sup", "time", "tt", "u", "var", "wbr",
];

fn is_inline(dom: &Dom, slot: Slot) -> bool {
    dom.element(slot)
        .is_some_and(|e| e.ns == Ns::Html && INLINE_TAGS.contains(&e.tag.as_str()))
}

/// The block whose text decides a node's card runs: the nearest ancestor
/// (or the node itself, for an element) that is not an inline element.
pub fn block_of(dom: &Dom, slot: Slot) -> Slot {
    let mut cur = if matches!(dom.node(slot).kind, Kind::Element(_)) {
        slot
    } else {
        match dom.parent(slot) {
            Some(p) => p,
            None => return slot,
        }
    };
    while is_inline(dom, cur) {
        match dom.parent(cur) {
            Some(p) => cur = p,
            None => break,
        }
    }
    cur
}

/// One step of a block's inline order: text nodes in document order,
/// descending only into inline elements; a nested non-inline element is a
/// break (`None` text).
fn next_in_block(dom: &Dom, block: Slot, x: Slot) -> Option<Slot> {
    if x == block || is_inline(dom, x) {
        if let Some(c) = dom.node(x).first_child {
            return Some(c);
        }
    }
    let mut cur = x;
    while cur != block {
        if let Some(n) = dom.node(cur).next {
            return Some(n);
        }
        cur = dom.parent(cur)?;
    }
    None
}

fn prev_in_block(dom: &Dom, block: Slot, x: Slot) -> Option<Slot> {
    if x == block {
        return None;
    }
    match dom.node(x).prev {
        Some(mut p) => {
            while is_inline(dom, p) {
                match dom.node(p).last_child {
                    Some(c) => p = c,
                    None => break,
                }
            }
            Some(p)
        }
        None => dom.parent(x).filter(|&p| p != block),
    }
}

/// What one step contributes to the block text.
enum Piece<'a> {
    Text(&'a str),
    Break,
    Nothing,
}

fn piece(dom: &Dom, s: Slot) -> Piece<'_> {
    match &dom.node(s).kind {
        Kind::Text(t) => Piece::Text(t),
        Kind::Element(_) if is_inline(dom, s) => Piece::Nothing,
        Kind::Element(_) => Piece::Break,
        _ => Piece::Nothing,
    }
}

/// Characters of context gathered on each side of a text node (a card
/// stretch spans at most 19 digits and 18 × 3 separators).
const WINDOW: usize = 80;
/// Hard cap on context in one very long run.
const WINDOW_CAP: usize = 4096;

fn ends_run(t: &str) -> bool {
    t.chars()
        .any(|c| !is_run_digit(c) && !crate::rules::detect::SEPARATORS.contains(&c))
}

/// The text node at `slot` with the card rules applied over its block's
/// text: the text rule (Luhn), or the value rule inside an editable region.
/// Other detectors judge the node's own text.
pub fn agent_text_at(dom: &Dom, slot: Slot, settings: &SiteSettings) -> String {
    let n = dom.node(slot);
    let pe = n.parent.map(|p| parent_eff(dom, p)).unwrap_or(0);
    let text = match &n.kind {
        Kind::Text(t) => t.as_str(),
        Kind::Comment(t) => return agent_text(t, pe, settings),
        _ => return String::new(),
    };
    if pe & E_MASKED == 0 {
        if let Some(css) = style_text(dom, slot, settings) {
            return css;
        }
    }
    let d = &settings.detectors;
    if pe & E_MASKED != 0 || !d.card || !text.chars().any(is_run_digit) {
        return agent_text(text, pe, settings);
    }
    let value_rule = pe & E_EDITABLE != 0;
    let block = block_of(dom, slot);
    // context before (nearest first), then after
    let mut before: Vec<Piece> = Vec::new();
    let (mut got, mut cur) = (0usize, prev_in_block(dom, block, slot));
    while let Some(s) = cur {
        match piece(dom, s) {
            Piece::Break => break,
            Piece::Text(t) => {
                got += t.chars().count();
                let stop = ends_run(t) && got >= WINDOW;
                before.push(Piece::Text(t));
                if stop || got >= WINDOW_CAP {
                    break;
                }
            }
            Piece::Nothing => {}
        }
        cur = prev_in_block(dom, block, s);
    }
    let mut after: Vec<&str> = Vec::new();
    let (mut got, mut cur) = (0usize, next_in_block(dom, block, slot));
    while let Some(s) = cur {
        match piece(dom, s) {
            Piece::Break => break,
            Piece::Text(t) => {
                got += t.chars().count();
                after.push(t);
                if got >= WINDOW || got >= WINDOW_CAP {
                    break;
                }
            }
            Piece::Nothing => {}
        }
        cur = next_in_block(dom, block, s);
    }
    let mut chars: Vec<char> = Vec::new();
    let mut starts: Vec<usize> = Vec::new();
    for p in before.iter().rev() {
        if let Piece::Text(t) = p {
            starts.push(chars.len());
            chars.extend(t.chars());
        }
    }
    let mine = chars.len();
    starts.push(mine);
    chars.extend(text.chars());
    let mine_end = chars.len();
    for t in after {
        starts.push(chars.len());
        chars.extend(t.chars());
    }
    let mut hide = vec![false; chars.len()];
    card_hide(&chars, &starts, value_rule, &mut hide);
    let own: Vec<char> = chars[mine..mine_end].to_vec();
    let mut own_hide = hide[mine..mine_end].to_vec();
    other_hide(&own, d, &mut own_hide);
    apply_hide(&own, &own_hide)
}

/// The nodes a batch's text can touch, resolved on the mirror *before* the
/// batch: parents of inserts, the parent of each removed node, each text
/// node changed and its parent. Feed to [`refresh_card_blocks`] after it.
pub fn text_touch_points(dom: &Dom, ops: &[Op]) -> Vec<NodeId> {
    let parent_id = |id: NodeId| {
        dom.slot(id)
            .and_then(|s| dom.parent(s))
            .map(|p| dom.node(p).id)
    };
    let mut out = Vec::new();
    for op in ops {
        match op {
            Op::Insert { parent, .. } => out.push(*parent),
            Op::Remove { id } => out.extend(parent_id(*id)),
            Op::Text { id, .. } => {
                out.push(*id);
                out.extend(parent_id(*id));
            }
            Op::Attr { .. } | Op::Value { .. } => {}
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// After a batch: a card number split across the inline elements of a
/// block can change when any part of the block's text changes, so every
/// digit-bearing text node of each touched block is re-sent in its final
/// form, and earlier ops of the batch carrying such a node's text are
/// rewritten to it (no intermediate clear digits in the message). Text of
/// touched nodes gone at the end has its digits masked.
pub fn refresh_card_blocks(
    dom: &Dom,
    touched: &[NodeId],
    settings: &SiteSettings,
    out: &mut Vec<Op>,
) {
    if !settings.detectors.card || touched.is_empty() {
        return;
    }
    let mut blocks: Vec<Slot> = touched
        .iter()
        .filter_map(|&id| dom.slot(id))
        .map(|s| block_of(dom, s))
        .collect();
    blocks.sort_unstable();
    blocks.dedup();
    let mut fresh: BTreeMap<NodeId, String> = BTreeMap::new();
    for b in blocks {
        let mut cur = next_in_block(dom, b, b);
        while let Some(s) = cur {
            let n = dom.node(s);
            if let Kind::Text(t) = &n.kind {
                let pe = n.parent.map(|p| parent_eff(dom, p)).unwrap_or(0);
                if visible(dom, s)
                    && pe & (E_MASKED | E_BLOCKED) == 0
                    && t.chars().any(is_run_digit)
                {
                    fresh.insert(n.id, agent_text_at(dom, s, settings));
                }
            }
            cur = next_in_block(dom, b, s);
        }
    }
    let gone: FxHashSet<NodeId> = touched
        .iter()
        .copied()
        .filter(|&id| dom.slot(id).is_none())
        .collect();
    let fix = |id: NodeId, text: &mut String| {
        if let Some(f) = fresh.get(&id) {
            f.clone_into(text);
        } else if gone.contains(&id) {
            *text = text
                .chars()
                .map(|c| if c.is_ascii_digit() { MASK } else { c })
                .collect();
        }
    };
    for op in out.iter_mut() {
        match op {
            Op::Text { id, text } => fix(*id, text),
            Op::Insert { node, .. } => fix_node(node, &fix),
            _ => {}
        }
    }
    for (id, text) in fresh {
        out.push(Op::Text { id, text });
    }
}

fn fix_node(n: &mut Node, fix: &impl Fn(NodeId, &mut String)) {
    match n {
        Node::Text { id, text } => fix(*id, text),
        Node::Element { children, .. } | Node::Document { children, .. } => {
            for c in children {
                fix_node(c, fix);
            }
        }
        _ => {}
    }
}

/// Whether the agent may not type into node `slot` because of the card
/// detector: a free-text field whose value holds a run of 7+ digits (also
/// when the snippet already masked it), or a node in an editable region
/// whose text does.
pub fn detector_masked(dom: &Dom, slot: Slot, settings: &SiteSettings) -> bool {
    if !settings.detectors.card {
        return false;
    }
    let n = dom.node(slot);
    if let Some(e) = n.element() {
        if is_free_text(e)
            && (e.value.as_deref().is_some_and(has_long_run)
                || attr_ci(e, "value").is_some_and(has_long_run))
        {
            return true;
        }
    }
    if holder_eff(dom, slot) & E_EDITABLE == 0 {
        return false;
    }
    // the editable host: the topmost ancestor still in the region
    let mut host = if n.element().is_some() {
        slot
    } else {
        match n.parent {
            Some(p) => p,
            None => return false,
        }
    };
    while let Some(p) = dom.parent(host) {
        if parent_eff(dom, p) & E_EDITABLE == 0 {
            break;
        }
        host = p;
    }
    let mut text = String::new();
    dom.for_each_in_subtree(host, |s| {
        if let Kind::Text(t) = &dom.node(s).kind {
            text.push_str(t);
        }
    });
    has_long_run(&text)
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
            let tag = if is_dropped(e) {
                DROPPED_TAG.to_string()
            } else {
                e.tag.clone()
            };
            Node::Element {
                id,
                tag,
                ns: e.ns.wire().map(str::to_string),
                attrs: agent_attrs(e, eff, settings),
                children,
                value,
                checked,
            }
        }
        Kind::Shadow => Node::Shadow {
            id,
            children: dom
                .children(slot)
                .map(|c| render_visible(dom, c, settings, clear))
                .collect(),
        },
        Kind::Sheet(css) => {
            let pe = n.parent.map(|p| parent_eff(dom, p)).unwrap_or(0);
            if pe & E_MASKED == 0 {
                clear.push(id);
            }
            Node::Sheet {
                id,
                css: agent_css(css, pe, settings),
            }
        }
        Kind::Placeholder(kind, w, h) => Node::Placeholder {
            id,
            kind: *kind,
            w: *w,
            h: *h,
        },
        Kind::Text(t) | Kind::Comment(t) => {
            let pe = n.parent.map(|p| parent_eff(dom, p)).unwrap_or(0);
            if pe & E_MASKED == 0 {
                clear.push(id);
            }
            let text = match n.kind {
                Kind::Text(_) => agent_text_at(dom, slot, settings),
                _ => agent_text(t, pe, settings),
            };
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
    let mut filter = AncestorFilter::default();
    let owns: Vec<u8> = order
        .iter()
        .map(|&s| {
            filter.enter(dom, s);
            let own = own_bits(dom, s, rules, &active, &mut matcher, sticky, Some(&filter));
            filter.push(dom, s);
            own
        })
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

/// The page URL and title as the agent gets them: the URL without query
/// string and fragment unless the site shows them; the title masked under
/// mask-all; both through the detectors.
pub fn agent_page(url: &str, title: &str, settings: &SiteSettings) -> (String, String) {
    let d = &settings.detectors;
    let title = if settings.privacy == PrivacyLevel::MaskAll {
        mask_chars(title)
    } else {
        redact(title, d).into_owned()
    };
    let url = if settings.show_url_query {
        url
    } else {
        strip_query(url)
    };
    (redact(url, d).into_owned(), title)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn style_of_masked_elements_keeps_only_layout_declarations() {
        let s = "WIDTH: 10px; color: red; --who: ann; margin-top: 2px; \
                 background: url(/x?u=ann); font-family: 'Ann'; height: var(--h); \
                 content: attr(title); padding: 1px 2px; border-top-width: 1px; \
                 grid-template-areas: \"a b\"; display: flex";
        assert_eq!(
            sanitize_style(s),
            "WIDTH: 10px; margin-top: 2px; padding: 1px 2px; border-top-width: 1px; display: flex"
        );
    }

    #[test]
    fn handlers_are_recognised_in_any_case() {
        for n in ["onclick", "ONCLICK", "OnMouseOver", "onerror"] {
            assert!(is_event_handler(n), "{n}");
        }
        for n in ["open", "OPEN", "on", "o"] {
            assert!(!is_event_handler(n), "{n}");
        }
        assert!(is_forbidden("srcdoc") && is_forbidden("data-cobrowse-masked"));
    }

    #[test]
    fn agent_url_drops_query_and_fragment_unless_allowed() {
        let url = "https://a.example/p/q?x=1&email=ann@example.com#f";
        let mut settings = SiteSettings::default();
        assert_eq!(agent_page(url, "T", &settings).0, "https://a.example/p/q");
        assert_eq!(
            agent_page("https://a.example/#x", "T", &settings).0,
            "https://a.example/"
        );
        settings.show_url_query = true;
        assert_eq!(agent_page(url, "T", &settings).0, url);
        settings.privacy = PrivacyLevel::MaskAll;
        assert_eq!(agent_page(url, "My order", &settings).1, "•• •••••");
    }

    fn input(attrs: &[(&str, &str)]) -> ElementData {
        ElementData {
            tag: "input".into(),
            ns: Ns::Html,
            attrs: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            value: None,
            checked: None,
            was_password: false,
        }
    }

    #[test]
    fn free_text_fields_follow_the_protocol_list() {
        for t in [
            "", "text", "search", "number", "email", "url", "password", "weird",
        ] {
            assert!(is_free_text(&input(&[("type", t)])), "{t}");
        }
        for t in [
            "tel", "TEL", "date", "checkbox", "hidden", "submit", "color", "range",
        ] {
            assert!(!is_free_text(&input(&[("type", t)])), "{t}");
        }
        assert!(!is_free_text(&input(&[("autocomplete", "tel-national")])));
        assert!(!is_free_text(&input(&[("AUTOCOMPLETE", "Tel")])));
        assert!(is_free_text(&input(&[("autocomplete", "cc-number")])));
    }

    #[test]
    fn passwords_get_a_fixed_length_mask_and_unmask_never_lifts_them() {
        let mut pw = input(&[("type", "password")]);
        pw.value = Some("x".into());
        let s = SiteSettings::default();
        assert_eq!(
            agent_value(&pw, E_MASKED, &s).0.as_deref(),
            Some("••••••••")
        );
        pw.value = Some(String::new());
        assert_eq!(agent_value(&pw, E_MASKED, &s).0.as_deref(), Some(""));
        // was a password once: the mark alone is enough
        let mut shown = input(&[("type", "text")]);
        shown.was_password = true;
        assert!(is_password(&shown));
        assert!(own_bits_password_mask(&shown));
    }

    #[test]
    fn blocked_box_takes_only_two_valid_numbers() {
        let s = blocked_box_style("300 200.5").unwrap();
        assert!(s.contains("width: 300.00px !important"), "{s}");
        assert!(s.contains("min-height: 200.50px !important"), "{s}");
        assert!(s.contains("box-sizing: border-box") && !s.contains("display"));
        assert!(blocked_box_style(" 0\t0.004 ").is_some_and(|s| s.contains("height: 0.00px")));
        // clamped, never passed through
        assert!(blocked_box_style("99999999 1").is_some_and(|s| s.contains("1000000.00px")));
        for bad in [
            "",
            "300",
            "300 200 1",
            "-1 2",
            "1 -2",
            "NaN 1",
            "inf 1",
            "1 infinity",
            "1e3 2",
            "1px 2",
            "1 2;color:red",
            "1 2px",
            "1..2 3",
            ". 1",
            "0x10 2",
            "+1 2",
            "1,5 2",
            "1 url(x)",
        ] {
            assert_eq!(blocked_box_style(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_blocked_element_gets_its_measured_size_and_nothing_else() {
        let mut e = input(&[]);
        e.tag = "div".into();
        e.attrs
            .insert("style".into(), "display: flex; color: red".into());
        e.attrs.insert("title".into(), "Secret".into());
        e.attrs.insert(BOX_MARK.into(), "300 200".into());
        let s = SiteSettings::default();
        let out = agent_attrs(&e, E_BLOCKED, &s);
        let style = out.get("style").cloned().unwrap_or_default();
        assert!(
            style.starts_with("display: flex; box-sizing: border-box"),
            "{style}"
        );
        assert!(
            style.contains("height: 200.00px") && !style.contains("red"),
            "{style}"
        );
        assert!(!out.contains_key(BOX_MARK) && !out.contains_key("title"));
        // a forged measure is ignored, and the rest of the style stays as it was
        e.attrs
            .insert(BOX_MARK.into(), "300 200; background: url(/x)".into());
        assert_eq!(
            agent_attrs(&e, E_BLOCKED, &s)
                .get("style")
                .map(String::as_str),
            Some("display: flex")
        );
        // without a style of its own
        e.attrs.remove("style");
        e.attrs.insert(BOX_MARK.into(), "10 20".into());
        assert!(agent_attrs(&e, E_BLOCKED, &s)
            .get("style")
            .is_some_and(|v| v.starts_with("box-sizing")));
        // an element that is not blocked never gets it
        assert_eq!(agent_attrs(&e, 0, &s).get("style"), None);
        assert_eq!(agent_attrs(&e, E_MASKED, &s).get("style"), None);
        assert_eq!(agent_attr_name("DATA-COBROWSE-BOX"), "style");
        assert_eq!(agent_attr_name("class"), "class");
    }

    /// `own_bits` sets the mask bit for a password-marked element whatever
    /// the rules (checked through a one-element mirror).
    fn own_bits_password_mask(e: &ElementData) -> bool {
        let node = Node::Document {
            id: 1,
            children: vec![Node::Element {
                id: 2,
                tag: e.tag.clone(),
                ns: None,
                attrs: e.attrs.clone(),
                children: Vec::new(),
                value: None,
                checked: None,
            }],
        };
        let Ok(dom) = Dom::from_node(&node, &crate::protocol::Limits::default()) else {
            return false;
        };
        let Some(slot) = dom.slot(2) else {
            return false;
        };
        let sticky: FxHashSet<NodeId> = [2].into_iter().collect();
        let rules = CompiledRules::default();
        let bits = own_bits(
            &dom,
            slot,
            &rules,
            &[],
            &mut Matcher::default(),
            &sticky,
            None,
        );
        let eff = eff_of(0, bits | O_UNMASK, PrivacyLevel::Allow);
        eff & E_MASKED != 0
    }

    /// The ancestor Bloom filter only ever skips work: with it, every rule
    /// matches exactly the elements it matches without it (descendant and
    /// child combinators, `:is`, `:not`, `:has`, siblings, case-sensitive
    /// classes, SVG camel-case tags, shadow-like nesting by depth).
    #[test]
    fn the_ancestor_filter_never_changes_what_a_rule_matches() {
        use crate::rules::{Action, Rule};
        let html = r#"<!DOCTYPE html><html><body>
            <section id="s1" class="a Big"><div class="row"><span class="x">1</span>
              <p><b class="y">2</b></p></div></section>
            <section class="b"><div class="row other"><span>3</span><input type=password></div>
              <svg><foreignObject><div class="in-svg"><i>4</i></div></foreignObject></svg></section>
            <form><div><button>go</button></div></form>
            <ul><li class="x"><a href="/p?q=1">5</a></li><li><em>6</em></li></ul>
            </body></html>"#;
        let selectors = [
            "section .row span",
            "section.a .row > span.x",
            "#s1 b",
            ".Big b",
            ".big b",
            ".b input",
            "form button:not([type])",
            "svg foreignObject i",
            "foreignObject div",
            "ul li:nth-child(2) em",
            ":is(#s1, .b) span",
            "section:has(.x) p b",
            "body > section ~ ul a",
            "li.x + li em",
            "div :is(.x) ",
            "html body ul li a[href]",
            "nav span",
            ".nothing .row span",
        ];
        let rules: Vec<Rule> = selectors
            .iter()
            .map(|sel| Rule {
                selector: sel.to_string(),
                action: Action::Mask,
                url: None,
                description: String::new(),
                enabled: true,
            })
            .collect();
        let node = crate::dom::html::parse_document(html);
        let Ok(dom) = Dom::from_node(&node, &crate::protocol::Limits::default()) else {
            panic!("mirror");
        };
        let Some(root) = dom.root() else {
            panic!("root")
        };
        let sticky = FxHashSet::default();
        for (i, rule) in rules.iter().enumerate() {
            let compiled =
                CompiledRules::compile(std::slice::from_ref(rule), SiteSettings::default())
                    .unwrap_or_else(|e| panic!("{}: {e}", selectors[i]));
            let active = compiled.active_mask(&[0]);
            let mut filter = AncestorFilter::default();
            let mut with = Vec::new();
            let mut without = Vec::new();
            for s in dom.subtree(root) {
                filter.enter(&dom, s);
                let m = &mut Matcher::default();
                with.push(own_bits(
                    &dom,
                    s,
                    &compiled,
                    &active,
                    m,
                    &sticky,
                    Some(&filter),
                ));
                let m = &mut Matcher::default();
                without.push(own_bits(&dom, s, &compiled, &active, m, &sticky, None));
                filter.push(&dom, s);
            }
            assert_eq!(with, without, "selector {}", selectors[i]);
            // not vacuous: the rules that should match do (the password
            // field is masked whatever the rules)
            let hits = with.iter().filter(|&&b| b & O_MASK != 0).count();
            let expected_none = ["nav span", ".nothing .row span", ".big b", ".b input"];
            assert_eq!(
                hits > 1,
                !expected_none.contains(&selectors[i]),
                "selector {} matched {hits} elements",
                selectors[i]
            );
        }
    }
}
