//! The HTTP layer (axum): [`app`] builds the router from an [`AppState`] (so
//! tests can drive it), [`serve`] runs it on a listener with graceful
//! shutdown, [`run`] is `cobrowse serve`. Sub-modules: `api` (JSON API),
//! `auth` (login, CSRF, pages needing a user), `ws` (WebSocket upgrades),
//! `assets` (embedded static files), `error` (the one error type).

pub mod admin;
mod api;
mod assets;
pub mod auth;
mod error;
pub mod headers;
pub mod idle;
pub mod proxy;
pub mod server;
pub mod throttle;
mod ws;

pub use error::WebError;

use crate::config::Config;
use crate::session::SessionRegistry;
use crate::store::{Bootstrap, Store};
use axum::http::header;
use axum::routing::{get, post};
use axum::Router;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::session_store::ExpiredDeletion;
use tower_sessions::{Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::SqliteStore;

/// The key of the built-in demo site, whose pages this server itself serves.
pub const DEMO_SITE: &str = "demo";

/// The origins this server is reached at for this request: the public URL's
/// and the `Host` header's (http and https). Pages served by the server itself
/// (demo shop, agent viewer) have one of these origins.
pub fn own_origins(config: &Config, headers: &axum::http::HeaderMap) -> Vec<String> {
    let mut out: Vec<String> = crate::store::normalize_origin(&config.public_url)
        .into_iter()
        .collect();
    if let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) {
        for scheme in ["http", "https"] {
            if let Ok(o) = crate::store::normalize_origin(&format!("{scheme}://{host}")) {
                out.push(o);
            }
        }
    }
    out
}

/// How often the server checks for rule versions published by another process.
pub const PUBLISHED_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// Largest accepted HTTP request body.
pub const MAX_BODY: usize = 1024 * 1024;

/// Everything handlers need; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub registry: SessionRegistry,
    /// Failed sign-in counters per address and (address, name).
    pub login_guard: admin::login_guard::LoginGuard,
    /// Session-ID guessing and session creation throttles.
    pub throttles: Arc<throttle::Throttles>,
}

/// Open the database, run migrations and the first-start bootstrap, and build
/// the state. The returned [`Bootstrap`] holds secrets to show once.
pub async fn build_state(config: Config) -> Result<(AppState, Bootstrap), WebError> {
    let store = Store::open(&config.db).await?;
    let boot = store.bootstrap(&config.public_url).await?;
    SqliteStore::new(store.pool().clone())
        .migrate()
        .await
        .map_err(|e| WebError::Internal(format!("login session table migration failed: {e}")))?;
    // Sessions a crashed or killed previous run left live end now.
    let stale = store.close_stale_sessions().await?;
    if stale > 0 {
        tracing::warn!(
            sessions = stale,
            "sessions left live by the previous run closed with reason server_restart"
        );
    }
    prune_history(&store, config.history_retention).await;
    let registry = SessionRegistry::new(store.clone(), &config);
    let throttles = Arc::new(throttle::Throttles::new(&config));
    Ok((
        AppState {
            config: Arc::new(config),
            store,
            registry,
            login_guard: Default::default(),
            throttles,
        },
        boot,
    ))
}

/// Delete session history past the retention (logged, never fatal).
async fn prune_history(store: &Store, retention: std::time::Duration) {
    match store.prune_history(retention).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(sessions = n, "pruned session history past its retention"),
        Err(e) => tracing::warn!(error = %e, "cannot prune session history"),
    }
}

/// How often the server re-checks agent credentials for revocations.
pub const CREDENTIALS_POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// The whole router.
pub fn app(state: AppState) -> Router {
    let sessions = SessionManagerLayer::new(SqliteStore::new(state.store.pool().clone()))
        .with_name("cobrowse_session")
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(state.config.secure_cookies())
        .with_expiry(Expiry::OnInactivity(
            tower_sessions::cookie::time::Duration::hours(12),
        ));
    Router::new()
        .route("/", get(auth::index))
        .route("/healthz", get(|| async { "ok" }))
        .route("/login", get(auth::login_page).post(auth::login_submit))
        .route("/logout", post(auth::logout))
        .route("/agent", get(auth::agent_page))
        .route(
            "/api/v1/sessions",
            post(api::create_session).options(api::preflight),
        )
        .route("/api/v1/sessions/{id}", get(api::get_session))
        .route("/api/v1/sessions/{id}/end", post(api::end_session))
        .route(
            "/api/v1/interactions/{interaction}/end",
            post(api::end_interaction),
        )
        .route("/ws/customer/{id}", get(ws::customer))
        .route("/ws/agent/{id}", get(ws::agent))
        .merge(assets::routes())
        .merge(proxy::routes(state.config.proxy))
        .merge(admin::routes())
        .with_state(state)
        .layer(sessions)
        .layer(RequestBodyLimitLayer::new(MAX_BODY))
        .layer(axum::middleware::from_fn(headers::security_headers))
        .layer(
            // Path only: query strings carry customer tokens and must not be logged.
            TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<axum::body::Body>| {
                tracing::info_span!("http", method = %req.method(), path = %req.uri().path())
            }),
        )
}

/// Serve on a bound listener until `shutdown` resolves; then every live
/// session ends with `server_shutdown` (both sides told, history written).
pub async fn serve<F>(listener: TcpListener, state: AppState, shutdown: F) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let registry = state.registry.clone();
    // Expired login sessions are deleted hourly while the server runs.
    let cleanup = tokio::spawn(
        SqliteStore::new(state.store.pool().clone())
            .continuously_delete_expired(std::time::Duration::from_secs(3600)),
    );
    // Versions published by another process (CLI) reach live sessions too.
    let watcher = tokio::spawn(registry.clone().watch_published(PUBLISHED_POLL));
    // Revoked tokens, disabled accounts and changed passwords (editor or
    // CLI) end the agent's live session within a second.
    let revocations = tokio::spawn(registry.clone().watch_credentials(CREDENTIALS_POLL));
    // History past its retention is pruned daily (and at start-up).
    let pruner = {
        let store = state.store.clone();
        let retention = state.config.history_retention;
        tokio::spawn(async move {
            let day = std::time::Duration::from_secs(24 * 3600);
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + day, day);
            loop {
                tick.tick().await;
                prune_history(&store, retention).await;
            }
        })
    };
    let limits = server::ServeLimits {
        max_connections: state.config.server.max_connections,
        header_read_timeout: state.config.server.header_read_timeout,
    };
    let router = app(state);
    // Requests carry the peer address (throttles, login back-off).
    let result = server::run(listener, router, limits, async move {
        shutdown.await;
        tracing::info!("shutting down: ending live sessions");
        registry.shutdown().await;
    })
    .await;
    cleanup.abort();
    watcher.abort();
    revocations.abort();
    pruner.abort();
    result
}

/// A future that resolves on SIGINT or SIGTERM. The handlers are installed
/// when this function is called (before the server says it is listening), so
/// a signal arriving right after start-up is not lost.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let int = signal(SignalKind::interrupt());
        let term = signal(SignalKind::terminate());
        async move {
            match (int, term) {
                (Ok(mut int), Ok(mut term)) => {
                    tokio::select! {
                        _ = int.recv() => {},
                        _ = term.recv() => {},
                    }
                }
                (int, term) => {
                    if let Err(e) = int.as_ref().and(term.as_ref()) {
                        tracing::error!(error = %e, "cannot listen for SIGINT/SIGTERM; falling back to Ctrl-C");
                    }
                    if tokio::signal::ctrl_c().await.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}
