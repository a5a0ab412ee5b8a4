//! The rewrite engine: keeps the session's mirror of the customer document and
//! turns every customer snapshot and mutation batch into what the agent may
//! see, under the rules in force.
//!
//! One [`Rewriter`] per live session. It owns the unmasked mirror; nothing
//! unmasked leaves it except through [`Rewriter::cue`] (selectors only).
//!
//! STUB (identity rewrite) until the engine issue lands; the public API below is
//! the contract the session actor uses.

use crate::protocol::{Limits, NodeId, Op, RulesCue, Snapshot};
use crate::rules::{Action, CompiledRules};
use std::sync::Arc;

/// Why a customer message could not be applied to the mirror.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    /// A mutation arrived before any snapshot.
    #[error("no snapshot received yet")]
    NoDocument,
    /// An op names a node id the mirror does not have.
    #[error("unknown node id {0}")]
    UnknownNode(NodeId),
    /// An inserted node reuses an id already in the document.
    #[error("duplicate node id {0}")]
    DuplicateNode(NodeId),
    /// An op is structurally impossible (e.g. insert under a text node).
    #[error("invalid op: {0}")]
    InvalidOp(String),
    /// The document would exceed the configured limits.
    #[error("limit exceeded: {0}")]
    Limit(String),
}

/// What the rules in force say about one node, for the policy check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restriction {
    /// The node or an ancestor is disabled for the agent.
    Disabled,
    /// The node is masked (no typing into it).
    Masked,
    /// The node is blocked or inside a blocked element (the agent never saw it).
    Blocked,
}

/// Counters for session history.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RewriteStats {
    pub masked: usize,
    pub blocked: usize,
    pub disabled: usize,
}

/// The per-session engine: mirror + rules → agent frames.
pub struct Rewriter {
    rules: Arc<CompiledRules>,
    limits: Limits,
    doc: Option<Snapshot>,
}

impl Rewriter {
    /// A rewriter with no document yet.
    pub fn new(rules: Arc<CompiledRules>, limits: Limits) -> Self {
        Rewriter {
            rules,
            limits,
            doc: None,
        }
    }

    /// Replace the document; returns the snapshot the agent may see.
    pub fn snapshot(&mut self, snap: Snapshot) -> Result<Snapshot, RewriteError> {
        let _ = &self.limits;
        self.doc = Some(snap.clone());
        Ok(snap)
    }

    /// Apply one batch; returns the ops that bring the agent's copy to the new
    /// masked state. On `Err` the mirror may hold a prefix of the batch: the
    /// caller must resend [`Rewriter::agent_snapshot`] to the agent.
    pub fn apply(&mut self, ops: Vec<Op>) -> Result<Vec<Op>, RewriteError> {
        if self.doc.is_none() {
            return Err(RewriteError::NoDocument);
        }
        Ok(ops)
    }

    /// Switch to a new rule set (publish mid-session); returns the ops that
    /// re-mask (or unmask) the agent's copy.
    pub fn set_rules(&mut self, rules: Arc<CompiledRules>) -> Vec<Op> {
        self.rules = rules;
        Vec::new()
    }

    /// The whole document as the agent may see it (agent join, resync).
    pub fn agent_snapshot(&self) -> Option<Snapshot> {
        self.doc.clone()
    }

    /// The current page URL, if a snapshot was received.
    pub fn url(&self) -> Option<&str> {
        self.doc.as_ref().map(|d| d.url.as_str())
    }

    /// The selectors in force on the current page, for the customer's cue.
    pub fn cue(&self) -> RulesCue {
        let mut cue = RulesCue::default();
        for r in self.rules.rules.iter().filter(|r| r.enabled) {
            match r.action {
                Action::Mask => cue.mask.push(r.selector.clone()),
                Action::Block => cue.block.push(r.selector.clone()),
                Action::Disable => cue.disable.push(r.selector.clone()),
                Action::Unmask => {}
            }
        }
        cue
    }

    /// The restriction on a node under the rules in force, or `None` if the
    /// agent may act on it. Unknown ids are reported as `Err`.
    pub fn restriction(&self, id: NodeId) -> Result<Option<Restriction>, RewriteError> {
        let _ = id;
        Ok(None)
    }

    /// Counters of masked/blocked/disabled elements in the current document.
    pub fn stats(&self) -> RewriteStats {
        RewriteStats::default()
    }
}
