//! dom (skeleton)
