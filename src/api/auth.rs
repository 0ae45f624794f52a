//! Accounts: sign-up, login (rate limited per account and per IP), logout, `GET /api/me`.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::auth::extract::AccountCaller;
use crate::auth::{hash_password, verify_password, SESSION_COOKIE};
use crate::db::now_ms;
use crate::domain::{new_id, parse_email, rfc3339};
use crate::error::{is_unique_violation, ApiError, ApiJson, ErrorBody, Result};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/signup", post(signup))
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/me", get(me))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    #[schema(example = "owner@example.com")]
    pub email: String,
    /// At least 8 characters.
    pub password: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Account {
    pub id: String,
    pub email: String,
    pub created_at: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Session {
    /// A login token for `Authorization: Bearer`.
    pub token: String,
    pub account: Account,
}

fn session_response(state: &AppState, status: StatusCode, body: Session) -> Response {
    let secure = state
        .settings
        .public_url
        .as_ref()
        .is_some_and(|u| u.scheme() == "https");
    let cookie = format!(
        "{SESSION_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        body.token,
        state.tokens.ttl().as_secs(),
        if secure { "; Secure" } else { "" }
    );
    let mut resp = (status, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

fn check_password(password: &str) -> Result<()> {
    let n = password.chars().count();
    if !(8..=1024).contains(&n) {
        return Err(ApiError::invalid(
            "weak_password",
            "the password must have 8 to 1024 characters",
        ));
    }
    Ok(())
}

/// Creates an account and logs it in.
#[utoipa::path(post, path = "/api/auth/signup", tag = "accounts", request_body = Credentials,
    responses((status = 201, body = Session), (status = 400, body = ErrorBody),
        (status = 409, description = "e-mail already registered", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn signup(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<Response> {
    let email = parse_email(&body.email)
        .ok_or_else(|| ApiError::invalid("invalid_email", "`email` is not an e-mail address"))?;
    check_password(&body.password)?;
    let hash = hash_password(body.password).await?;
    let id = new_id();
    let now = now_ms();
    let inserted = sqlx::query(
        "insert into account (account_id, email, password_hash, created_at) values ($1, $2, $3, $4)",
    )
    .bind(&id)
    .bind(&email)
    .bind(&hash)
    .bind(now)
    .execute(state.db.pool())
    .await;
    match inserted {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e, "email") => {
            return Err(ApiError::conflict(
                "email_taken",
                "an account with this e-mail exists",
            ))
        }
        Err(e) => return Err(e.into()),
    }
    let token = state.tokens.issue(&id)?;
    let account = Account {
        id,
        email,
        created_at: rfc3339(now),
    };
    Ok(session_response(
        &state,
        StatusCode::CREATED,
        Session { token, account },
    ))
}

/// Logs in; rate limited per account and per client IP.
#[utoipa::path(post, path = "/api/auth/login", tag = "accounts", request_body = Credentials,
    responses((status = 200, body = Session), (status = 400, body = ErrorBody),
        (status = 401, description = "wrong e-mail or password", body = ErrorBody),
        (status = 429, body = ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<Response> {
    let email = body.email.trim().to_lowercase();
    state.login_limiter.check(&email, peer.ip())?;
    let row: Option<(String, String, i64)> = sqlx::query_as(
        "select account_id, password_hash, created_at from account where email = $1",
    )
    .bind(&email)
    .fetch_optional(state.db.pool())
    .await?;
    let wrong = || ApiError::unauthorized("invalid_credentials", "wrong e-mail or password");
    let Some((id, hash, created_at)) = row else {
        return Err(wrong());
    };
    if !verify_password(body.password, hash).await? {
        return Err(wrong());
    }
    let token = state.tokens.issue(&id)?;
    let account = Account {
        id,
        email,
        created_at: rfc3339(created_at),
    };
    Ok(session_response(
        &state,
        StatusCode::OK,
        Session { token, account },
    ))
}

/// Ends the dashboard session (clears the session cookie).
#[utoipa::path(post, path = "/api/auth/logout", tag = "accounts", responses((status = 204)))]
pub async fn logout() -> impl IntoResponse {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::SET_COOKIE,
        HeaderValue::from_static("lk_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    (StatusCode::NO_CONTENT, headers)
}

/// The calling account.
#[utoipa::path(get, path = "/api/me", tag = "accounts", security(("bearer" = [])),
    responses((status = 200, body = Account), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn me(
    State(state): State<AppState>,
    AccountCaller(id): AccountCaller,
) -> Result<Json<Account>> {
    let row: Option<(String, i64)> =
        sqlx::query_as("select email, created_at from account where account_id = $1")
            .bind(&id)
            .fetch_optional(state.db.pool())
            .await?;
    let (email, created_at) =
        row.ok_or_else(|| ApiError::unauthorized("invalid_token", "the account no longer exists"))?;
    Ok(Json(Account {
        id,
        email,
        created_at: rfc3339(created_at),
    }))
}
