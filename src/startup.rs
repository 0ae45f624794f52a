//! The application: connects the database, starts the writer, binds the listener (port 0 in
//! tests), builds the router, and shuts down in order: sockets close with 1001, in-flight HTTP
//! requests finish, then the writer drains everything it accepted.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::compression::CompressionLayer;
use tower_http::trace::TraceLayer;

use crate::auth::{LoginLimiter, TokenKeys};
use crate::config::Settings;
use crate::db::writer::{self, WriterConfig};
use crate::db::Db;
use crate::live::hub::Hub;
use crate::live::sites::SiteCache;
use crate::live::PendingIndex;
use crate::state::AppState;

pub struct Application {
    listener: TcpListener,
    state: AppState,
    writer_stop: CancellationToken,
    writer_task: JoinHandle<()>,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let db = Db::connect(&settings.database_url.0).await?;
        let tokens = TokenKeys::load(
            &db,
            settings.jwt_secret.as_ref().map(|s| s.0.as_str()),
            Duration::from_secs(settings.token_ttl_hours.max(1) * 3600),
        )
        .await?;
        let writer_stop = CancellationToken::new();
        let (writer, writer_task) = writer::spawn(
            db.clone(),
            WriterConfig {
                capacity: settings.limits.writer_queue,
                batch: settings.limits.writer_batch,
                flush_interval: Duration::from_millis(settings.limits.writer_flush_ms),
            },
            writer_stop.clone(),
        );
        let demo_site_key = if settings.demo {
            let (_, key) = crate::demo::seed(&db).await.context("seeding the demo")?;
            Some(Arc::from(key.as_str()))
        } else {
            None
        };
        let pending = PendingIndex::load(&db).await?;
        let targeting = crate::targeting::Engine::load_all(&db).await?;
        let hub = Hub::new(settings.limits.leave_grace());
        let (cluster, hub_events) = match &settings.redis_url {
            Some(url) => {
                let cluster = crate::cluster::Cluster::new(&url.0).context("REDIS_URL")?;
                let (tx, rx) = tokio::sync::mpsc::channel(100_000);
                hub.attach_bus(tx);
                (Some(cluster), Some(rx))
            }
            None => (None, None),
        };
        let listener = bind(settings.addr).with_context(|| format!("binding {}", settings.addr))?;
        let state = AppState {
            db,
            writer,
            hub,
            cluster,
            sites: SiteCache::default(),
            pending,
            targeting,
            tokens: Arc::new(tokens),
            login_limiter: Arc::new(LoginLimiter::default()),
            metrics: crate::telemetry::metrics_handle(),
            demo_site_key,
            sockets: TaskTracker::new(),
            shutdown: CancellationToken::new(),
            settings: Arc::new(settings),
        };
        if let (Some(cluster), Some(rx)) = (&state.cluster, hub_events) {
            cluster.start(state.clone(), rx);
        }
        Ok(Self {
            listener,
            state,
            writer_stop,
            writer_task,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| self.state.settings.addr)
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Cancel it to shut the service down gracefully.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.state.shutdown.clone()
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let Self {
            listener,
            state,
            writer_stop,
            writer_task,
        } = self;
        let router = router(state.clone());
        let shutdown = state.shutdown.clone();
        if let Some(cluster) = state.cluster.clone() {
            // Say goodbye first, so that the other nodes keep this node's visitors through the
            // leave grace while they reconnect there.
            let token = shutdown.clone();
            tokio::spawn(async move {
                token.cancelled().await;
                cluster.goodbye().await;
            });
        }
        let pruner = tokio::spawn({
            let state = state.clone();
            async move {
                let mut tick = tokio::time::interval(Duration::from_secs(60));
                loop {
                    tokio::select! {
                        _ = tick.tick() => {
                            state.login_limiter.prune();
                            state.targeting.sweep(crate::db::now_ms());
                        }
                        _ = state.shutdown.cancelled() => break,
                    }
                }
            }
        });
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
        .context("serving")?;
        // Upgraded sockets are not awaited by the server: wait for them to close (they saw
        // the shutdown token) so that what they accepted reaches the writer.
        state.sockets.close();
        if tokio::time::timeout(Duration::from_secs(10), state.sockets.wait())
            .await
            .is_err()
        {
            tracing::warn!("some sockets did not close within 10 s");
        }
        writer_stop.cancel();
        if let Err(e) = writer_task.await {
            tracing::error!(error = %e, "writer task failed");
        }
        pruner.abort();
        state.db.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Pending connections the kernel may queue for us (capped by `net.core.somaxconn`). Tokio's
/// `TcpListener::bind` asks for 1,024, which a ramp of thousands of visitors overflows: the
/// dropped SYNs are retried after 1 s, a 1 s tail on handshakes.
const LISTEN_BACKLOG: u32 = 4096;

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // As `TcpListener::bind` does: a restarted server can bind while old connections linger.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

pub fn router(state: AppState) -> Router {
    let http = Router::new()
        .nest("/api", crate::api::router())
        .merge(crate::assets::router())
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(crate::assets::dashboard)
        .layer(CompressionLayer::new());
    Router::new()
        .merge(crate::live::router())
        .merge(http)
        .layer(DefaultBodyLimit::max(1024 * 1024))
        .layer(middleware::from_fn(track_http))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Counts requests by route template and status, and their duration.
async fn track_http(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let started = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::counter!("lookout_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("lookout_http_request_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    resp
}

/// 200 when the database (and Redis, when configured) answer; 503 otherwise. A node whose
/// Redis is down still serves its own visitors (degraded).
async fn healthz(State(state): State<AppState>) -> Response {
    let db_ok = match state.db.ping().await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "health check: database unavailable");
            false
        }
    };
    let mut body = json!({"database": if db_ok { "ok" } else { "unavailable" }});
    let mut ok = db_ok;
    if let Some(cluster) = &state.cluster {
        let redis_ok = cluster.is_up() && cluster.ping().await;
        body["redis"] = json!(if redis_ok { "ok" } else { "unavailable" });
        body["node"] = json!(cluster.node());
        body["peers"] = json!(cluster.peers().len());
        ok &= redis_ok;
    }
    body["status"] = json!(match (ok, db_ok) {
        (true, _) => "ok",
        (false, true) => "degraded",
        (false, false) => "unavailable",
    });
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    metrics::gauge!("lookout_writer_queue_depth").set(state.writer.depth() as f64);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.metrics.render(),
    )
        .into_response()
}
