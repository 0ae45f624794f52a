//! Test harness: starts the real application on port 0 with a fresh database (a temp SQLite
//! file, or a freshly created Postgres database when `LOOKOUT_TEST_POSTGRES` is set), and gives
//! typed clients for the REST API and both sockets.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use lookout::config::Settings;
use lookout::startup::Application;
use lookout::state::AppState;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::Connection;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs a test body against SQLite and, when configured, Postgres.
#[macro_export]
macro_rules! on_both_databases {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[tokio::test]
            async fn sqlite() {
                let app = $crate::helpers::spawn_app($crate::helpers::Backend::Sqlite).await;
                let app = app.expect("sqlite is always available");
                ($body)(app).await;
            }
            #[tokio::test]
            async fn postgres() {
                let Some(app) =
                    $crate::helpers::spawn_app($crate::helpers::Backend::Postgres).await
                else {
                    return;
                };
                ($body)(app).await;
            }
        }
    };
}

pub struct TestApp {
    pub base: String,
    pub ws_base: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub database_url: String,
    pub backend: Backend,
    shutdown: CancellationToken,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: Option<tempfile::TempDir>,
}

pub fn test_settings(database_url: &str) -> Settings {
    let mut s = Settings::for_database(database_url);
    s.limits.leave_grace_ms = 400;
    s.limits.hello_timeout_secs = 1;
    s.limits.writer_flush_ms = 5;
    s
}

/// A fresh Postgres database for one test, or None (with a message) when not configured.
pub async fn fresh_postgres() -> Option<String> {
    let Ok(admin_url) = std::env::var("LOOKOUT_TEST_POSTGRES") else {
        eprintln!("skipped: set LOOKOUT_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/postgres to run the Postgres variant");
        return None;
    };
    let name = format!(
        "lookout_test_{}",
        lookout::domain::random_id(12).to_lowercase()
    );
    let mut conn = sqlx::PgConnection::connect(&admin_url)
        .await
        .expect("LOOKOUT_TEST_POSTGRES is set but Postgres does not answer");
    sqlx::query(&format!("create database {name}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let base = admin_url
        .rsplit_once('/')
        .map(|(b, _)| b)
        .unwrap_or(&admin_url);
    Some(format!("{base}/{name}"))
}

pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("lookout.db").display());
            Some(spawn_with(test_settings(&url), backend, Some(dir)).await)
        }
        Backend::Postgres => {
            let url = fresh_postgres().await?;
            Some(spawn_with(test_settings(&url), backend, None).await)
        }
    }
}

pub async fn spawn_with(
    settings: Settings,
    backend: Backend,
    dir: Option<tempfile::TempDir>,
) -> TestApp {
    let database_url = settings.database_url.0.clone();
    let app = Application::build(settings)
        .await
        .expect("application starts");
    let port = app.port();
    let state = app.state().clone();
    let shutdown = app.shutdown_token();
    let handle = tokio::spawn(app.run_until_stopped());
    TestApp {
        base: format!("http://127.0.0.1:{port}"),
        ws_base: format!("ws://127.0.0.1:{port}"),
        client: reqwest::Client::new(),
        state,
        database_url,
        backend,
        shutdown,
        handle: Some(handle),
        _dir: dir,
    }
}

pub struct Account {
    pub token: String,
    pub id: String,
    pub email: String,
}

pub struct Site {
    pub id: String,
    pub key: String,
}

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

impl TestApp {
    /// Stops gracefully (sockets close, writer drains) and waits until it has.
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(h) = self.handle.take() {
            h.await.expect("join").expect("clean stop");
        }
    }

    /// Takes the temp dir so a restarted app can reuse the same SQLite file.
    pub fn take_dir(&mut self) -> Option<tempfile::TempDir> {
        self._dir.take()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.request("GET", path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.request("POST", path, Some(token), Some(body)).await
    }

    pub async fn signup(&self, email: &str) -> Account {
        let (status, body) = self
            .request(
                "POST",
                "/api/auth/signup",
                None,
                Some(json!({"email": email, "password": "correct horse"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "signup: {body}");
        Account {
            token: body["token"].as_str().expect("token").to_string(),
            id: body["account"]["id"].as_str().expect("id").to_string(),
            email: email.to_string(),
        }
    }

    pub async fn create_site(&self, token: &str, domains: Value) -> Site {
        let (status, body) = self
            .post(
                "/api/sites",
                token,
                json!({"name": "Shop", "domains": domains}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "create site: {body}");
        Site {
            id: body["id"].as_str().expect("id").to_string(),
            key: body["key"].as_str().expect("key").to_string(),
        }
    }

    /// An account with a site that accepts any origin.
    pub async fn owner_with_site(&self, email: &str) -> (Account, Site) {
        let a = self.signup(email).await;
        let s = self.create_site(&a.token, json!([])).await;
        (a, s)
    }

    /// Opens a visitor socket (no hello sent yet).
    pub async fn visitor_socket(
        &self,
        key: &str,
        origin: Option<&str>,
    ) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
        let mut req = format!("{}/ws/visitor?site={key}", self.ws_base).into_client_request()?;
        if let Some(o) = origin {
            req.headers_mut()
                .insert("origin", o.parse().expect("origin header"));
        }
        req.headers_mut().insert(
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
                .parse()
                .expect("ua"),
        );
        tokio_tungstenite::connect_async(req)
            .await
            .map(|(ws, _)| ws)
    }

    /// Opens a visitor socket and says hello; returns the socket and the welcome frame.
    pub async fn visitor(
        &self,
        key: &str,
        visitor: &str,
        session: &str,
        tab: &str,
        url: &str,
    ) -> (Ws, Value) {
        let mut ws = self
            .visitor_socket(key, Some("https://shop.test"))
            .await
            .expect("visitor connects");
        send(&mut ws, json!({"type": "hello", "visitor": visitor, "session": session, "tab": tab, "url": url,
            "title": "Page", "referrer": "https://search.test/?q=cars", "lang": "en", "screen": "1280x720", "tz": "UTC", "resume": false}))
            .await;
        let welcome = next_json(&mut ws).await.expect("welcome");
        assert_eq!(welcome["type"], "welcome");
        (ws, welcome)
    }

    /// Opens an admin socket, authenticates with the token and returns it after the snapshot.
    pub async fn admin(&self, site: &str, token: &str) -> (Ws, Value) {
        let (mut ws, _) =
            tokio_tungstenite::connect_async(format!("{}/ws/admin?site={site}", self.ws_base))
                .await
                .expect("admin connects");
        send(&mut ws, json!({"type": "auth", "token": token})).await;
        let snapshot = next_json(&mut ws).await.expect("snapshot");
        assert_eq!(
            snapshot["type"], "snapshot",
            "first admin frame: {snapshot}"
        );
        (ws, snapshot)
    }

    /// Polls a REST list until it has at least `n` items (the writer flushes asynchronously).
    pub async fn wait_for_items(&self, path: &str, token: &str, n: usize) -> Value {
        let mut last = Value::Null;
        for _ in 0..100 {
            let (status, body) = self.get(path, token).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
            if body["items"].as_array().is_some_and(|a| a.len() >= n) {
                return body;
            }
            last = body;
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        panic!("{path} never had {n} items; last: {last}");
    }
}

pub async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into()))
        .await
        .expect("frame sent");
}

/// The next JSON text frame within 3 s (None on close or timeout).
pub async fn next_json(ws: &mut Ws) -> Option<Value> {
    next_json_within(ws, Duration::from_secs(3)).await
}

pub async fn next_json_within(ws: &mut Ws, wait: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(&t).ok(),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            _ => return None,
        }
    }
}

/// Waits for a frame of the given type, skipping others; panics after 3 s.
pub async fn expect_frame(ws: &mut Ws, kind: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match next_json_within(ws, left).await {
            Some(v) if v["type"] == kind => return v,
            Some(_) => continue,
            None => panic!("no `{kind}` frame arrived"),
        }
    }
}

/// Asserts that no frame of the given type arrives within `wait`.
pub async fn expect_no_frame(ws: &mut Ws, kind: &str, wait: Duration) {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return;
        }
        if let Some(v) = next_json_within(ws, left).await {
            assert_ne!(v["type"], kind, "unexpected frame: {v}");
        }
    }
}

/// Reads until the server closes; returns the close code.
pub async fn close_code(ws: &mut Ws) -> Option<u16> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(_))) | Ok(None) | Err(_) => return None,
        }
    }
}
