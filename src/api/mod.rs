//! The REST API under `/api`: one router per resource, merged here, with a JSON 404/405 for
//! anything else. Shared pieces: list envelopes, limits, time filters and keyset cursors.

pub mod auth;
pub mod history;
pub mod live;
pub mod messages;
pub mod openapi;
pub mod sites;
pub mod targeting;

use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(auth::router())
        .merge(sites::router())
        .merge(history::router())
        .merge(messages::router())
        .merge(live::router())
        .merge(targeting::router())
        .merge(openapi::router())
        .fallback(|| async { ApiError::not_found("route") })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
}

/// `{"items":[…]}` for lists that are not paged.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Items<T> {
    pub items: Vec<T>,
}

/// `{"items":[…],"next_cursor":…}` for history lists.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Paged<T> {
    pub items: Vec<T>,
    /// Pass as `?cursor=` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Query parameters every history list shares; kept as text so that each gets its own error.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Page size, 1–1000 (default 100).
    pub limit: Option<String>,
    /// Opaque cursor from `next_cursor`.
    pub cursor: Option<String>,
    /// Only rows at or after this time (RFC 3339).
    pub from: Option<String>,
    /// Only rows before this time (RFC 3339).
    pub to: Option<String>,
}

pub struct Window {
    pub limit: i64,
    pub from: Option<i64>,
    pub to: Option<i64>,
}

impl PageParams {
    pub fn window(&self) -> Result<Window, ApiError> {
        let limit = parse_limit(self.limit.as_deref())?;
        let from = parse_time("from", self.from.as_deref())?;
        let to = parse_time("to", self.to.as_deref())?;
        if let (Some(f), Some(t)) = (from, to) {
            if f > t {
                return Err(ApiError::invalid(
                    "invalid_range",
                    "`from` must not be after `to`",
                ));
            }
        }
        Ok(Window { limit, from, to })
    }
}

pub fn parse_limit(raw: Option<&str>) -> Result<i64, ApiError> {
    let Some(raw) = raw else { return Ok(100) };
    let n: i64 = raw
        .parse()
        .map_err(|_| ApiError::bad_request("invalid_limit", "`limit` must be an integer"))?;
    if !(1..=1000).contains(&n) {
        return Err(ApiError::invalid(
            "invalid_limit",
            "`limit` must be between 1 and 1000",
        ));
    }
    Ok(n)
}

pub fn parse_time(name: &str, raw: Option<&str>) -> Result<Option<i64>, ApiError> {
    match raw {
        None => Ok(None),
        Some(s) => crate::domain::parse_rfc3339(s).map(Some).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_timestamp",
                format!("`{name}` must be an RFC 3339 time such as 2026-01-31T12:00:00Z"),
            )
        }),
    }
}

/// A keyset position: the sort time and the row's id (ties broken by id).
pub struct Cursor {
    pub at: i64,
    pub id: String,
}

impl Cursor {
    pub fn encode(at: i64, id: &str) -> String {
        URL_SAFE_NO_PAD.encode(format!("{at}:{id}"))
    }

    pub fn decode(raw: Option<&str>) -> Result<Option<Self>, ApiError> {
        let Some(raw) = raw else { return Ok(None) };
        let bad =
            || ApiError::bad_request("invalid_cursor", "`cursor` is not one this API gave out");
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        let (at, id) = text.split_once(':').ok_or_else(bad)?;
        let at = at.parse().map_err(|_| bad())?;
        if id.is_empty() || id.len() > 128 {
            return Err(bad());
        }
        Ok(Some(Self {
            at,
            id: id.to_string(),
        }))
    }
}

/// Builds `where` clauses with numbered placeholders and keeps the values to bind in order.
#[derive(Default)]
pub struct Filter {
    clauses: Vec<String>,
    values: Vec<FilterValue>,
}

pub enum FilterValue {
    Text(String),
    Int(i64),
}

impl Filter {
    /// Adds a clause written with `?` for each of its placeholders, in the order of `values`.
    pub fn push(&mut self, clause: &str, values: Vec<FilterValue>) -> &mut Self {
        let mut out = String::with_capacity(clause.len() + 8);
        let mut n = self.values.len();
        for ch in clause.chars() {
            if ch == '?' {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            } else {
                out.push(ch);
            }
        }
        self.values.extend(values);
        self.clauses.push(out);
        self
    }

    /// Adds a clause built by `f`, which gets the numbers of its next `n` placeholders.
    pub fn push_with(
        &mut self,
        values: Vec<FilterValue>,
        f: impl FnOnce(&[usize]) -> String,
    ) -> &mut Self {
        let first = self.values.len() + 1;
        let slots: Vec<usize> = (first..first + values.len()).collect();
        self.clauses.push(f(&slots));
        self.values.extend(values);
        self
    }

    pub fn next_placeholder(&self) -> usize {
        self.values.len() + 1
    }

    pub fn where_sql(&self) -> String {
        self.clauses.join(" and ")
    }

    pub fn bind<'q, O>(
        &'q self,
        mut q: sqlx::query::QueryAs<'q, sqlx::Any, O, sqlx::any::AnyArguments<'q>>,
    ) -> sqlx::query::QueryAs<'q, sqlx::Any, O, sqlx::any::AnyArguments<'q>> {
        for v in &self.values {
            q = match v {
                FilterValue::Text(s) => q.bind(s.as_str()),
                FilterValue::Int(i) => q.bind(*i),
            };
        }
        q
    }
}

pub fn text(s: impl Into<String>) -> FilterValue {
    FilterValue::Text(s.into())
}

pub fn int(i: i64) -> FilterValue {
    FilterValue::Int(i)
}

/// Validates a free-text name: trimmed, 1..=max characters, no control characters.
pub fn parse_name(field: &str, raw: &str, max: usize) -> Result<String, ApiError> {
    let s = raw.trim();
    if s.is_empty() || s.chars().count() > max || s.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "invalid_name",
            format!("`{field}` must be 1 to {max} characters of text"),
        ));
    }
    Ok(s.to_string())
}
