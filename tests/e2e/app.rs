//! The server under test for the browser tests: a thin wrapper over the
//! shared test server, adding what the browser tests need (base URL, agent
//! accounts).

use cobrowse::config::Config;
use cobrowse::store::Role;
use cobrowse::web::{self, AppState};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A running server on an ephemeral port; stops when dropped.
pub struct TestApp {
    state: AppState,
    base: String,
    _stop: oneshot::Sender<()>,
    _dir: TempDir,
}

impl TestApp {
    pub fn base_url(&self) -> String {
        self.base.clone()
    }

    /// Create a user (`role` is "agent" or "admin").
    pub async fn add_user(&self, name: &str, role: &str, password: &str) {
        let role = if role == "admin" {
            Role::Admin
        } else {
            Role::Agent
        };
        self.state
            .store
            .create_user(name, role, password)
            .await
            .unwrap();
    }
}

/// Start a server with a fresh database on 127.0.0.1:0.
pub async fn spawn_app() -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = Config {
        listen: addr,
        db: dir.path().join("cobrowse.db"),
        public_url: format!("http://{addr}"),
        ..Config::default()
    };
    let (state, _boot) = web::build_state(config).await.unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(web::serve(listener, state.clone(), async move {
        let _ = stopped.await;
    }));
    TestApp {
        state,
        base: format!("http://{addr}"),
        _stop: stop,
        _dir: dir,
    }
}
