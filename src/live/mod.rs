//! The live channel: the hub (in-memory presence and fan-out), the visitor and admin sockets,
//! and sending messages (shared by the admin socket and the REST API).

pub mod admin;
pub mod hub;
pub mod protocol;
pub mod sites;
pub mod visitor;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::extract::ws::Utf8Bytes;
use axum::routing::get;
use axum::Router;
use serde_json::json;

use crate::db::now_ms;
use crate::db::writer::{MessageRow, PendingRow, Record, StatusRow};
use crate::domain::new_id;
use crate::state::AppState;
use hub::{Delivery, Selector};
use protocol::{MessageContent, Target};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ws/visitor", get(visitor::upgrade))
        .route("/ws/admin", get(admin::upgrade))
}

/// Longest a message may wait for an offline visitor.
pub const MAX_TTL_SECS: u64 = 30 * 24 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("{0}")]
    Invalid(String),
    #[error("no segment with this id on this site")]
    UnknownSegment,
    #[error("`ttl` applies to messages for one visitor")]
    TtlNeedsVisitor,
    #[error("the service is shutting down")]
    Unavailable,
}

impl SendError {
    pub fn code(&self) -> &'static str {
        match self {
            SendError::Invalid(_) => "invalid_message",
            SendError::UnknownSegment => "unknown_segment",
            SendError::TtlNeedsVisitor => "invalid_ttl",
            SendError::Unavailable => "unavailable",
        }
    }
}

pub struct Sent {
    pub id: String,
    pub delivered: usize,
}

/// Visitors with messages waiting for them (ttl), so a hello only queries when there is one.
#[derive(Clone, Default)]
pub struct PendingIndex {
    set: Arc<Mutex<HashSet<(String, String)>>>,
}

impl PendingIndex {
    pub async fn load(db: &crate::db::Db) -> Result<Self, sqlx::Error> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "select distinct site_id, visitor_id from pending_message where expires_at > $1",
        )
        .bind(now_ms())
        .fetch_all(db.pool())
        .await?;
        let index = Self::default();
        index
            .set
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(rows);
        Ok(index)
    }

    fn add(&self, site: &str, visitor: &str) {
        self.set
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((site.to_string(), visitor.to_string()));
    }

    fn take(&self, site: &str, visitor: &str) -> bool {
        self.set
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(site.to_string(), visitor.to_string()))
    }
}

pub fn message_frame(id: &str, m: &MessageContent) -> Utf8Bytes {
    Utf8Bytes::from(
        json!({
            "type": "message", "id": id, "title": m.title, "body": m.body, "style": m.style,
            "cta": m.cta, "data": m.data,
        })
        .to_string(),
    )
}

/// Sends a message to the target's tabs that are live now, records it, and keeps it for an
/// offline visitor when `ttl` is given. Fan-out happens before anything is written.
pub async fn send_message(
    state: &AppState,
    site_id: &str,
    to: Target,
    mut message: MessageContent,
    ttl: Option<u64>,
    sent_by: Option<String>,
) -> Result<Sent, SendError> {
    to.validate().map_err(SendError::Invalid)?;
    message.validate().map_err(SendError::Invalid)?;
    if let Some(ttl) = ttl {
        if !matches!(to, Target::Visitor(_)) {
            return Err(SendError::TtlNeedsVisitor);
        }
        if ttl == 0 || ttl > MAX_TTL_SECS {
            return Err(SendError::Invalid(format!(
                "ttl must be 1 to {MAX_TTL_SECS} seconds"
            )));
        }
    }
    let selector = match &to {
        Target::Visitor(v) => Selector::Visitor(v),
        Target::Session(s) => Selector::Session(s),
        Target::Tab(t) => Selector::Tab(t),
        Target::All(_) => Selector::All,
        Target::Segment(s) => {
            if !state.targeting.segment_exists(site_id, s) {
                return Err(SendError::UnknownSegment);
            }
            Selector::Segment(s)
        }
    };
    let id = new_id();
    let now = now_ms();
    let frame = message_frame(&id, &message);
    let reached = state.hub.deliver(site_id, selector, &id, &frame);
    // Tabs on other nodes: those nodes record and report their own deliveries.
    let remote = match &state.cluster {
        Some(cluster) => {
            cluster
                .deliver_remote(site_id, &id, &selector, frame.as_str())
                .await
        }
        None => Vec::new(),
    };
    metrics::counter!("lookout_messages_sent_total").increment(1);

    let target_json = serde_json::to_string(&to).unwrap_or_default();
    let payload = serde_json::to_string(&message).unwrap_or_default();
    let expires_at = ttl.map(|t| now + (t as i64) * 1000);
    let submit = |r| state.writer.submit(r);
    submit(Record::Message(MessageRow {
        message_id: id.clone(),
        site_id: site_id.to_string(),
        target: target_json,
        payload,
        created_at: now,
        expires_at,
        sent_by,
        campaign_id: None,
    }))
    .await
    .map_err(|_| SendError::Unavailable)?;
    let mut noted = HashSet::new();
    for d in &reached {
        // Manual messages count towards campaigns' caps too, so nobody is pestered.
        if noted.insert(d.visitor.as_str()) {
            state.targeting.note_message(site_id, &d.visitor, now);
        }
    }
    record_delivered(state, site_id, &id, &reached, now).await;
    for d in &remote {
        if noted.insert(d.visitor.as_str()) {
            state.targeting.note_message(site_id, &d.visitor, now);
        }
    }
    if let (Target::Visitor(v), Some(expires_at)) = (&to, expires_at) {
        if reached.is_empty() && remote.is_empty() {
            submit(Record::Pending(PendingRow {
                site_id: site_id.to_string(),
                visitor_id: v.clone(),
                message_id: id.clone(),
                expires_at,
            }))
            .await
            .map_err(|_| SendError::Unavailable)?;
            state.pending.add(site_id, v);
        }
    }
    Ok(Sent {
        id,
        delivered: reached.len() + remote.len(),
    })
}

/// Records that a message reached these tabs of this node: tells the admins and stores the
/// `delivered` statuses.
pub async fn record_delivered(
    state: &AppState,
    site_id: &str,
    message_id: &str,
    reached: &[Delivery],
    now: i64,
) {
    for d in reached {
        state
            .hub
            .status(site_id, message_id, &d.visitor, "delivered", now);
        let _ = state
            .writer
            .submit(Record::Status(StatusRow {
                message_id: message_id.to_string(),
                site_id: site_id.to_string(),
                visitor_id: d.visitor.clone(),
                tab_id: d.tab.clone(),
                status: "delivered".into(),
                at: now,
            }))
            .await;
    }
}

/// Delivers messages kept for a visitor who just connected (runs beside the socket, never
/// in its way).
pub async fn deliver_pending(state: AppState, site_id: String, visitor: String) {
    // In a cluster another node may have kept the message: always look.
    if !state.pending.take(&site_id, &visitor) && state.cluster.is_none() {
        return;
    }
    let rows: Result<Vec<(String, String)>, _> = sqlx::query_as(
        "select m.message_id, m.payload from pending_message p join message m on m.message_id = p.message_id \
         where p.site_id = $1 and p.visitor_id = $2 and p.expires_at > $3 order by m.created_at",
    )
    .bind(&site_id)
    .bind(&visitor)
    .bind(now_ms())
    .fetch_all(state.db.pool())
    .await;
    let rows = match rows {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "loading pending messages failed; will retry on next connect");
            state.pending.add(&site_id, &visitor);
            return;
        }
    };
    for (id, payload) in rows {
        let Ok(message) = serde_json::from_str::<MessageContent>(&payload) else {
            continue;
        };
        let reached = state.hub.deliver(
            &site_id,
            Selector::Visitor(&visitor),
            &id,
            &message_frame(&id, &message),
        );
        record_delivered(&state, &site_id, &id, &reached, now_ms()).await;
        if reached.is_empty() {
            state.pending.add(&site_id, &visitor);
            continue;
        }
        let _ = sqlx::query("delete from pending_message where site_id = $1 and visitor_id = $2 and message_id = $3")
            .bind(&site_id)
            .bind(&visitor)
            .bind(&id)
            .execute(state.db.pool())
            .await;
    }
}
