//! Messages over REST: send (the same targets as the admin socket, plus `ttl` for a visitor who
//! is offline now) and the list of sent messages with their outcome counts.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{int, text, Cursor, Filter, Paged};
use crate::auth::extract::SiteAccess;
use crate::domain::rfc3339;
use crate::error::{ApiError, ApiJson, ApiQuery, ErrorBody, Result};
use crate::live::protocol::{MessageContent, Target};
use crate::live::{send_message, SendError};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/sites/{site}/messages",
        get(list_messages).post(post_message),
    )
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    pub to: Target,
    pub message: MessageContent,
    /// Seconds to keep the message for a visitor who is not online now (visitor targets only).
    pub ttl: Option<u64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MessageAccepted {
    pub id: String,
    /// Tabs it reached now.
    pub delivered: usize,
}

impl From<SendError> for ApiError {
    fn from(e: SendError) -> Self {
        match e {
            SendError::Unavailable => ApiError::Unavailable(e.to_string()),
            other => ApiError::invalid(other.code(), other.to_string()),
        }
    }
}

/// Sends a message to a visitor, session, tab, segment or everyone on the site.
#[utoipa::path(post, path = "/api/sites/{site}/messages", tag = "messages", params(("site" = String, Path)),
    request_body = NewMessage, security(("bearer" = [])),
    responses((status = 202, body = MessageAccepted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn post_message(
    State(state): State<AppState>,
    access: SiteAccess,
    ApiJson(body): ApiJson<NewMessage>,
) -> Result<(StatusCode, Json<MessageAccepted>)> {
    access.require_write()?;
    let sent = send_message(
        &state,
        &access.site_id,
        body.to,
        body.message,
        body.ttl,
        access.account_id().map(str::to_string),
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(MessageAccepted {
            id: sent.id,
            delivered: sent.delivered,
        }),
    ))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct StatusEntry {
    pub status: String,
    pub tab: String,
    pub at: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SentMessage {
    pub id: String,
    #[schema(value_type = Object)]
    pub to: Value,
    pub message: MessageContent,
    pub created_at: String,
    pub expires_at: Option<String>,
    /// Counts of tabs.
    pub delivered: i64,
    pub shown: i64,
    pub clicked: i64,
    pub dismissed: i64,
    /// With `?visitor=`: that visitor's statuses for the message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statuses: Option<Vec<StatusEntry>>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessageFilter {
    /// Only messages sent to, or received by, this visitor.
    pub visitor: Option<String>,
}

type MessageRow = (String, String, String, i64, Option<i64>, i64, i64, i64, i64);

/// Sent messages, newest first, with the number of tabs that got, showed, clicked and
/// dismissed each.
#[utoipa::path(get, path = "/api/sites/{site}/messages", tag = "messages",
    params(("site" = String, Path), MessageFilter, super::PageParams), security(("bearer" = [])),
    responses((status = 200, body = Paged<SentMessage>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_messages(
    State(state): State<AppState>,
    access: SiteAccess,
    ApiQuery(q): ApiQuery<MessageFilter>,
    ApiQuery(page): ApiQuery<super::PageParams>,
) -> Result<Json<Paged<SentMessage>>> {
    let w = page.window()?;
    let cursor = Cursor::decode(page.cursor.as_deref())?;
    let mut f = Filter::default();
    f.push("m.site_id = ?", vec![text(&access.site_id)]);
    if let Some(from) = w.from {
        f.push("m.created_at >= ?", vec![int(from)]);
    }
    if let Some(to) = w.to {
        f.push("m.created_at < ?", vec![int(to)]);
    }
    if let Some(v) = &q.visitor {
        let target = serde_json::json!({ "visitor": v }).to_string();
        f.push(
            "(m.target = ? or m.message_id in (select message_id from message_status where site_id = ? and visitor_id = ?))",
            vec![text(target), text(&access.site_id), text(v)],
        );
    }
    if let Some(c) = &cursor {
        f.push(
            "(m.created_at < ? or (m.created_at = ? and m.message_id < ?))",
            vec![int(c.at), int(c.at), text(c.id.clone())],
        );
    }
    let count = |status: &str| {
        format!(
            "cast(coalesce(sum(case when s.status = '{status}' then 1 else 0 end), 0) as bigint)"
        )
    };
    let sql = format!(
        "select m.message_id, m.target, m.payload, m.created_at, m.expires_at, {}, {}, {}, {} \
         from message m left join message_status s on s.message_id = m.message_id \
         where {} group by m.message_id, m.target, m.payload, m.created_at, m.expires_at \
         order by m.created_at desc, m.message_id desc limit {}",
        count("delivered"),
        count("shown"),
        count("clicked"),
        count("dismissed"),
        f.where_sql(),
        w.limit + 1
    );
    let mut rows: Vec<MessageRow> = f
        .bind(sqlx::query_as(&sql))
        .fetch_all(state.db.pool())
        .await?;
    let next_cursor = if rows.len() as i64 > w.limit {
        rows.truncate(w.limit as usize);
        rows.last().map(|r| Cursor::encode(r.3, &r.0))
    } else {
        None
    };
    let mut items = Vec::with_capacity(rows.len());
    for (id, target, payload, created_at, expires_at, delivered, shown, clicked, dismissed) in rows
    {
        let Ok(message) = serde_json::from_str::<MessageContent>(&payload) else {
            continue;
        };
        let statuses = match &q.visitor {
            None => None,
            Some(v) => {
                let rows: Vec<(String, String, i64)> = sqlx::query_as(
                    "select status, tab_id, at from message_status where message_id = $1 and site_id = $2 \
                     and visitor_id = $3 order by at",
                )
                .bind(&id)
                .bind(&access.site_id)
                .bind(v)
                .fetch_all(state.db.pool())
                .await?;
                Some(
                    rows.into_iter()
                        .map(|(status, tab, at)| StatusEntry {
                            status,
                            tab,
                            at: rfc3339(at),
                        })
                        .collect(),
                )
            }
        };
        items.push(SentMessage {
            id,
            to: serde_json::from_str(&target).unwrap_or(Value::Null),
            message,
            created_at: rfc3339(created_at),
            expires_at: expires_at.map(rfc3339),
            delivered,
            shown,
            clicked,
            dismissed,
            statuses,
        });
    }
    Ok(Json(Paged { items, next_cursor }))
}
