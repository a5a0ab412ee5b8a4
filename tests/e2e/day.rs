//! The agent's day and the customer's tabs in Chromium (issue 9 item 4):
//! the bar resets when a session ends and shows the page's path; closing
//! the viewer without Exit, coming back and resuming, or ending the session
//! left behind (`agent_left`) and taking the next customer at once; a
//! customer's second tab joins the session and the agent sees the tab in
//! front; ending from one tab ends it in all.

use super::stage::{Stage, REPLICA};
use crate::wait_for;
use fantoccini::wd::WindowHandle;
use fantoccini::Locator;
use serde_json::Value;

/// Script prefix binding `p` to a widget element (in its shadow root).
fn widget_el(role: &str) -> String {
    format!(
        "var p = document.querySelector('[data-cobrowse-widget]').shadowRoot.querySelector('[data-role=\"{role}\"]');"
    )
}

/// Wait until a widget element's text contains `needle`; returns the text.
async fn widget_text_contains(s: &Stage, role: &str, needle: &str) -> String {
    let script = format!("{} return p ? p.textContent : '';", widget_el(role));
    wait_for!(format!("{needle:?} in the widget's {role}"), {
        let t: String = s.customer.try_eval(&script).await?;
        if t.contains(needle) {
            Ok(t)
        } else {
            Err(t)
        }
    })
}

/// Wait until a script run in the agent's window returns `true`.
async fn agent_until(s: &Stage, what: &str, script: &str) {
    wait_for!(what, {
        let ok: bool = s.agent.try_eval(script).await?;
        if ok {
            Ok(())
        } else {
            Err(format!("not yet: {script}"))
        }
    });
}

/// The agent's current page path in the bar.
async fn bar_url(s: &Stage) -> Result<String, String> {
    s.agent
        .try_eval("return document.getElementById('page-url').textContent;")
        .await
}

async fn click_agent(s: &Stage, id: &str) {
    s.agent
        .client
        .find(Locator::Id(id))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// The agent closes the viewer's window without Exit and opens `/agent`
/// in a new one.
async fn agent_closes_and_reopens_the_viewer(s: &Stage) {
    let c = &s.agent.client;
    let fresh = c.new_window(false).await.unwrap().handle;
    c.close_window().await.unwrap();
    c.switch_to_window(fresh).await.unwrap();
    c.goto(&format!("{}/agent", s.base)).await.unwrap();
}

#[tokio::test]
async fn the_bar_resets_and_a_closed_viewer_resumes_or_ends_the_session_for_the_next_customer() {
    let s = Stage::new().await;
    let first = s.start_and_join("/demo/").await;

    // Write mode, then the customer ends: nothing of it stays in the bar.
    click_agent(&s, "control-button").await;
    s.customer_answers_consent("allow").await;
    wait_for!("write mode in the viewer", {
        let m = s.agent_mode_try().await?;
        if m == "write" {
            Ok(())
        } else {
            Err(m)
        }
    });
    let path = bar_url(&s).await.unwrap();
    assert!(path.contains("/demo/"), "the bar shows the path: {path:?}");
    s.widget_click("banner-exit").await;
    agent_until(
        &s,
        "the end screen",
        "return !document.getElementById('ended').hidden;",
    )
    .await;
    let bar: Value = s
        .agent
        .eval(
            "var m = document.getElementById('mode-pill'); return { hidden: m.hidden, mode: m.dataset.mode, \
             text: m.textContent, write: document.getElementById('session').classList.contains('write'), \
             url: document.getElementById('page-url').textContent, \
             title: document.getElementById('page-title').textContent, \
             control: document.getElementById('control-button').disabled };",
        )
        .await;
    assert_eq!(bar["hidden"], true, "{bar}");
    assert_eq!(bar["mode"], "pointer", "{bar}");
    assert_eq!(bar["write"], false, "{bar}");
    assert_eq!(bar["url"], "", "{bar}");
    assert_eq!(bar["title"], "", "{bar}");
    assert_eq!(bar["control"], true, "{bar}");
    click_agent(&s, "new-session").await;

    // The next session starts in pointer mode and shows its own path.
    let second = s.start_and_join("/demo/checkout").await;
    assert_ne!(first, second);
    let bar: Value = s
        .agent
        .eval(
            "var m = document.getElementById('mode-pill'); return { hidden: m.hidden, text: m.textContent, \
             write: document.getElementById('session').classList.contains('write') };",
        )
        .await;
    assert_eq!(bar["hidden"], false, "{bar}");
    assert_eq!(bar["text"], "Pointer mode", "{bar}");
    assert_eq!(bar["write"], false, "{bar}");
    wait_for!("the checkout path next to the title", {
        let u = bar_url(&s).await?;
        let t: String = s
            .agent
            .try_eval("return document.getElementById('page-title').textContent;")
            .await?;
        if u.contains("/demo/checkout") && !t.is_empty() {
            Ok(())
        } else {
            Err(format!("{t:?} {u:?}"))
        }
    });

    // The viewer is closed without Exit: the customer learns it at once.
    agent_closes_and_reopens_the_viewer(&s).await;
    widget_text_contains(&s, "banner-text", "reconnecting").await;
    // Coming back offers the session left behind; resume it.
    agent_until(
        &s,
        "the offer to resume",
        "var p = document.getElementById('left-session'); return !!p && !p.hidden;",
    )
    .await;
    let offer: String = s
        .agent
        .eval("return document.getElementById('left-text').textContent;")
        .await;
    let shown = format!("{} {} {}", &second[..3], &second[3..6], &second[6..]);
    assert!(offer.contains(&shown), "{offer}");
    click_agent(&s, "resume-button").await;
    agent_until(
        &s,
        "the resumed session",
        &format!(
            "{REPLICA} return document.getElementById('state-pill').dataset.state === 'active' \
             && !!(d && d.body && d.body.childElementCount);"
        ),
    )
    .await;
    widget_text_contains(&s, "banner-text", "is viewing this page").await;

    // Closed again; this time the agent ends it to take the next customer.
    agent_closes_and_reopens_the_viewer(&s).await;
    agent_until(
        &s,
        "the offer to end",
        "var p = document.getElementById('left-session'); return !!p && !p.hidden;",
    )
    .await;
    click_agent(&s, "leave-button").await;
    agent_until(
        &s,
        "the join form",
        "return !document.getElementById('join').hidden && document.getElementById('left-session').hidden;",
    )
    .await;
    let reason = widget_text_contains(&s, "end-reason", "left").await;
    assert_eq!(reason, "The agent left the co-browse session.");
    assert_eq!(s.customer_session_field("state").await, "ended");

    // …and joins the next customer at once.
    let third = s.start_and_join("/demo/").await;
    assert_ne!(third, second);
    s.finish().await;
}

/// Wait until the agent's bar shows a path for which `pred` holds.
async fn agent_shows(s: &Stage, what: &str, pred: impl Fn(&str) -> bool) {
    wait_for!(what, {
        let u = bar_url(s).await?;
        let replica: bool = s
            .agent
            .try_eval(&format!(
                "{REPLICA} return !!(d && d.body && d.body.childElementCount);"
            ))
            .await?;
        if pred(&u) && replica {
            Ok(())
        } else {
            Err(u)
        }
    });
}

#[tokio::test]
async fn a_second_customer_tab_joins_and_the_agent_sees_the_tab_in_front() {
    let s = Stage::new().await;
    let id = s.start_and_join("/demo/").await;
    let c = &s.customer.client;
    let first: WindowHandle = c.window().await.unwrap();

    // A second tab of the shop: it joins the same session and, being the
    // one in front, is what the agent sees.
    let second = c.new_window(true).await.unwrap().handle;
    c.switch_to_window(second.clone()).await.unwrap();
    c.goto(&format!("{}/demo/checkout", s.base)).await.unwrap();
    wait_for!("the second tab in the session", {
        let v: Value = s
            .customer
            .try_eval("return window.cobrowse && window.cobrowse.session();")
            .await?;
        if v["id"] == id.as_str() && v["state"] == "active" {
            Ok(())
        } else {
            Err(v.to_string())
        }
    });
    agent_shows(&s, "the second tab's page", |u| {
        u.contains("/demo/checkout")
    })
    .await;
    let replica_has = |css: &str| {
        format!(
            "{REPLICA} return !!d.querySelector({});",
            serde_json::to_string(css).unwrap()
        )
    };
    let checkout_form: bool = s.agent.eval(&replica_has("form")).await;
    assert!(checkout_form, "the replica is the checkout page");

    // Back to the first tab: the agent's view follows.
    c.switch_to_window(first.clone()).await.unwrap();
    agent_shows(&s, "the first tab's page again", |u| {
        u.contains("/demo/") && !u.contains("checkout")
    })
    .await;
    // The agent's pointer-mode view is live on the first tab's document.
    s.customer
        .eval::<Value>("document.querySelector('h1').textContent = 'Typed in the first tab';")
        .await;
    wait_for!("the first tab's change in the replica", {
        let t: String = s
            .agent
            .try_eval(&format!(
                "{REPLICA} var h = d.querySelector('h1'); return h ? h.textContent : '';"
            ))
            .await?;
        if t == "Typed in the first tab" {
            Ok(())
        } else {
            Err(t)
        }
    });

    // Ending from the second tab ends it in every tab and for the agent.
    c.switch_to_window(second).await.unwrap();
    agent_shows(&s, "the second tab in front", |u| {
        u.contains("/demo/checkout")
    })
    .await;
    s.widget_click("banner-exit").await;
    agent_until(
        &s,
        "the end screen",
        "return !document.getElementById('ended').hidden;",
    )
    .await;
    c.switch_to_window(first).await.unwrap();
    let reason = widget_text_contains(&s, "end-reason", "ended").await;
    assert_eq!(reason, "You ended the co-browse session.");
    assert_eq!(s.customer_session_field("state").await, "ended");
    s.finish().await;
}
