//! The batching writer: the live path hands page views, events, visits, identifies and message
//! statuses to a bounded queue and never waits on the database; one task writes them in batches
//! (one transaction per batch: `unnest` array inserts on Postgres, multi-row inserts on SQLite),
//! flushing on size or after a short interval, with bigger batches while a backlog is queued,
//! and drains the queue on shutdown.
//!
//! Policy when the queue is full: the producer (a visitor socket) waits up to
//! `PUSHBACK_TIMEOUT` for room, which stops it reading further frames (the browser keeps them);
//! past that the record is refused, counted in `lookout_writer_dropped_total`, and the socket is
//! told to back off. When the database is unavailable the task keeps the batch and retries with
//! back-off, so accepted records are never dropped while the process lives.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sqlx::any::AnyArguments;
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgConnection;
use sqlx::{Acquire, Any, Arguments, Connection};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Backend, Db};

pub const PUSHBACK_TIMEOUT: Duration = Duration::from_secs(2);
/// SQLite: most rows per multi-row statement (a power of two, see `sqlite_chunk`).
const ROWS_PER_STATEMENT: usize = 1_024;
/// While a backlog is queued, a batch may take up to this many times the configured size.
const BACKLOG_FACTOR: usize = 5;

#[derive(Debug, Clone)]
pub struct PageviewRow {
    pub site_id: String,
    pub visitor_id: String,
    pub session_id: String,
    pub tab_id: String,
    pub url: String,
    pub title: Option<String>,
    pub referrer: Option<String>,
    pub at: i64,
}

#[derive(Debug, Clone)]
pub struct EventRow {
    pub site_id: String,
    pub visitor_id: String,
    pub session_id: String,
    pub tab_id: String,
    pub name: String,
    pub props: String,
    pub url: Option<String>,
    pub at: i64,
}

/// A socket's hello: makes sure the visitor and session rows exist and records the device.
#[derive(Debug, Clone)]
pub struct VisitRow {
    pub site_id: String,
    pub visitor_id: String,
    pub session_id: String,
    pub referrer: Option<String>,
    pub device: Option<String>,
    pub browser: Option<String>,
    pub os: Option<String>,
    pub at: i64,
}

#[derive(Debug, Clone)]
pub struct IdentifyRow {
    pub site_id: String,
    pub visitor_id: String,
    pub user_id: Option<String>,
    /// A JSON object merged into the stored traits.
    pub traits: String,
    pub at: i64,
}

#[derive(Debug, Clone)]
pub struct StatusRow {
    pub message_id: String,
    pub site_id: String,
    pub visitor_id: String,
    pub tab_id: String,
    pub status: String,
    pub at: i64,
}

#[derive(Debug, Clone)]
pub struct MessageRow {
    pub message_id: String,
    pub site_id: String,
    /// The target as JSON, e.g. `{"visitor":"V"}`.
    pub target: String,
    /// The message content as JSON.
    pub payload: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub sent_by: Option<String>,
    /// The campaign that sent it, if any.
    pub campaign_id: Option<String>,
}

/// A campaign fired for a visitor: `sent`, held back as `control`, or `test` mode.
#[derive(Debug, Clone)]
pub struct DeliveryRow {
    pub delivery_id: String,
    pub campaign_id: String,
    pub site_id: String,
    pub visitor_id: String,
    pub session_id: String,
    pub variant: String,
    pub message_id: Option<String>,
    pub at: i64,
}

/// A campaign's goal reached within its window.
#[derive(Debug, Clone)]
pub struct ConversionRow {
    pub delivery_id: String,
    pub at: i64,
}

/// A message kept for a visitor who was offline when it was sent.
#[derive(Debug, Clone)]
pub struct PendingRow {
    pub site_id: String,
    pub visitor_id: String,
    pub message_id: String,
    pub expires_at: i64,
}

#[derive(Debug, Clone)]
pub enum Record {
    Message(MessageRow),
    Pending(PendingRow),
    Delivery(DeliveryRow),
    Conversion(ConversionRow),
    Pageview(PageviewRow),
    Event(EventRow),
    Visit(VisitRow),
    Identify(IdentifyRow),
    Status(StatusRow),
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("the writer queue is full")]
    Full,
    #[error("the writer has stopped")]
    Closed,
}

#[derive(Clone, Debug)]
pub struct WriterHandle {
    tx: mpsc::Sender<Record>,
}

impl WriterHandle {
    /// Queues a record; waits a bounded time for room when the queue is full (see module docs).
    pub async fn submit(&self, record: Record) -> Result<(), SubmitError> {
        match self.tx.try_send(record) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(SubmitError::Closed),
            Err(mpsc::error::TrySendError::Full(record)) => {
                metrics::counter!("lookout_writer_pushback_total").increment(1);
                match self.tx.send_timeout(record, PUSHBACK_TIMEOUT).await {
                    Ok(()) => Ok(()),
                    Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                        metrics::counter!("lookout_writer_dropped_total").increment(1);
                        Err(SubmitError::Full)
                    }
                    Err(mpsc::error::SendTimeoutError::Closed(_)) => Err(SubmitError::Closed),
                }
            }
        }
    }

    /// Rows waiting in the queue.
    pub fn depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }
}

pub struct WriterConfig {
    pub capacity: usize,
    pub batch: usize,
    pub flush_interval: Duration,
}

/// Starts the writer task. It runs until `stop` is cancelled, then drains what is queued.
pub fn spawn(
    db: Db,
    config: WriterConfig,
    stop: CancellationToken,
) -> (WriterHandle, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(config.capacity.max(1));
    let handle = WriterHandle { tx };
    let depth_handle = handle.clone();
    let task = tokio::spawn(run(db, config, rx, stop, depth_handle));
    (handle, task)
}

async fn run(
    db: Db,
    config: WriterConfig,
    mut rx: mpsc::Receiver<Record>,
    stop: CancellationToken,
    handle: WriterHandle,
) {
    let max = config.batch.max(1);
    let mut batch: Vec<Record> = Vec::with_capacity(max);
    // The writer keeps one connection of the pool for itself: its prepared statements and (on
    // SQLite) its page cache stay warm, and the other connections serve the API.
    let mut conn: Option<WriterConn> = None;
    loop {
        // Adaptive batch size: `max` while the writer keeps up (a batch waits at most the flush
        // interval), up to `BACKLOG_FACTOR × max` while a backlog is queued. Bigger batches
        // coalesce more visitor and session upserts per page view (a visitor sending several
        // page views is written once per batch), so the writer catches up instead of falling
        // further behind; see docs/PERFORMANCE.md.
        let limit = if handle.depth() > max {
            max.saturating_mul(BACKLOG_FACTOR)
        } else {
            max
        };
        tokio::select! {
            biased;
            n = rx.recv_many(&mut batch, limit) => {
                if n == 0 { break; }
            }
            _ = stop.cancelled() => break,
        }
        // Give a small batch a short while to grow, unless it is already full.
        let deadline = tokio::time::Instant::now() + config.flush_interval;
        while batch.len() < max {
            let room = max - batch.len();
            tokio::select! {
                n = rx.recv_many(&mut batch, room) => { if n == 0 { break; } }
                _ = tokio::time::sleep_until(deadline) => break,
                _ = stop.cancelled() => break,
            }
        }
        metrics::gauge!("lookout_writer_queue_depth").set(handle.depth() as f64);
        flush_with_retry(&db, &mut conn, &mut batch, &stop).await;
    }
    // Shutdown: take everything still queued, then stop.
    rx.close();
    let drain_max = max.saturating_mul(BACKLOG_FACTOR);
    loop {
        let room = drain_max.saturating_sub(batch.len()).max(1);
        if rx.recv_many(&mut batch, room).await == 0 {
            break;
        }
        if batch.len() >= drain_max {
            flush_with_retry(&db, &mut conn, &mut batch, &stop).await;
        }
    }
    flush_with_retry(&db, &mut conn, &mut batch, &stop).await;
    metrics::gauge!("lookout_writer_queue_depth").set(0.0);
    tracing::info!("writer drained");
}

/// Writes the batch, retrying with back-off while the database fails. After shutdown began it
/// gives up after a bounded time so that the process can exit.
async fn flush_with_retry(
    db: &Db,
    conn: &mut Option<WriterConn>,
    batch: &mut Vec<Record>,
    stop: &CancellationToken,
) {
    if batch.is_empty() {
        return;
    }
    if db.backend() == Backend::Postgres {
        // Postgres text cannot hold NUL: one such character would fail the whole batch again on
        // every retry, so it is replaced before the first attempt.
        for r in batch.iter_mut() {
            r.replace_nul();
        }
    }
    let mut delay = Duration::from_millis(100);
    let mut shutdown_deadline: Option<Instant> = None;
    loop {
        let started = Instant::now();
        match write_batch(db, conn, batch).await {
            Ok(()) => {
                metrics::counter!("lookout_writer_batches_total").increment(1);
                metrics::counter!("lookout_writer_rows_total").increment(batch.len() as u64);
                metrics::histogram!("lookout_writer_batch_seconds")
                    .record(started.elapsed().as_secs_f64());
                let now = super::now_ms();
                let commit_latency = metrics::histogram!("lookout_writer_commit_latency_seconds");
                for r in batch.iter() {
                    if let Record::Pageview(p) = r {
                        commit_latency.record((now - p.at).max(0) as f64 / 1000.0);
                    }
                }
                batch.clear();
                return;
            }
            Err(e) => {
                // The connection may be broken: hand it back (the pool checks it) and take
                // another one for the retry.
                *conn = None;
                metrics::counter!("lookout_writer_errors_total").increment(1);
                tracing::warn!(error = %e, rows = batch.len(), retry_in = ?delay, "writing a batch failed");
                if stop.is_cancelled() {
                    let deadline = *shutdown_deadline
                        .get_or_insert_with(|| Instant::now() + Duration::from_secs(30));
                    if Instant::now() >= deadline {
                        tracing::error!(rows = batch.len(), "giving up on a batch at shutdown");
                        metrics::counter!("lookout_writer_lost_total")
                            .increment(batch.len() as u64);
                        batch.clear();
                        return;
                    }
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

#[derive(Default)]
struct VisitorUpsert {
    first_seen: i64,
    last_seen: i64,
    device: Option<String>,
    browser: Option<String>,
    os: Option<String>,
    user_id: Option<String>,
    traits: serde_json::Map<String, serde_json::Value>,
}

#[derive(Default)]
struct SessionUpsert {
    visitor_id: String,
    started_at: i64,
    last_seen: i64,
    pageviews: i64,
    referrer: Option<String>,
}

/// The rarely written records (messages, deliveries, conversions, pending messages), one
/// statement each, in the batch's transaction: the same SQL for the pool's `Any` connection and
/// the native Postgres one.
macro_rules! write_rare {
    ($tx:ident, $messages:ident, $deliveries:ident, $conversions:ident, $pending:ident) => {
    // Messages first: statuses and pending rows refer to them.
    for m in $messages {
        sqlx::query(
            "insert into message (message_id, site_id, target, payload, created_at, expires_at, sent_by, campaign_id) \
             values ($1, $2, $3, $4, $5, $6, $7, $8) on conflict (message_id) do nothing",
        )
        .bind(m.message_id.as_str())
        .bind(m.site_id.as_str())
        .bind(m.target.as_str())
        .bind(m.payload.as_str())
        .bind(m.created_at)
        .bind(m.expires_at)
        .bind(m.sent_by.as_deref())
        .bind(m.campaign_id.as_deref())
        .execute(&mut *$tx)
        .await?;
    }
    for d in $deliveries {
        sqlx::query(
            "insert into campaign_delivery (delivery_id, campaign_id, site_id, visitor_id, session_id, variant, message_id, at) \
             values ($1, $2, $3, $4, $5, $6, $7, $8) on conflict (delivery_id) do nothing",
        )
        .bind(d.delivery_id.as_str())
        .bind(d.campaign_id.as_str())
        .bind(d.site_id.as_str())
        .bind(d.visitor_id.as_str())
        .bind(d.session_id.as_str())
        .bind(d.variant.as_str())
        .bind(d.message_id.as_deref())
        .bind(d.at)
        .execute(&mut *$tx)
        .await?;
    }
    // After the deliveries of the same batch, so that a conversion always finds its row.
    for c in $conversions {
        sqlx::query("update campaign_delivery set converted_at = $1 where delivery_id = $2 and converted_at is null")
            .bind(c.at)
            .bind(c.delivery_id.as_str())
            .execute(&mut *$tx)
            .await?;
    }
    for p in $pending {
        sqlx::query(
            "insert into pending_message (site_id, visitor_id, message_id, expires_at) values ($1, $2, $3, $4) \
             on conflict (site_id, visitor_id, message_id) do nothing",
        )
        .bind(p.site_id.as_str())
        .bind(p.visitor_id.as_str())
        .bind(p.message_id.as_str())
        .bind(p.expires_at)
        .execute(&mut *$tx)
        .await?;
    }

    };
}

/// The writer's own connection, kept across batches (see `run`).
enum WriterConn {
    /// SQLite: a connection of the pool.
    Pool(PoolConnection<Any>),
    /// Postgres: a native connection outside the pool, for COPY and binary array parameters.
    Pg(Box<PgConnection>),
}

async fn open_conn(db: &Db) -> Result<WriterConn, sqlx::Error> {
    if let Some(pg) = db.connect_pg().await {
        return Ok(WriterConn::Pg(Box::new(pg?)));
    }
    let mut c = db.pool().acquire().await?;
    if db.backend() == Backend::Sqlite {
        // A 64 MiB page cache for the writer's connection (the default is 2 MiB): the
        // indexes of the page view table are updated at random places, and pages that
        // are not cached are read back from the WAL or the file for every batch.
        sqlx::query("pragma cache_size = -65536")
            .execute(&mut *c)
            .await?;
    }
    Ok(WriterConn::Pool(c))
}

async fn write_batch(
    db: &Db,
    conn: &mut Option<WriterConn>,
    batch: &[Record],
) -> Result<(), sqlx::Error> {
    // Coalesce visitor and session updates: one row per key per batch (Postgres refuses to
    // touch a row twice in one INSERT … ON CONFLICT).
    let mut visitors: HashMap<(&str, &str), VisitorUpsert> = HashMap::new();
    let mut sessions: HashMap<(&str, &str), SessionUpsert> = HashMap::new();
    let mut pageviews = Vec::new();
    let mut events = Vec::new();
    let mut statuses = Vec::new();
    let mut messages = Vec::new();
    let mut pending = Vec::new();
    let mut deliveries = Vec::new();
    let mut conversions = Vec::new();

    for r in batch {
        match r {
            Record::Pageview(p) => {
                touch_visitor(&mut visitors, &p.site_id, &p.visitor_id, p.at);
                let s = touch_session(
                    &mut sessions,
                    &p.site_id,
                    &p.session_id,
                    &p.visitor_id,
                    p.at,
                );
                s.pageviews += 1;
                if s.referrer.is_none() {
                    // Only another site counts as where the session came from.
                    s.referrer =
                        crate::live::protocol::external_referrer(p.referrer.as_deref(), &p.url);
                }
                pageviews.push(p);
            }
            Record::Event(e) => {
                touch_visitor(&mut visitors, &e.site_id, &e.visitor_id, e.at);
                touch_session(
                    &mut sessions,
                    &e.site_id,
                    &e.session_id,
                    &e.visitor_id,
                    e.at,
                );
                events.push(e);
            }
            Record::Visit(v) => {
                let u = touch_visitor(&mut visitors, &v.site_id, &v.visitor_id, v.at);
                u.device.clone_from(&v.device);
                u.browser.clone_from(&v.browser);
                u.os.clone_from(&v.os);
                let s = touch_session(
                    &mut sessions,
                    &v.site_id,
                    &v.session_id,
                    &v.visitor_id,
                    v.at,
                );
                if s.referrer.is_none() {
                    s.referrer.clone_from(&v.referrer);
                }
            }
            Record::Identify(i) => {
                let u = touch_visitor(&mut visitors, &i.site_id, &i.visitor_id, i.at);
                if i.user_id.is_some() {
                    u.user_id.clone_from(&i.user_id);
                }
                if let Ok(serde_json::Value::Object(map)) = serde_json::from_str(&i.traits) {
                    u.traits.extend(map);
                }
            }
            Record::Status(s) => statuses.push(s),
            Record::Message(m) => messages.push(m),
            Record::Pending(p) => pending.push(p),
            Record::Delivery(d) => deliveries.push(d),
            Record::Conversion(c) => conversions.push(c),
        }
    }

    let backend = db.backend();
    // Visitors: last/first seen widen, known fields are kept, traits merge (only when the batch
    // brings some: merging `{}` into every row on every page view is wasted work).
    let merge_traits = match backend {
        Backend::Sqlite => "json_patch(visitor.traits, excluded.traits)",
        Backend::Postgres => "(visitor.traits::jsonb || excluded.traits::jsonb)::text",
    };
    let traits: Vec<String> = visitors
        .values_mut()
        .map(|u| {
            let mut v = serde_json::Value::Object(std::mem::take(&mut u.traits));
            if backend == Backend::Postgres {
                // jsonb refuses the escape `\u0000`.
                replace_nul_in_json(&mut v);
            }
            v.to_string()
        })
        .collect();
    let visitor_suffix = format!(
        "on conflict (site_id, visitor_id) do update set \
         last_seen = case when excluded.last_seen > visitor.last_seen then excluded.last_seen else visitor.last_seen end, \
         first_seen = case when excluded.first_seen < visitor.first_seen then excluded.first_seen else visitor.first_seen end, \
         device = coalesce(excluded.device, visitor.device), \
         browser = coalesce(excluded.browser, visitor.browser), \
         os = coalesce(excluded.os, visitor.os), \
         user_id = coalesce(excluded.user_id, visitor.user_id), \
         traits = case when excluded.traits = '{{}}' then visitor.traits else {merge_traits} end"
    );
    let visitor_cols = vec![
        Col::Text(visitors.keys().map(|k| Some(k.0)).collect()),
        Col::Text(visitors.keys().map(|k| Some(k.1)).collect()),
        Col::Int(visitors.values().map(|u| Some(u.first_seen)).collect()),
        Col::Int(visitors.values().map(|u| Some(u.last_seen)).collect()),
        Col::Text(visitors.values().map(|u| u.device.as_deref()).collect()),
        Col::Text(visitors.values().map(|u| u.browser.as_deref()).collect()),
        Col::Text(visitors.values().map(|u| u.os.as_deref()).collect()),
        Col::Text(visitors.values().map(|u| u.user_id.as_deref()).collect()),
        Col::Text(traits.iter().map(|t| Some(t.as_str())).collect()),
    ];
    let session_cols = vec![
        Col::Text(sessions.keys().map(|k| Some(k.0)).collect()),
        Col::Text(sessions.keys().map(|k| Some(k.1)).collect()),
        Col::Text(
            sessions
                .values()
                .map(|s| Some(s.visitor_id.as_str()))
                .collect(),
        ),
        Col::Int(sessions.values().map(|s| Some(s.started_at)).collect()),
        Col::Int(sessions.values().map(|s| Some(s.last_seen)).collect()),
        Col::Int(sessions.values().map(|s| Some(s.pageviews)).collect()),
        Col::Text(sessions.values().map(|s| s.referrer.as_deref()).collect()),
    ];
    let pageview_cols = vec![
        Col::Text(pageviews.iter().map(|p| Some(p.site_id.as_str())).collect()),
        Col::Text(
            pageviews
                .iter()
                .map(|p| Some(p.visitor_id.as_str()))
                .collect(),
        ),
        Col::Text(
            pageviews
                .iter()
                .map(|p| Some(p.session_id.as_str()))
                .collect(),
        ),
        Col::Text(pageviews.iter().map(|p| Some(p.tab_id.as_str())).collect()),
        Col::Text(pageviews.iter().map(|p| Some(p.url.as_str())).collect()),
        Col::Text(pageviews.iter().map(|p| p.title.as_deref()).collect()),
        Col::Text(pageviews.iter().map(|p| p.referrer.as_deref()).collect()),
        Col::Int(pageviews.iter().map(|p| Some(p.at)).collect()),
    ];
    let event_cols = vec![
        Col::Text(events.iter().map(|e| Some(e.site_id.as_str())).collect()),
        Col::Text(events.iter().map(|e| Some(e.visitor_id.as_str())).collect()),
        Col::Text(events.iter().map(|e| Some(e.session_id.as_str())).collect()),
        Col::Text(events.iter().map(|e| Some(e.tab_id.as_str())).collect()),
        Col::Text(events.iter().map(|e| Some(e.name.as_str())).collect()),
        Col::Text(events.iter().map(|e| Some(e.props.as_str())).collect()),
        Col::Text(events.iter().map(|e| e.url.as_deref()).collect()),
        Col::Int(events.iter().map(|e| Some(e.at)).collect()),
    ];
    let status_cols = vec![
        Col::Text(
            statuses
                .iter()
                .map(|s| Some(s.message_id.as_str()))
                .collect(),
        ),
        Col::Text(statuses.iter().map(|s| Some(s.site_id.as_str())).collect()),
        Col::Text(
            statuses
                .iter()
                .map(|s| Some(s.visitor_id.as_str()))
                .collect(),
        ),
        Col::Text(statuses.iter().map(|s| Some(s.tab_id.as_str())).collect()),
        Col::Text(statuses.iter().map(|s| Some(s.status.as_str())).collect()),
        Col::Int(statuses.iter().map(|s| Some(s.at)).collect()),
    ];
    const VISITOR: &str =
        "visitor (site_id, visitor_id, first_seen, last_seen, device, browser, os, user_id, traits)";
    const SESSION: &str =
        "session (site_id, session_id, visitor_id, started_at, last_seen, pageviews, referrer)";
    const SESSION_SUFFIX: &str = "on conflict (site_id, session_id) do update set \
         last_seen = case when excluded.last_seen > session.last_seen then excluded.last_seen else session.last_seen end, \
         pageviews = session.pageviews + excluded.pageviews, \
         referrer = coalesce(session.referrer, excluded.referrer)";
    const PAGEVIEW: &str =
        "pageview (site_id, visitor_id, session_id, tab_id, url, title, referrer, at)";
    const EVENT: &str = "event (site_id, visitor_id, session_id, tab_id, name, props, url, at)";
    const STATUS: &str = "message_status (message_id, site_id, visitor_id, tab_id, status, at)";
    const STATUS_SUFFIX: &str = "on conflict (message_id, tab_id, status) do nothing";

    if conn.is_none() {
        *conn = Some(open_conn(db).await?);
    }
    match conn {
        Some(WriterConn::Pg(c)) => {
            let mut tx = Connection::begin(&mut **c).await?;
            write_rare!(tx, messages, deliveries, conversions, pending);
            pg_upsert(&mut tx, VISITOR, &visitor_suffix, &visitor_cols).await?;
            pg_upsert(&mut tx, SESSION, SESSION_SUFFIX, &session_cols).await?;
            pg_copy(&mut tx, PAGEVIEW, &pageview_cols).await?;
            pg_copy(&mut tx, EVENT, &event_cols).await?;
            pg_upsert(&mut tx, STATUS, STATUS_SUFFIX, &status_cols).await?;
            tx.commit().await
        }
        Some(WriterConn::Pool(c)) => {
            let mut tx = c.begin().await?;
            write_rare!(tx, messages, deliveries, conversions, pending);
            insert_rows(&mut tx, backend, VISITOR, &visitor_suffix, visitor_cols).await?;
            insert_rows(&mut tx, backend, SESSION, SESSION_SUFFIX, session_cols).await?;
            insert_rows(&mut tx, backend, PAGEVIEW, "", pageview_cols).await?;
            insert_rows(&mut tx, backend, EVENT, "", event_cols).await?;
            insert_rows(&mut tx, backend, STATUS, STATUS_SUFFIX, status_cols).await?;
            tx.commit().await
        }
        None => Ok(()),
    }
}

fn touch_visitor<'a, 'm>(
    map: &'m mut HashMap<(&'a str, &'a str), VisitorUpsert>,
    site: &'a str,
    visitor: &'a str,
    at: i64,
) -> &'m mut VisitorUpsert {
    let u = map.entry((site, visitor)).or_insert_with(|| VisitorUpsert {
        first_seen: at,
        last_seen: at,
        ..Default::default()
    });
    u.first_seen = u.first_seen.min(at);
    u.last_seen = u.last_seen.max(at);
    u
}

fn touch_session<'a, 'm>(
    map: &'m mut HashMap<(&'a str, &'a str), SessionUpsert>,
    site: &'a str,
    session: &'a str,
    visitor: &str,
    at: i64,
) -> &'m mut SessionUpsert {
    let s = map.entry((site, session)).or_insert_with(|| SessionUpsert {
        visitor_id: visitor.to_string(),
        started_at: at,
        last_seen: at,
        ..Default::default()
    });
    s.started_at = s.started_at.min(at);
    s.last_seen = s.last_seen.max(at);
    s
}

fn add<'q, T>(args: &mut AnyArguments<'q>, value: T)
where
    T: 'q + sqlx::Encode<'q, Any> + sqlx::Type<Any>,
{
    // Encoding strings and integers into Any arguments cannot fail; a failure would surface as a
    // bind-count error from the database, which the retry loop reports.
    let _ = args.add(value);
}

/// One column of rows to insert, in row order.
enum Col<'a> {
    Text(Vec<Option<&'a str>>),
    Int(Vec<Option<i64>>),
}

impl Col<'_> {
    fn len(&self) -> usize {
        match self {
            Col::Text(v) => v.len(),
            Col::Int(v) => v.len(),
        }
    }
}

/// Inserts rows given by columns into `target` (`table (col, …)`), followed by `suffix`
/// (an `on conflict` clause or nothing).
///
/// Postgres: one statement per table and batch, `insert … select * from unnest($1::text[], …)`
/// with each column bound as one array literal. The SQL text is the same for every batch, so
/// it is parsed and planned once per connection (prepared-statement cache) instead of once
/// per row count, and a batch binds a handful of parameters instead of thousands.
///
/// SQLite: multi-row `values (?, …), …` in chunks of `ROWS_PER_STATEMENT` rows. Anonymous `?`
/// placeholders matter: for each parameter sqlx asks SQLite for its name, which scans the list
/// of named (`$N`) parameters, so `$N` placeholders make binding quadratic in the row count.
async fn insert_rows(
    tx: &mut sqlx::Transaction<'_, Any>,
    backend: Backend,
    target: &str,
    suffix: &str,
    cols: Vec<Col<'_>>,
) -> Result<(), sqlx::Error> {
    let rows = cols.first().map_or(0, Col::len);
    if rows == 0 {
        return Ok(());
    }
    match backend {
        Backend::Postgres => {
            let mut casts = Vec::with_capacity(cols.len());
            let mut args = AnyArguments::default();
            for (i, c) in cols.iter().enumerate() {
                match c {
                    Col::Text(v) => {
                        casts.push(format!("${}::text[]", i + 1));
                        add(&mut args, pg_text_array(v));
                    }
                    Col::Int(v) => {
                        casts.push(format!("${}::bigint[]", i + 1));
                        add(&mut args, pg_int_array(v));
                    }
                }
            }
            let sql = format!(
                "insert into {target} select * from unnest({}) {suffix}",
                casts.join(", ")
            );
            sqlx::query_with(&sql, args)
                .execute(&mut **tx)
                .await
                .map(|_| ())
        }
        Backend::Sqlite => {
            let mut start = 0;
            while start < rows {
                let end = start + sqlite_chunk(rows - start);
                let sql = format!(
                    "insert into {target} values {} {suffix}",
                    sqlite_placeholders(end - start, cols.len())
                );
                let mut args = AnyArguments::default();
                for r in start..end {
                    for c in &cols {
                        match c {
                            Col::Text(v) => add(&mut args, v[r]),
                            Col::Int(v) => add(&mut args, v[r]),
                        }
                    }
                }
                sqlx::query_with(&sql, args).execute(&mut **tx).await?;
                start = end;
            }
            Ok(())
        }
    }
}

/// Postgres: upserts rows given by columns with one `insert … select * from unnest($1::text[],
/// …)` statement. The SQL is the same for every batch (planned once per connection) and each
/// column travels as one binary array parameter, which Postgres reads without parsing text.
async fn pg_upsert(
    conn: &mut PgConnection,
    target: &str,
    suffix: &str,
    cols: &[Col<'_>],
) -> Result<(), sqlx::Error> {
    if cols.first().map_or(0, Col::len) == 0 {
        return Ok(());
    }
    let casts: Vec<String> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| match c {
            Col::Text(_) => format!("${}::text[]", i + 1),
            Col::Int(_) => format!("${}::bigint[]", i + 1),
        })
        .collect();
    let sql = format!(
        "insert into {target} select * from unnest({}) {suffix}",
        casts.join(", ")
    );
    let mut query = sqlx::query(&sql);
    for c in cols {
        query = match c {
            Col::Text(v) => query.bind(v.as_slice()),
            Col::Int(v) => query.bind(v.as_slice()),
        };
    }
    query.execute(conn).await.map(|_| ())
}

/// Postgres: appends rows given by columns with `COPY … FROM STDIN (FORMAT binary)`, the
/// cheapest way in for page views and events (no SQL to parse, no text to convert, rows
/// inserted in bulk).
async fn pg_copy(
    conn: &mut PgConnection,
    target: &str,
    cols: &[Col<'_>],
) -> Result<(), sqlx::Error> {
    if cols.first().map_or(0, Col::len) == 0 {
        return Ok(());
    }
    let data = copy_binary(cols);
    let mut copy = conn
        .copy_in_raw(&format!("copy {target} from stdin (format binary)"))
        .await?;
    if let Err(e) = copy.send(data).await {
        let _ = copy.abort("the writer could not send the rows").await;
        return Err(e);
    }
    copy.finish().await.map(|_| ())
}

/// The rows in the binary COPY format: a header, then per row the field count and each field
/// as a length (-1 for NULL) and its bytes (text as UTF-8, bigint as 8 bytes big-endian), then
/// a trailer.
fn copy_binary(cols: &[Col<'_>]) -> Vec<u8> {
    let rows = cols.first().map_or(0, Col::len);
    let text_bytes: usize = cols
        .iter()
        .map(|c| match c {
            Col::Text(v) => v.iter().map(|t| t.map_or(0, str::len)).sum(),
            Col::Int(v) => v.len() * 8,
        })
        .sum();
    let mut out = Vec::with_capacity(21 + rows * (2 + cols.len() * 4) + text_bytes);
    out.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    out.extend_from_slice(&0i32.to_be_bytes()); // flags
    out.extend_from_slice(&0i32.to_be_bytes()); // header extension length
    let fields = i16::try_from(cols.len()).unwrap_or(i16::MAX);
    for r in 0..rows {
        out.extend_from_slice(&fields.to_be_bytes());
        for c in cols {
            match c {
                Col::Text(v) => match v[r] {
                    Some(t) => {
                        // Texts are bounded far below 1 GiB by the protocol's limits.
                        let len = i32::try_from(t.len()).unwrap_or(i32::MAX);
                        out.extend_from_slice(&len.to_be_bytes());
                        out.extend_from_slice(t.as_bytes());
                    }
                    None => out.extend_from_slice(&(-1i32).to_be_bytes()),
                },
                Col::Int(v) => match v[r] {
                    Some(n) => {
                        out.extend_from_slice(&8i32.to_be_bytes());
                        out.extend_from_slice(&n.to_be_bytes());
                    }
                    None => out.extend_from_slice(&(-1i32).to_be_bytes()),
                },
            }
        }
    }
    out.extend_from_slice(&(-1i16).to_be_bytes());
    out
}

fn replace_nul(s: &mut String) {
    if s.contains('\0') {
        *s = s.replace('\0', "\u{FFFD}");
    }
}

fn replace_nul_opt(s: &mut Option<String>) {
    if let Some(s) = s {
        replace_nul(s);
    }
}

/// Replaces NUL in the strings and keys of a JSON value (jsonb refuses `\u0000`).
fn replace_nul_in_json(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) => replace_nul(s),
        serde_json::Value::Array(a) => a.iter_mut().for_each(replace_nul_in_json),
        serde_json::Value::Object(m) => {
            if m.keys().any(|k| k.contains('\0')) {
                let old = std::mem::take(m);
                for (mut k, mut val) in old {
                    replace_nul(&mut k);
                    replace_nul_in_json(&mut val);
                    m.insert(k, val);
                }
            } else {
                m.values_mut().for_each(replace_nul_in_json);
            }
        }
        _ => {}
    }
}

impl Record {
    /// Replaces NUL characters (which Postgres text cannot hold) with U+FFFD. JSON documents are
    /// serialised with NUL escaped, so only the plain text fields need it.
    fn replace_nul(&mut self) {
        match self {
            Record::Message(m) => {
                for s in [
                    &mut m.message_id,
                    &mut m.site_id,
                    &mut m.target,
                    &mut m.payload,
                ] {
                    replace_nul(s);
                }
                replace_nul_opt(&mut m.sent_by);
                replace_nul_opt(&mut m.campaign_id);
            }
            Record::Pending(p) => {
                for s in [&mut p.site_id, &mut p.visitor_id, &mut p.message_id] {
                    replace_nul(s);
                }
            }
            Record::Delivery(d) => {
                for s in [
                    &mut d.delivery_id,
                    &mut d.campaign_id,
                    &mut d.site_id,
                    &mut d.visitor_id,
                    &mut d.session_id,
                    &mut d.variant,
                ] {
                    replace_nul(s);
                }
                replace_nul_opt(&mut d.message_id);
            }
            Record::Conversion(c) => replace_nul(&mut c.delivery_id),
            Record::Pageview(p) => {
                for s in [
                    &mut p.site_id,
                    &mut p.visitor_id,
                    &mut p.session_id,
                    &mut p.tab_id,
                    &mut p.url,
                ] {
                    replace_nul(s);
                }
                replace_nul_opt(&mut p.title);
                replace_nul_opt(&mut p.referrer);
            }
            Record::Event(e) => {
                for s in [
                    &mut e.site_id,
                    &mut e.visitor_id,
                    &mut e.session_id,
                    &mut e.tab_id,
                    &mut e.name,
                    &mut e.props,
                ] {
                    replace_nul(s);
                }
                replace_nul_opt(&mut e.url);
            }
            Record::Visit(v) => {
                for s in [&mut v.site_id, &mut v.visitor_id, &mut v.session_id] {
                    replace_nul(s);
                }
                for s in [&mut v.referrer, &mut v.device, &mut v.browser, &mut v.os] {
                    replace_nul_opt(s);
                }
            }
            Record::Identify(i) => {
                for s in [&mut i.site_id, &mut i.visitor_id] {
                    replace_nul(s);
                }
                replace_nul_opt(&mut i.user_id);
            }
            Record::Status(s) => {
                for f in [
                    &mut s.message_id,
                    &mut s.site_id,
                    &mut s.visitor_id,
                    &mut s.tab_id,
                    &mut s.status,
                ] {
                    replace_nul(f);
                }
            }
        }
    }
}

/// A Postgres array literal of text: every element quoted (`"` and `\` escaped), NULL bare.
fn pg_text_array(values: &[Option<&str>]) -> String {
    let len: usize = values.iter().map(|v| v.map_or(4, str::len) + 3).sum();
    let mut s = String::with_capacity(len + 2);
    s.push('{');
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        match v {
            None => s.push_str("NULL"),
            Some(v) => {
                s.push('"');
                for ch in v.chars() {
                    if ch == '"' || ch == '\\' {
                        s.push('\\');
                    }
                    s.push(ch);
                }
                s.push('"');
            }
        }
    }
    s.push('}');
    s
}

fn pg_int_array(values: &[Option<i64>]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(values.len() * 14 + 2);
    s.push('{');
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        match v {
            None => s.push_str("NULL"),
            Some(n) => {
                let _ = write!(s, "{n}");
            }
        }
    }
    s.push('}');
    s
}

/// Rows for the next SQLite statement: the largest power of two up to `ROWS_PER_STATEMENT`, so
/// that a table is written with at most 11 distinct statements, all kept prepared in the
/// connection's statement cache (a statement of each exact row count would be parsed again for
/// nearly every batch).
fn sqlite_chunk(remaining: usize) -> usize {
    let r = remaining.clamp(1, ROWS_PER_STATEMENT);
    1 << (usize::BITS - 1 - r.leading_zeros())
}

/// `(?,?),(?,?)…` for `rows` rows of `cols` columns.
fn sqlite_placeholders(rows: usize, cols: usize) -> String {
    let mut one = String::with_capacity(cols * 2 + 1);
    one.push('(');
    for c in 0..cols {
        if c > 0 {
            one.push(',');
        }
        one.push('?');
    }
    one.push(')');
    let mut s = String::with_capacity(rows * (one.len() + 1));
    for r in 0..rows {
        if r > 0 {
            s.push(',');
        }
        s.push_str(&one);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::{copy_binary, pg_int_array, pg_text_array, sqlite_chunk, sqlite_placeholders, Col};

    #[test]
    fn sqlite_chunks_are_powers_of_two_up_to_the_limit() {
        assert_eq!(sqlite_chunk(1), 1);
        assert_eq!(sqlite_chunk(3), 2);
        assert_eq!(sqlite_chunk(1_000), 512);
        assert_eq!(sqlite_chunk(1_024), 1_024);
        assert_eq!(sqlite_chunk(50_000), 1_024);
        let mut sizes = std::collections::BTreeSet::new();
        for n in 1..5_000 {
            let (mut left, mut parts) = (n, 0);
            while left > 0 {
                let c = sqlite_chunk(left);
                sizes.insert(c);
                left -= c;
                parts += 1;
            }
            assert!(parts <= n / 1_024 + 11, "{n} rows in {parts} statements");
        }
        assert_eq!(sizes.len(), 11);
    }

    #[test]
    fn copy_binary_writes_header_rows_nulls_and_trailer() {
        let cols = [
            Col::Text(vec![Some("a\tb"), None]),
            Col::Int(vec![Some(-2), None]),
        ];
        let mut want = b"PGCOPY\n\xff\r\n\0".to_vec();
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
        want.extend_from_slice(&[0, 2, 0, 0, 0, 3, b'a', b'\t', b'b']);
        want.extend_from_slice(&[0, 0, 0, 8]);
        want.extend_from_slice(&(-2i64).to_be_bytes());
        want.extend_from_slice(&[0, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        want.extend_from_slice(&[0xff, 0xff]);
        assert_eq!(copy_binary(&cols), want);
    }

    #[test]
    fn sqlite_placeholders_are_anonymous_rows_of_columns() {
        assert_eq!(sqlite_placeholders(2, 3), "(?,?,?),(?,?,?)");
        assert_eq!(sqlite_placeholders(1, 1), "(?)");
    }

    #[test]
    fn postgres_array_literals_quote_escape_and_keep_nulls() {
        assert_eq!(
            pg_text_array(&[Some("a"), None, Some(""), Some(r#"x"y\z,{}"#), Some("NULL")]),
            r#"{"a",NULL,"","x\"y\\z,{}","NULL"}"#
        );
        assert_eq!(pg_int_array(&[Some(1), None, Some(-2)]), "{1,NULL,-2}");
        assert_eq!(pg_text_array(&[]), "{}");
    }
}
