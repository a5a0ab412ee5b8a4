//! File-driven fixtures: every directory `tests/fixtures/<case>/` holds
//! `page.html`, `rules.yaml` (a rule pack), optionally `url.txt`, and
//! `expected.html` — the agent's HTML (directories without `page.html`,
//! such as `corpus/`, hold other tests' pages). A failing case prints its inputs.
//! `UPDATE_FIXTURES=1` rewrites the expected files (review the diff!).

use cobrowse::rules::tooling::apply_to_html;
use cobrowse::rules::RulePack;
use std::path::Path;

#[test]
fn fixtures_rewrite_as_expected() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() && p.join("page.html").is_file())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 5, "fixtures missing in {}", root.display());
    let update = std::env::var("UPDATE_FIXTURES").is_ok();
    let mut failures = Vec::new();
    for dir in dirs {
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
        let (page, rules) = (read("page.html"), read("rules.yaml"));
        let url = read("url.txt").trim().to_string();
        let url = if url.is_empty() {
            "https://example.com/".to_string()
        } else {
            url
        };
        let pack = RulePack::from_yaml(&rules).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let got = apply_to_html(&pack, &page, &url)
            .unwrap_or_else(|e| panic!("{}: {e:?}", dir.display()));
        if update {
            std::fs::write(dir.join("expected.html"), format!("{got}\n")).unwrap();
            continue;
        }
        let want = read("expected.html");
        if got.trim_end() != want.trim_end() {
            failures.push(format!(
                "fixture {}\n--- url\n{url}\n--- rules.yaml\n{rules}\n--- page.html\n{page}\n--- expected\n{want}\n--- got\n{got}\n",
                dir.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
