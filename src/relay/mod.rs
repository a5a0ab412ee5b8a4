//! relay (skeleton)
