//! Layout kept (issue 9 item 2), in Chromium on the corpus page
//! `layout.html`: a blocked widget keeps its box size (the paragraph below
//! it sits where it does on the customer's page), the replica follows the
//! customer's scroll at once on a `scroll-behavior: smooth` page (never
//! passing through in-between positions), and fixed, sticky and inner
//! scrolled elements sit where the customer sees them. Uses the corpus
//! fixture server and pixel comparison (`corpus`).

use super::corpus::{assert_replica_looks_like_page_but, Corpus, Rect};
use super::stage::{Stage, REPLICA};
use crate::wait_for;
use cobrowse::rules::{Action, Rule, RulePack};
use serde_json::Value;

/// Publish a `block` rule for the page's third-party widget on the corpus site.
async fn block_the_widget(c: &Corpus) {
    let store = &c.stage.app().state.store;
    let site = store.site_by_key("corpus").await.unwrap().unwrap();
    let current = store.published(site.id).await.unwrap().unwrap();
    let mut rules = current.rules.clone();
    rules.push(Rule {
        selector: ".private-widget".into(),
        action: Action::Block,
        url: None,
        description: "the account widget is never shared".into(),
        enabled: true,
    });
    let pack = RulePack {
        version: 1,
        settings: Some(current.settings),
        rules,
    };
    store
        .import_pack(site.id, &pack, "test", true)
        .await
        .unwrap();
}

/// `[left, top, width, height]` of the first element matching `css` on the
/// customer's page (viewport coordinates).
async fn page_rect(s: &Stage, css: &str) -> Result<[f64; 4], String> {
    s.customer
        .try_eval(&format!(
            "var r = document.querySelector({}).getBoundingClientRect(); \
             return [r.left, r.top, r.width, r.height];",
            serde_json::to_string(css).unwrap()
        ))
        .await
}

/// The same in the replica (the replica's viewport coordinates).
async fn replica_rect(s: &Stage, css: &str) -> Result<[f64; 4], String> {
    s.agent
        .try_eval(&format!(
            "{REPLICA} var e = d.querySelector({}); if (!e) return null; \
             var r = e.getBoundingClientRect(); return [r.left, r.top, r.width, r.height];",
            serde_json::to_string(css).unwrap()
        ))
        .await
}

/// Wait until the element is at the same place (and of the same size) in
/// the replica as on the customer's page, ±1 px.
async fn same_place(s: &Stage, css: &str) -> [f64; 4] {
    wait_for!(format!("{css} where the customer sees it"), {
        let p = page_rect(s, css).await?;
        let r = replica_rect(s, css).await?;
        if p.iter().zip(&r).all(|(a, b)| (a - b).abs() <= 1.0) {
            Ok(p)
        } else {
            Err(format!("page {p:?}, replica {r:?}"))
        }
    })
}

/// The page's and the replica's (scrollX, scrollY), or an inner element's
/// (scrollLeft, scrollTop) when `css` is given.
async fn scroll_of(s: &Stage, css: Option<&str>) -> Result<((f64, f64), (f64, f64)), String> {
    let (page, replica) = match css {
        None => (
            "return [scrollX, scrollY];".to_string(),
            format!("{REPLICA} return [d.defaultView.scrollX, d.defaultView.scrollY];"),
        ),
        Some(css) => {
            let q = serde_json::to_string(css).unwrap();
            (
                format!("var e = document.querySelector({q}); return [e.scrollLeft, e.scrollTop];"),
                format!(
                    "{REPLICA} var e = d.querySelector({q}); return e ? [e.scrollLeft, e.scrollTop] : [-1, -1];"
                ),
            )
        }
    };
    let p: (f64, f64) = s.customer.try_eval(&page).await?;
    let r: (f64, f64) = s.agent.try_eval(&replica).await?;
    Ok((p, r))
}

/// Wait until the replica is scrolled like the customer's page (or element).
async fn same_scroll(s: &Stage, css: Option<&str>) -> (f64, f64) {
    wait_for!(format!("the replica scrolled like the page ({css:?})"), {
        let (p, r) = scroll_of(s, css).await?;
        if (p.0 - r.0).abs() <= 1.0 && (p.1 - r.1).abs() <= 1.0 {
            Ok(p)
        } else {
            Err(format!("page {p:?}, replica {r:?}"))
        }
    })
}

/// Start recording the scroll positions the replica passes through (the
/// page, or the inner element `css`), in the viewer's window.
async fn record_replica_scrolls(s: &Stage, css: Option<&str>) {
    let target = match css {
        None => "d".to_string(),
        Some(css) => format!("d.querySelector({})", serde_json::to_string(css).unwrap()),
    };
    let read = match css {
        None => "[d.defaultView.scrollX, d.defaultView.scrollY]",
        Some(_) => "[t.scrollLeft, t.scrollTop]",
    };
    s.agent
        .eval::<Value>(&format!(
            "{REPLICA} var t = {target}; window.__seen = []; \
             t.addEventListener('scroll', function () {{ window.__seen.push({read}); }}); return null;"
        ))
        .await;
}

async fn recorded_scrolls(s: &Stage) -> Vec<(f64, f64)> {
    s.agent.eval("return window.__seen;").await
}

/// Item 2, blocked elements keep their box size: the widget (300 × 200 px
/// from its content, which the agent never gets) is an empty box of the
/// same size in the replica, and the paragraph below it is at the same
/// place (±1 px); when the widget grows on the customer's page, the box
/// and the paragraph follow. The replica looks like the page (the widget's
/// own area, striped in the replica by design, left out).
#[tokio::test]
async fn blocked_widget_keeps_its_box_and_the_layout_below_it() {
    let c = Corpus::new().await;
    block_the_widget(&c).await;
    let s = &c.stage;
    c.open("/layout.html").await;
    let inner: Value = s
        .agent
        .eval(&format!(
            "{REPLICA} var w = d.getElementById('widget'); \
             return [w.hasAttribute('data-cobrowse-blocked'), w.childNodes.length, d.body.textContent.indexOf('4242')];"
        ))
        .await;
    assert_eq!(
        inner,
        serde_json::json!([true, 0, -1]),
        "the widget is blocked, empty"
    );
    let w = same_place(s, "#widget").await;
    assert!(
        (w[2] - 304.0).abs() <= 1.0 && (w[3] - 200.0).abs() <= 1.0,
        "widget {w:?}"
    );
    let after = same_place(s, "#after").await;
    assert!(
        after[1] > w[1] + 200.0,
        "paragraph {after:?} below the widget {w:?}"
    );
    let widget = Rect {
        x: w[0],
        y: w[1],
        w: w[2],
        h: w[3],
    };
    assert_replica_looks_like_page_but(s, "layout-blocked", &[widget]).await;

    // The widget grows on the customer's page: the box and the layout follow.
    s.customer
        .eval::<Value>("window.growWidget(); return null;")
        .await;
    let grown = same_place(s, "#widget").await;
    assert!(grown[3] > w[3] + 90.0, "grown widget {grown:?}");
    same_place(s, "#after").await;
    c.finish().await;
}

/// Item 2, the replica scrolls instantly: on a `scroll-behavior: smooth`
/// page (and in a smooth inner scroll container) the replica reaches the
/// customer's position without passing through any position in between.
#[tokio::test]
async fn replica_scrolls_instantly_on_a_smooth_scroll_page() {
    let c = Corpus::new().await;
    let s = &c.stage;
    c.open("/layout.html").await;
    let smooth: String = s
        .customer
        .eval("return getComputedStyle(document.documentElement).scrollBehavior;")
        .await;
    assert_eq!(smooth, "smooth");

    record_replica_scrolls(s, None).await;
    s.customer
        .eval::<Value>("window.scrollTo({ top: 1200, behavior: 'instant' }); return null;")
        .await;
    let (_, y) = same_scroll(s, None).await;
    assert_eq!(y, 1200.0);
    let seen = recorded_scrolls(s).await;
    assert!(!seen.is_empty(), "no scroll event in the replica");
    assert!(
        seen.iter().all(|&(_, sy)| (sy - 1200.0).abs() <= 1.0),
        "the replica passed through other positions: {seen:?}"
    );

    record_replica_scrolls(s, Some("#inner")).await;
    s.customer
        .eval::<Value>(
            "document.getElementById('inner').scrollTo({ top: 200, behavior: 'instant' }); return null;",
        )
        .await;
    let (_, top) = same_scroll(s, Some("#inner")).await;
    assert_eq!(top, 200.0);
    let seen = recorded_scrolls(s).await;
    assert!(
        !seen.is_empty() && seen.iter().all(|&(_, sy)| (sy - 200.0).abs() <= 1.0),
        "the inner container passed through other positions: {seen:?}"
    );
    c.finish().await;
}

/// Item 2, fixed and sticky elements sit where the customer sees them: the
/// replica's viewport has the customer's size and scroll, so after the
/// customer scrolls, the fixed header and the sticky note are at the same
/// viewport coordinates (±1 px); an inner container the customer scrolled
/// is scrolled the same, also in a fresh replica (the agent reloads the
/// viewer). The replica looks like the page.
#[tokio::test]
async fn fixed_and_sticky_elements_sit_where_the_customer_sees_them() {
    let c = Corpus::new().await;
    let s = &c.stage;
    c.open("/layout.html").await;
    let (pw, ph): (f64, f64) = s.customer.eval("return [innerWidth, innerHeight];").await;
    let (rw, rh): (f64, f64) = s
        .agent
        .eval(&format!(
            "{REPLICA} return [d.defaultView.innerWidth, d.defaultView.innerHeight];"
        ))
        .await;
    assert_eq!(
        (pw, ph),
        (rw, rh),
        "the replica's viewport is the customer's"
    );

    s.customer
        .eval::<Value>(
            "document.getElementById('inner').scrollTo({ top: 120, behavior: 'instant' }); \
             window.scrollTo({ top: 700, behavior: 'instant' }); return null;",
        )
        .await;
    same_scroll(s, None).await;
    same_scroll(s, Some("#inner")).await;
    let top = same_place(s, "#top").await;
    assert_eq!(top[1], 0.0, "the fixed header stays at the top: {top:?}");
    let note = same_place(s, "#note").await;
    assert!(
        (note[1] - 72.0).abs() <= 1.0,
        "the sticky note is stuck below the header: {note:?}"
    );
    same_place(s, "#inner").await;
    assert_replica_looks_like_page_but(s, "layout-scrolled", &[]).await;

    // A fresh replica (the agent reloads the viewer and joins again) gets
    // the page's and the inner container's positions too.
    s.agent.client.refresh().await.unwrap();
    wait_for!("the replica after the viewer reloaded", {
        let ok: bool = s
            .agent
            .try_eval(&format!(
                "{REPLICA} return !!(d && d.getElementById('inner'));"
            ))
            .await?;
        if ok {
            Ok(())
        } else {
            Err("no replica yet".into())
        }
    });
    same_scroll(s, None).await;
    same_scroll(s, Some("#inner")).await;
    same_place(s, "#note").await;
    c.finish().await;
}
