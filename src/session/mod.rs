//! session (skeleton)
