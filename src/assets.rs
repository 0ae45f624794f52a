//! Static files built into the binary: the snippet (`/snippet.js`, `/snippet/…`), the dashboard
//! (`/` with a single-page-app fallback) and the demo shop (`/demo/…`, with `--demo`). ETags
//! from content hashes; long-lived caching for versioned URLs; a strict CSP on the dashboard.

use std::borrow::Cow;
use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use rust_embed::{EmbeddedFile, RustEmbed};

use crate::state::AppState;

#[derive(RustEmbed)]
#[folder = "snippet/dist/"]
struct Snippet;

#[derive(RustEmbed)]
#[folder = "dashboard/dist/"]
struct Dashboard;

#[derive(RustEmbed)]
#[folder = "demo/"]
#[exclude = "*.md"]
struct Demo;

pub const DASHBOARD_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/snippet.js", get(snippet_main))
        .route("/snippet/{*file}", get(snippet_file))
        .route(
            "/demo",
            get(|| async { axum::response::Redirect::permanent("/demo/") }),
        )
        .route("/demo/", get(|state, headers| demo(state, headers, None)))
        .route(
            "/demo/{*path}",
            get(|state, headers, Path(p): Path<String>| demo(state, headers, Some(p))),
        )
}

fn etag(file: &EmbeddedFile) -> String {
    format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..12]))
}

fn mime(path: &str) -> String {
    mime_guess::from_path(path)
        .first_or_octet_stream()
        .essence_str()
        .to_string()
}

/// A file response with ETag/304 handling and the given cache policy.
fn file_response(
    path: &str,
    file: EmbeddedFile,
    headers: &HeaderMap,
    cache: &str,
    body: Option<Vec<u8>>,
) -> Response {
    let tag = etag(&file);
    let mut resp = if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag))
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let data: Cow<'static, [u8]> = match body {
            Some(b) => Cow::Owned(b),
            None => file.data,
        };
        ([(header::CONTENT_TYPE, mime(path))], data.into_owned()).into_response()
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(cache) {
        h.insert(header::CACHE_CONTROL, v);
    }
    resp
}

/// The snippet's version tag, for `?v=` URLs that may be cached for a year.
pub fn snippet_version() -> Option<String> {
    Snippet::get("snippet.js").map(|f| hex::encode(&f.metadata.sha256_hash()[..6]))
}

fn snippet(name: &str, headers: &HeaderMap, query: &HashMap<String, String>) -> Response {
    let Some(file) = Snippet::get(name) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let version = hex::encode(&file.metadata.sha256_hash()[..6]);
    let cache = if query.get("v") == Some(&version) {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=300"
    };
    let mut resp = file_response(name, file, headers, cache, None);
    // Pages on any origin load it, including those that isolate themselves (COEP).
    resp.headers_mut().insert(
        header::HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("cross-origin"),
    );
    resp
}

async fn snippet_main(headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    snippet("snippet.js", &headers, &q)
}

async fn snippet_file(
    Path(file): Path<String>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    snippet(&file, &headers, &q)
}

/// Candidates for a demo path: the file, `.html`, `/index.html`, then the nearest parent
/// `index.html` (so a pushState app can be deep-linked).
fn demo_candidates(path: &str) -> Vec<String> {
    let path = path.trim_matches('/');
    let mut out = Vec::new();
    if path.is_empty() {
        out.push("index.html".to_string());
        return out;
    }
    out.push(path.to_string());
    out.push(format!("{path}.html"));
    out.push(format!("{path}/index.html"));
    let mut parts: Vec<&str> = path.split('/').collect();
    while parts.pop().is_some() {
        if parts.is_empty() {
            break;
        }
        out.push(format!("{}/index.html", parts.join("/")));
    }
    out
}

async fn demo(State(state): State<AppState>, headers: HeaderMap, path: Option<String>) -> Response {
    let Some(key) = state.demo_site_key.as_deref() else {
        return crate::error::ApiError::not_found("page").into_response();
    };
    let path = path.unwrap_or_default();
    if path.split('/').any(|seg| seg == "..") {
        return crate::error::ApiError::not_found("page").into_response();
    }
    for candidate in demo_candidates(&path) {
        if let Some(file) = Demo::get(&candidate) {
            let body = candidate.ends_with(".html").then(|| {
                String::from_utf8_lossy(&file.data)
                    .replace("__LOOKOUT_SITE_KEY__", key)
                    .into_bytes()
            });
            // HTML carries the site key, so it is revalidated; other files are cached briefly.
            let cache = if body.is_some() {
                "no-cache"
            } else {
                "public, max-age=300"
            };
            return file_response(&candidate, file, &headers, cache, body);
        }
    }
    crate::error::ApiError::not_found("page").into_response()
}

/// The dashboard: a file of its build, or `index.html` for client-side routes.
pub async fn dashboard(headers: HeaderMap, uri: axum::http::Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    let (name, file) = match Dashboard::get(path).filter(|_| !path.is_empty()) {
        Some(f) => (path.to_string(), f),
        None => match Dashboard::get("index.html") {
            Some(f) => ("index.html".to_string(), f),
            None => return (StatusCode::NOT_FOUND, "dashboard not built").into_response(),
        },
    };
    // Built assets have content-hashed names and never change; HTML is revalidated.
    let cache = if name.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut resp = file_response(&name, file, &headers, cache, None);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(DASHBOARD_CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::demo_candidates;

    #[test]
    fn demo_paths_fall_back_to_the_nearest_index() {
        let c = demo_candidates("finder/tesla-model-3");
        assert_eq!(c[0], "finder/tesla-model-3");
        assert!(c.contains(&"finder/index.html".to_string()));
        assert_eq!(demo_candidates(""), vec!["index.html".to_string()]);
    }
}
