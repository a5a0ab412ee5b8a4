//! rules tooling (wip)
