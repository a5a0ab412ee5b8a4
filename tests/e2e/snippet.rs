//! The customer snippet in real Chromium against the real server: a mask
//! lifted by a rollback gives the agent the clear value the customer typed
//! (the snippet stops masking at the source; issue 7 item 9), and values,
//! `checked` and selection set by page script without any event reach the
//! agent's replica (the snippet's field poll; issue 9 item 1).

use super::stage::{Stage, REPLICA};
use crate::wait_for;
use cobrowse::rules::{Action, Rule, RulePack};
use serde_json::Value;

/// The replica's live value of the field with this id.
async fn replica_value(s: &Stage, id: &str) -> Result<String, String> {
    s.agent
        .try_eval(&format!(
            "{REPLICA} var e = d.getElementById('{id}'); return e ? e.value : '<missing>';"
        ))
        .await
}

fn mask_rule(selector: &str) -> Rule {
    Rule {
        selector: selector.into(),
        action: Action::Mask,
        url: None,
        description: format!("{selector} is private"),
        enabled: true,
    }
}

/// Issue 7 item 9 (source side): the customer types into fields a published
/// rule masks, so the snippet sends only dots; a rollback lifts the mask and
/// the agent's replica then shows what the customer typed, not the dots.
#[tokio::test]
async fn a_rollback_that_lifts_a_mask_shows_the_agent_the_clear_values_typed_under_it() {
    let s = Stage::new().await;
    let store = &s.app().state.store;
    let site = store.site_by_key("demo").await.unwrap().unwrap();
    let before = store.published(site.id).await.unwrap().unwrap();
    let mut rules = before.rules.clone();
    rules.push(mask_rule("#name"));
    rules.push(mask_rule("#notes"));
    let pack = RulePack {
        version: 1,
        settings: Some(before.settings),
        rules,
    };
    store
        .import_pack(site.id, &pack, "test", true)
        .await
        .unwrap();

    s.start_and_join("/demo/checkout").await;
    const NAME: &str = "Kari Nordmann";
    const NOTES: &str = "Leave it by the red door";
    s.customer_types("#name", NAME).await;
    s.customer_types("#notes", NOTES).await;
    for (id, typed) in [("name", NAME), ("notes", NOTES)] {
        wait_for!(format!("#{id} masked in the replica"), {
            let v = replica_value(&s, id).await?;
            if v.chars().count() == typed.chars().count() && v.contains('•') {
                Ok(())
            } else {
                Err(v)
            }
        });
    }

    // Roll back to the version without the two rules (the store API; the
    // server's watcher switches live sessions, as for a CLI publish).
    store
        .rollback_to(site.id, before.version, "test")
        .await
        .unwrap();
    for (id, typed) in [("name", NAME), ("notes", NOTES)] {
        wait_for!(
            format!("#{id} in clear in the replica after the rollback"),
            {
                let v = replica_value(&s, id).await?;
                if v == typed {
                    Ok(())
                } else {
                    Err(v)
                }
            }
        );
    }
    // The lifted fields follow further typing in clear too.
    s.customer_types("#name", "\u{E010} Jr").await; // End, then more text
    wait_for!("typing after the rollback in clear", {
        let v = replica_value(&s, "name").await?;
        if v == format!("{NAME} Jr") {
            Ok(())
        } else {
            Err(v)
        }
    });
    s.finish().await;
}

/// Issue 9 item 1: a TodoMVC-like form clears its input by script after
/// Enter (`input.value = ''`, no event); a script ticks a checkbox and picks
/// a `<select>` option by `selectedIndex`. The agent's replica follows each.
#[tokio::test]
async fn values_checked_and_selection_set_by_script_without_events_reach_the_agent() {
    let s = Stage::new().await;
    s.start_and_join("/demo/checkout").await;
    s.customer
        .eval::<Value>(
            "var f = document.createElement('form'); f.id = 'todo-form'; \
             f.innerHTML = '<input id=\"new-todo\" placeholder=\"What needs to be done?\"><ul id=\"todos\"></ul>'; \
             document.body.insertBefore(f, document.body.firstChild); \
             f.addEventListener('submit', function (e) { \
               e.preventDefault(); \
               var i = document.getElementById('new-todo'); \
               var li = document.createElement('li'); li.textContent = i.value; \
               document.getElementById('todos').appendChild(li); \
               i.value = ''; \
             });",
        )
        .await;
    wait_for!("the todo form in the replica", {
        let ok: bool = s
            .agent
            .try_eval(&format!("{REPLICA} return !!d.getElementById('new-todo');"))
            .await?;
        if ok {
            Ok(())
        } else {
            Err("not yet".into())
        }
    });
    s.customer_types("#new-todo", "Buy milk").await;
    wait_for!("the typed todo in the replica's input", {
        let v = replica_value(&s, "new-todo").await?;
        if v == "Buy milk" {
            Ok(())
        } else {
            Err(v)
        }
    });
    s.customer_types("#new-todo", "\u{E007}").await; // Enter: the page adds the item and clears the input
    wait_for!("the new item in the replica's list", {
        let t: String = s
            .agent
            .try_eval(&format!(
                "{REPLICA} return d.getElementById('todos').textContent;"
            ))
            .await?;
        if t == "Buy milk" {
            Ok(())
        } else {
            Err(t)
        }
    });
    let cleared: String = s
        .customer
        .eval("return document.getElementById('new-todo').value;")
        .await;
    assert_eq!(cleared, "", "the page cleared its input");
    wait_for!("the cleared input in the replica", {
        let v = replica_value(&s, "new-todo").await?;
        if v.is_empty() {
            Ok(())
        } else {
            Err(v)
        }
    });

    // `checked` and `selectedIndex` set by script, no events.
    s.customer
        .eval::<Value>(
            "document.getElementById('newsletter').checked = true; \
             document.getElementById('country').selectedIndex = 2;",
        )
        .await;
    let want: String = s
        .customer
        .eval("return document.getElementById('country').value;")
        .await;
    wait_for!("the checkbox and the selection in the replica", {
        let (checked, country): (bool, String) = s
            .agent
            .try_eval(&format!(
                "{REPLICA} return [d.getElementById('newsletter').checked, d.getElementById('country').value];"
            ))
            .await?;
        if checked && country == want {
            Ok(())
        } else {
            Err(format!(
                "checked={checked} country={country:?}, want {want:?}"
            ))
        }
    });
    s.finish().await;
}
