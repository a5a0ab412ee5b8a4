//! The rules tooling (CLI and editor back end): pack checks, HTML apply,
//! YAML rule tests, previews — and the shipped packs with their test cases.

use cobrowse::rules::tooling::{apply_to_html, check_pack, preview, run_tests};
use cobrowse::rules::{Action, RuleError, RulePack, SiteSettings};
use std::path::Path;

fn repo(p: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

#[test]
fn shipped_packs_are_valid_and_round_trip() {
    for f in ["rules/default.yaml", "rules/pci.yaml", "rules/pii.yaml"] {
        let text = std::fs::read_to_string(repo(f)).unwrap();
        let pack = check_pack(&text).unwrap_or_else(|e| panic!("{f}: {e:?}"));
        assert!(!pack.rules.is_empty());
        assert_eq!(RulePack::from_yaml(&pack.to_yaml()).unwrap(), pack, "{f}");
    }
}

#[test]
fn shipped_rule_tests_pass() {
    let report = run_tests(&repo("rules/tests")).unwrap();
    for c in &report.cases {
        assert!(c.passed(), "{}: {:?}", c.name, c.failures);
    }
    assert!(report.ok() && report.cases.len() >= 4, "{report:?}");
}

#[test]
fn run_tests_reports_failures_with_messages() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.yaml"),
        "rules: {version: 1, rules: [{selector: '.x', action: mask}]}\nhtml: '<p class=x>a</p><p id=y>b</p>'\nexpect: {masked: ['#y', '.nothing'], not_masked: ['.x']}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("b.yaml"),
        "rules: missing.yaml\nhtml: '<p>'\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("c.yml"), "html: 1\nbogus: true\n").unwrap();
    let report = run_tests(dir.path()).unwrap();
    assert_eq!(report.cases.len(), 3);
    assert_eq!(report.failed(), 3);
    let a = &report.cases[0].failures;
    assert!(
        a.iter()
            .any(|m| m.contains("`#y` element p#y is not masked")),
        "{a:?}"
    );
    assert!(
        a.iter()
            .any(|m| m.contains("`.nothing` matches no element")),
        "{a:?}"
    );
    assert!(
        a.iter().any(|m| m.contains("`.x` element p.x is masked")),
        "{a:?}"
    );
    assert!(
        report.cases[1].failures[0].contains("missing.yaml"),
        "{:?}",
        report.cases[1]
    );
    assert!(
        report.cases[2].failures[0].contains("invalid test case"),
        "{:?}",
        report.cases[2]
    );
    assert!(matches!(
        run_tests(&dir.path().join("nope")),
        Err(RuleError::Io { .. })
    ));
}

#[test]
fn check_pack_lists_every_error() {
    let yaml = "version: 1\nrules:\n  - {selector: 'a:hover', action: mask}\n  - {selector: 'p', action: mask, url: '/a/[b'}\n  - {selector: '', action: block}\n";
    let errs = check_pack(yaml).unwrap_err();
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(errs[0].to_string().contains("rule 0") && errs[0].to_string().contains(":hover"));
    assert!(matches!(errs[1], RuleError::UrlPattern { index: 1, .. }));
    assert!(matches!(errs[2], RuleError::Selector { index: 2, .. }));
    assert!(matches!(
        check_pack("version: 2\n").unwrap_err()[0],
        RuleError::Version(2)
    ));
    assert!(matches!(
        check_pack("rules: [{selector: a, action: hide}]").unwrap_err()[0],
        RuleError::Yaml(_)
    ));
}

#[test]
fn apply_to_html_rewrites_without_scripts() {
    let pack = RulePack::from_yaml(cobrowse::rules::DEFAULT_PACK_YAML).unwrap();
    let html = "<form onsubmit=\"steal()\"><input type=password value=pw123><button>Go</button></form><script>alert(1)</script><a href=\"javascript:x()\">j</a>";
    let out = apply_to_html(&pack, html, "https://x.example/").unwrap();
    assert!(
        !out.contains("pw123")
            && !out.contains("alert")
            && !out.contains("steal")
            && !out.contains("javascript"),
        "{out}"
    );
    assert!(
        out.contains("value=\"••••••••\"")
            && out.contains("data-cobrowse-masked")
            && out.contains("<button data-cobrowse-disabled=\"\" disabled=\"\">Go</button>"),
        "{out}"
    );
}

#[test]
fn preview_lists_matches_per_rule() {
    let rules = vec![
        cobrowse::rules::Rule {
            selector: "input.cc".into(),
            action: Action::Mask,
            url: None,
            description: String::new(),
            enabled: true,
        },
        cobrowse::rules::Rule {
            selector: ".none".into(),
            action: Action::Block,
            url: None,
            description: String::new(),
            enabled: true,
        },
        cobrowse::rules::Rule {
            selector: "p".into(),
            action: Action::Mask,
            url: Some("/other/*".into()),
            description: String::new(),
            enabled: true,
        },
    ];
    let p = preview(
        &rules,
        SiteSettings::default(),
        "<input id=card class=cc value=4111><p>hi</p><script>x()</script>",
        "https://s.example/pay",
    )
    .unwrap();
    assert_eq!(p.matches.len(), 3);
    assert_eq!(
        (p.matches[0].count, p.matches[0].elements.clone()),
        (1, vec!["input#card.cc".to_string()])
    );
    assert_eq!(p.matches[1].count, 0);
    assert_eq!(p.matches[2].count, 0, "rule for another URL");
    assert!(p.customer_html.contains("value=\"4111\"") && !p.customer_html.contains("x()"));
    assert!(!p.agent_html.contains("4111") && p.agent_html.contains("<p>hi</p>"));
    let bad = vec![cobrowse::rules::Rule {
        selector: "a >".into(),
        ..rules[0].clone()
    }];
    assert!(preview(&bad, SiteSettings::default(), "", "/").is_err());
}
