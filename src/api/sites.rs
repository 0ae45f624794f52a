//! Sites (the tenants), their members and roles, and their API keys.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, patch};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sqlx::{Any, AnyConnection};

use super::{parse_name, Items};
use crate::auth::extract::{AccountCaller, SiteAccess};
use crate::auth::new_api_key;
use crate::db::now_ms;
use crate::domain::{new_id, parse_domains, parse_email, random_id, rfc3339, Role};
use crate::error::{ApiError, ApiJson, ErrorBody, Result};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/sites", get(list_sites).post(create_site))
        .route(
            "/sites/{site}",
            get(get_site).patch(update_site).delete(delete_site),
        )
        .route("/sites/{site}/members", get(list_members).post(add_member))
        .route(
            "/sites/{site}/members/{account}",
            patch(update_member).delete(remove_member),
        )
        .route("/sites/{site}/api-keys", get(list_keys).post(create_key))
        .route("/sites/{site}/api-keys/{key}", delete(revoke_key))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Site {
    pub id: String,
    pub name: String,
    /// Public key for the snippet's `data-site`.
    pub key: String,
    pub domains: Vec<String>,
    pub created_at: String,
    /// The caller's role on the site (null for an API key).
    pub role: Option<Role>,
}

#[derive(sqlx::FromRow)]
struct SiteRow {
    site_id: String,
    name: String,
    site_key: String,
    domains: String,
    created_at: i64,
}

impl SiteRow {
    fn into_site(self, role: Option<Role>) -> Site {
        Site {
            id: self.site_id,
            name: self.name,
            key: self.site_key,
            domains: serde_json::from_str(&self.domains).unwrap_or_default(),
            created_at: rfc3339(self.created_at),
            role,
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSite {
    pub name: String,
    /// Allowed page hosts: `example.com` or `*.example.com`. Empty: any origin.
    #[serde(default)]
    pub domains: Vec<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SiteUpdate {
    pub name: Option<String>,
    pub domains: Option<Vec<String>>,
}

fn domains_or_422(list: &[String]) -> Result<Vec<String>> {
    parse_domains(list).map_err(|m| ApiError::invalid("invalid_domain", m))
}

/// Creates a site; the caller becomes its admin.
#[utoipa::path(post, path = "/api/sites", tag = "sites", request_body = NewSite, security(("bearer" = [])),
    responses((status = 201, body = Site), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn create_site(
    State(state): State<AppState>,
    AccountCaller(account): AccountCaller,
    ApiJson(body): ApiJson<NewSite>,
) -> Result<(StatusCode, Json<Site>)> {
    let name = parse_name("name", &body.name, 100)?;
    let domains = domains_or_422(&body.domains)?;
    let site = SiteRow {
        site_id: new_id(),
        name,
        site_key: format!("pk_{}", random_id(24)),
        domains: serde_json::to_string(&domains).map_err(anyhow::Error::from)?,
        created_at: now_ms(),
    };
    let mut tx = state.db.pool().begin().await?;
    sqlx::query("insert into site (site_id, name, site_key, domains, created_at) values ($1, $2, $3, $4, $5)")
        .bind(&site.site_id)
        .bind(&site.name)
        .bind(&site.site_key)
        .bind(&site.domains)
        .bind(site.created_at)
        .execute(&mut *tx)
        .await?;
    sqlx::query("insert into membership (site_id, account_id, role, created_at) values ($1, $2, 'admin', $3)")
        .bind(&site.site_id)
        .bind(&account)
        .bind(site.created_at)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(site.into_site(Some(Role::Admin)))))
}

/// Sites the caller is a member of.
#[utoipa::path(get, path = "/api/sites", tag = "sites", security(("bearer" = [])),
    responses((status = 200, body = Items<Site>), (status = 401, body = ErrorBody)))]
pub async fn list_sites(
    State(state): State<AppState>,
    AccountCaller(account): AccountCaller,
) -> Result<Json<Items<Site>>> {
    let rows: Vec<(String, String, String, String, i64, String)> = sqlx::query_as(
        "select s.site_id, s.name, s.site_key, s.domains, s.created_at, m.role \
         from site s join membership m on m.site_id = s.site_id \
         where m.account_id = $1 order by s.created_at, s.site_id",
    )
    .bind(&account)
    .fetch_all(state.db.pool())
    .await?;
    let items = rows
        .into_iter()
        .map(|(site_id, name, site_key, domains, created_at, role)| {
            SiteRow {
                site_id,
                name,
                site_key,
                domains,
                created_at,
            }
            .into_site(Role::parse(&role))
        })
        .collect();
    Ok(Json(Items { items }))
}

async fn load_site(state: &AppState, site_id: &str) -> Result<SiteRow> {
    sqlx::query_as(
        "select site_id, name, site_key, domains, created_at from site where site_id = $1",
    )
    .bind(site_id)
    .fetch_optional(state.db.pool())
    .await?
    .ok_or_else(|| ApiError::not_found("site"))
}

/// One site.
#[utoipa::path(get, path = "/api/sites/{site}", tag = "sites", params(("site" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = Site), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_site(State(state): State<AppState>, access: SiteAccess) -> Result<Json<Site>> {
    Ok(Json(
        load_site(&state, &access.site_id)
            .await?
            .into_site(access.role()),
    ))
}

/// Renames a site or changes its domains (admins).
#[utoipa::path(patch, path = "/api/sites/{site}", tag = "sites", params(("site" = String, Path)),
    request_body = SiteUpdate, security(("bearer" = [])),
    responses((status = 200, body = Site), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_site(
    State(state): State<AppState>,
    access: SiteAccess,
    ApiJson(body): ApiJson<SiteUpdate>,
) -> Result<Json<Site>> {
    access.require_admin()?;
    let name = body
        .name
        .as_deref()
        .map(|n| parse_name("name", n, 100))
        .transpose()?;
    let domains = body
        .domains
        .as_deref()
        .map(domains_or_422)
        .transpose()?
        .map(|d| serde_json::to_string(&d))
        .transpose()
        .map_err(anyhow::Error::from)?;
    sqlx::query(
        "update site set name = coalesce($1, name), domains = coalesce($2, domains) where site_id = $3",
    )
    .bind(name)
    .bind(domains)
    .bind(&access.site_id)
    .execute(state.db.pool())
    .await?;
    let site = load_site(&state, &access.site_id).await?;
    state.sites.invalidate(&site.site_key);
    if let Some(cluster) = &state.cluster {
        cluster.site_changed(&access.site_id, &site.site_key, false);
    }
    Ok(Json(site.into_site(access.role())))
}

/// Deletes a site and everything recorded for it (admins).
#[utoipa::path(delete, path = "/api/sites/{site}", tag = "sites", params(("site" = String, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_site(State(state): State<AppState>, access: SiteAccess) -> Result<StatusCode> {
    access.require_admin()?;
    let site = load_site(&state, &access.site_id).await?;
    let mut tx = state.db.pool().begin().await?;
    for table in [
        "pageview",
        "event",
        "session",
        "visitor",
        "message_status",
        "pending_message",
        "message",
        "campaign_delivery",
        "campaign",
        "segment",
        "api_key",
        "membership",
        "site",
    ] {
        sqlx::query(&format!("delete from {table} where site_id = $1"))
            .bind(&access.site_id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    state.sites.invalidate(&site.site_key);
    state.hub.close_site(&access.site_id);
    state.targeting.forget_site(&access.site_id);
    if let Some(cluster) = &state.cluster {
        cluster.site_changed(&access.site_id, &site.site_key, true);
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Member {
    pub account: String,
    pub email: String,
    pub role: Role,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    /// E-mail of an existing account.
    pub email: String,
    pub role: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberUpdate {
    pub role: String,
}

fn parse_role(raw: &str) -> Result<Role> {
    Role::parse(raw)
        .ok_or_else(|| ApiError::invalid("invalid_role", "`role` must be \"admin\" or \"viewer\""))
}

async fn members(state: &AppState, site_id: &str) -> Result<Vec<Member>> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "select a.account_id, a.email, m.role from membership m join account a on a.account_id = m.account_id \
         where m.site_id = $1 order by m.created_at, a.email",
    )
    .bind(site_id)
    .fetch_all(state.db.pool())
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(account, email, role)| {
            Role::parse(&role).map(|role| Member {
                account,
                email,
                role,
            })
        })
        .collect())
}

/// Members of the site and their roles.
#[utoipa::path(get, path = "/api/sites/{site}/members", tag = "members", params(("site" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = Items<Member>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_members(
    State(state): State<AppState>,
    access: SiteAccess,
) -> Result<Json<Items<Member>>> {
    Ok(Json(Items {
        items: members(&state, &access.site_id).await?,
    }))
}

/// Adds an existing account as a member, or changes its role if it is one (admins).
#[utoipa::path(post, path = "/api/sites/{site}/members", tag = "members", params(("site" = String, Path)),
    request_body = NewMember, security(("bearer" = [])),
    responses((status = 201, body = Member), (status = 200, description = "role changed", body = Member),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, description = "no such account, bad role, or the last admin", body = ErrorBody)))]
pub async fn add_member(
    State(state): State<AppState>,
    access: SiteAccess,
    ApiJson(body): ApiJson<NewMember>,
) -> Result<(StatusCode, Json<Member>)> {
    access.require_admin()?;
    let role = parse_role(&body.role)?;
    let email = parse_email(&body.email)
        .ok_or_else(|| ApiError::invalid("invalid_email", "`email` is not an e-mail address"))?;
    let account: Option<String> =
        sqlx::query_scalar("select account_id from account where email = $1")
            .bind(&email)
            .fetch_optional(state.db.pool())
            .await?;
    let account = account.ok_or_else(|| {
        ApiError::invalid(
            "unknown_account",
            "no account has this e-mail; ask them to sign up first",
        )
    })?;
    let mut tx = lock_site(&state, &access.site_id).await?;
    if member_role(&mut tx, &access.site_id, &account)
        .await?
        .is_some()
    {
        set_role(&mut tx, &access.site_id, &account, role).await?;
        tx.commit().await?;
        return Ok((
            StatusCode::OK,
            Json(Member {
                account,
                email,
                role,
            }),
        ));
    }
    sqlx::query(
        "insert into membership (site_id, account_id, role, created_at) values ($1, $2, $3, $4)",
    )
    .bind(&access.site_id)
    .bind(&account)
    .bind(role.as_str())
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(Member {
            account,
            email,
            role,
        }),
    ))
}

/// Starts a transaction that holds the site's write lock, so that the membership changes of one
/// site happen one at a time and the last-admin check and the change are atomic. The no-op update
/// row-locks the site on Postgres; on SQLite it takes the database write lock (a transaction whose
/// first statement writes waits on `busy_timeout` rather than failing).
async fn lock_site(state: &AppState, site_id: &str) -> Result<sqlx::Transaction<'static, Any>> {
    let mut tx = state.db.pool().begin().await?;
    let locked = sqlx::query("update site set name = name where site_id = $1")
        .bind(site_id)
        .execute(&mut *tx)
        .await?;
    if locked.rows_affected() == 0 {
        return Err(ApiError::not_found("site"));
    }
    Ok(tx)
}

async fn admin_count(conn: &mut AnyConnection, site_id: &str) -> Result<i64> {
    Ok(
        sqlx::query_scalar("select count(*) from membership where site_id = $1 and role = 'admin'")
            .bind(site_id)
            .fetch_one(conn)
            .await?,
    )
}

async fn member_role(
    conn: &mut AnyConnection,
    site_id: &str,
    account: &str,
) -> Result<Option<Role>> {
    let role: Option<String> =
        sqlx::query_scalar("select role from membership where site_id = $1 and account_id = $2")
            .bind(site_id)
            .bind(account)
            .fetch_optional(conn)
            .await?;
    Ok(role.as_deref().and_then(Role::parse))
}

/// Changes a member's role inside a `lock_site` transaction.
async fn set_role(
    conn: &mut AnyConnection,
    site_id: &str,
    account: &str,
    role: Role,
) -> Result<()> {
    let current = member_role(conn, site_id, account)
        .await?
        .ok_or_else(|| ApiError::not_found("member"))?;
    if current == Role::Admin && role != Role::Admin && admin_count(conn, site_id).await? <= 1 {
        return Err(ApiError::invalid(
            "last_admin",
            "a site keeps at least one admin",
        ));
    }
    sqlx::query("update membership set role = $1 where site_id = $2 and account_id = $3")
        .bind(role.as_str())
        .bind(site_id)
        .bind(account)
        .execute(conn)
        .await?;
    Ok(())
}

/// Changes a member's role (admins).
#[utoipa::path(patch, path = "/api/sites/{site}/members/{account}", tag = "members",
    params(("site" = String, Path), ("account" = String, Path)), request_body = MemberUpdate,
    security(("bearer" = [])),
    responses((status = 200, body = Member), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn update_member(
    State(state): State<AppState>,
    access: SiteAccess,
    Path(ids): Path<(String, String)>,
    ApiJson(body): ApiJson<MemberUpdate>,
) -> Result<Json<Member>> {
    let account = ids.1;
    access.require_admin()?;
    let role = parse_role(&body.role)?;
    let mut tx = lock_site(&state, &access.site_id).await?;
    set_role(&mut tx, &access.site_id, &account, role).await?;
    tx.commit().await?;
    let email: String = sqlx::query_scalar("select email from account where account_id = $1")
        .bind(&account)
        .fetch_one(state.db.pool())
        .await?;
    Ok(Json(Member {
        account,
        email,
        role,
    }))
}

/// Removes a member (admins; any member may remove themselves).
#[utoipa::path(delete, path = "/api/sites/{site}/members/{account}", tag = "members",
    params(("site" = String, Path), ("account" = String, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn remove_member(
    State(state): State<AppState>,
    access: SiteAccess,
    Path(ids): Path<(String, String)>,
) -> Result<StatusCode> {
    let account = ids.1;
    if access.account_id() != Some(account.as_str()) {
        access.require_admin()?;
    }
    let mut tx = lock_site(&state, &access.site_id).await?;
    let role = member_role(&mut tx, &access.site_id, &account)
        .await?
        .ok_or_else(|| ApiError::not_found("member"))?;
    if role == Role::Admin && admin_count(&mut tx, &access.site_id).await? <= 1 {
        return Err(ApiError::invalid(
            "last_admin",
            "a site keeps at least one admin",
        ));
    }
    sqlx::query("delete from membership where site_id = $1 and account_id = $2")
        .bind(&access.site_id)
        .bind(&account)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct NewApiKeyResponse {
    pub id: String,
    pub name: String,
    /// The key itself, shown only in this response.
    pub key: String,
    pub created_at: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    pub name: String,
}

/// The site's API keys (never the keys themselves).
#[utoipa::path(get, path = "/api/sites/{site}/api-keys", tag = "api-keys", params(("site" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = Items<ApiKey>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_keys(
    State(state): State<AppState>,
    access: SiteAccess,
) -> Result<Json<Items<ApiKey>>> {
    if access.role().is_none() {
        access.require_admin()?;
    }
    let rows: Vec<(String, String, i64, Option<i64>)> = sqlx::query_as(
        "select api_key_id, name, created_at, last_used_at from api_key where site_id = $1 order by created_at, api_key_id",
    )
    .bind(&access.site_id)
    .fetch_all(state.db.pool())
    .await?;
    let items = rows
        .into_iter()
        .map(|(id, name, created_at, used)| ApiKey {
            id,
            name,
            created_at: rfc3339(created_at),
            last_used_at: used.map(rfc3339),
        })
        .collect();
    Ok(Json(Items { items }))
}

/// Creates an API key for this site (admins); the key is shown once.
#[utoipa::path(post, path = "/api/sites/{site}/api-keys", tag = "api-keys", params(("site" = String, Path)),
    request_body = NewApiKey, security(("bearer" = [])),
    responses((status = 201, body = NewApiKeyResponse), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_key(
    State(state): State<AppState>,
    access: SiteAccess,
    ApiJson(body): ApiJson<NewApiKey>,
) -> Result<(StatusCode, Json<NewApiKeyResponse>)> {
    access.require_admin()?;
    let name = parse_name("name", &body.name, 100)?;
    let (key, hash) = new_api_key();
    let id = new_id();
    let now = now_ms();
    sqlx::query("insert into api_key (api_key_id, site_id, name, key_hash, created_at) values ($1, $2, $3, $4, $5)")
        .bind(&id)
        .bind(&access.site_id)
        .bind(&name)
        .bind(&hash)
        .bind(now)
        .execute(state.db.pool())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(NewApiKeyResponse {
            id,
            name,
            key,
            created_at: rfc3339(now),
        }),
    ))
}

/// Revokes an API key (admins).
#[utoipa::path(delete, path = "/api/sites/{site}/api-keys/{key}", tag = "api-keys",
    params(("site" = String, Path), ("key" = String, Path, description = "the key's id")),
    security(("bearer" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_key(
    State(state): State<AppState>,
    access: SiteAccess,
    Path(ids): Path<(String, String)>,
) -> Result<StatusCode> {
    let key = ids.1;
    access.require_admin()?;
    let done = sqlx::query("delete from api_key where site_id = $1 and api_key_id = $2")
        .bind(&access.site_id)
        .bind(&key)
        .execute(state.db.pool())
        .await?;
    if done.rows_affected() == 0 {
        return Err(ApiError::not_found("API key"));
    }
    Ok(StatusCode::NO_CONTENT)
}
