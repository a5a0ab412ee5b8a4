//! Browser end-to-end tests: headless Chromium through chromedriver
//! (fantoccini), a real server, the real snippet, viewer and demo pages.
//! `browser` is the WebDriver plumbing, `app` the server under test,
//! `stage` the shared scene and user steps, `flows` the tests.

pub mod app;
pub mod browser;
mod flows;
pub mod stage;
