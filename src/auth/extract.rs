//! Extractors: `Caller` (who is calling: an account by token or cookie, or a site API key),
//! `AccountCaller` (an account only) and `SiteAccess` (a site the caller may touch, with the
//! caller's role). A site the caller is not a member of answers 404, like one that does not exist.

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::http::{header, Method};
use axum_extra::extract::CookieJar;

use super::{hash_api_key, looks_like_api_key, TokenError, SESSION_COOKIE};
use crate::domain::Role;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Debug, Clone)]
pub enum Caller {
    Account { account_id: String },
    ApiKey { key_id: String, site_id: String },
}

fn bearer(parts: &Parts) -> Result<Option<&str>, ApiError> {
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| {
        ApiError::unauthorized(
            "invalid_token",
            "the Authorization header is not valid text",
        )
    })?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim()))
        }
        _ => Err(ApiError::unauthorized(
            "invalid_token",
            "the Authorization header must be `Bearer TOKEN`",
        )),
    }
}

/// Refuses cookie-authenticated writes from another origin (the cookie is SameSite=Strict as
/// well; this covers older browsers and same-site subdomains).
fn csrf_check(parts: &Parts) -> Result<(), ApiError> {
    if matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let Some(origin) = parts
        .headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(());
    };
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok());
    let origin_host = url::Url::parse(origin).ok().and_then(|u| {
        u.host_str().map(|h| match u.port() {
            Some(p) => format!("{h}:{p}"),
            None => h.to_string(),
        })
    });
    if origin_host.is_some() && origin_host.as_deref() == host {
        Ok(())
    } else {
        Err(ApiError::forbidden("cross-origin request refused"))
    }
}

impl Caller {
    /// Resolves a bearer token (login token or API key) to a caller.
    pub async fn from_token(state: &AppState, token: &str) -> Result<Self, ApiError> {
        if looks_like_api_key(token) {
            let row: Option<(String, String)> =
                sqlx::query_as("select api_key_id, site_id from api_key where key_hash = $1")
                    .bind(hash_api_key(token))
                    .fetch_optional(state.db.pool())
                    .await?;
            return match row {
                Some((key_id, site_id)) => Ok(Caller::ApiKey { key_id, site_id }),
                None => Err(ApiError::unauthorized(
                    "invalid_token",
                    "unknown or revoked API key",
                )),
            };
        }
        match state.tokens.verify(token) {
            Ok(account_id) => Ok(Caller::Account { account_id }),
            Err(TokenError::Expired) => Err(ApiError::unauthorized(
                "token_expired",
                "the token has expired",
            )),
            Err(TokenError::Invalid) => Err(ApiError::unauthorized(
                "invalid_token",
                "the token is not valid",
            )),
        }
    }

    /// The session cookie's account, if the request carries a valid one.
    pub fn from_cookie(state: &AppState, headers: &axum::http::HeaderMap) -> Option<Self> {
        let jar = CookieJar::from_headers(headers);
        let token = jar.get(SESSION_COOKIE)?.value().to_string();
        state
            .tokens
            .verify(&token)
            .ok()
            .map(|account_id| Caller::Account { account_id })
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(token) = bearer(parts)? {
            return Caller::from_token(state, token).await;
        }
        let jar = CookieJar::from_headers(&parts.headers);
        if let Some(cookie) = jar.get(SESSION_COOKIE) {
            csrf_check(parts)?;
            return Caller::from_token(state, cookie.value()).await;
        }
        Err(ApiError::unauthorized(
            "missing_credentials",
            "send `Authorization: Bearer TOKEN` (a login token or a site API key)",
        ))
    }
}

/// An authenticated account (API keys are refused: they only reach their site's endpoints).
pub struct AccountCaller(pub String);

impl FromRequestParts<AppState> for AccountCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match Caller::from_request_parts(parts, state).await? {
            Caller::Account { account_id } => {
                // A well-signed token can outlive its account (a database recreated under the
                // same LOOKOUT_JWT_SECRET): refuse it rather than act for a ghost. Site
                // endpoints need no such check: their membership lookup finds nothing.
                let exists: Option<i64> =
                    sqlx::query_scalar("select 1 from account where account_id = $1")
                        .bind(account_id.as_str())
                        .fetch_optional(state.db.pool())
                        .await?;
                match exists {
                    Some(_) => Ok(Self(account_id)),
                    None => Err(ApiError::unauthorized(
                        "invalid_token",
                        "the account no longer exists",
                    )),
                }
            }
            Caller::ApiKey { .. } => Err(ApiError::Forbidden {
                code: "account_required",
                message: "this endpoint needs a login token, not an API key".into(),
            }),
        }
    }
}

/// What a caller may do on a site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Admin,
    Viewer,
    /// A site API key: reads, sends and configures targeting, but does not manage members,
    /// keys or the site itself.
    ApiKey,
}

#[derive(Debug, Clone)]
pub struct SiteAccess {
    pub site_id: String,
    pub access: Access,
    pub caller: Caller,
}

impl SiteAccess {
    pub fn role(&self) -> Option<Role> {
        match self.access {
            Access::Admin => Some(Role::Admin),
            Access::Viewer => Some(Role::Viewer),
            Access::ApiKey => None,
        }
    }

    /// Sending messages and configuring targeting: admins and API keys.
    pub fn require_write(&self) -> Result<(), ApiError> {
        match self.access {
            Access::Admin | Access::ApiKey => Ok(()),
            Access::Viewer => Err(ApiError::forbidden(
                "viewers can read but not change or send",
            )),
        }
    }

    /// Managing the site, its members and keys: admin accounts only.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self.access {
            Access::Admin => Ok(()),
            Access::Viewer => Err(ApiError::forbidden(
                "viewers can read but not change or send",
            )),
            Access::ApiKey => Err(ApiError::Forbidden {
                code: "account_required",
                message: "managing the site, members and API keys needs an admin's login".into(),
            }),
        }
    }

    pub fn account_id(&self) -> Option<&str> {
        match &self.caller {
            Caller::Account { account_id } => Some(account_id),
            Caller::ApiKey { .. } => None,
        }
    }

    /// Checks what `caller` may do on `site_id`; not a member → 404.
    pub async fn resolve(
        state: &AppState,
        caller: Caller,
        site_id: &str,
    ) -> Result<Self, ApiError> {
        let access = match &caller {
            Caller::ApiKey {
                site_id: key_site,
                key_id,
            } => {
                if key_site != site_id {
                    return Err(ApiError::not_found("site"));
                }
                // Best effort: record use without failing the request.
                let _ = sqlx::query("update api_key set last_used_at = $1 where api_key_id = $2")
                    .bind(crate::db::now_ms())
                    .bind(key_id.as_str())
                    .execute(state.db.pool())
                    .await;
                Access::ApiKey
            }
            Caller::Account { account_id } => {
                let role: Option<String> = sqlx::query_scalar(
                    "select role from membership where site_id = $1 and account_id = $2",
                )
                .bind(site_id)
                .bind(account_id.as_str())
                .fetch_optional(state.db.pool())
                .await?;
                match role.as_deref().and_then(Role::parse) {
                    Some(Role::Admin) => Access::Admin,
                    Some(Role::Viewer) => Access::Viewer,
                    None => return Err(ApiError::not_found("site")),
                }
            }
        };
        Ok(Self {
            site_id: site_id.to_string(),
            access,
            caller,
        })
    }
}

impl FromRequestParts<AppState> for SiteAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::not_found("site"))?;
        let site_id = params
            .iter()
            .find(|(k, _)| *k == "site")
            .map(|(_, v)| v.to_string())
            .ok_or_else(|| ApiError::not_found("site"))?;
        let caller = Caller::from_request_parts(parts, state).await?;
        Self::resolve(state, caller, &site_id).await
    }
}
