//! The WebDriver side of the browser tests: a chromedriver per test (in its
//! own process group, killed with its browsers on drop), one headless
//! Chromium per person with a fresh profile, script helpers, and polling
//! with a deadline. It knows nothing about cobrowse itself.

use fantoccini::{Client, ClientBuilder};
use serde::de::DeserializeOwned;
use serde_json::json;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// How long any single condition may take to become true.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Poll `$cond` (an expression, may `.await`, yielding `Result<T, String>`)
/// until it is `Ok`, or panic after [`PATIENCE`] with the last `Err` text.
#[macro_export]
macro_rules! wait_for {
    ($what:expr, $cond:expr) => {{
        let deadline = std::time::Instant::now() + $crate::e2e::browser::PATIENCE;
        loop {
            let result: Result<_, String> = async { $cond }.await;
            match result {
                Ok(v) => break v,
                Err(last) => {
                    if std::time::Instant::now() > deadline {
                        panic!("timed out waiting for {}; last seen: {}", $what, last);
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }};
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn chromedriver_path() -> String {
    std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into())
}

/// A running chromedriver; dropping it kills it and every browser it started.
pub struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    /// Start chromedriver on a free port and wait until it accepts connections.
    pub fn start() -> Driver {
        let port = free_port();
        let child = Command::new(chromedriver_path())
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start chromedriver ({}): {e}", chromedriver_path()));
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + PATIENCE;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not start listening on port {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        driver
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole process group: chromedriver and the Chromium processes it spawned.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One person's browser (customer or agent).
pub struct Browser {
    pub client: Client,
    _profile: TempDir,
}

impl Browser {
    /// A headless Chromium with a fresh profile and the given window size.
    pub async fn launch(driver: &Driver, width: u32, height: u32) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                    "--hide-scrollbars",
                    "--force-device-scale-factor=1",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&driver.url)
            .await
            .expect("chromedriver refused to start a browser session");
        Browser {
            client,
            _profile: profile,
        }
    }

    /// Run `script` (a function body) and decode its result.
    pub async fn eval<T: DeserializeOwned>(&self, script: &str) -> T {
        let v = self
            .client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"));
        serde_json::from_value(v.clone())
            .unwrap_or_else(|e| panic!("unexpected script result {v}: {e}"))
    }

    /// Like [`Browser::eval`] but errors become `Err` (for use inside `wait_for!`).
    pub async fn try_eval<T: DeserializeOwned>(&self, script: &str) -> Result<T, String> {
        let v = self
            .client
            .execute(script, vec![])
            .await
            .map_err(|e| e.to_string())?;
        serde_json::from_value(v.clone()).map_err(|e| format!("{v}: {e}"))
    }

    /// Run an async script: the last argument is the callback to call with the result.
    pub async fn eval_async<T: DeserializeOwned>(&self, script: &str) -> T {
        let v = self
            .client
            .execute_async(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("async script failed: {e}\n{script}"));
        serde_json::from_value(v.clone())
            .unwrap_or_else(|e| panic!("unexpected script result {v}: {e}"))
    }

    /// Close the browser session (best effort; the driver kills it anyway).
    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}
