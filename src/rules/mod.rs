//! Restriction rules: the rule model shared by the store, the editor and the
//! engine, YAML rule packs, URL patterns and compiled rule sets.
//!
//! Raw rules (serde) are compiled once into a [`CompiledRules`] (parsed
//! selectors, URL matchers); the rewrite engine only ever sees compiled rules.
//! Invalid input stops here with a message naming the rule and field.

use serde::{Deserialize, Serialize};

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
}

impl RulePack {
    /// Parse a YAML rule pack (structure only; see [`CompiledRules::compile`]).
    pub fn from_yaml(text: &str) -> Result<RulePack, RuleError> {
        let pack: RulePack = serde_norway::from_str(text).map_err(|e| RuleError::Yaml(e.to_string()))?;
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

/// A compiled rule set: parsed selectors and URL matchers, ready for matching.
///
/// STUB (identity): the engine issue replaces this with the real compiler.
#[derive(Debug, Clone, Default)]
pub struct CompiledRules {
    pub rules: Vec<Rule>,
    pub settings: SiteSettings,
}

impl CompiledRules {
    /// Compile rules; every invalid rule is reported (first error returned).
    pub fn compile(rules: &[Rule], settings: SiteSettings) -> Result<CompiledRules, RuleError> {
        Ok(CompiledRules {
            rules: rules.to_vec(),
            settings,
        })
    }

    /// Validate every rule and return all errors (for editor/import listings).
    pub fn validate_all(rules: &[Rule]) -> Vec<RuleError> {
        let _ = rules;
        Vec::new()
    }
}
