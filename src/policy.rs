//! Policy check of agent actions (design §5, invariant 2): an action reaches
//! the customer's browser only if the session is active, in write mode, and
//! the target is neither disabled, masked nor blocked under the rules in force.
//!
//! Pure function of (action, session state, mode, rewriter); it sends nothing.

use crate::protocol::{AgentMsg, Mode, SessionState, ToCustomer};
use crate::rewrite::{Restriction, Rewriter};

/// The outcome of checking one agent action.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Forward this message to the customer.
    Forward(ToCustomer),
    /// Refuse, answering the agent with `denied {action, reason}`.
    Deny {
        action: &'static str,
        reason: String,
    },
}

/// Check an agent action (click, input, key, scroll). Pointer, control and end
/// messages are session business, not actions; they are denied here if passed.
pub fn check(msg: &AgentMsg, state: SessionState, mode: Mode, rewriter: &Rewriter) -> Verdict {
    let (action, target) = match msg {
        AgentMsg::Click { id } => ("click", Some(*id)),
        AgentMsg::Input { id, .. } => ("input", Some(*id)),
        AgentMsg::Key { id, .. } => ("key", Some(*id)),
        AgentMsg::Scroll { id, .. } => ("scroll", *id),
        AgentMsg::Pointer { .. } => ("pointer", None),
        AgentMsg::Control { .. } => ("control", None),
        AgentMsg::Away {} => ("away", None),
        AgentMsg::End {} => ("end", None),
    };
    let deny = |reason: &str| Verdict::Deny {
        action,
        reason: reason.to_string(),
    };
    if state != SessionState::Active {
        return deny("session_not_active");
    }
    if mode != Mode::Write {
        return deny("pointer_mode");
    }
    if let Some(id) = target {
        match rewriter.restriction(id) {
            Err(_) => return deny("unknown_target"),
            Ok(Some(Restriction::Disabled)) => return deny("disabled"),
            Ok(Some(Restriction::Blocked)) => return deny("blocked"),
            Ok(Some(Restriction::Masked)) if action != "click" && action != "scroll" => {
                return deny("masked")
            }
            Ok(_) => {}
        }
    }
    match msg {
        AgentMsg::Click { id } => Verdict::Forward(ToCustomer::Click { id: *id }),
        AgentMsg::Input { id, value } => Verdict::Forward(ToCustomer::Input {
            id: *id,
            value: value.clone(),
        }),
        AgentMsg::Key { id, key } => Verdict::Forward(ToCustomer::Key {
            id: *id,
            key: key.clone(),
        }),
        AgentMsg::Scroll { id, x, y } => Verdict::Forward(ToCustomer::Scroll {
            id: *id,
            x: *x,
            y: *y,
        }),
        _ => deny("not_an_action"),
    }
}
