//! Configuration (skeleton): flags, environment and an optional TOML file.
