//! web (skeleton)
