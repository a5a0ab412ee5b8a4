//! The reference oracle: rewrite a whole customer document from scratch.
//!
//! Tests compare the agent's copy (built from the incremental ops) against
//! this. It shares only the per-node functions of [`super::render`] with the
//! engine, never the incremental invalidation logic.

use super::render::{agent_page, full_state, render};
use crate::dom::Dom;
use crate::protocol::{Limits, Node, Snapshot};
use crate::rules::CompiledRules;
use rustc_hash::FxHashSet;

/// Rewrite `snap` under `rules` as the agent must see it. A snapshot the
/// mirror cannot hold (duplicate ids, nested documents) yields an empty
/// document with the same root id.
pub fn oracle(rules: &CompiledRules, snap: &Snapshot) -> Snapshot {
    let limits = Limits {
        max_nodes: usize::MAX,
        max_depth: usize::MAX,
        ..Limits::default()
    };
    let (url, title) = agent_page(&snap.url, &snap.title, &rules.settings);
    let empty = || Node::Document {
        id: snap.root.id(),
        children: Vec::new(),
    };
    let root = match Dom::from_node(&snap.root, &limits) {
        Ok(mut dom) => {
            let active = rules.active(&snap.url);
            full_state(&mut dom, rules, &active, &FxHashSet::default());
            dom.root()
                .and_then(|r| render(&dom, r, &rules.settings, &mut Vec::new()))
                .unwrap_or_else(empty)
        }
        Err(_) => empty(),
    };
    Snapshot {
        epoch: 0,
        url,
        title,
        viewport: snap.viewport,
        root,
    }
}
