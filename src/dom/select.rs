//! CSS selector support for the mirror: our `selectors::SelectorImpl`, the
//! selector parser (which pseudo-classes exist) and the `selectors::Element`
//! implementation over mirror nodes.
//!
//! This file owns *matching one selector against one mirror element*. Which
//! rules apply where, and what changes when the document changes, belong to
//! `rules` and `rewrite`.

use super::{Dom, Kind, Ns, Slot};
use cssparser::{CowRcStr, ParseError, ToCss};
use precomputed_hash::PrecomputedHash;
use selectors::attr::{AttrSelectorOperation, CaseSensitivity, NamespaceConstraint};
use selectors::context::{
    MatchingContext, MatchingForInvalidation, MatchingMode, NeedsSelectorFlags, QuirksMode,
    SelectorCaches,
};
use selectors::matching::ElementSelectorFlags;
use selectors::parser::{ParseRelative, SelectorParseErrorKind};
use selectors::{OpaqueElement, SelectorList};
use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};

/// A string used as identifier, local name or namespace in selectors.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct CssIdent(pub String);

impl<'a> From<&'a str> for CssIdent {
    fn from(s: &'a str) -> Self {
        CssIdent(s.to_string())
    }
}

impl ToCss for CssIdent {
    fn to_css<W: fmt::Write>(&self, dest: &mut W) -> fmt::Result {
        cssparser::serialize_identifier(&self.0, dest)
    }
}

impl PrecomputedHash for CssIdent {
    fn precomputed_hash(&self) -> u32 {
        ident_hash(&self.0)
    }
}

impl Borrow<str> for CssIdent {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for CssIdent {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// An attribute value in a selector.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CssValue(pub String);

impl<'a> From<&'a str> for CssValue {
    fn from(s: &'a str) -> Self {
        CssValue(s.to_string())
    }
}

impl ToCss for CssValue {
    fn to_css<W: fmt::Write>(&self, dest: &mut W) -> fmt::Result {
        cssparser::serialize_string(&self.0, dest)
    }
}

impl AsRef<str> for CssValue {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Non-tree-structural pseudo-classes the mirror can answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PseudoClass {
    Checked,
    Disabled,
    Enabled,
    Required,
    Optional,
    ReadOnly,
    ReadWrite,
    PlaceholderShown,
    Link,
    AnyLink,
}

impl PseudoClass {
    fn from_name(name: &str) -> Option<PseudoClass> {
        Some(match name.to_ascii_lowercase().as_str() {
            "checked" => PseudoClass::Checked,
            "disabled" => PseudoClass::Disabled,
            "enabled" => PseudoClass::Enabled,
            "required" => PseudoClass::Required,
            "optional" => PseudoClass::Optional,
            "read-only" => PseudoClass::ReadOnly,
            "read-write" => PseudoClass::ReadWrite,
            "placeholder-shown" => PseudoClass::PlaceholderShown,
            "link" => PseudoClass::Link,
            "any-link" => PseudoClass::AnyLink,
            _ => return None,
        })
    }

    /// The attribute names whose change can alter this pseudo-class.
    pub fn attr_deps(self) -> &'static [&'static str] {
        match self {
            PseudoClass::Checked => &["checked", "selected", "type", "value", "multiple", "size"],
            PseudoClass::Disabled | PseudoClass::Enabled => &["disabled"],
            PseudoClass::Required | PseudoClass::Optional => &["required"],
            PseudoClass::ReadOnly | PseudoClass::ReadWrite => {
                &["readonly", "disabled", "contenteditable", "type"]
            }
            PseudoClass::PlaceholderShown => &["placeholder", "value"],
            PseudoClass::Link | PseudoClass::AnyLink => &["href", "xlink:href"],
        }
    }

    /// Whether the answer depends on other elements of a `<select>` or a
    /// `<fieldset>` (see `Deps::form_scope`).
    pub fn depends_on_form_scope(self) -> bool {
        matches!(
            self,
            PseudoClass::Checked
                | PseudoClass::Disabled
                | PseudoClass::Enabled
                | PseudoClass::ReadOnly
                | PseudoClass::ReadWrite
        )
    }

    /// Whether live form state (value/checked) can alter this pseudo-class.
    pub fn depends_on_live_state(self) -> bool {
        matches!(self, PseudoClass::Checked | PseudoClass::PlaceholderShown)
    }

    fn name(self) -> &'static str {
        match self {
            PseudoClass::Checked => "checked",
            PseudoClass::Disabled => "disabled",
            PseudoClass::Enabled => "enabled",
            PseudoClass::Required => "required",
            PseudoClass::Optional => "optional",
            PseudoClass::ReadOnly => "read-only",
            PseudoClass::ReadWrite => "read-write",
            PseudoClass::PlaceholderShown => "placeholder-shown",
            PseudoClass::Link => "link",
            PseudoClass::AnyLink => "any-link",
        }
    }
}

impl ToCss for PseudoClass {
    fn to_css<W: fmt::Write>(&self, dest: &mut W) -> fmt::Result {
        dest.write_char(':')?;
        dest.write_str(self.name())
    }
}

impl selectors::parser::NonTSPseudoClass for PseudoClass {
    fn is_active_or_hover(&self) -> bool {
        false
    }
    fn is_user_action_state(&self) -> bool {
        false
    }
}

/// Pseudo-elements are not supported (rules target elements); this type has
/// no values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PseudoElement {}

impl ToCss for PseudoElement {
    fn to_css<W: fmt::Write>(&self, _dest: &mut W) -> fmt::Result {
        match *self {}
    }
}

impl selectors::parser::PseudoElement for PseudoElement {}

/// Our selector implementation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Impl;

impl selectors::parser::SelectorImpl for Impl {
    type ExtraMatchingData<'a> = ();
    type AttrValue = CssValue;
    type Identifier = CssIdent;
    type LocalName = CssIdent;
    type NamespaceUrl = CssIdent;
    type NamespacePrefix = CssIdent;
    type BorrowedNamespaceUrl = str;
    type BorrowedLocalName = str;
    type NonTSPseudoClass = PseudoClass;
    type PseudoElement = PseudoElement;
}

/// A parsed selector list.
pub type Selectors = SelectorList<Impl>;

/// A selector parse error with its position (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorError {
    pub line: u32,
    pub column: u32,
    pub message: String,
}

#[derive(Default)]
struct RuleParser {
    /// The last pseudo-class name refused, for the error message.
    unknown: std::cell::RefCell<Option<String>>,
}

impl<'i> selectors::Parser<'i> for RuleParser {
    type Impl = Impl;
    type Error = SelectorParseErrorKind;

    fn parse_nth_child_of(&self) -> bool {
        true
    }
    fn parse_is_and_where(&self) -> bool {
        true
    }
    fn parse_has(&self) -> bool {
        true
    }

    fn parse_non_ts_pseudo_class(
        &self,
        name: CowRcStr<'i>,
    ) -> Result<PseudoClass, ParseError<SelectorParseErrorKind>> {
        PseudoClass::from_name(&name).ok_or_else(|| {
            *self.unknown.borrow_mut() = Some(name.to_string());
            ParseError::custom(SelectorParseErrorKind::UnsupportedPseudoClassOrElement)
        })
    }
}

/// Parse a selector list with our parser; errors carry the position where
/// parsing stopped (1-based line and column) and a message.
pub fn parse(selector: &str) -> Result<Selectors, SelectorError> {
    let rp = RuleParser::default();
    let mut parser = cssparser::Parser::new(selector);
    let result = parser.parse_entirely(|p| SelectorList::parse(&rp, p, ParseRelative::No));
    result.map_err(|e| {
        let loc = parser.current_source_location();
        let unknown = rp.unknown.borrow().clone();
        SelectorError {
            line: loc.line + 1,
            column: loc.column,
            message: describe(&e.kind, unknown.as_deref()),
        }
    })
}

fn describe(
    kind: &cssparser::ParseErrorKind<SelectorParseErrorKind>,
    unknown: Option<&str>,
) -> String {
    use cssparser::{BasicParseErrorKind as B, ParseErrorKind as K};
    use SelectorParseErrorKind as S;
    match kind {
        K::Basic(B::UnexpectedToken) => "unexpected token".into(),
        K::Basic(B::EndOfInput) => "unexpected end of selector".into(),
        K::Basic(B::AtRuleInvalid) => "invalid at-rule".into(),
        K::Basic(B::AtRuleBodyInvalid) => "invalid at-rule body".into(),
        K::Basic(B::QualifiedRuleInvalid) => "invalid qualified rule".into(),
        K::Basic(B::TooManyNestedBlocks) => "selector nested too deeply".into(),
        K::Custom(c) => match c {
            S::NoQualifiedNameInAttributeSelector => "expected an attribute name".into(),
            S::EmptySelector => "empty selector".into(),
            S::DanglingCombinator => "combinator without a selector after it".into(),
            S::NonCompoundSelector => "expected a compound selector".into(),
            S::NonPseudoElementAfterSlotted => "only pseudo-elements may follow ::slotted".into(),
            S::InvalidPseudoElementAfterSlotted => "invalid pseudo-element after ::slotted".into(),
            S::InvalidPseudoElementInsideWhere => "pseudo-elements are not allowed here".into(),
            S::InvalidState => "invalid selector state".into(),
            S::UnexpectedTokenInAttributeSelector => {
                "unexpected token in attribute selector".into()
            }
            S::PseudoElementExpectedColon => "expected `:` for a pseudo-element".into(),
            S::PseudoElementExpectedIdent => "expected a pseudo-element name".into(),
            S::NoIdentForPseudo => "expected a pseudo-class name".into(),
            S::UnsupportedPseudoClassOrElement => match unknown {
                Some(n) => format!("unsupported pseudo-class `:{n}`"),
                None => "unsupported pseudo-class or pseudo-element".into(),
            },
            S::UnexpectedIdent => "unexpected identifier".into(),
            S::ExpectedNamespace => "unknown namespace prefix".into(),
            S::ExpectedBarInAttr => "expected `|` in attribute selector".into(),
            S::BadValueInAttr => "invalid attribute value".into(),
            S::InvalidQualNameInAttr => "invalid attribute name".into(),
            S::ExplicitNamespaceUnexpectedToken => "unexpected token after a namespace".into(),
            S::ClassNeedsIdent => "expected a class name after `.`".into(),
        },
    }
}

/// The `selectors` quirks mode of a mirror: in quirks mode class and id
/// selectors match ASCII-case-insensitively (as in Chromium).
fn quirks_of(dom: &Dom) -> QuirksMode {
    if dom.quirks() {
        QuirksMode::Quirks
    } else {
        QuirksMode::NoQuirks
    }
}

/// Matches selector lists against elements of one mirror, with caches that
/// are valid only while the mirror does not change *and the matched
/// selectors stay alive*: the `:has()` cache is keyed by the selector's
/// address, so a selector parsed, dropped and re-parsed may reuse a stale
/// entry. Use one `Matcher` per set of live selectors.
#[derive(Default)]
pub struct Matcher {
    caches: SelectorCaches,
}

impl Matcher {
    /// Whether element `slot` of `dom` matches `list`.
    pub fn matches(&mut self, dom: &Dom, slot: Slot, list: &Selectors) -> bool {
        if dom.element(slot).is_none() {
            return false;
        }
        let mut ctx = MatchingContext::new(
            MatchingMode::Normal,
            None,
            &mut self.caches,
            quirks_of(dom),
            NeedsSelectorFlags::No,
            MatchingForInvalidation::No,
        );
        selectors::matching::matches_selector_list(list, &El { dom, slot }, &mut ctx)
    }
}

impl Matcher {
    /// Whether element `slot` matches one selector of a list.
    pub fn matches_one(
        &mut self,
        dom: &Dom,
        slot: Slot,
        sel: &selectors::parser::Selector<Impl>,
    ) -> bool {
        self.matches_one_filtered(dom, slot, sel, None)
    }

    /// [`Self::matches_one`] with a fast rejection: `filter` holds the
    /// ancestors of `slot` (see [`AncestorFilter`]) and `hashes` the
    /// selector's ancestor hashes; a selector whose ancestor compounds
    /// cannot all be present is refused without walking the ancestors.
    /// Quirks-mode documents (case-insensitive ids and classes) skip the
    /// filter.
    pub fn matches_one_filtered(
        &mut self,
        dom: &Dom,
        slot: Slot,
        sel: &selectors::parser::Selector<Impl>,
        filter: Option<(&AncestorFilter, &selectors::parser::AncestorHashes)>,
    ) -> bool {
        if dom.element(slot).is_none() {
            return false;
        }
        let quirks = quirks_of(dom);
        let (bloom, hashes) = match filter {
            Some((f, h)) if quirks == QuirksMode::NoQuirks => (Some(&f.bloom), Some(h)),
            _ => (None, None),
        };
        let mut ctx = MatchingContext::new(
            MatchingMode::Normal,
            bloom,
            &mut self.caches,
            quirks,
            NeedsSelectorFlags::No,
            MatchingForInvalidation::No,
        );
        selectors::matching::matches_selector(sel, 0, hashes, &El { dom, slot }, &mut ctx)
    }
}

/// A counting Bloom filter of the element ancestors of the node being
/// visited in a pre-order walk (Servo's "style bloom"): [`Self::enter`]
/// before visiting each node keeps it holding exactly the tag (as written
/// and lower-cased), id and classes of every element on the path from the
/// root to the node's parent, across shadow and frame boundaries (a
/// superset of what matching walks, so it never rejects a match).
#[derive(Default)]
pub struct AncestorFilter {
    bloom: selectors::bloom::BloomFilter,
    /// The path: each node with the hashes it added.
    path: Vec<(Slot, smallvec::SmallVec<[u32; 6]>)>,
}

impl AncestorFilter {
    /// Move the filter to hold the ancestors of `slot`, visited in pre-order
    /// right after its parent's subtree started (or after its previous
    /// sibling's subtree). Then records `slot` itself as the next ancestor.
    pub fn enter(&mut self, dom: &Dom, slot: Slot) {
        let parent = dom.parent(slot);
        while let Some((top, _)) = self.path.last() {
            if Some(*top) == parent {
                break;
            }
            if let Some((_, hashes)) = self.path.pop() {
                for h in hashes {
                    self.bloom.remove_hash(h);
                }
            }
        }
        if self.path.is_empty() && parent.is_some() {
            // not visited in pre-order from the root: rebuild the path
            let mut chain = Vec::new();
            let mut p = parent;
            while let Some(x) = p {
                chain.push(x);
                p = dom.parent(x);
            }
            for x in chain.into_iter().rev() {
                self.push(dom, x);
            }
        }
    }

    /// Record `slot` as the innermost ancestor of what is visited next
    /// (its children).
    pub fn push(&mut self, dom: &Dom, slot: Slot) {
        let mut hashes = smallvec::SmallVec::new();
        if let Some(e) = dom.element(slot) {
            let mut add = |s: &str| {
                let h = ident_hash(s);
                hashes.push(h);
            };
            add(&e.tag);
            if e.tag.bytes().any(|b| b.is_ascii_uppercase()) {
                add(&e.tag.to_ascii_lowercase());
            }
            if let Some(id) = e.attr("id") {
                add(id);
            }
            if let Some(classes) = e.attr("class") {
                for c in classes.split_ascii_whitespace() {
                    add(c);
                }
            }
        }
        for &h in &hashes {
            self.bloom.insert_hash(h);
        }
        self.path.push((slot, hashes));
    }
}

/// The hash `selectors` uses for an identifier of ours.
fn ident_hash(s: &str) -> u32 {
    let mut h = rustc_hash::FxHasher::default();
    s.hash(&mut h);
    h.finish() as u32
}

/// The local name of a namespaced attribute of a foreign (SVG/MathML)
/// element, as the HTML parser creates them (`xlink:href` → `href`).
fn foreign_prefixed(name: &str) -> Option<&str> {
    let (prefix, local) = name.split_once(':')?;
    matches!(prefix, "xlink" | "xml" | "xmlns").then_some(local)
}

/// A mirror element as seen by the `selectors` crate.
#[derive(Clone, Copy)]
pub struct El<'a> {
    pub dom: &'a Dom,
    pub slot: Slot,
}

impl fmt::Debug for El<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "El({})", self.dom.node(self.slot).id)
    }
}

impl<'a> El<'a> {
    fn data(&self) -> &'a super::ElementData {
        match &self.dom.node(self.slot).kind {
            Kind::Element(e) => e,
            // An `El` is only ever built for element slots.
            _ => unreachable!("El over a non-element"),
        }
    }

    fn wrap(&self, slot: Option<Slot>) -> Option<El<'a>> {
        slot.map(|slot| El {
            dom: self.dom,
            slot,
        })
    }

    fn sibling_element(&self, forward: bool) -> Option<El<'a>> {
        let mut cur = self.dom.node(self.slot);
        loop {
            let nx = if forward { cur.next } else { cur.prev }?;
            cur = self.dom.node(nx);
            if matches!(cur.kind, Kind::Element(_)) {
                return self.wrap(Some(nx));
            }
        }
    }

    fn is_form_control(&self) -> bool {
        let e = self.data();
        e.ns == Ns::Html
            && matches!(
                e.tag.as_str(),
                "button" | "input" | "select" | "textarea" | "optgroup" | "option" | "fieldset"
            )
    }

    /// HTML's "actually disabled": a form control with `disabled`, an
    /// `<option>` in a disabled `<optgroup>`, or a button/input/select/
    /// textarea/fieldset inside a disabled `<fieldset>` but not inside that
    /// fieldset's first `<legend>` child.
    fn is_disabled(&self) -> bool {
        if !self.is_form_control() {
            return false;
        }
        let e = self.data();
        if e.attrs.contains_key("disabled") {
            return true;
        }
        match e.tag.as_str() {
            // as in Chromium: also every option of a disabled select
            "option" => {
                self.parent_el().is_some_and(|p| {
                    p.data().is_html("optgroup") && p.data().attrs.contains_key("disabled")
                }) || self.owner_select().is_some_and(|s| s.is_disabled())
            }
            // as in Chromium: the optgroups of a disabled select too
            "optgroup" => self
                .parent_el()
                .is_some_and(|p| p.data().is_html("select") && p.is_disabled()),
            _ => self.in_disabled_fieldset(),
        }
    }

    fn parent_el(&self) -> Option<El<'a>> {
        let p = self.dom.node(self.slot).parent?;
        match self.dom.node(p).kind {
            Kind::Element(_) => self.wrap(Some(p)),
            _ => None,
        }
    }

    /// Inside a `<fieldset disabled>` and not inside its first legend.
    fn in_disabled_fieldset(&self) -> bool {
        let mut child = *self;
        while let Some(p) = child.parent_el() {
            let pe = p.data();
            if pe.is_html("fieldset") && pe.attrs.contains_key("disabled") {
                let first_legend = self
                    .dom
                    .children(p.slot)
                    .find(|&c| self.dom.element(c).is_some_and(|e| e.is_html("legend")));
                if first_legend != Some(child.slot) {
                    return true;
                }
            }
            child = p;
        }
        false
    }

    /// An option's own disabledness (its attribute or its optgroup's), which
    /// the selectedness rules use; a disabled select does not count there.
    fn option_own_disabled(&self) -> bool {
        self.data().attrs.contains_key("disabled")
            || self.parent_el().is_some_and(|p| {
                p.data().is_html("optgroup") && p.data().attrs.contains_key("disabled")
            })
    }

    /// The `<select>` whose list of options holds this `<option>` (its
    /// parent, or its parent `<optgroup>`'s parent).
    fn owner_select(&self) -> Option<El<'a>> {
        let p = self.parent_el()?;
        if p.data().is_html("select") {
            return Some(p);
        }
        if p.data().is_html("optgroup") {
            return p.parent_el().filter(|g| g.data().is_html("select"));
        }
        None
    }

    /// HTML's selectedness of an `<option>`, from the markup and the
    /// select's live value: the option the live value names; else the last
    /// option with `selected` (single select) or each with `selected`
    /// (multiple); else, in a drop-down (single, size ≤ 1), the first option
    /// that is not disabled.
    fn is_selected_option(&self) -> bool {
        let Some(select) = self.owner_select() else {
            return self.data().attrs.contains_key("selected");
        };
        let se = select.data();
        let options = select.options();
        if let Some(v) = se.value.as_deref() {
            if let Some(named) = options.iter().find(|o| o.option_value() == v) {
                if named.slot == self.slot {
                    return true;
                }
                if !se.attrs.contains_key("multiple") {
                    return false;
                }
            }
        }
        if se.attrs.contains_key("multiple") {
            return self.data().attrs.contains_key("selected");
        }
        if let Some(last) = options
            .iter()
            .rev()
            .find(|o| o.data().attrs.contains_key("selected"))
        {
            return last.slot == self.slot;
        }
        let size = se
            .attr("size")
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(0);
        if size > 1 {
            return false;
        }
        options
            .iter()
            .find(|o| !o.option_own_disabled())
            .is_some_and(|o| o.slot == self.slot)
    }

    /// The list of options of a `<select>`, in tree order.
    fn options(&self) -> Vec<El<'a>> {
        let mut out = Vec::new();
        for c in self.dom.children(self.slot) {
            let Some(ce) = self.dom.element(c) else {
                continue;
            };
            if ce.is_html("option") {
                out.extend(self.wrap(Some(c)));
            } else if ce.is_html("optgroup") {
                for g in self.dom.children(c) {
                    if self.dom.element(g).is_some_and(|e| e.is_html("option")) {
                        out.extend(self.wrap(Some(g)));
                    }
                }
            }
        }
        out
    }

    /// An option's value: its `value` attribute, else its text with
    /// whitespace stripped and collapsed.
    fn option_value(&self) -> String {
        if let Some(v) = self.data().attr("value") {
            return v.to_string();
        }
        let mut text = String::new();
        self.dom.for_each_in_subtree(self.slot, |s| {
            if let Kind::Text(t) = &self.dom.node(s).kind {
                text.push_str(t);
            }
        });
        text.split_ascii_whitespace().collect::<Vec<_>>().join(" ")
    }

    fn is_text_field(&self) -> bool {
        let e = self.data();
        if e.is_html("textarea") {
            return true;
        }
        if !e.is_html("input") {
            return false;
        }
        let ty = e.attr("type").unwrap_or("text").to_ascii_lowercase();
        !matches!(
            ty.as_str(),
            "checkbox"
                | "radio"
                | "submit"
                | "reset"
                | "button"
                | "image"
                | "hidden"
                | "file"
                | "range"
                | "color"
        )
    }

    fn is_read_write(&self) -> bool {
        let e = self.data();
        if e.ns != Ns::Html {
            return false;
        }
        if self.is_text_field() {
            return !e.attrs.contains_key("readonly") && !self.is_disabled();
        }
        e.attr("contenteditable").is_some_and(|v| {
            v.is_empty()
                || v.eq_ignore_ascii_case("true")
                || v.eq_ignore_ascii_case("plaintext-only")
        })
    }
}

impl selectors::Element for El<'_> {
    type Impl = Impl;

    fn opaque(&self) -> OpaqueElement {
        OpaqueElement::new(self.dom.node(self.slot))
    }

    /// Fail closed across boundaries: a shadow root and a frame's document
    /// are transparent for ancestor walks, so `form.pay input` also
    /// matches an input in the shadow tree of a component inside
    /// `form.pay`, or in a frame inside it.
    fn parent_element(&self) -> Option<Self> {
        self.wrap(self.dom.parent_element(self.slot))
    }

    fn parent_node_is_shadow_root(&self) -> bool {
        false
    }

    fn containing_shadow_host(&self) -> Option<Self> {
        None
    }

    fn is_pseudo_element(&self) -> bool {
        false
    }

    fn prev_sibling_element(&self) -> Option<Self> {
        self.sibling_element(false)
    }

    fn next_sibling_element(&self) -> Option<Self> {
        self.sibling_element(true)
    }

    fn first_element_child(&self) -> Option<Self> {
        self.dom
            .children(self.slot)
            .find(|c| matches!(self.dom.node(*c).kind, Kind::Element(_)))
            .map(|slot| El {
                dom: self.dom,
                slot,
            })
    }

    fn is_html_element_in_html_document(&self) -> bool {
        self.data().ns == Ns::Html
    }

    /// HTML tags are lower case in the mirror (the selector's name arrives
    /// lower-cased); SVG/MathML names keep their case and, as in Chromium,
    /// match ASCII-case-insensitively (`lineargradient`).
    fn has_local_name(&self, local_name: &str) -> bool {
        let e = self.data();
        if e.ns == Ns::Html {
            e.tag == local_name
        } else {
            e.tag.eq_ignore_ascii_case(local_name)
        }
    }

    fn has_namespace(&self, ns: &str) -> bool {
        self.data().ns.url() == ns
    }

    fn is_same_type(&self, other: &Self) -> bool {
        let (a, b) = (self.data(), other.data());
        a.tag == b.tag && a.ns == b.ns
    }

    fn attr_matches(
        &self,
        ns: &NamespaceConstraint<&CssIdent>,
        local_name: &CssIdent,
        operation: &AttrSelectorOperation<&CssValue>,
    ) -> bool {
        let any_ns = match ns {
            NamespaceConstraint::Any => true,
            NamespaceConstraint::Specific(url) if url.0.is_empty() => false,
            // no `@namespace` exists for rules: no prefix can be declared
            NamespaceConstraint::Specific(_) => return false,
        };
        let e = self.data();
        if e.ns == Ns::Html {
            // lower case in the mirror; the selector's name arrives lower-cased
            return e
                .attrs
                .get(&local_name.0)
                .is_some_and(|v| operation.eval_str(v));
        }
        // SVG/MathML: names keep their case but match ASCII-case-
        // insensitively in an HTML document (`[viewbox]`), as in Chromium.
        // `xlink:href`, `xml:lang`, `xmlns:x` are namespaced attributes there:
        // `[xlink\:href]` (no namespace) never matches them, `[*|href]` does.
        e.attrs.iter().any(|(k, v)| {
            let name = match foreign_prefixed(k) {
                Some(local) if any_ns => local,
                Some(_) => return false,
                None => k.as_str(),
            };
            name.eq_ignore_ascii_case(&local_name.0) && operation.eval_str(v)
        })
    }

    fn match_non_ts_pseudo_class(
        &self,
        pc: &PseudoClass,
        _context: &mut MatchingContext<Impl>,
    ) -> bool {
        let e = self.data();
        match pc {
            PseudoClass::Checked => {
                if e.is_html("input") {
                    let ty = e.attr("type").unwrap_or("").to_ascii_lowercase();
                    (ty == "checkbox" || ty == "radio")
                        && e.checked.unwrap_or_else(|| e.attrs.contains_key("checked"))
                } else {
                    e.is_html("option") && self.is_selected_option()
                }
            }
            PseudoClass::Disabled => self.is_disabled(),
            PseudoClass::Enabled => self.is_form_control() && !self.is_disabled(),
            PseudoClass::Required => {
                matches!(e.tag.as_str(), "input" | "select" | "textarea")
                    && e.ns == Ns::Html
                    && e.attrs.contains_key("required")
            }
            // Chromium counts buttons as optional too
            PseudoClass::Optional => {
                matches!(e.tag.as_str(), "input" | "select" | "textarea" | "button")
                    && e.ns == Ns::Html
                    && (e.tag == "button" || !e.attrs.contains_key("required"))
            }
            PseudoClass::ReadWrite => self.is_read_write(),
            // Chromium: only HTML elements are read-only (not SVG/MathML)
            PseudoClass::ReadOnly => e.ns == Ns::Html && !self.is_read_write(),
            PseudoClass::PlaceholderShown => {
                self.is_text_field()
                    && e.attrs.contains_key("placeholder")
                    && e.value
                        .as_deref()
                        .or(e.attr("value"))
                        .unwrap_or("")
                        .is_empty()
            }
            PseudoClass::Link | PseudoClass::AnyLink => self.is_link(),
        }
    }

    fn match_pseudo_element(
        &self,
        pe: &PseudoElement,
        _context: &mut MatchingContext<Impl>,
    ) -> bool {
        match *pe {}
    }

    fn apply_selector_flags(&self, _flags: ElementSelectorFlags) {}

    /// As in Chromium: HTML `<a>`/`<area>` with `href` (not `<link>`),
    /// and SVG `<a>` with `href` or `xlink:href`.
    fn is_link(&self) -> bool {
        let e = self.data();
        match e.ns {
            Ns::Html => matches!(e.tag.as_str(), "a" | "area") && e.attrs.contains_key("href"),
            Ns::Svg => {
                e.tag == "a" && (e.attrs.contains_key("href") || e.attrs.contains_key("xlink:href"))
            }
            Ns::Math => false,
        }
    }

    fn is_html_slot_element(&self) -> bool {
        self.data().is_html("slot")
    }

    fn has_id(&self, id: &CssIdent, case_sensitivity: CaseSensitivity) -> bool {
        self.data()
            .attr("id")
            .is_some_and(|v| case_sensitivity.eq(v.as_bytes(), id.0.as_bytes()))
    }

    fn has_class(&self, name: &CssIdent, case_sensitivity: CaseSensitivity) -> bool {
        self.data().attr("class").is_some_and(|v| {
            v.split_ascii_whitespace()
                .any(|c| case_sensitivity.eq(c.as_bytes(), name.0.as_bytes()))
        })
    }

    fn has_custom_state(&self, _name: &CssIdent) -> bool {
        false
    }

    fn imported_part(&self, _name: &CssIdent) -> Option<CssIdent> {
        None
    }

    fn is_part(&self, _name: &CssIdent) -> bool {
        false
    }

    fn is_empty(&self) -> bool {
        self.dom.is_empty_element(self.slot)
    }

    fn is_root(&self) -> bool {
        match self.dom.node(self.slot).parent {
            None => true,
            Some(p) => matches!(self.dom.node(p).kind, Kind::Document),
        }
    }

    fn add_element_unique_hashes(&self, _filter: &mut selectors::bloom::BloomFilter) -> bool {
        false
    }
}
