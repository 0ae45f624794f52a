//! Accounts and authentication: sign-up, login, `/api/me`, logout and the session cookie, every
//! way a credential can be refused, API keys on account endpoints, and the login rate limit.

use reqwest::header::{
    HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, ORIGIN, RETRY_AFTER, SET_COOKIE,
};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::TestApp;
use crate::on_both_databases;

/// Asserts an error answer: the status, the envelope's code, and a non-empty message.
fn assert_error(status: StatusCode, body: &Value, want_status: StatusCode, want_code: &str) {
    assert_eq!(status, want_status, "status of {body}");
    assert_eq!(body["error"]["code"], want_code, "error code of {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "error message of {body}"
    );
}

/// Sends `body` as it is (no JSON encoding) with the given headers; returns status, headers, body.
async fn raw(
    app: &TestApp,
    method: &str,
    path: &str,
    headers: HeaderMap,
    body: Option<String>,
) -> (StatusCode, HeaderMap, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = app.client.request(method, app.url(path)).headers(headers);
    if let Some(b) = body {
        req = req.body(b);
    }
    let resp = req.send().await.expect("request sent");
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body");
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, headers, value)
}

fn json_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h
}

async fn login(app: &TestApp, email: &str, password: &str) -> (StatusCode, Value) {
    app.request(
        "POST",
        "/api/auth/login",
        None,
        Some(json!({"email": email, "password": password})),
    )
    .await
}

fn is_rfc3339_utc(s: &str) -> bool {
    s.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(s).is_ok()
}

on_both_databases!(
    signup_returns_a_token_and_the_new_account,
    |app: TestApp| async move {
        let (status, headers, body) = raw(
            &app,
            "POST",
            "/api/auth/signup",
            json_headers(),
            Some(json!({"email": "Owner@Example.com ", "password": "correct horse"}).to_string()),
        )
        .await;

        assert_eq!(status, StatusCode::CREATED, "{body}");
        let token = body["token"].as_str().expect("token is a string");
        assert!(!token.is_empty());
        assert_eq!(
            body["account"]["email"], "owner@example.com",
            "e-mail is trimmed and lower-cased"
        );
        assert!(body["account"]["id"]
            .as_str()
            .is_some_and(|id| !id.is_empty()));
        assert!(
            is_rfc3339_utc(body["account"]["created_at"].as_str().expect("created_at")),
            "{body}"
        );
        assert_eq!(
            body["account"].as_object().expect("account object").len(),
            3,
            "account is {{id,email,created_at}}"
        );
        let cookie = headers
            .get(SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .expect("session cookie set");
        assert!(
            cookie.starts_with(&format!("lk_session={token};")),
            "{cookie}"
        );
        assert!(
            cookie.contains("HttpOnly")
                && cookie.contains("SameSite=Strict")
                && cookie.contains("Path=/"),
            "{cookie}"
        );

        let (status, me) = app.get("/api/me", token).await;
        assert_eq!(status, StatusCode::OK, "{me}");
        assert_eq!(me, body["account"], "/api/me answers the same account");
    }
);

on_both_databases!(
    signing_up_twice_with_the_same_email_in_any_case_is_a_conflict,
    |app: TestApp| async move {
        app.signup("taken@example.com").await;

        for email in [
            "taken@example.com",
            "TAKEN@example.com",
            "  Taken@Example.COM",
        ] {
            let (status, body) = app
                .request(
                    "POST",
                    "/api/auth/signup",
                    None,
                    Some(json!({"email": email, "password": "another pass"})),
                )
                .await;
            assert_error(status, &body, StatusCode::CONFLICT, "email_taken");
        }
    }
);

on_both_databases!(
    signup_refuses_passwords_shorter_than_eight_or_longer_than_1024_characters,
    |app: TestApp| async move {
        for (i, password) in ["", "1234567", "ééééééé", &"x".repeat(1025)]
            .into_iter()
            .enumerate()
        {
            let (status, body) = app
                .request(
                    "POST",
                    "/api/auth/signup",
                    None,
                    Some(json!({"email": format!("weak{i}@example.com"), "password": password})),
                )
                .await;
            assert_error(
                status,
                &body,
                StatusCode::UNPROCESSABLE_ENTITY,
                "weak_password",
            );
        }

        // The boundaries themselves are accepted (characters are counted, not bytes).
        for (i, password) in ["12345678", "éééééééé", &"x".repeat(1024)]
            .into_iter()
            .enumerate()
        {
            let (status, body) = app
                .request(
                    "POST",
                    "/api/auth/signup",
                    None,
                    Some(json!({"email": format!("ok{i}@example.com"), "password": password})),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{password:?}: {body}");
        }
    }
);

on_both_databases!(
    signup_refuses_malformed_email_addresses,
    |app: TestApp| async move {
        for email in [
            "",
            "plainaddress",
            "@example.com",
            "someone@",
            "someone@localhost",
            "a b@example.com",
            "a@.example.com",
            "a@example.com.",
        ] {
            let (status, body) = app
                .request(
                    "POST",
                    "/api/auth/signup",
                    None,
                    Some(json!({"email": email, "password": "correct horse"})),
                )
                .await;
            assert_error(
                status,
                &body,
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_email",
            );
        }
    }
);

on_both_databases!(
    signup_and_login_refuse_malformed_bodies,
    |app: TestApp| async move {
        for path in ["/api/auth/signup", "/api/auth/login"] {
            let (status, _, body) = raw(
                &app,
                "POST",
                path,
                json_headers(),
                Some("{\"email\": ".into()),
            )
            .await;
            assert_error(status, &body, StatusCode::BAD_REQUEST, "malformed_json");

            let (status, _, body) = raw(
                &app,
                "POST",
                path,
                json_headers(),
                Some(json!({"email": 5, "password": "correct horse"}).to_string()),
            )
            .await;
            assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_body");

            let (status, _, body) = raw(
                &app,
                "POST",
                path,
                json_headers(),
                Some(json!({"email": "a@example.com"}).to_string()),
            )
            .await;
            assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_body");

            let (status, _, body) = raw(
                &app,
                "POST",
                path,
                json_headers(),
                Some(
                    json!({"email": "a@example.com", "password": "correct horse", "admin": true})
                        .to_string(),
                ),
            )
            .await;
            assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_body");

            let (status, _, body) = raw(
                &app,
                "POST",
                path,
                HeaderMap::new(),
                Some(json!({"email": "a@example.com", "password": "correct horse"}).to_string()),
            )
            .await;
            assert_error(
                status,
                &body,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
            );
        }
        // Nothing was created by any of these.
        let (status, body) = login(&app, "a@example.com", "correct horse").await;
        assert_error(
            status,
            &body,
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
        );
    }
);

on_both_databases!(
    login_with_the_right_password_returns_the_account_and_a_working_token,
    |app: TestApp| async move {
        let account = app.signup("login@example.com").await;

        let (status, body) = login(&app, "  LOGIN@example.com", "correct horse").await;

        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["account"]["id"], account.id.as_str());
        assert_eq!(body["account"]["email"], "login@example.com");
        let token = body["token"].as_str().expect("token");
        let (status, me) = app.get("/api/me", token).await;
        assert_eq!(status, StatusCode::OK, "{me}");
        assert_eq!(me["id"], account.id.as_str());
        assert_eq!(me["email"], "login@example.com");
    }
);

on_both_databases!(
    a_wrong_password_and_an_unknown_email_are_refused_alike,
    |app: TestApp| async move {
        app.signup("known@example.com").await;

        let (s1, wrong_password) = login(&app, "known@example.com", "wrong horse").await;
        let (s2, unknown_email) = login(&app, "unknown@example.com", "correct horse").await;

        assert_error(
            s1,
            &wrong_password,
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
        );
        assert_error(
            s2,
            &unknown_email,
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
        );
        assert_eq!(
            wrong_password, unknown_email,
            "the answer does not reveal which accounts exist"
        );
    }
);

on_both_databases!(
    the_eleventh_bad_login_for_one_account_within_a_minute_is_rate_limited,
    |app: TestApp| async move {
        app.signup("target@example.com").await;
        app.signup("bystander@example.com").await;

        for attempt in 1..=10 {
            let (status, body) = login(
                &app,
                "target@example.com",
                &format!("guess number {attempt}"),
            )
            .await;
            assert_error(
                status,
                &body,
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
            );
        }
        let (status, headers, body) = raw(
            &app,
            "POST",
            "/api/auth/login",
            json_headers(),
            Some(json!({"email": "target@example.com", "password": "guess number 11"}).to_string()),
        )
        .await;

        assert_error(status, &body, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
        let retry_after: u64 = headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .expect("Retry-After with a number of seconds");
        assert!(
            (1..=60).contains(&retry_after),
            "Retry-After: {retry_after}"
        );
        // While limited, even the right password (and the e-mail in another case) is refused...
        let (status, body) = login(&app, "TARGET@example.com", "correct horse").await;
        assert_error(status, &body, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
        // ...but other accounts are not affected.
        let (status, body) = login(&app, "bystander@example.com", "correct horse").await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
);

on_both_databases!(
    requests_without_credentials_are_refused_with_missing_credentials,
    |app: TestApp| async move {
        let (_, site) = app.owner_with_site("owner@example.com").await;

        for (method, path) in [
            ("GET", "/api/me".to_string()),
            ("GET", "/api/sites".to_string()),
            ("POST", "/api/sites".to_string()),
            ("GET", format!("/api/sites/{}", site.id)),
            ("GET", format!("/api/sites/{}/pageviews", site.id)),
            ("GET", format!("/api/sites/{}/members", site.id)),
        ] {
            let body = (method == "POST").then(|| json!({"name": "x", "domains": []}));
            let (status, body) = app.request(method, &path, None, body).await;
            assert_error(
                status,
                &body,
                StatusCode::UNAUTHORIZED,
                "missing_credentials",
            );
        }
    }
);

on_both_databases!(
    garbage_and_forged_tokens_are_refused_with_invalid_token,
    |app: TestApp| async move {
        let account = app.signup("victim@example.com").await;
        let now = chrono::Utc::now().timestamp();
        let claims = json!({"sub": account.id, "iat": now, "exp": now + 3600});
        let other_secret = jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(b"not the server's secret"),
        )
        .expect("encode");
        let b64 = |v: Value| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        let alg_none = format!(
            "{}.{}.",
            b64(json!({"alg": "none", "typ": "JWT"})),
            b64(claims.clone())
        );
        let mut parts: Vec<&str> = account.token.split('.').collect();
        let tampered_payload = b64(json!({"sub": "someone-else", "iat": now, "exp": now + 3600}));
        parts[1] = &tampered_payload;
        let tampered = parts.join(".");

        for token in [
            "garbage",
            "a.b.c",
            other_secret.as_str(),
            alg_none.as_str(),
            tampered.as_str(),
            "lk_key_not_a_real_key",
        ] {
            let (status, body) = app.get("/api/me", token).await;
            assert_error(status, &body, StatusCode::UNAUTHORIZED, "invalid_token");
        }
        // Malformed Authorization headers are refused too (and not treated as "no credentials").
        for header in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer    ", &account.token] {
            let mut headers = HeaderMap::new();
            headers.insert(
                AUTHORIZATION,
                HeaderValue::from_str(header).expect("header"),
            );
            let (status, _, body) = raw(&app, "GET", "/api/me", headers, None).await;
            assert_error(status, &body, StatusCode::UNAUTHORIZED, "invalid_token");
        }
    }
);

on_both_databases!(
    an_expired_token_is_refused_with_token_expired,
    |app: TestApp| async move {
        let account = app.signup("late@example.com").await;
        let now = chrono::Utc::now().timestamp();
        let expired = app
            .state
            .tokens
            .issue_with_times(&account.id, now - 7200, now - 60)
            .expect("token");
        let still_valid = app
            .state
            .tokens
            .issue_with_times(&account.id, now - 7200, now + 60)
            .expect("token");

        let (status, body) = app.get("/api/me", &expired).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "token_expired");
        let (status, body) = app.get("/api/sites", &expired).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "token_expired");

        let (status, body) = app.get("/api/me", &still_valid).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
);

on_both_databases!(
    api_keys_cannot_use_account_endpoints,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("owner@example.com").await;
        let (status, created) = app
            .post(
                &format!("/api/sites/{}/api-keys", site.id),
                &owner.token,
                json!({"name": "ci"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let key = created["key"].as_str().expect("key");

        for (method, path, body) in [
            ("GET", "/api/me", None),
            ("GET", "/api/sites", None),
            (
                "POST",
                "/api/sites",
                Some(json!({"name": "Via key", "domains": []})),
            ),
        ] {
            let (status, body) = app.request(method, path, Some(key), body).await;
            assert_error(status, &body, StatusCode::FORBIDDEN, "account_required");
        }
        let (_, sites) = app.get("/api/sites", &owner.token).await;
        assert_eq!(
            sites["items"].as_array().map(Vec::len),
            Some(1),
            "no site was created with the key: {sites}"
        );
    }
);

on_both_databases!(
    the_session_cookie_authenticates_and_logout_clears_it,
    |app: TestApp| async move {
        app.signup("browser@example.com").await;
        let browser = reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .expect("client");

        let resp = browser
            .post(app.url("/api/auth/login"))
            .json(&json!({"email": "browser@example.com", "password": "correct horse"}))
            .send()
            .await
            .expect("login");
        assert_eq!(resp.status(), StatusCode::OK);
        let me = browser.get(app.url("/api/me")).send().await.expect("me");
        assert_eq!(
            me.status(),
            StatusCode::OK,
            "the cookie alone authenticates"
        );
        let me: Value = me.json().await.expect("json");
        assert_eq!(me["email"], "browser@example.com");

        let resp = browser
            .post(app.url("/api/auth/logout"))
            .send()
            .await
            .expect("logout");
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        let cleared = resp
            .headers()
            .get(SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .expect("cookie cleared");
        assert!(
            cleared.starts_with("lk_session=;") && cleared.contains("Max-Age=0"),
            "{cleared}"
        );

        let me = browser.get(app.url("/api/me")).send().await.expect("me");
        assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
        let body: Value = me.json().await.expect("json");
        assert_eq!(body["error"]["code"], "missing_credentials");
    }
);

on_both_databases!(
    cookie_authenticated_writes_from_a_foreign_origin_are_refused,
    |app: TestApp| async move {
        app.signup("csrf@example.com").await;
        let browser = reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .expect("client");
        let resp = browser
            .post(app.url("/api/auth/login"))
            .json(&json!({"email": "csrf@example.com", "password": "correct horse"}))
            .send()
            .await
            .expect("login");
        assert_eq!(resp.status(), StatusCode::OK);
        let own_origin = app.base.clone();

        let foreign = browser
            .post(app.url("/api/sites"))
            .header(ORIGIN, "https://evil.test")
            .json(&json!({"name": "Forged", "domains": []}))
            .send()
            .await
            .expect("post");
        assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
        let body: Value = foreign.json().await.expect("json");
        assert_eq!(body["error"]["code"], "forbidden");

        let same = browser
            .post(app.url("/api/sites"))
            .header(ORIGIN, own_origin.as_str())
            .json(&json!({"name": "Mine", "domains": []}))
            .send()
            .await
            .expect("post");
        assert_eq!(same.status(), StatusCode::CREATED);

        // Reads are not affected by the Origin check.
        let list = browser
            .get(app.url("/api/sites"))
            .header(ORIGIN, "https://evil.test")
            .send()
            .await
            .expect("get");
        assert_eq!(list.status(), StatusCode::OK);
        let list: Value = list.json().await.expect("json");
        let names: Vec<&str> = list["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|s| s["name"].as_str())
            .collect();
        assert_eq!(names, ["Mine"], "the forged request created nothing");
    }
);

on_both_databases!(
    logout_needs_no_credentials_and_always_answers_204,
    |app: TestApp| async move {
        let (status, body) = app.request("POST", "/api/auth/logout", None, None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert_eq!(body, Value::Null);
    }
);

on_both_databases!(
    a_valid_token_for_an_account_that_does_not_exist_is_refused,
    |app: TestApp| async move {
        // E.g. a database recreated while LOOKOUT_JWT_SECRET stayed the same.
        let now = chrono::Utc::now().timestamp();
        let ghost = app
            .state
            .tokens
            .issue_with_times("no-such-account", now, now + 3600)
            .expect("token");

        for (method, path, body) in [
            ("GET", "/api/me", None),
            ("GET", "/api/sites", None),
            (
                "POST",
                "/api/sites",
                Some(json!({"name": "Orphan", "domains": []})),
            ),
        ] {
            let (status, body) = app.request(method, path, Some(&ghost), body).await;
            assert_error(status, &body, StatusCode::UNAUTHORIZED, "invalid_token");
        }
    }
);
