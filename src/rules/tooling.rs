//! Policy-as-code tooling behind `cobrowse rules check|apply|test` and the
//! editor's preview page: validate packs, rewrite an HTML page as an agent
//! would get it, run YAML rule test cases, and list what each rule matches.
//!
//! Every function goes through the same mirror and rewrite engine as live
//! sessions (html5ever → wire tree → [`Rewriter::snapshot`]); the outputs
//! never contain customer scripts.

use super::{Action, CompiledRules, Rule, RuleError, RulePack, SiteSettings, UrlPattern};
use crate::dom::html::{parse_document, to_html};
use crate::dom::select::{self, Matcher};
use crate::dom::{Dom, Slot};
use crate::protocol::{Limits, Node, Snapshot, Viewport};
use crate::rewrite::Rewriter;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Limits for offline pages: generous, but still bounded.
fn page_limits() -> Limits {
    Limits {
        max_nodes: 2_000_000,
        max_depth: 512,
        ..Limits::default()
    }
}

/// Parse and validate a YAML rule pack, reporting every error.
pub fn check_pack(yaml: &str) -> Result<RulePack, Vec<RuleError>> {
    let pack = RulePack::from_yaml(yaml).map_err(|e| vec![e])?;
    let errors = CompiledRules::validate_all(&pack.rules);
    if errors.is_empty() {
        Ok(pack)
    } else {
        Err(errors)
    }
}

fn compile_all(rules: &[Rule], settings: SiteSettings) -> Result<CompiledRules, Vec<RuleError>> {
    let errors = CompiledRules::validate_all(rules);
    if !errors.is_empty() {
        return Err(errors);
    }
    CompiledRules::compile(rules, settings).map_err(|e| vec![e])
}

struct Page {
    customer: Node,
    rewriter: Rewriter,
    agent: Snapshot,
}

fn load_page(rules: CompiledRules, html: &str, url: &str) -> Result<Page, Vec<RuleError>> {
    let customer = parse_document(html);
    let mut rewriter = Rewriter::new(Arc::new(rules), page_limits());
    let agent = rewriter
        .snapshot(Snapshot {
            epoch: 0,
            url: url.to_string(),
            title: String::new(),
            viewport: Viewport {
                w: 1280.0,
                h: 800.0,
            },
            root: customer.clone(),
        })
        .map_err(|e| vec![RuleError::Page(e.to_string())])?;
    Ok(Page {
        customer,
        rewriter,
        agent,
    })
}

/// Rewrite an HTML page under a pack, as the agent would get it at `url`
/// (with `data-cobrowse-*` markers, without scripts).
pub fn apply_to_html(pack: &RulePack, html: &str, url: &str) -> Result<String, Vec<RuleError>> {
    let rules = compile_all(&pack.rules, pack.settings.unwrap_or_default())?;
    let page = load_page(rules, html, url)?;
    Ok(to_html(&page.agent.root, true))
}

/// What one rule matches on a previewed page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleMatches {
    /// Index of the rule in the list given to [`preview`].
    pub rule_index: usize,
    pub selector: String,
    pub action: Action,
    /// Elements matched (0 if the rule is disabled or not for this URL).
    pub count: usize,
    /// Short descriptions (`input#card.cc`) of the first matched elements.
    pub elements: Vec<String>,
}

/// The editor's preview of a page under a draft rule set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    /// The page as the customer has it (scripts removed).
    pub customer_html: String,
    /// The page as the agent gets it (scripts removed, markers added).
    pub agent_html: String,
    pub matches: Vec<RuleMatches>,
}

/// How many matched elements [`RuleMatches::elements`] lists at most.
pub const PREVIEW_ELEMENTS: usize = 20;

fn describe(dom: &Dom, slot: Slot) -> String {
    let Some(e) = dom.element(slot) else {
        return String::new();
    };
    let mut s = e.tag.clone();
    if let Some(id) = e.attr("id").filter(|v| !v.is_empty()) {
        s.push('#');
        s.push_str(id);
    }
    for c in e
        .attr("class")
        .unwrap_or("")
        .split_ascii_whitespace()
        .take(3)
    {
        s.push('.');
        s.push_str(c);
    }
    s
}

/// Preview `rules` (a draft, possibly with disabled rules) on an HTML page.
pub fn preview(
    rules: &[Rule],
    settings: SiteSettings,
    html: &str,
    url: &str,
) -> Result<Preview, Vec<RuleError>> {
    let compiled = compile_all(rules, settings)?;
    let page = load_page(compiled, html, url)?;
    let dom = Dom::from_node(&page.customer, &page_limits())
        .map_err(|e| vec![RuleError::Page(e.to_string())])?;
    let all = dom.root().map(|r| dom.subtree(r)).unwrap_or_default();
    let mut matcher = Matcher::default();
    let mut matches = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        let applies = r.enabled
            && r.url
                .as_deref()
                .filter(|u| !u.trim().is_empty())
                .is_none_or(|u| UrlPattern::new(u.trim()).is_ok_and(|p| p.matches(url)));
        let mut count = 0;
        let mut elements = Vec::new();
        if applies {
            if let Ok(sel) = select::parse(&r.selector) {
                for &s in &all {
                    if matcher.matches(&dom, s, &sel) {
                        count += 1;
                        if elements.len() < PREVIEW_ELEMENTS {
                            elements.push(describe(&dom, s));
                        }
                    }
                }
            }
        }
        matches.push(RuleMatches {
            rule_index: i,
            selector: r.selector.clone(),
            action: r.action,
            count,
            elements,
        });
    }
    Ok(Preview {
        customer_html: to_html(&page.customer, true),
        agent_html: to_html(&page.agent.root, true),
        matches,
    })
}

/// The result of one test case file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseResult {
    /// The case file's name.
    pub name: String,
    /// Empty when the case passed.
    pub failures: Vec<String>,
}

impl CaseResult {
    /// Whether every expectation held.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// The results of [`run_tests`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestReport {
    pub cases: Vec<CaseResult>,
}

impl TestReport {
    /// Number of passing cases.
    pub fn passed(&self) -> usize {
        self.cases.iter().filter(|c| c.passed()).count()
    }
    /// Number of failing cases.
    pub fn failed(&self) -> usize {
        self.cases.len() - self.passed()
    }
    /// Whether every case passed (and there was at least one).
    pub fn ok(&self) -> bool {
        !self.cases.is_empty() && self.failed() == 0
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RulesSpec {
    File(String),
    Inline(RulePack),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    #[serde(default)]
    masked: Vec<String>,
    #[serde(default)]
    blocked: Vec<String>,
    #[serde(default)]
    disabled: Vec<String>,
    #[serde(default)]
    not_masked: Vec<String>,
}

fn default_url() -> String {
    "https://example.com/".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    rules: RulesSpec,
    #[serde(default)]
    html: Option<String>,
    #[serde(default)]
    html_file: Option<String>,
    #[serde(default = "default_url")]
    url: String,
    #[serde(default)]
    expect: Expect,
    #[serde(default)]
    description: String,
}

fn read(path: &Path) -> Result<String, RuleError> {
    std::fs::read_to_string(path).map_err(|e| RuleError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// Run every `*.yaml` / `*.yml` test case in `dir` (not recursive, sorted
/// by name). A case that cannot be read or parsed is a failed case; only an
/// unreadable directory is an `Err`.
///
/// Case format: `{rules: FILE | inline pack, html: "..." | html_file: FILE,
/// url, expect: {masked, blocked, disabled, not_masked: [selectors]}}`;
/// files are relative to the case file. Each expected selector must match
/// at least one element, and every element it matches must be in that state.
pub fn run_tests(dir: &Path) -> Result<TestReport, RuleError> {
    let entries = std::fs::read_dir(dir).map_err(|e| RuleError::Io {
        path: dir.display().to_string(),
        message: e.to_string(),
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|x| x.to_str())
                    .is_some_and(|x| x == "yaml" || x == "yml")
        })
        .collect();
    files.sort();
    let mut report = TestReport::default();
    for f in files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let failures = match run_case(&f) {
            Ok(fails) => fails,
            Err(errs) => errs.iter().map(|e| e.to_string()).collect(),
        };
        report.cases.push(CaseResult { name, failures });
    }
    Ok(report)
}

fn run_case(path: &Path) -> Result<Vec<String>, Vec<RuleError>> {
    let base = path.parent().unwrap_or(Path::new("."));
    let text = read(path).map_err(|e| vec![e])?;
    let case: Case = serde_norway::from_str(&text).map_err(|e| {
        vec![RuleError::Io {
            path: path.display().to_string(),
            message: format!("invalid test case: {e}"),
        }]
    })?;
    let _ = &case.description;
    let pack = match &case.rules {
        RulesSpec::File(f) => check_pack(&read(&base.join(f)).map_err(|e| vec![e])?)?,
        RulesSpec::Inline(p) => {
            let errs = CompiledRules::validate_all(&p.rules);
            if !errs.is_empty() {
                return Err(errs);
            }
            p.clone()
        }
    };
    let html = match (&case.html, &case.html_file) {
        (Some(h), None) => h.clone(),
        (None, Some(f)) => read(&base.join(f)).map_err(|e| vec![e])?,
        _ => {
            return Err(vec![RuleError::Io {
                path: path.display().to_string(),
                message: "a test case needs exactly one of `html` and `html_file`".into(),
            }])
        }
    };
    let rules = compile_all(&pack.rules, pack.settings.unwrap_or_default())?;
    let page = load_page(rules, &html, &case.url)?;
    let dom = Dom::from_node(&page.customer, &page_limits())
        .map_err(|e| vec![RuleError::Page(e.to_string())])?;
    let all = dom.root().map(|r| dom.subtree(r)).unwrap_or_default();
    let mut matcher = Matcher::default();
    let mut failures = Vec::new();
    let groups: [(&str, &Vec<String>); 4] = [
        ("masked", &case.expect.masked),
        ("blocked", &case.expect.blocked),
        ("disabled", &case.expect.disabled),
        ("not_masked", &case.expect.not_masked),
    ];
    for (what, sels) in groups {
        for sel in sels {
            let parsed = match select::parse(sel) {
                Ok(p) => p,
                Err(e) => {
                    failures.push(format!(
                        "expect.{what}: invalid selector `{sel}` at {}:{}: {}",
                        e.line, e.column, e.message
                    ));
                    continue;
                }
            };
            let hits: Vec<Slot> = all
                .iter()
                .copied()
                .filter(|&s| matcher.matches(&dom, s, &parsed))
                .collect();
            if hits.is_empty() {
                failures.push(format!(
                    "expect.{what}: `{sel}` matches no element of the page"
                ));
                continue;
            }
            for s in hits {
                let id = dom.node(s).id;
                let st = page.rewriter.node_state(id).unwrap_or_default();
                let ok = match what {
                    "masked" => st.masked,
                    "blocked" => st.blocked,
                    "disabled" => st.disabled,
                    _ => !st.masked && !st.blocked,
                };
                if !ok {
                    let verb = if what == "not_masked" {
                        "is masked or blocked".to_string()
                    } else {
                        format!("is not {what}")
                    };
                    failures.push(format!(
                        "expect.{what}: `{sel}` element {} {verb}",
                        describe(&dom, s)
                    ));
                }
            }
        }
    }
    Ok(failures)
}
