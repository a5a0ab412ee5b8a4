//! End to end in Chromium: an admin signs in, opens the element picker on
//! the demo checkout from the rules page, picks the name field, previews the
//! draft, publishes it, and a running co-browse session (customer in a real
//! browser with the snippet, agent on a real WebSocket) switches at once.
//! With `COBROWSE_SCREENSHOTS=1` it also saves the editor screenshots
//! `docs/editor-rules.png` and `docs/editor-preview.png`.

use crate::common::{spawn_app, SOON};
use crate::e2e::browser::{Browser, Driver};
use crate::wait_for;
use fantoccini::Locator;
use serde_json::Value;

/// Save a screenshot as `docs/NAME` when `COBROWSE_SCREENSHOTS` is set
/// (so ordinary test runs leave the committed images alone).
async fn save_screenshot(b: &Browser, name: &str) {
    if std::env::var_os("COBROWSE_SCREENSHOTS").is_none() {
        return;
    }
    let png = b.client.screenshot().await.unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs")
        .join(name);
    std::fs::write(&path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

async fn click(b: &Browser, css: &str) {
    b.client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

async fn path_of(b: &Browser) -> String {
    b.client.current_url().await.unwrap().path().to_owned()
}

#[tokio::test]
async fn pick_preview_publish_and_see_it_in_a_live_session() {
    let app = spawn_app().await;
    let driver = Driver::start();
    let admin = Browser::launch(&driver, 1440, 1300).await;
    let customer = Browser::launch(&driver, 1100, 800).await;

    // 1. The admin signs in through the form and lands on the rules page.
    admin
        .client
        .goto(&app.url("/login?next=/admin/sites/demo/rules"))
        .await
        .unwrap();
    admin
        .client
        .find(Locator::Id("name"))
        .await
        .unwrap()
        .send_keys("admin")
        .await
        .unwrap();
    admin
        .client
        .find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(&app.admin_password)
        .await
        .unwrap();
    click(&admin, "form button[type=submit]").await;
    wait_for!("the rules page", {
        let p = path_of(&admin).await;
        if p == "/admin/sites/demo/rules" {
            Ok(())
        } else {
            Err(p)
        }
    });

    // 2. "Pick on site" (same tab here) opens the demo checkout with a signed token.
    admin
        .eval::<Value>("document.querySelector('#picker form').removeAttribute('target');")
        .await;
    click(&admin, "#picker form button[type=submit]").await;
    wait_for!("the picker overlay on the demo checkout", {
        let ok: bool = admin
            .try_eval(
                "var h = document.querySelector('cobrowse-picker'); \
                 return location.pathname === '/demo/checkout' && !!(h && h.shadowRoot);",
            )
            .await?;
        if ok {
            Ok(())
        } else {
            Err("no picker yet".into())
        }
    });
    // A real click on the name field is captured by the picker, not the page.
    admin
        .eval::<Value>("document.getElementById('name').scrollIntoView({block: 'center'});")
        .await;
    click(&admin, "#name").await;
    let host = admin
        .client
        .find(Locator::Css("cobrowse-picker"))
        .await
        .unwrap();
    let shadow = host.shadow_root().await.unwrap();
    let proposal: String = wait_for!("a proposed selector", {
        let v: String = admin
            .try_eval("return document.querySelector('cobrowse-picker').shadowRoot.querySelector('[data-selector]').value;")
            .await?;
        if v.is_empty() {
            Err("empty".into())
        } else {
            Ok(v)
        }
    });
    assert_eq!(proposal, "#name", "a unique, stable id is proposed");
    let count: String = admin
        .eval("return document.querySelector('cobrowse-picker').shadowRoot.querySelector('[data-count]').textContent;")
        .await;
    assert_eq!(count, "Matches 1 element on this page");
    shadow
        .find(Locator::Css("[data-add]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for!("the picker's confirmation", {
        let m: String = admin
            .try_eval("var m = document.querySelector('cobrowse-picker').shadowRoot.querySelector('[data-msg]'); return m.className + '|' + m.textContent;")
            .await?;
        if m.starts_with("msg ok|Rule 3 added") {
            Ok(())
        } else {
            Err(m)
        }
    });
    let site = app.state.store.site_by_key("demo").await.unwrap().unwrap();
    let draft = app.state.store.draft(site.id).await.unwrap().unwrap();
    assert_eq!(draft.rules.len(), 3);
    assert_eq!(draft.rules[2].selector, "#name");
    assert_eq!(draft.rules[2].description, "picked on /demo/checkout");
    assert!(draft.rules[2].enabled);

    // The rules page lists it (screenshot for the docs).
    admin
        .client
        .goto(&app.url("/admin/sites/demo/rules"))
        .await
        .unwrap();
    let html = admin.client.source().await.unwrap();
    assert!(html.contains("picked on /demo/checkout"));
    save_screenshot(&admin, "editor-rules.png").await;

    // 3. Preview the draft on the demo checkout's HTML.
    let page = reqwest::get(app.url("/demo/checkout"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    admin
        .client
        .goto(&app.url("/admin/sites/demo/preview"))
        .await
        .unwrap();
    admin
        .client
        .execute(
            "document.getElementById('html').value = arguments[0];",
            vec![Value::String(page.replace(
                "placeholder=\"Kari Nordmann\"",
                "placeholder=\"Kari Nordmann\" value=\"Ada Lovelace\"",
            ))],
        )
        .await
        .unwrap();
    click(&admin, ".preview-form button[type=submit]").await;
    wait_for!("the preview frames", {
        let n: u64 = admin
            .try_eval("return document.querySelectorAll('.side-by-side iframe').length;")
            .await?;
        if n == 2 {
            Ok(())
        } else {
            Err(format!("{n} frames"))
        }
    });
    let agent_view: String = admin
        .eval("return document.querySelector('iframe[title^=\"The page as the agent\"]').getAttribute('srcdoc');")
        .await;
    assert!(
        !agent_view.contains("Ada Lovelace"),
        "the picked field is masked in the agent view"
    );
    assert!(agent_view.contains("data-cobrowse-masked"));
    let row: String = admin
        .eval("return Array.from(document.querySelectorAll('table.matches tr')).map(r => r.textContent.replace(/\\s+/g, ' ')).find(t => t.includes('#name')) || '';")
        .await;
    assert!(
        row.contains("mask") && row.contains(" 1 "),
        "rule → elements: {row}"
    );
    save_screenshot(&admin, "editor-preview.png").await;

    // 4. A running session: the customer starts it on the checkout, an agent joins.
    customer
        .client
        .goto(&app.url("/demo/checkout"))
        .await
        .unwrap();
    wait_for!("the snippet", {
        let ok: bool = customer
            .try_eval("return !!(window.cobrowse && window.cobrowse.start);")
            .await?;
        if ok {
            Ok(())
        } else {
            Err("no snippet".into())
        }
    });
    let started: Value = customer
        .eval_async("var done = arguments[arguments.length - 1]; window.cobrowse.start().then(done, function (e) { done({error: String(e)}); });")
        .await;
    let id = started["id"]
        .as_str()
        .unwrap_or_else(|| panic!("start failed: {started}"))
        .to_owned();
    let mut agent = app.agent(&id).await;
    agent.recv_type("snapshot").await;
    customer
        .eval::<Value>("document.getElementById('name').scrollIntoView({block: 'center'});")
        .await;
    let name = customer.client.find(Locator::Id("name")).await.unwrap();
    name.click().await.unwrap();
    name.send_keys("Ada").await.unwrap();
    agent
        .recv_until(|m| m.to_string().contains("\"Ada\""), SOON)
        .await;

    // 5. Publish from the editor: the agent receives the re-masked field at once.
    admin
        .client
        .goto(&app.url("/admin/sites/demo/publish"))
        .await
        .unwrap();
    let diff = admin.client.source().await.unwrap();
    assert!(diff.contains("class=\"diff-added\"") && diff.contains("#name"));
    admin
        .client
        .find(Locator::Id("comment"))
        .await
        .unwrap()
        .send_keys("mask the name field")
        .await
        .unwrap();
    click(&admin, "form[action$='/publish'] button[type=submit]").await;
    wait_for!("the publish confirmation", {
        let t: String = admin
            .try_eval("var f = document.querySelector('.flash'); return f ? f.textContent : '';")
            .await?;
        if t.contains("Published version 2") {
            Ok(())
        } else {
            Err(t)
        }
    });
    let remasked = agent
        .recv_until(
            |m| m["t"] == "mutations" && m.to_string().contains("data-cobrowse-masked"),
            SOON,
        )
        .await;
    assert!(!remasked.to_string().contains("Ada"), "{remasked}");
    // Typing on goes on masked: no later frame carries the clear value.
    name.send_keys(" Lovelace").await.unwrap();
    let next = agent
        .recv_until(
            |m| m["t"] == "mutations" && m.to_string().contains("\"op\":\"value\""),
            SOON,
        )
        .await;
    let after: Vec<String> = agent
        .seen
        .iter()
        .skip_while(|m| *m != &remasked)
        .map(|m| m.to_string())
        .collect();
    assert!(
        after
            .iter()
            .all(|m| !m.contains("Lovelace") && !m.contains("Ada")),
        "{next}"
    );

    admin.close().await;
    customer.close().await;
}
