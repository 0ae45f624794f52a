//! History: page views, events, visitors and one visitor's profile, per-visitor erase, and
//! stats. Lists are newest first with keyset cursors over (time, id), so pages stay stable while
//! new rows arrive. Which index serves which query is listed in docs/API.md.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::{int, text, Cursor, Filter, PageParams, Paged};
use crate::auth::extract::SiteAccess;
use crate::db::{now_ms, prefix_upper_bound};
use crate::domain::rfc3339;
use crate::error::{ApiError, ApiQuery, ErrorBody, Result};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/sites/{site}/pageviews", get(pageviews))
        .route("/sites/{site}/events", get(events))
        .route("/sites/{site}/visitors", get(visitors))
        .route(
            "/sites/{site}/visitors/{visitor}",
            get(visitor_profile).delete(erase_visitor),
        )
        .route("/sites/{site}/stats", get(stats))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Pageview {
    pub id: String,
    pub visitor: String,
    pub session: String,
    pub tab: String,
    pub url: String,
    pub title: Option<String>,
    pub referrer: Option<String>,
    pub at: String,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageviewFilter {
    pub visitor: Option<String>,
    pub session: Option<String>,
    /// URL prefix.
    pub url: Option<String>,
}

fn keyset(
    f: &mut Filter,
    time_col: &str,
    id_col: &str,
    id_is_int: bool,
    cursor: &Cursor,
) -> Result<()> {
    if id_is_int {
        let id: i64 = cursor.id.parse().map_err(|_| {
            ApiError::bad_request("invalid_cursor", "`cursor` is not one this API gave out")
        })?;
        f.push(
            &format!("({time_col} < ? or ({time_col} = ? and {id_col} < ?))"),
            vec![int(cursor.at), int(cursor.at), int(id)],
        );
    } else {
        f.push(
            &format!("({time_col} < ? or ({time_col} = ? and {id_col} < ?))"),
            vec![int(cursor.at), int(cursor.at), text(cursor.id.clone())],
        );
    }
    Ok(())
}

fn window(f: &mut Filter, col: &str, from: Option<i64>, to: Option<i64>) {
    if let Some(from) = from {
        f.push(&format!("{col} >= ?"), vec![int(from)]);
    }
    if let Some(to) = to {
        f.push(&format!("{col} < ?"), vec![int(to)]);
    }
}

type PageviewRow = (
    i64,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
);

/// Page views, newest first.
#[utoipa::path(get, path = "/api/sites/{site}/pageviews", tag = "history",
    params(("site" = String, Path), PageviewFilter, PageParams), security(("bearer" = [])),
    responses((status = 200, body = Paged<Pageview>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn pageviews(
    State(state): State<AppState>,
    access: SiteAccess,
    ApiQuery(q): ApiQuery<PageviewFilter>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Paged<Pageview>>> {
    let w = page.window()?;
    let cursor = Cursor::decode(page.cursor.as_deref())?;
    let mut f = Filter::default();
    f.push("site_id = ?", vec![text(&access.site_id)]);
    window(&mut f, "at", w.from, w.to);
    if let Some(v) = q.visitor {
        f.push("visitor_id = ?", vec![text(v)]);
    }
    if let Some(s) = q.session {
        f.push("session_id = ?", vec![text(s)]);
    }
    if let Some(prefix) = q.url.filter(|u| !u.is_empty()) {
        match prefix_upper_bound(&prefix) {
            Some(upper) => {
                let db = state.db.clone();
                f.push_with(vec![text(prefix), text(upper)], |s| {
                    db.prefix_clause("url", s[0], s[1])
                });
            }
            None => {
                f.push("url >= ?", vec![text(prefix)]);
            }
        }
    }
    if let Some(c) = &cursor {
        keyset(&mut f, "at", "pageview_id", true, c)?;
    }
    let sql = format!(
        "select pageview_id, visitor_id, session_id, tab_id, url, title, referrer, at from pageview \
         where {} order by at desc, pageview_id desc limit {}",
        f.where_sql(),
        w.limit + 1
    );
    let mut rows: Vec<PageviewRow> = f
        .bind(sqlx::query_as(&sql))
        .fetch_all(state.db.pool())
        .await?;
    let next_cursor = next_cursor(&mut rows, w.limit, |r| {
        Cursor::encode(r.7, &r.0.to_string())
    });
    let items = rows
        .into_iter()
        .map(
            |(id, visitor, session, tab, url, title, referrer, at)| Pageview {
                id: id.to_string(),
                visitor,
                session,
                tab,
                url,
                title,
                referrer,
                at: rfc3339(at),
            },
        )
        .collect();
    Ok(Json(Paged { items, next_cursor }))
}

/// Trims the extra row fetched to learn whether another page exists, and gives its cursor.
fn next_cursor<T>(
    rows: &mut Vec<T>,
    limit: i64,
    cursor_of: impl Fn(&T) -> String,
) -> Option<String> {
    if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(cursor_of)
    } else {
        None
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Event {
    pub id: String,
    pub visitor: String,
    pub session: String,
    pub tab: String,
    pub name: String,
    #[schema(value_type = Object)]
    pub props: serde_json::Value,
    pub url: Option<String>,
    pub at: String,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventFilter {
    pub visitor: Option<String>,
    /// Event name (exact).
    pub name: Option<String>,
}

type EventRow = (
    i64,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    i64,
);

/// Custom events, newest first.
#[utoipa::path(get, path = "/api/sites/{site}/events", tag = "history",
    params(("site" = String, Path), EventFilter, PageParams), security(("bearer" = [])),
    responses((status = 200, body = Paged<Event>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn events(
    State(state): State<AppState>,
    access: SiteAccess,
    ApiQuery(q): ApiQuery<EventFilter>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Paged<Event>>> {
    let w = page.window()?;
    let cursor = Cursor::decode(page.cursor.as_deref())?;
    let mut f = Filter::default();
    f.push("site_id = ?", vec![text(&access.site_id)]);
    window(&mut f, "at", w.from, w.to);
    if let Some(v) = q.visitor {
        f.push("visitor_id = ?", vec![text(v)]);
    }
    if let Some(n) = q.name {
        f.push("name = ?", vec![text(n)]);
    }
    if let Some(c) = &cursor {
        keyset(&mut f, "at", "event_id", true, c)?;
    }
    let sql = format!(
        "select event_id, visitor_id, session_id, tab_id, name, props, url, at from event \
         where {} order by at desc, event_id desc limit {}",
        f.where_sql(),
        w.limit + 1
    );
    let mut rows: Vec<EventRow> = f
        .bind(sqlx::query_as(&sql))
        .fetch_all(state.db.pool())
        .await?;
    let next_cursor = next_cursor(&mut rows, w.limit, |r| {
        Cursor::encode(r.7, &r.0.to_string())
    });
    let items = rows
        .into_iter()
        .map(|(id, visitor, session, tab, name, props, url, at)| Event {
            id: id.to_string(),
            visitor,
            session,
            tab,
            name,
            props: serde_json::from_str(&props).unwrap_or_default(),
            url,
            at: rfc3339(at),
        })
        .collect();
    Ok(Json(Paged { items, next_cursor }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Visitor {
    pub visitor: String,
    pub user_id: Option<String>,
    #[schema(value_type = Object)]
    pub traits: serde_json::Value,
    pub first_seen: String,
    pub last_seen: String,
    pub device: Option<String>,
    pub browser: Option<String>,
    pub os: Option<String>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VisitorFilter {
    /// Identified user id (exact).
    pub user_id: Option<String>,
}

#[derive(sqlx::FromRow)]
struct VisitorRow {
    visitor_id: String,
    user_id: Option<String>,
    traits: String,
    first_seen: i64,
    last_seen: i64,
    device: Option<String>,
    browser: Option<String>,
    os: Option<String>,
}

impl From<VisitorRow> for Visitor {
    fn from(r: VisitorRow) -> Self {
        Visitor {
            visitor: r.visitor_id,
            user_id: r.user_id,
            traits: serde_json::from_str(&r.traits).unwrap_or_default(),
            first_seen: rfc3339(r.first_seen),
            last_seen: rfc3339(r.last_seen),
            device: r.device,
            browser: r.browser,
            os: r.os,
        }
    }
}

/// Visitors seen in the time range (by last activity), most recent first.
#[utoipa::path(get, path = "/api/sites/{site}/visitors", tag = "history",
    params(("site" = String, Path), VisitorFilter, PageParams), security(("bearer" = [])),
    responses((status = 200, body = Paged<Visitor>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn visitors(
    State(state): State<AppState>,
    access: SiteAccess,
    ApiQuery(q): ApiQuery<VisitorFilter>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Paged<Visitor>>> {
    let w = page.window()?;
    let cursor = Cursor::decode(page.cursor.as_deref())?;
    let mut f = Filter::default();
    f.push("site_id = ?", vec![text(&access.site_id)]);
    // The index is on the minute of the last activity (`last_active = last_seen / 60000`, see
    // the migration `writer_hot_updates`): each bound on `last_seen` also bounds that minute,
    // and ordering by minute first gives the same order as by `last_seen`.
    if let Some(from) = w.from {
        f.push("last_active >= ?", vec![int(from / LAST_ACTIVE_MS)]);
    }
    if let Some(to) = w.to {
        f.push(
            "last_active <= ?",
            vec![int(to.saturating_sub(1) / LAST_ACTIVE_MS)],
        );
    }
    window(&mut f, "last_seen", w.from, w.to);
    if let Some(u) = q.user_id {
        f.push("user_id = ?", vec![text(u)]);
    }
    if let Some(c) = &cursor {
        f.push("last_active <= ?", vec![int(c.at / LAST_ACTIVE_MS)]);
        keyset(&mut f, "last_seen", "visitor_id", false, c)?;
    }
    let sql = format!(
        "select visitor_id, user_id, traits, first_seen, last_seen, device, browser, os from visitor \
         where {} order by last_active desc, last_seen desc, visitor_id desc limit {}",
        f.where_sql(),
        w.limit + 1
    );
    let mut rows: Vec<VisitorRow> = f
        .bind(sqlx::query_as(&sql))
        .fetch_all(state.db.pool())
        .await?;
    let next_cursor = next_cursor(&mut rows, w.limit, |r| {
        Cursor::encode(r.last_seen, &r.visitor_id)
    });
    Ok(Json(Paged {
        items: rows.into_iter().map(Visitor::from).collect(),
        next_cursor,
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SessionSummary {
    pub session: String,
    pub started_at: String,
    pub last_seen: String,
    pub pageviews: i64,
    pub referrer: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct VisitorProfile {
    #[serde(flatten)]
    pub visitor: Visitor,
    /// Number of sessions.
    pub sessions: i64,
    /// Number of page views, all sessions.
    pub pageviews: i64,
    /// The 20 most recent sessions.
    pub recent_sessions: Vec<SessionSummary>,
}

/// One visitor's profile: first and last seen, sessions, page views, identity, device.
#[utoipa::path(get, path = "/api/sites/{site}/visitors/{visitor}", tag = "history",
    params(("site" = String, Path), ("visitor" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = VisitorProfile), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn visitor_profile(
    State(state): State<AppState>,
    access: SiteAccess,
    Path(ids): Path<(String, String)>,
) -> Result<Json<VisitorProfile>> {
    let visitor = ids.1;
    let row: Option<VisitorRow> = sqlx::query_as(
        "select visitor_id, user_id, traits, first_seen, last_seen, device, browser, os from visitor \
         where site_id = $1 and visitor_id = $2",
    )
    .bind(&access.site_id)
    .bind(&visitor)
    .fetch_optional(state.db.pool())
    .await?;
    let row = row.ok_or_else(|| ApiError::not_found("visitor"))?;
    let (sessions, pageviews): (i64, i64) = sqlx::query_as(
        "select count(*), cast(coalesce(sum(pageviews), 0) as bigint) from session where site_id = $1 and visitor_id = $2",
    )
    .bind(&access.site_id)
    .bind(&visitor)
    .fetch_one(state.db.pool())
    .await?;
    let recent: Vec<(String, i64, i64, i64, Option<String>)> = sqlx::query_as(
        "select session_id, started_at, last_seen, pageviews, referrer from session \
         where site_id = $1 and visitor_id = $2 order by started_at desc limit 20",
    )
    .bind(&access.site_id)
    .bind(&visitor)
    .fetch_all(state.db.pool())
    .await?;
    Ok(Json(VisitorProfile {
        visitor: row.into(),
        sessions,
        pageviews,
        recent_sessions: recent
            .into_iter()
            .map(
                |(session, started, last, pageviews, referrer)| SessionSummary {
                    session,
                    started_at: rfc3339(started),
                    last_seen: rfc3339(last),
                    pageviews,
                    referrer,
                },
            )
            .collect(),
    }))
}

/// Erases everything kept about one visitor (page views, events, sessions, messages to them,
/// their statuses and profile). Needs an admin or an API key.
#[utoipa::path(delete, path = "/api/sites/{site}/visitors/{visitor}", tag = "history",
    params(("site" = String, Path), ("visitor" = String, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn erase_visitor(
    State(state): State<AppState>,
    access: SiteAccess,
    Path(ids): Path<(String, String)>,
) -> Result<StatusCode> {
    let visitor = ids.1;
    access.require_write()?;
    let mut tx = state.db.pool().begin().await?;
    let mut found = 0;
    for table in [
        "pageview",
        "event",
        "session",
        "message_status",
        "pending_message",
        "campaign_delivery",
        "visitor",
    ] {
        let done = sqlx::query(&format!(
            "delete from {table} where site_id = $1 and visitor_id = $2"
        ))
        .bind(&access.site_id)
        .bind(&visitor)
        .execute(&mut *tx)
        .await?;
        found += done.rows_affected();
    }
    let target = serde_json::json!({ "visitor": visitor }).to_string();
    sqlx::query("delete from message where site_id = $1 and target = $2")
        .bind(&access.site_id)
        .bind(&target)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    if found == 0 {
        return Err(ApiError::not_found("visitor"));
    }
    state.hub.forget_visitor(&access.site_id, &visitor);
    state.targeting.forget_visitor(&access.site_id, &visitor);
    if let Some(cluster) = &state.cluster {
        cluster.forget_visitor(&access.site_id, &visitor);
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsParams {
    /// Start of the range (RFC 3339); default: 24 hours (hour buckets) or 30 days (day buckets) before `to`.
    pub from: Option<String>,
    /// End of the range (RFC 3339, exclusive); default: now.
    pub to: Option<String>,
    /// `hour` or `day` (default: `hour` for ranges up to 48 hours, else `day`).
    pub interval: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct UrlCount {
    pub url: String,
    pub count: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ReferrerCount {
    pub referrer: String,
    pub count: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Bucket {
    /// Start of the bucket.
    pub t: String,
    pub pageviews: i64,
    pub visitors: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Stats {
    pub pageviews: i64,
    pub visitors: i64,
    pub sessions: i64,
    pub top_pages: Vec<UrlCount>,
    pub top_referrers: Vec<ReferrerCount>,
    pub series: Vec<Bucket>,
}

const HOUR_MS: i64 = 3_600_000;
/// The unit of `visitor.last_active`.
const LAST_ACTIVE_MS: i64 = 60_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// Totals, top pages and referrers, and a time series over the range.
#[utoipa::path(get, path = "/api/sites/{site}/stats", tag = "history",
    params(("site" = String, Path), StatsParams), security(("bearer" = [])),
    responses((status = 200, body = Stats), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn stats(
    State(state): State<AppState>,
    access: SiteAccess,
    ApiQuery(q): ApiQuery<StatsParams>,
) -> Result<Json<Stats>> {
    let to = super::parse_time("to", q.to.as_deref())?.unwrap_or_else(now_ms);
    let from_param = super::parse_time("from", q.from.as_deref())?;
    let bucket = match q.interval.as_deref() {
        Some("hour") => HOUR_MS,
        Some("day") => DAY_MS,
        Some(_) => {
            return Err(ApiError::invalid(
                "invalid_interval",
                "`interval` must be \"hour\" or \"day\"",
            ))
        }
        None => match from_param {
            Some(f) if to - f > 2 * DAY_MS => DAY_MS,
            Some(_) => HOUR_MS,
            None => HOUR_MS,
        },
    };
    let from = from_param.unwrap_or(if bucket == HOUR_MS {
        to - DAY_MS
    } else {
        to - 30 * DAY_MS
    });
    if from > to {
        return Err(ApiError::invalid(
            "invalid_range",
            "`from` must not be after `to`",
        ));
    }
    if (to - from) / bucket > 5_000 {
        return Err(ApiError::invalid(
            "range_too_large",
            "the range has more than 5000 buckets; use day buckets or a shorter range",
        ));
    }
    let pool = state.db.pool();
    let site = &access.site_id;
    let (pageviews, visitors, sessions): (i64, i64, i64) = sqlx::query_as(
        "select count(*), count(distinct visitor_id), count(distinct session_id) from pageview \
         where site_id = $1 and at >= $2 and at < $3",
    )
    .bind(site)
    .bind(from)
    .bind(to)
    .fetch_one(pool)
    .await?;
    let top_pages: Vec<(String, i64)> = sqlx::query_as(
        "select url, count(*) as n from pageview where site_id = $1 and at >= $2 and at < $3 \
         group by url order by n desc, url limit 10",
    )
    .bind(site)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    let top_referrers: Vec<(String, i64)> = sqlx::query_as(
        // Sessions by where they came from (the external referrer of their landing page).
        "select referrer, count(*) as n from session where site_id = $1 and started_at >= $2 and started_at < $3 \
         and referrer is not null and referrer <> '' group by referrer order by n desc, referrer limit 10",
    )
    .bind(site)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    // Buckets are aligned to UTC hours/days; empty ones are filled in below.
    let series_rows: Vec<(i64, i64, i64)> = sqlx::query_as(
        "select (at / $4) * $4 as t, count(*), count(distinct visitor_id) from pageview \
         where site_id = $1 and at >= $2 and at < $3 group by 1 order by 1",
    )
    .bind(site)
    .bind(from)
    .bind(to)
    .bind(bucket)
    .fetch_all(pool)
    .await?;
    let mut by_bucket: BTreeMap<i64, (i64, i64)> = series_rows
        .into_iter()
        .map(|(t, p, v)| (t, (p, v)))
        .collect();
    let mut series = Vec::new();
    let mut t = (from / bucket) * bucket;
    while t < to {
        let (p, v) = by_bucket.remove(&t).unwrap_or((0, 0));
        series.push(Bucket {
            t: rfc3339(t),
            pageviews: p,
            visitors: v,
        });
        t += bucket;
    }
    Ok(Json(Stats {
        pageviews,
        visitors,
        sessions,
        top_pages: top_pages
            .into_iter()
            .map(|(url, count)| UrlCount { url, count })
            .collect(),
        top_referrers: top_referrers
            .into_iter()
            .map(|(referrer, count)| ReferrerCount { referrer, count })
            .collect(),
        series,
    }))
}
