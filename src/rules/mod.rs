//! Restriction rules: the rule model shared by the store, the editor and the
//! engine, YAML rule packs, URL patterns and compiled rule sets.
//!
//! Raw rules (serde) are compiled once into a [`CompiledRules`] (parsed
//! selectors, URL matchers); the rewrite engine only ever sees compiled rules.
//! Invalid input stops here with a message naming the rule and field.
//!
//! Rule pack format (`rules/*.yaml`, editor import/export, CLI):
//!
//! ```yaml
//! version: 1                      # required, only 1 exists
//! settings:                       # optional site settings
//!   privacy: allow                # allow | mask-inputs | mask-all
//!   detectors: {card: true, email: false, national_id: false}
//!   show_url_query: false         # agent sees the URL's ?query and #fragment
//! rules:
//!   - selector: "input[type=password]"   # CSS selector list
//!     action: mask                # mask | block | disable | unmask
//!     url: "/account/*"           # optional glob: starts with `/` → path
//!                                 # (+ query if it contains `?`), else full URL
//!     description: Passwords are never shown
//!     enabled: true               # optional, default true
//! ```
//!
//! Selectors support type/universal/id/class/attribute selectors (all
//! operators, `i`/`s` flags), `:not`, `:is`, `:where`, `:has`,
//! `:first-child`, `:last-child`, `:only-child`, `:nth-child(An+B of S)`,
//! `:nth-last-child`, `:*-of-type`, `:empty`, `:root`, the four combinators,
//! and `:checked`, `:disabled`, `:enabled`, `:required`, `:optional`,
//! `:read-only`, `:read-write`, `:placeholder-shown`, `:link`, `:any-link`.
//! Anything else (e.g. `:hover`, pseudo-elements) is refused with its
//! position.

pub mod budget;
pub mod detect;
pub mod tooling;
mod url;

use crate::dom::select::{self, Selectors};
use rustc_hash::{FxHashMap, FxHashSet};
use selectors::context::QuirksMode;
use selectors::parser::{AncestorHashes, Combinator, Component, Selector};
use serde::{Deserialize, Serialize};

pub use url::UrlPattern;

/// What a rule does to the elements it matches (design §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Replace text, form values and text-bearing attributes by mask characters.
    Mask,
    /// Keep an empty box of the element's tag; drop children and other attributes.
    Block,
    /// Show as disabled; the agent may not click, focus, type or select inside.
    Disable,
    /// Lift the site's privacy level (never a `mask`/`block` rule).
    Unmask,
}

impl Action {
    /// The lowercase name used in YAML, forms and the wire protocol.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Mask => "mask",
            Action::Block => "block",
            Action::Disable => "disable",
            Action::Unmask => "unmask",
        }
    }
}

fn default_true() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// One restriction rule as authored (YAML, editor, store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// A CSS selector list.
    pub selector: String,
    pub action: Action,
    /// Optional page pattern: a glob over the path (`/account/*`) or a full URL glob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub enabled: bool,
}

/// The site-wide privacy level (issue 3, 1b).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PrivacyLevel {
    /// Only rules mask (the default).
    #[default]
    Allow,
    /// Every form value masked unless an `unmask` rule matches.
    MaskInputs,
    /// Every text and value masked unless an `unmask` rule matches.
    MaskAll,
}

/// Content detectors that mask values by their shape wherever they appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Detectors {
    /// Payment card numbers (13–19 digits, Luhn); on by default.
    #[serde(default = "default_true")]
    pub card: bool,
    #[serde(default)]
    pub email: bool,
    #[serde(default)]
    pub national_id: bool,
}

impl Default for Detectors {
    fn default() -> Self {
        Detectors {
            card: true,
            email: false,
            national_id: false,
        }
    }
}

/// Per-site settings that apply on top of the rules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteSettings {
    #[serde(default)]
    pub privacy: PrivacyLevel,
    #[serde(default)]
    pub detectors: Detectors,
    /// Whether the agent sees the page URL's query string and fragment
    /// (off by default: they often carry tokens, e-mail addresses, ids).
    #[serde(default)]
    pub show_url_query: bool,
}

/// A rule pack: the `rules/*.yaml` format, the editor's import/export and the CLI's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulePack {
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<SiteSettings>,
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// The default rule pack shipped in `rules/default.yaml`, embedded at build time.
pub const DEFAULT_PACK_YAML: &str = include_str!("../../rules/default.yaml");

/// Why rules could not be loaded or compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// The YAML could not be parsed into a rule pack.
    #[error("invalid rule pack: {0}")]
    Yaml(String),
    /// The pack's `version` is not one this build understands.
    #[error("unsupported rule pack version {0} (expected 1)")]
    Version(u32),
    /// A rule's selector does not parse.
    #[error("rule {index}: invalid selector `{selector}` at {line}:{column}: {message}")]
    Selector {
        index: usize,
        selector: String,
        line: u32,
        column: u32,
        message: String,
    },
    /// A rule's URL pattern is not a valid glob.
    #[error("rule {index}: invalid url pattern `{pattern}`: {message}")]
    UrlPattern {
        index: usize,
        pattern: String,
        message: String,
    },
    /// A file or directory (rule pack, test case, HTML page) could not be read.
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    /// An HTML page could not be turned into a mirror document.
    #[error("invalid page: {0}")]
    Page(String),
    /// The YAML nests deeper than [`MAX_YAML_DEPTH`]; refused before it is
    /// parsed (the YAML scanner slows down quadratically with flow nesting).
    #[error(
        "invalid rule pack: line {line} nests deeper than {limit} levels (a rule pack needs 4)"
    )]
    TooDeep { line: usize, limit: usize },
}

/// How deep a rule pack's YAML may nest (block and flow collections
/// together, counted conservatively by [`yaml_nesting`]). A rule pack needs
/// four levels; 64 leaves room for any hand-written layout.
pub const MAX_YAML_DEPTH: usize = 64;

/// Refuse YAML that nests deeper than `limit`, in one linear pass before
/// any YAML parser sees it (issue 8, item 7). libyaml keeps a "simple key"
/// per open flow collection and rescans them all at every token, so 100,000
/// nested `[` took minutes; serde's recursion limit comes only after that.
///
/// The count never undercounts: every `[` and `{` opens a level and every
/// `]` and `}` closes one, wherever they are (also inside quotes and
/// comments, which can only make the count higher), and block nesting is
/// the stack of indentation columns, each `- `, `? ` or `: ` that starts a
/// line's content counting as one more column.
fn yaml_nesting(text: &str, limit: usize) -> Result<(), RuleError> {
    let mut flow: usize = 0;
    let mut indents: Vec<usize> = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        let too_deep = || RuleError::TooDeep { line: i + 1, limit };
        let bytes = line.as_bytes();
        let mut col = bytes.iter().take_while(|&&b| b == b' ').count();
        let rest = &bytes[col..];
        if flow == 0 && !rest.is_empty() && rest[0] != b'#' && rest != b"\r" {
            while indents.last().is_some_and(|&top| top > col) {
                indents.pop();
            }
            let mut rest = rest;
            loop {
                if indents.last().is_none_or(|&top| top < col) {
                    indents.push(col);
                }
                // compact nesting: `- - x`, `? - x`
                match rest {
                    [b'-' | b'?' | b':', b' ', tail @ ..] => {
                        let skip = 2 + tail.iter().take_while(|&&b| b == b' ').count();
                        col += skip;
                        rest = &rest[skip..];
                    }
                    _ => break,
                }
            }
        }
        for &b in bytes {
            match b {
                b'[' | b'{' => flow += 1,
                b']' | b'}' => flow = flow.saturating_sub(1),
                _ => continue,
            }
            if flow + indents.len() > limit {
                return Err(too_deep());
            }
        }
        if flow + indents.len() > limit {
            return Err(too_deep());
        }
    }
    Ok(())
}

impl RulePack {
    /// Parse a YAML rule pack (structure only; see [`CompiledRules::compile`]).
    ///
    /// YAML nested deeper than [`MAX_YAML_DEPTH`] is refused first, in time
    /// linear in its length (see [`yaml_nesting`]).
    pub fn from_yaml(text: &str) -> Result<RulePack, RuleError> {
        yaml_nesting(text, MAX_YAML_DEPTH)?;
        let pack: RulePack =
            serde_norway::from_str(text).map_err(|e| RuleError::Yaml(e.to_string()))?;
        if pack.version != 1 {
            return Err(RuleError::Version(pack.version));
        }
        Ok(pack)
    }

    /// Serialise as YAML in the documented format.
    pub fn to_yaml(&self) -> String {
        serde_norway::to_string(self).unwrap_or_default()
    }
}

/// What a compiled rule set's selectors depend on, so the engine knows which
/// document changes can alter which elements match (the invalidation map).
///
/// Keys name what a change touches: `c:<class>`, `i:<id>`, `a:<attribute>`
/// (lowercase), `empty` (`:empty`), `live` (value/checked for `:checked`,
/// `:placeholder-shown`). Each key set says *where* in a selector the key
/// appears, which decides which elements a change must re-match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deps {
    /// Keys in subject compounds: the changed element itself.
    pub subject_keys: FxHashSet<String>,
    /// Keys in compounds reached through `>` or a space: its descendants.
    pub ancestor_keys: FxHashSet<String>,
    /// Keys in compounds left of `+`/`~`: its following siblings.
    pub sibling_keys: FxHashSet<String>,
    /// Keys inside `:nth-child(An+B of S)`: all its siblings.
    pub nth_of_keys: FxHashSet<String>,
    /// Keys inside `:has(...)`: its ancestors (the `:has` anchors).
    pub has_keys: FxHashSet<String>,
    /// `+` or `~` outside `:has`.
    pub sibling: bool,
    /// Any positional pseudo-class (`:first-child`, `:nth-*`, `:only-*` ...).
    pub nth: bool,
    /// `:empty`.
    pub empty: bool,
    /// `:has(...)` anywhere.
    pub has: bool,
    /// A sibling combinator inside `:has`.
    pub has_sibling: bool,
    /// `:has` in a compound other than the subject's: any change may alter
    /// descendants' matches; the engine re-matches the whole document.
    pub has_nonsubject: bool,
    /// A sibling/positional dependency reached through a descendant or child
    /// combinator: sibling changes re-match whole sibling subtrees.
    pub deep_structural: bool,
    /// A form-state pseudo-class (`:checked`, `:disabled`, `:enabled`,
    /// `:read-only`, `:read-write`) whose answer depends on *other*
    /// elements: an `<option>`'s selectedness on its `<select>` (live value,
    /// `multiple`, `size`) and on the other options; disabledness on
    /// ancestor `<fieldset disabled>` and its first `<legend>`. A change
    /// inside a select re-matches the select's subtree, a change to a
    /// fieldset (or its children) the fieldset's subtree
    /// ([`crate::dom::Dom::form_scope`]).
    pub form_scope: bool,
}

/// Where a compound sits relative to the element being matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pos {
    Subject,
    Ancestor,
    Sibling,
    NthOf,
    Has,
}

impl Deps {
    fn merge(&mut self, o: &Deps) {
        self.subject_keys.extend(o.subject_keys.iter().cloned());
        self.ancestor_keys.extend(o.ancestor_keys.iter().cloned());
        self.sibling_keys.extend(o.sibling_keys.iter().cloned());
        self.nth_of_keys.extend(o.nth_of_keys.iter().cloned());
        self.has_keys.extend(o.has_keys.iter().cloned());
        self.sibling |= o.sibling;
        self.nth |= o.nth;
        self.empty |= o.empty;
        self.has |= o.has;
        self.has_sibling |= o.has_sibling;
        self.has_nonsubject |= o.has_nonsubject;
        self.deep_structural |= o.deep_structural;
        self.form_scope |= o.form_scope;
    }

    /// The key of a class. Lower-cased: in quirks mode classes match
    /// case-insensitively, so keys must not tell `Foo` from `foo` (a
    /// superset re-matches a little more in no-quirks mode, never less).
    pub fn class_key(class: &str) -> String {
        format!("c:{}", class.to_ascii_lowercase())
    }

    /// The key of an id (lower-cased, as [`Deps::class_key`]).
    pub fn id_key(id: &str) -> String {
        format!("i:{}", id.to_ascii_lowercase())
    }

    fn of_list(list: &Selectors) -> Deps {
        let mut d = Deps::default();
        for s in list.slice() {
            walk(s, Pos::Subject, false, &mut d);
        }
        d
    }

    fn keys(&mut self, pos: Pos) -> &mut FxHashSet<String> {
        match pos {
            Pos::Subject => &mut self.subject_keys,
            Pos::Ancestor => &mut self.ancestor_keys,
            Pos::Sibling => &mut self.sibling_keys,
            Pos::NthOf => &mut self.nth_of_keys,
            Pos::Has => &mut self.has_keys,
        }
    }

    /// Whether any key of `changed` is in `set`.
    pub fn touches(set: &FxHashSet<String>, changed: &[String]) -> bool {
        changed.iter().any(|k| set.contains(k))
    }

    /// Whether any selector reads live form state.
    pub fn live_state(&self) -> bool {
        let l = "live";
        self.subject_keys.contains(l)
            || self.ancestor_keys.contains(l)
            || self.sibling_keys.contains(l)
            || self.nth_of_keys.contains(l)
            || self.has_keys.contains(l)
    }
}

fn walk(sel: &Selector<select::Impl>, mut pos: Pos, mut deep: bool, d: &mut Deps) {
    let in_has = pos == Pos::Has;
    for c in sel.iter_raw_match_order() {
        match c {
            Component::Combinator(comb) => match comb {
                Combinator::Child | Combinator::Descendant => {
                    deep = true;
                    if !in_has {
                        pos = Pos::Ancestor;
                    }
                }
                Combinator::NextSibling | Combinator::LaterSibling => {
                    if in_has {
                        d.has_sibling = true;
                    } else {
                        d.sibling = true;
                        d.deep_structural |= deep;
                        pos = Pos::Sibling;
                    }
                }
                _ => {}
            },
            Component::ID(id) => {
                d.keys(pos).insert(Deps::id_key(&id.0));
            }
            Component::Class(c) => {
                d.keys(pos).insert(Deps::class_key(&c.0));
            }
            Component::AttributeInNoNamespaceExists {
                local_name_lower, ..
            } => {
                d.keys(pos)
                    .insert(format!("a:{}", local_name_lower.0.to_ascii_lowercase()));
            }
            Component::AttributeInNoNamespace { local_name, .. } => {
                d.keys(pos)
                    .insert(format!("a:{}", local_name.0.to_ascii_lowercase()));
            }
            Component::AttributeOther(a) => {
                d.keys(pos)
                    .insert(format!("a:{}", a.local_name_lower.0.to_ascii_lowercase()));
            }
            Component::Empty => {
                d.empty = true;
                d.keys(pos).insert("empty".into());
            }
            Component::Nth(_) => {
                d.nth = true;
                d.deep_structural |= deep && !in_has;
            }
            Component::NthOf(data) => {
                d.nth = true;
                d.deep_structural |= deep && !in_has;
                // S decides whether the element itself counts (its own
                // position) and the indexes of its siblings (NthOf)
                for s in data.selectors() {
                    walk(s, pos, deep, d);
                    if !in_has {
                        walk(s, Pos::NthOf, deep, d);
                    }
                }
            }
            Component::NonTSPseudoClass(pc) => {
                d.form_scope |= pc.depends_on_form_scope();
                let keys = d.keys(pos);
                keys.extend(pc.attr_deps().iter().map(|a| format!("a:{a}")));
                if pc.depends_on_live_state() {
                    keys.insert("live".into());
                }
            }
            Component::Negation(list) | Component::Is(list) | Component::Where(list) => {
                for s in list.slice() {
                    walk(s, pos, deep, d);
                }
            }
            Component::Has(rels) => {
                d.has = true;
                if pos != Pos::Subject {
                    d.has_nonsubject = true;
                }
                for r in rels.iter() {
                    walk(&r.selector, Pos::Has, deep, d);
                }
            }
            _ => {}
        }
    }
}

/// One enabled rule, compiled.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    /// Index of the rule in [`CompiledRules::rules`].
    pub index: usize,
    pub action: Action,
    pub selector: String,
    pub selectors: Selectors,
    /// Per selector of [`Self::selectors`], the hashes of its ancestor
    /// compounds (no-quirks documents) for the ancestor Bloom filter.
    pub ancestor_hashes: Vec<AncestorHashes>,
    pub url: Option<UrlPattern>,
    pub deps: Deps,
}

impl CompiledRule {
    /// Whether this rule applies on the page at `url`.
    pub fn applies_to(&self, url: &str) -> bool {
        self.url.as_ref().is_none_or(|u| u.matches(url))
    }
}

/// A reference to one selector of one compiled rule: (rule, selector).
pub type SelectorRef = (u32, u32);

/// Selectors bucketed by the rightmost compound's id, else class, else tag
/// (the Servo/Stylo technique): an element only tries the selectors of its
/// own id, classes and tag plus the universal ones. Id and class buckets are
/// keyed ASCII-lower-cased (quirks mode matches them case-insensitively);
/// look them up with [`Buckets::id_refs`] / [`Buckets::class_refs`].
#[derive(Debug, Clone, Default)]
pub struct Buckets {
    pub by_id: FxHashMap<String, Vec<SelectorRef>>,
    pub by_class: FxHashMap<String, Vec<SelectorRef>>,
    /// Keyed by lowercase local name.
    pub by_tag: FxHashMap<String, Vec<SelectorRef>>,
    pub universal: Vec<SelectorRef>,
}

impl Buckets {
    fn add(&mut self, r: SelectorRef, sel: &Selector<select::Impl>) {
        let (mut id, mut class, mut tag) = (None, None, None);
        for c in sel.iter() {
            match c {
                Component::ID(i) => id = Some(i.0.to_ascii_lowercase()),
                Component::Class(k) => class = class.or(Some(k.0.to_ascii_lowercase())),
                Component::LocalName(l) => tag = Some(l.lower_name.0.to_ascii_lowercase()),
                _ => {}
            }
        }
        match (id, class, tag) {
            (Some(i), _, _) => self.by_id.entry(i).or_default().push(r),
            (None, Some(c), _) => self.by_class.entry(c).or_default().push(r),
            (None, None, Some(t)) => self.by_tag.entry(t).or_default().push(r),
            _ => self.universal.push(r),
        }
    }

    /// The selectors an element with this id may match.
    pub fn id_refs(&self, id: &str) -> Option<&Vec<SelectorRef>> {
        self.by_id.get(lower(id).as_ref())
    }

    /// The selectors an element with this class may match.
    pub fn class_refs(&self, class: &str) -> Option<&Vec<SelectorRef>> {
        self.by_class.get(lower(class).as_ref())
    }
}

fn lower(s: &str) -> std::borrow::Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(s.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// A compiled rule set: parsed selectors and URL matchers, ready for
/// matching. Immutable and shared (`Arc`) between sessions.
#[derive(Debug, Clone, Default)]
pub struct CompiledRules {
    /// The rules as authored (including disabled ones).
    pub rules: Vec<Rule>,
    pub settings: SiteSettings,
    compiled: Vec<CompiledRule>,
    buckets: Buckets,
}

fn compile_rule(index: usize, rule: &Rule) -> Result<CompiledRule, Vec<RuleError>> {
    let mut errors = Vec::new();
    let too_complex = |message: String| RuleError::Selector {
        index,
        selector: rule.selector.clone(),
        line: 1,
        column: 1,
        message,
    };
    let parsed = if budget::too_long(&rule.selector) {
        Err(None)
    } else {
        select::parse(&rule.selector).map_err(Some)
    };
    let selectors = match parsed {
        Ok(s) => match budget::over_budget(&rule.selector, &s) {
            None => Some(s),
            Some(message) => {
                errors.push(too_complex(message));
                None
            }
        },
        Err(None) => {
            errors.push(too_complex(format!(
                "selector too long ({} bytes; at most {})",
                rule.selector.len(),
                budget::MAX_SELECTOR_BYTES
            )));
            None
        }
        Err(Some(e)) => {
            errors.push(RuleError::Selector {
                index,
                selector: rule.selector.clone(),
                line: e.line,
                column: e.column,
                message: e.message,
            });
            None
        }
    };
    let url = match rule.url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
        None => None,
        Some(p) => match UrlPattern::new(p) {
            Ok(u) => Some(u),
            Err(message) => {
                errors.push(RuleError::UrlPattern {
                    index,
                    pattern: p.to_string(),
                    message,
                });
                None
            }
        },
    };
    match selectors {
        Some(selectors) if errors.is_empty() => Ok(CompiledRule {
            index,
            action: rule.action,
            selector: rule.selector.clone(),
            deps: Deps::of_list(&selectors),
            ancestor_hashes: selectors
                .slice()
                .iter()
                .map(|sel| AncestorHashes::new(sel, QuirksMode::NoQuirks))
                .collect(),
            selectors,
            url,
        }),
        _ => Err(errors),
    }
}

impl CompiledRules {
    /// Compile rules; on invalid input the first error is returned (see
    /// [`CompiledRules::validate_all`] for every error).
    pub fn compile(rules: &[Rule], settings: SiteSettings) -> Result<CompiledRules, RuleError> {
        let mut compiled = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            match compile_rule(i, r) {
                Ok(c) => {
                    if r.enabled {
                        compiled.push(c);
                    }
                }
                Err(mut errs) => return Err(errs.remove(0)),
            }
        }
        let mut buckets = Buckets::default();
        for (ri, r) in compiled.iter().enumerate() {
            for (si, sel) in r.selectors.slice().iter().enumerate() {
                buckets.add((ri as u32, si as u32), sel);
            }
        }
        Ok(CompiledRules {
            rules: rules.to_vec(),
            settings,
            compiled,
            buckets,
        })
    }

    /// Compile a parsed rule pack (its settings, or the defaults).
    pub fn from_pack(pack: &RulePack) -> Result<CompiledRules, RuleError> {
        CompiledRules::compile(&pack.rules, pack.settings.unwrap_or_default())
    }

    /// Validate every rule (enabled or not) and return all errors, in rule
    /// order, for editor and import listings.
    pub fn validate_all(rules: &[Rule]) -> Vec<RuleError> {
        rules
            .iter()
            .enumerate()
            .filter_map(|(i, r)| compile_rule(i, r).err())
            .flatten()
            .collect()
    }

    /// The enabled, compiled rules.
    pub fn compiled(&self) -> &[CompiledRule] {
        &self.compiled
    }

    /// Indexes (into [`CompiledRules::compiled`]) of the rules that apply on `url`.
    pub fn active(&self, url: &str) -> Vec<usize> {
        self.compiled
            .iter()
            .enumerate()
            .filter(|(_, r)| r.applies_to(url))
            .map(|(i, _)| i)
            .collect()
    }

    /// The selector buckets of the enabled rules.
    pub fn buckets(&self) -> &Buckets {
        &self.buckets
    }

    /// A membership mask (by compiled index) of a list of active rules.
    pub fn active_mask(&self, active: &[usize]) -> Vec<bool> {
        let mut m = vec![false; self.compiled.len()];
        for &i in active {
            if let Some(x) = m.get_mut(i) {
                *x = true;
            }
        }
        m
    }

    /// Merged dependencies of a set of active rules.
    pub fn deps(&self, active: &[usize]) -> Deps {
        let mut d = Deps::default();
        for &i in active {
            if let Some(r) = self.compiled.get(i) {
                d.merge(&r.deps);
            }
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(sel: &str, action: Action) -> Rule {
        Rule {
            selector: sel.into(),
            action,
            url: None,
            description: String::new(),
            enabled: true,
        }
    }

    #[test]
    fn default_pack_compiles_and_round_trips() {
        let pack = RulePack::from_yaml(DEFAULT_PACK_YAML).unwrap();
        let c = CompiledRules::from_pack(&pack).unwrap();
        assert_eq!(c.compiled().len(), pack.rules.len());
        assert_eq!(pack.rules.len(), 2, "one mask list, one disable list");
        let masks = &c.compiled()[0];
        assert!(
            masks.selectors.slice().len() >= 7,
            "passwords, cards, codes, frames"
        );
        assert_eq!(RulePack::from_yaml(&pack.to_yaml()).unwrap(), pack);
    }

    #[test]
    fn invalid_selectors_report_position_and_message() {
        let rules = vec![
            rule("input[type=password]", Action::Mask),
            rule("div:hover", Action::Mask),
            rule("a >", Action::Block),
        ];
        let errs = CompiledRules::validate_all(&rules);
        assert_eq!(errs.len(), 2);
        match &errs[0] {
            RuleError::Selector {
                index,
                line,
                column,
                message,
                ..
            } => {
                assert_eq!((*index, *line), (1, 1));
                assert!(*column >= 4, "column {column}");
                assert!(message.contains(":hover"), "{message}");
            }
            e => panic!("{e:?}"),
        }
        assert!(matches!(&errs[1], RuleError::Selector { index: 2, .. }));
        assert!(matches!(
            CompiledRules::compile(&rules, SiteSettings::default()),
            Err(RuleError::Selector { index: 1, .. })
        ));
    }

    #[test]
    fn deps_classify_structural_selectors() {
        let d = |s: &str| Deps::of_list(&select::parse(s).unwrap());
        let a = d(".a + .b");
        assert!(a.sibling && !a.deep_structural);
        assert!(a.sibling_keys.contains("c:a") && a.subject_keys.contains("c:b"));
        let b = d(".x .y + #z");
        assert!(b.ancestor_keys.contains("c:x") && b.sibling_keys.contains("c:y"));
        assert!(b.subject_keys.contains("i:z") && !b.sibling_keys.contains("c:x"));
        assert!(d("li:nth-child(odd of .a)").nth_of_keys.contains("c:a"));
        assert!(d("div:has(> [data-k])").has_keys.contains("a:data-k"));
        assert!(d(".a + .b span").deep_structural);
        assert!(d("li:nth-child(2) span").deep_structural);
        assert!(!d("li:first-child").deep_structural);
        assert!(d("form:has(input)").has && !d("form:has(input)").has_nonsubject);
        assert!(d("form:has(input) span").has_nonsubject);
        assert!(d("p:empty").empty);
        assert!(d("input:checked").live_state());
        assert!(d("[data-x~=y]").subject_keys.contains("a:data-x"));
    }

    /// Regression (fuzz target `deeply_nested_yaml_is_refused_not_overflowing`):
    /// libyaml's scanner is quadratic in flow nesting, so 100,000 nested `[`
    /// took minutes before serde refused them; now they are refused by a
    /// linear pre-scan, as are deep block nestings, and ordinary packs pass.
    #[test]
    fn deeply_nested_yaml_is_refused_before_parsing() {
        let flow = format!("version: 1\nrules: {}{}", "[".repeat(65), "]".repeat(65));
        assert!(matches!(
            RulePack::from_yaml(&flow),
            Err(RuleError::TooDeep { line: 2, limit: 64 })
        ));
        let block: String = (0..70).map(|i| format!("{}- \n", " ".repeat(i))).collect();
        assert!(matches!(
            yaml_nesting(&block, MAX_YAML_DEPTH),
            Err(RuleError::TooDeep { .. })
        ));
        let compact = format!("rules:\n{}x\n", "- ".repeat(70));
        assert!(yaml_nesting(&compact, MAX_YAML_DEPTH).is_err());
        // sixty levels of either kind still go to the parser
        assert!(yaml_nesting(&"[".repeat(60), MAX_YAML_DEPTH).is_ok());
        for shipped in [
            DEFAULT_PACK_YAML,
            include_str!("../../rules/pci.yaml"),
            include_str!("../../rules/pii.yaml"),
        ] {
            assert_eq!(yaml_nesting(shipped, MAX_YAML_DEPTH).ok(), Some(()));
        }
        let pack = RulePack::from_yaml(
            "version: 1\nrules:\n  - selector: \"input[type=password], a[href^='[']\"\n    action: mask\n",
        );
        assert!(pack.is_ok(), "{pack:?}");
        let round = RulePack::from_yaml(&pack.map(|p| p.to_yaml()).unwrap_or_default());
        assert!(round.is_ok(), "{round:?}");
    }
}
