//! Browser end-to-end tests: headless Chromium through chromedriver
//! (fantoccini), a real server, the real snippet, viewer and demo pages.
//! `browser` is the WebDriver plumbing, `stage` the shared scene (the
//! shared `spawn_app()` server, an agent account, two browsers) and user
//! steps, `flows` the tests, `privacy` the fail-closed privacy tests (issue 7),
//! `snippet` the snippet's own behaviour (lifted masks, values set by script),
//! `corpus` real-site pages compared pixel by pixel with their replica and
//! `bigpage` the 30,000-element page's latency figures (issue 9), `layout`
//! blocked boxes, instant scroll, fixed and sticky elements (issue 9 item 2),
//! `day` the agent's day and the customer's tabs (issue 9 item 4),
//! `compression` compressed frames both ways and their bytes on the wire
//! (issue 10 item 3).

mod bigpage;
pub mod browser;
mod components;
mod compression;
mod corpus;
mod day;
mod flows;
mod layout;
mod privacy;
mod sealed;
mod selectors;
mod snippet;
pub mod stage;
