//! Adapter from `cobrowse rules check|apply|test` to the engine's
//! policy-as-code tooling (`rules::tooling`): reads the files, calls the
//! engine, and turns its results into printable text. No rule logic here.

use cobrowse::rules::tooling;
use std::path::Path;

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn listing(path: &Path, errors: &[cobrowse::rules::RuleError]) -> String {
    let mut out = format!("{}: {} error(s)", path.display(), errors.len());
    for e in errors {
        out.push_str(&format!("\n  {e}"));
    }
    out
}

/// Validate a rule pack; `Ok` is a one-line summary, `Err` lists every error.
pub fn check(file: &Path) -> Result<String, String> {
    let pack = tooling::check_pack(&read(file)?).map_err(|errs| listing(file, &errs))?;
    Ok(format!(
        "{}: ok, {} rule(s)",
        file.display(),
        pack.rules.len()
    ))
}

/// The page as the agent would get it at `url` under the pack, as HTML.
pub fn apply(file: &Path, page: &Path, url: &str) -> Result<String, String> {
    let pack = tooling::check_pack(&read(file)?).map_err(|errs| listing(file, &errs))?;
    tooling::apply_to_html(&pack, &read(page)?, url).map_err(|errs| listing(page, &errs))
}

/// Run the YAML test cases of a directory; `Ok((report, all_passed))`.
pub fn test(dir: &Path) -> Result<(String, bool), String> {
    let report = tooling::run_tests(dir).map_err(|e| e.to_string())?;
    let mut out = String::new();
    for case in &report.cases {
        if case.failures.is_empty() {
            out.push_str(&format!("ok    {}\n", case.name));
        } else {
            out.push_str(&format!("FAIL  {}\n", case.name));
            for f in &case.failures {
                out.push_str(&format!("        {f}\n"));
            }
        }
    }
    if report.cases.is_empty() {
        out.push_str(&format!("no test cases (*.yaml) in {}\n", dir.display()));
    }
    out.push_str(&format!(
        "{} passed, {} failed",
        report.passed(),
        report.failed()
    ));
    Ok((out, report.ok()))
}
