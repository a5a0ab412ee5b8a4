//! The command line (design §7), run as the built binary against a temp database.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn cobrowse(db: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cobrowse"))
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("COBROWSE_DB")
        .env_remove("COBROWSE_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run cobrowse");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    } else {
        drop(child.stdin.take());
    }
    child.wait_with_output().expect("wait")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test]
async fn users_and_tokens_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cli.db");
    let o = cobrowse(&db, &["user", "add", "carol", "--role", "agent"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let generated = stdout(&o)
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .map(str::to_owned);
    assert_eq!(generated.as_deref().map(str::len), Some(20));

    let o = cobrowse(
        &db,
        &["user", "add", "dave", "--role", "admin", "--password-stdin"],
        Some("dave-secret-1\n"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stdout(&o).contains("password:"));

    // Duplicate and bad role are clear errors.
    let o = cobrowse(&db, &["user", "add", "carol", "--role", "agent"], None);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    let o = cobrowse(&db, &["user", "add", "erin", "--role", "boss"], None);
    assert!(!o.status.success());
    let o = cobrowse(
        &db,
        &["user", "add", "erin", "--role", "agent", "--password-stdin"],
        Some("short\n"),
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("at least 8"), "{}", stderr(&o));

    let o = cobrowse(
        &db,
        &["user", "passwd", "dave", "--password-stdin"],
        Some("dave-secret-2\n"),
    );
    assert!(o.status.success(), "{}", stderr(&o));

    let o = cobrowse(&db, &["token", "create", "carol"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let token = stdout(&o).lines().last().unwrap().trim().to_owned();
    assert!(token.starts_with("cbt_"));
    let o = cobrowse(&db, &["token", "create", "nobody"], None);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not found"));

    // The store sees what the CLI wrote: login works, the token maps to carol.
    let store = cobrowse::store::Store::open(&db).await.unwrap();
    assert!(matches!(
        store.verify_login("dave", "dave-secret-2").await.unwrap(),
        cobrowse::store::LoginOutcome::Ok(_)
    ));
    assert_eq!(
        store.user_by_token(&token).await.unwrap().unwrap().name,
        "carol"
    );
    let o = cobrowse(&db, &["token", "revoke", "carol"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(store.user_by_token(&token).await.unwrap().is_none());
}

#[tokio::test]
async fn sites_and_rules_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cli.db");
    let o = cobrowse(
        &db,
        &[
            "site",
            "add",
            "shop",
            "--origin",
            "https://Shop.Example.com/",
            "--origin",
            "http://localhost:3000",
        ],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).lines().last().unwrap().starts_with("cbk_"));
    let o = cobrowse(&db, &["site", "list"], None);
    assert_eq!(
        stdout(&o).trim(),
        "shop\tshop\thttps://shop.example.com http://localhost:3000"
    );
    let o = cobrowse(&db, &["site", "add", "bad", "--origin", "ftp://x"], None);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not a valid origin"));

    // A new site starts with the default pack.
    let o = cobrowse(
        &db,
        &["rules", "export", "--site", "shop", "--published"],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let pack = cobrowse::rules::RulePack::from_yaml(&stdout(&o)).unwrap();
    assert!(pack.rules[0].selector.starts_with("input[type=password]"));

    let file = dir.path().join("pack.yaml");
    std::fs::write(
        &file,
        "version: 1\nrules:\n  - selector: \".balance\"\n    action: mask\n    url: \"/account/*\"\n",
    )
    .unwrap();
    let o = cobrowse(
        &db,
        &["rules", "import", file.to_str().unwrap(), "--site", "shop"],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = cobrowse(&db, &["rules", "export", "--site", "shop"], None);
    let draft = cobrowse::rules::RulePack::from_yaml(&stdout(&o)).unwrap();
    assert_eq!(draft.rules.len(), 1);
    assert_eq!(draft.rules[0].url.as_deref(), Some("/account/*"));
    // Not published yet.
    let o = cobrowse(
        &db,
        &["rules", "export", "--site", "shop", "--published"],
        None,
    );
    assert_eq!(
        cobrowse::rules::RulePack::from_yaml(&stdout(&o))
            .unwrap()
            .rules
            .len(),
        2
    );

    // A broken file changes nothing.
    std::fs::write(
        &file,
        "version: 1\nrules:\n  - selector: x\n    action: explode\n",
    )
    .unwrap();
    let o = cobrowse(
        &db,
        &[
            "rules",
            "import",
            file.to_str().unwrap(),
            "--site",
            "shop",
            "--publish",
        ],
        None,
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("invalid rule pack"), "{}", stderr(&o));
    let o = cobrowse(&db, &["rules", "export", "--site", "shop"], None);
    assert_eq!(
        cobrowse::rules::RulePack::from_yaml(&stdout(&o))
            .unwrap()
            .rules
            .len(),
        1
    );

    // Import with --publish makes a new version; export round-trips.
    std::fs::write(
        &file,
        "version: 1\nrules:\n  - selector: \"#card\"\n    action: block\n",
    )
    .unwrap();
    let o = cobrowse(
        &db,
        &[
            "rules",
            "import",
            file.to_str().unwrap(),
            "--site",
            "shop",
            "--publish",
        ],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("version 2"), "{}", stdout(&o));
    let o = cobrowse(
        &db,
        &["rules", "export", "--site", "shop", "--published"],
        None,
    );
    let published = cobrowse::rules::RulePack::from_yaml(&stdout(&o)).unwrap();
    assert_eq!(published.rules[0].selector, "#card");
    let o = cobrowse(&db, &["rules", "export", "--site", "missing"], None);
    assert!(!o.status.success());
}

#[tokio::test]
async fn serve_rejects_bad_configuration_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cli.db");
    let o = cobrowse(&db, &["serve", "--waiting-timeout", "soon"], None);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("soon"), "{}", stderr(&o));
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[timeouts]\nwaiting = \"0s\"\n").unwrap();
    let o = cobrowse(&db, &["--config", cfg.to_str().unwrap(), "serve"], None);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("timeouts.waiting"), "{}", stderr(&o));
    std::fs::write(&cfg, "colour = \"blue\"\n").unwrap();
    let o = cobrowse(&db, &["--config", cfg.to_str().unwrap(), "serve"], None);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("colour"), "{}", stderr(&o));
}

#[tokio::test]
async fn rules_check_apply_and_test_work_on_files() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("unused.db");
    let root = env!("CARGO_MANIFEST_DIR");
    let default = format!("{root}/rules/default.yaml");
    let o = cobrowse(&db, &["rules", "check", &default], None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("ok, 2 rule(s)"));

    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "version: 1\nrules:\n  - selector: \"input[[[\"\n    action: mask\n  - selector: \"p\"\n    action: mask\n    url: \"[\"\n",
    )
    .unwrap();
    let o = cobrowse(&db, &["rules", "check", bad.to_str().unwrap()], None);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("2 error(s)"), "{err}");
    assert!(err.contains("rule 0"), "{err}");
    assert!(err.contains("rule 1"), "{err}");

    let page = dir.path().join("page.html");
    std::fs::write(
        &page,
        "<html><body><form><input type=password value=hunter2><button>Pay</button></form></body></html>",
    )
    .unwrap();
    let o = cobrowse(
        &db,
        &[
            "rules",
            "apply",
            &default,
            page.to_str().unwrap(),
            "--url",
            "https://shop.example/pay",
        ],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let html = stdout(&o);
    assert!(!html.contains("hunter2"), "{html}");
    assert!(html.contains("data-cobrowse-masked"), "{html}");
    assert!(html.contains("data-cobrowse-disabled"), "{html}");

    let o = cobrowse(
        &db,
        &["rules", "test", &format!("{root}/rules/tests")],
        None,
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("0 failed"));
    // A failing case makes the command fail.
    let cases = dir.path().join("cases");
    std::fs::create_dir(&cases).unwrap();
    std::fs::write(
        cases.join("wrong.yaml"),
        format!(
            "rules: {default}\nhtml: \"<p class=x>hi</p>\"\nurl: \"https://a.example/\"\nexpect:\n  masked: [\"p.x\"]\n"
        ),
    )
    .unwrap();
    let o = cobrowse(&db, &["rules", "test", cases.to_str().unwrap()], None);
    assert!(!o.status.success());
    assert!(stdout(&o).contains("FAIL  wrong.yaml"), "{}", stdout(&o));
    assert!(!db.exists(), "offline commands do not create a database");
}

/// Read the child's stdout until a line contains `needle`; returns that line.
fn read_until(out: &mut impl std::io::BufRead, needle: &str, seen: &mut String) -> String {
    loop {
        let mut line = String::new();
        let n = out.read_line(&mut line).expect("read stdout");
        assert!(n > 0, "stdout closed before `{needle}`; got:\n{seen}");
        seen.push_str(&line);
        if line.contains(needle) {
            return line;
        }
    }
}

#[tokio::test]
async fn serve_prints_the_admin_password_once_and_stops_on_sigterm() {
    use crate::common::{WsClient, SOON};
    use std::io::BufReader;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("serve.db");
    let start = || {
        Command::new(env!("CARGO_BIN_EXE_cobrowse"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--waiting-timeout",
                "10m",
            ])
            .arg("--db")
            .arg(&db)
            .env_remove("COBROWSE_LISTEN")
            .env_remove("COBROWSE_PUBLIC_URL")
            .env_remove("COBROWSE_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start serve")
    };
    let mut child = start();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    let pw = read_until(&mut out, "password:", &mut seen);
    assert_eq!(pw.trim().trim_start_matches("password:").trim().len(), 20);
    let line = read_until(&mut out, "listening on", &mut seen);
    let base = line.split_whitespace().nth(3).expect("url").to_owned();
    assert!(
        base.starts_with("http://127.0.0.1:") && !base.ends_with(":0"),
        "{base}"
    );

    let http = reqwest::Client::new();
    assert_eq!(
        http.get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "ok"
    );
    let v: serde_json::Value = http
        .post(format!("{base}/api/v1/sessions"))
        .json(&serde_json::json!({"site": "demo", "url": format!("{base}/demo/")}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ws = base.replace("http://", "ws://");
    let mut c = WsClient::connect(
        &format!(
            "{ws}/ws/customer/{}?token={}",
            v["id"].as_str().unwrap(),
            v["token"].as_str().unwrap()
        ),
        None,
    )
    .await
    .unwrap();
    c.recv_type("rules").await;

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    assert_eq!(c.recv_ended().await, "server_shutdown");
    c.expect_closed(SOON).await;
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
    let store = cobrowse::store::Store::open(&db).await.unwrap();
    let row = store
        .history_of(v["id"].as_str().unwrap())
        .await
        .unwrap()
        .remove(0);
    assert_eq!(row.end_reason.as_deref(), Some("server_shutdown"));

    // A restart prints no password: the admin exists already.
    let mut child = start();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    read_until(&mut out, "listening on", &mut seen);
    assert!(!seen.contains("password"), "{seen}");
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
}

/// Issue 8 item 7: `cobrowse rules apply` on 5,000 nested `<div>`s used to
/// abort with a stack overflow. The tree is flattened below 512 levels:
/// the command succeeds, keeps the content and masks the deep password.
#[test]
fn rules_apply_on_5000_nested_divs_does_not_overflow_the_stack() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("unused.db");
    let default = format!("{}/rules/default.yaml", env!("CARGO_MANIFEST_DIR"));
    let page = dir.path().join("deep.html");
    std::fs::write(
        &page,
        format!(
            "<html><body>{}<input type=password value=deep-pw-5000><p>deep-text-5000</p>{}</body></html>",
            "<div>".repeat(5000),
            "</div>".repeat(5000)
        ),
    )
    .unwrap();
    let o = cobrowse(
        &db,
        &[
            "rules",
            "apply",
            &default,
            page.to_str().unwrap(),
            "--url",
            "https://shop.example/",
        ],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let html = stdout(&o);
    assert!(html.contains("deep-text-5000"), "content kept");
    assert!(!html.contains("deep-pw-5000"), "deep password masked");
}
