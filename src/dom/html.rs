//! dom html (wip)
