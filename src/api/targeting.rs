//! Segments and campaigns over REST: CRUD with validation (422 `invalid_rule` naming the field),
//! a segment's live members, and each campaign's outcome counts with conversion and lift.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::Value;

use super::Items;
use crate::auth::extract::SiteAccess;
use crate::db::now_ms;
use crate::domain::{new_id, rfc3339};
use crate::error::{ApiError, ApiJson, ErrorBody, Result};
use crate::live::hub::VisitorView;
use crate::state::AppState;
use crate::targeting::rules::{self, CampaignDef, SegmentDef};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/sites/{site}/segments",
            get(list_segments).post(create_segment),
        )
        .route(
            "/sites/{site}/segments/{segment}",
            get(get_segment)
                .patch(update_segment)
                .delete(delete_segment),
        )
        .route(
            "/sites/{site}/segments/{segment}/members",
            get(segment_members),
        )
        .route(
            "/sites/{site}/campaigns",
            get(list_campaigns).post(create_campaign),
        )
        .route(
            "/sites/{site}/campaigns/{campaign}",
            get(get_campaign)
                .patch(update_campaign)
                .delete(delete_campaign),
        )
}

fn invalid_rule(message: impl Into<String>) -> ApiError {
    ApiError::invalid("invalid_rule", message)
}

/// Parses a definition, naming the path of a field that does not fit (`conditions[2].type: …`).
fn parse_def<T: serde::de::DeserializeOwned>(v: Value) -> Result<T> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            invalid_rule(e.inner().to_string())
        } else {
            invalid_rule(format!("{path}: {}", e.inner()))
        }
    })
}

/// Applies a PATCH: the body's top-level fields replace the stored ones.
fn merge(stored: &str, patch: Value) -> Result<Value> {
    let Value::Object(patch) = patch else {
        return Err(ApiError::bad_request(
            "invalid_body",
            "the body must be a JSON object",
        ));
    };
    let mut base: Value = serde_json::from_str(stored).map_err(anyhow::Error::from)?;
    if let Value::Object(map) = &mut base {
        map.extend(patch);
    }
    Ok(base)
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Segment {
    pub id: String,
    #[serde(flatten)]
    pub definition: SegmentDef,
    /// Visitors in the segment now.
    pub live_members: usize,
    pub created_at: String,
    pub updated_at: String,
}

async fn segment_ids(state: &AppState, site: &str) -> Result<Vec<String>> {
    Ok(
        sqlx::query_scalar("select segment_id from segment where site_id = $1")
            .bind(site)
            .fetch_all(state.db.pool())
            .await?,
    )
}

/// A stored rule (`segment` or `campaign`) of the site: its definition and times.
async fn load_rule(
    state: &AppState,
    table: &'static str,
    site: &str,
    id: &str,
) -> Result<(String, i64, i64)> {
    let sql = format!("select definition, created_at, updated_at from {table} where site_id = $1 and {table}_id = $2");
    sqlx::query_as(&sql)
        .bind(site)
        .bind(id)
        .fetch_optional(state.db.pool())
        .await?
        .ok_or_else(|| ApiError::not_found(table))
}

async fn load_segment(state: &AppState, site: &str, id: &str) -> Result<(String, i64, i64)> {
    load_rule(state, "segment", site, id).await
}

fn live_members(state: &AppState, site: &str, segment: &str) -> Vec<VisitorView> {
    state
        .hub
        .snapshot(site)
        .into_iter()
        .filter(|v| v.segments.iter().any(|s| s == segment))
        .collect()
}

fn segment_out(
    state: &AppState,
    site: &str,
    id: String,
    def: &str,
    created: i64,
    updated: i64,
) -> Result<Segment> {
    let definition: SegmentDef = serde_json::from_str(def).map_err(anyhow::Error::from)?;
    Ok(Segment {
        live_members: live_members(state, site, &id).len(),
        id,
        definition,
        created_at: rfc3339(created),
        updated_at: rfc3339(updated),
    })
}

async fn reload(state: &AppState, site: &str) -> Result<()> {
    state.targeting.reload_site(&state.db, site).await?;
    for (visitor, segments) in state.targeting.reevaluate(site, crate::db::now_ms()) {
        state.hub.set_segments(site, &visitor, segments);
    }
    if let Some(cluster) = &state.cluster {
        cluster.rules_changed(site);
    }
    Ok(())
}

/// The site's segments.
#[utoipa::path(get, path = "/api/sites/{site}/segments", tag = "targeting", params(("site" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = Items<Segment>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_segments(
    State(state): State<AppState>,
    access: SiteAccess,
) -> Result<Json<Items<Segment>>> {
    let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "select segment_id, definition, created_at, updated_at from segment where site_id = $1 order by created_at, segment_id",
    )
    .bind(&access.site_id)
    .fetch_all(state.db.pool())
    .await?;
    let items = rows
        .into_iter()
        .map(|(id, def, c, u)| segment_out(&state, &access.site_id, id, &def, c, u))
        .collect::<Result<_>>()?;
    Ok(Json(Items { items }))
}

/// Creates a segment (admins and API keys).
#[utoipa::path(post, path = "/api/sites/{site}/segments", tag = "targeting", params(("site" = String, Path)),
    request_body = SegmentDef, security(("bearer" = [])),
    responses((status = 201, body = Segment), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, description = "invalid rule", body = ErrorBody)))]
pub async fn create_segment(
    State(state): State<AppState>,
    access: SiteAccess,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Json<Segment>)> {
    access.require_write()?;
    let def: SegmentDef = parse_def(body)?;
    let id = new_id();
    rules::compile_segment(&id, &def).map_err(|e| invalid_rule(e.0))?;
    let text = serde_json::to_string(&def).map_err(anyhow::Error::from)?;
    let now = now_ms();
    sqlx::query("insert into segment (segment_id, site_id, definition, created_at, updated_at) values ($1, $2, $3, $4, $4)")
        .bind(&id)
        .bind(&access.site_id)
        .bind(&text)
        .bind(now)
        .execute(state.db.pool())
        .await?;
    reload(&state, &access.site_id).await?;
    Ok((
        StatusCode::CREATED,
        Json(segment_out(&state, &access.site_id, id, &text, now, now)?),
    ))
}

/// One segment.
#[utoipa::path(get, path = "/api/sites/{site}/segments/{segment}", tag = "targeting",
    params(("site" = String, Path), ("segment" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = Segment), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_segment(
    State(state): State<AppState>,
    access: SiteAccess,
    Path(ids): Path<(String, String)>,
) -> Result<Json<Segment>> {
    let id = ids.1;
    let (def, c, u) = load_segment(&state, &access.site_id, &id).await?;
    Ok(Json(segment_out(&state, &access.site_id, id, &def, c, u)?))
}

/// Changes a segment: the body's fields replace the stored ones (admins and API keys).
#[utoipa::path(patch, path = "/api/sites/{site}/segments/{segment}", tag = "targeting",
    params(("site" = String, Path), ("segment" = String, Path)), request_body = Object,
    security(("bearer" = [])),
    responses((status = 200, body = Segment), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn update_segment(
    State(state): State<AppState>,
    access: SiteAccess,
    Path(ids): Path<(String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Segment>> {
    access.require_write()?;
    let id = ids.1;
    let (stored, created, _) = load_segment(&state, &access.site_id, &id).await?;
    let def: SegmentDef = parse_def(merge(&stored, body)?)?;
    rules::compile_segment(&id, &def).map_err(|e| invalid_rule(e.0))?;
    let text = serde_json::to_string(&def).map_err(anyhow::Error::from)?;
    let now = now_ms();
    sqlx::query("update segment set definition = $1, updated_at = $2 where site_id = $3 and segment_id = $4")
        .bind(&text)
        .bind(now)
        .bind(&access.site_id)
        .bind(&id)
        .execute(state.db.pool())
        .await?;
    reload(&state, &access.site_id).await?;
    Ok(Json(segment_out(
        &state,
        &access.site_id,
        id,
        &text,
        created,
        now,
    )?))
}

/// Deletes a segment no campaign uses (admins and API keys).
#[utoipa::path(delete, path = "/api/sites/{site}/segments/{segment}", tag = "targeting",
    params(("site" = String, Path), ("segment" = String, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "a campaign uses it", body = ErrorBody)))]
pub async fn delete_segment(
    State(state): State<AppState>,
    access: SiteAccess,
    Path(ids): Path<(String, String)>,
) -> Result<StatusCode> {
    access.require_write()?;
    let id = ids.1;
    load_segment(&state, &access.site_id, &id).await?;
    let campaigns: Vec<(String, String)> =
        sqlx::query_as("select campaign_id, definition from campaign where site_id = $1")
            .bind(&access.site_id)
            .fetch_all(state.db.pool())
            .await?;
    for (cid, def) in campaigns {
        if let Ok(def) = serde_json::from_str::<CampaignDef>(&def) {
            let uses = def.segment.as_deref() == Some(id.as_str())
                || matches!(&def.trigger, rules::Trigger::SegmentEntered { segment } if *segment == id);
            if uses {
                return Err(ApiError::conflict(
                    "segment_in_use",
                    format!("campaign {cid} ({}) uses this segment", def.name),
                ));
            }
        }
    }
    sqlx::query("delete from segment where site_id = $1 and segment_id = $2")
        .bind(&access.site_id)
        .bind(&id)
        .execute(state.db.pool())
        .await?;
    reload(&state, &access.site_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The visitors in the segment now.
#[utoipa::path(get, path = "/api/sites/{site}/segments/{segment}/members", tag = "targeting",
    params(("site" = String, Path), ("segment" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = Items<VisitorView>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn segment_members(
    State(state): State<AppState>,
    access: SiteAccess,
    Path(ids): Path<(String, String)>,
) -> Result<Json<Items<VisitorView>>> {
    let id = ids.1;
    load_segment(&state, &access.site_id, &id).await?;
    Ok(Json(Items {
        items: live_members(&state, &access.site_id, &id),
    }))
}

#[derive(Serialize, Default, utoipa::ToSchema)]
pub struct CampaignStats {
    /// Visitors the campaign fired for (sent + control).
    pub triggered: i64,
    /// Fired and sent the message.
    pub sent: i64,
    /// Fired but held back (control group).
    pub control: i64,
    /// Visitors whose tabs got / showed / clicked / dismissed the message.
    pub delivered: i64,
    pub shown: i64,
    pub clicked: i64,
    pub dismissed: i64,
    /// Sent visitors who reached the goal within the window.
    pub converted: i64,
    pub control_converted: i64,
    /// converted / sent.
    pub conversion_rate: Option<f64>,
    /// control_converted / control.
    pub control_conversion_rate: Option<f64>,
    /// Relative lift of the conversion rate over the control's: (rate − control rate) / control rate.
    pub lift: Option<f64>,
    /// Messages sent in test mode (not counted above).
    pub test_sends: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Campaign {
    pub id: String,
    #[serde(flatten)]
    pub definition: CampaignDef,
    pub stats: CampaignStats,
    pub created_at: String,
    pub updated_at: String,
}

async fn campaign_stats(state: &AppState, id: &str) -> Result<CampaignStats> {
    let variants: Vec<(String, i64, i64)> = sqlx::query_as(
        "select variant, count(*), count(converted_at) from campaign_delivery where campaign_id = $1 group by variant",
    )
    .bind(id)
    .fetch_all(state.db.pool())
    .await?;
    let statuses: Vec<(String, i64)> = sqlx::query_as(
        "select s.status, count(distinct s.visitor_id) from message_status s \
         join campaign_delivery d on d.message_id = s.message_id \
         where d.campaign_id = $1 and d.variant = 'sent' group by s.status",
    )
    .bind(id)
    .fetch_all(state.db.pool())
    .await?;
    let mut st = CampaignStats::default();
    for (variant, n, converted) in variants {
        match variant.as_str() {
            "sent" => (st.sent, st.converted) = (n, converted),
            "control" => (st.control, st.control_converted) = (n, converted),
            _ => st.test_sends = n,
        }
    }
    for (status, n) in statuses {
        match status.as_str() {
            "delivered" => st.delivered = n,
            "shown" => st.shown = n,
            "clicked" => st.clicked = n,
            "dismissed" => st.dismissed = n,
            _ => {}
        }
    }
    st.triggered = st.sent + st.control;
    let rate = |num: i64, den: i64| (den > 0).then(|| num as f64 / den as f64);
    st.conversion_rate = rate(st.converted, st.sent);
    st.control_conversion_rate = rate(st.control_converted, st.control);
    st.lift = match (st.conversion_rate, st.control_conversion_rate) {
        (Some(r), Some(c)) if c > 0.0 => Some((r - c) / c),
        _ => None,
    };
    Ok(st)
}

async fn load_campaign(state: &AppState, site: &str, id: &str) -> Result<(String, i64, i64)> {
    load_rule(state, "campaign", site, id).await
}

async fn campaign_out(
    state: &AppState,
    id: String,
    def: &str,
    created: i64,
    updated: i64,
) -> Result<Campaign> {
    let definition: CampaignDef = serde_json::from_str(def).map_err(anyhow::Error::from)?;
    Ok(Campaign {
        stats: campaign_stats(state, &id).await?,
        id,
        definition,
        created_at: rfc3339(created),
        updated_at: rfc3339(updated),
    })
}

async fn validate_campaign(
    state: &AppState,
    site: &str,
    id: &str,
    body: Value,
) -> Result<(CampaignDef, String)> {
    let def: CampaignDef = parse_def(body)?;
    let segments = segment_ids(state, site).await?;
    rules::compile_campaign(id, &def, |s| segments.iter().any(|x| x == s))
        .map_err(|e| invalid_rule(e.0))?;
    let text = serde_json::to_string(&def).map_err(anyhow::Error::from)?;
    Ok((def, text))
}

/// The site's campaigns with their outcome counts.
#[utoipa::path(get, path = "/api/sites/{site}/campaigns", tag = "targeting", params(("site" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = Items<Campaign>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_campaigns(
    State(state): State<AppState>,
    access: SiteAccess,
) -> Result<Json<Items<Campaign>>> {
    let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "select campaign_id, definition, created_at, updated_at from campaign where site_id = $1 order by created_at, campaign_id",
    )
    .bind(&access.site_id)
    .fetch_all(state.db.pool())
    .await?;
    let mut items = Vec::with_capacity(rows.len());
    for (id, def, c, u) in rows {
        items.push(campaign_out(&state, id, &def, c, u).await?);
    }
    Ok(Json(Items { items }))
}

/// Creates a campaign (admins and API keys).
#[utoipa::path(post, path = "/api/sites/{site}/campaigns", tag = "targeting", params(("site" = String, Path)),
    request_body = CampaignDef, security(("bearer" = [])),
    responses((status = 201, body = Campaign), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, description = "invalid rule", body = ErrorBody)))]
pub async fn create_campaign(
    State(state): State<AppState>,
    access: SiteAccess,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Json<Campaign>)> {
    access.require_write()?;
    let id = new_id();
    let (_, text) = validate_campaign(&state, &access.site_id, &id, body).await?;
    let now = now_ms();
    sqlx::query("insert into campaign (campaign_id, site_id, definition, created_at, updated_at) values ($1, $2, $3, $4, $4)")
        .bind(&id)
        .bind(&access.site_id)
        .bind(&text)
        .bind(now)
        .execute(state.db.pool())
        .await?;
    reload(&state, &access.site_id).await?;
    Ok((
        StatusCode::CREATED,
        Json(campaign_out(&state, id, &text, now, now).await?),
    ))
}

/// One campaign with its outcome counts, conversion rate and lift.
#[utoipa::path(get, path = "/api/sites/{site}/campaigns/{campaign}", tag = "targeting",
    params(("site" = String, Path), ("campaign" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = Campaign), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_campaign(
    State(state): State<AppState>,
    access: SiteAccess,
    Path(ids): Path<(String, String)>,
) -> Result<Json<Campaign>> {
    let id = ids.1;
    let (def, c, u) = load_campaign(&state, &access.site_id, &id).await?;
    Ok(Json(campaign_out(&state, id, &def, c, u).await?))
}

/// Changes a campaign (e.g. `{"enabled":true}`): the body's fields replace the stored ones.
#[utoipa::path(patch, path = "/api/sites/{site}/campaigns/{campaign}", tag = "targeting",
    params(("site" = String, Path), ("campaign" = String, Path)), request_body = Object,
    security(("bearer" = [])),
    responses((status = 200, body = Campaign), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn update_campaign(
    State(state): State<AppState>,
    access: SiteAccess,
    Path(ids): Path<(String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Campaign>> {
    access.require_write()?;
    let id = ids.1;
    let (stored, created, _) = load_campaign(&state, &access.site_id, &id).await?;
    let (_, text) = validate_campaign(&state, &access.site_id, &id, merge(&stored, body)?).await?;
    let now = now_ms();
    sqlx::query("update campaign set definition = $1, updated_at = $2 where site_id = $3 and campaign_id = $4")
        .bind(&text)
        .bind(now)
        .bind(&access.site_id)
        .bind(&id)
        .execute(state.db.pool())
        .await?;
    reload(&state, &access.site_id).await?;
    Ok(Json(campaign_out(&state, id, &text, created, now).await?))
}

/// Deletes a campaign and its delivery records (admins and API keys).
#[utoipa::path(delete, path = "/api/sites/{site}/campaigns/{campaign}", tag = "targeting",
    params(("site" = String, Path), ("campaign" = String, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_campaign(
    State(state): State<AppState>,
    access: SiteAccess,
    Path(ids): Path<(String, String)>,
) -> Result<StatusCode> {
    access.require_write()?;
    let id = ids.1;
    load_campaign(&state, &access.site_id, &id).await?;
    let mut tx = state.db.pool().begin().await?;
    sqlx::query("delete from campaign_delivery where campaign_id = $1 and site_id = $2")
        .bind(&id)
        .bind(&access.site_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("delete from campaign where campaign_id = $1 and site_id = $2")
        .bind(&id)
        .bind(&access.site_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    reload(&state, &access.site_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
