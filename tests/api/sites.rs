//! Sites, members and roles, API keys, tenant isolation of every site-scoped endpoint, the
//! error envelope for bad bodies and unknown routes, and the OpenAPI document.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{Account, Site, TestApp};
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

async fn raw(
    app: &TestApp,
    method: &str,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut headers = HeaderMap::new();
    if let Some(ct) = content_type {
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_str(ct).expect("content type"),
        );
    }
    let mut req = app
        .client
        .request(method, app.url(path))
        .headers(headers)
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("request sent");
    let status = resp.status();
    let text = resp.text().await.expect("body");
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, value)
}

async fn add_member(app: &TestApp, site: &Site, admin: &Account, member: &Account, role: &str) {
    let (status, body) = app
        .post(
            &format!("/api/sites/{}/members", site.id),
            &admin.token,
            json!({"email": member.email, "role": role}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "add member: {body}");
}

async fn create_key(app: &TestApp, site: &Site, admin: &Account, name: &str) -> (String, String) {
    let (status, body) = app
        .post(
            &format!("/api/sites/{}/api-keys", site.id),
            &admin.token,
            json!({"name": name}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "create key: {body}");
    (
        body["id"].as_str().expect("key id").to_string(),
        body["key"].as_str().expect("key").to_string(),
    )
}

/// Roles by e-mail, from the members list.
async fn roles(app: &TestApp, site: &Site, token: &str) -> BTreeMap<String, String> {
    let (status, body) = app
        .get(&format!("/api/sites/{}/members", site.id), token)
        .await;
    assert_eq!(status, StatusCode::OK, "members: {body}");
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|m| {
            (
                m["email"].as_str().expect("email").to_string(),
                m["role"].as_str().expect("role").to_string(),
            )
        })
        .collect()
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|s| s["name"].as_str().expect("name").to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Sites
// ---------------------------------------------------------------------------------------------

on_both_databases!(
    creating_a_site_makes_the_caller_its_admin,
    |app: TestApp| async move {
        let owner = app.signup("owner@example.com").await;

        let (status, site) = app
        .post("/api/sites", &owner.token, json!({"name": "  Car Shop ", "domains": ["Shop.Example.com", "*.example.org", "shop.example.com"]}))
        .await;

        assert_eq!(status, StatusCode::CREATED, "{site}");
        let id = site["id"].as_str().expect("id");
        assert_eq!(site["name"], "Car Shop");
        assert_eq!(
            site["domains"],
            json!(["shop.example.com", "*.example.org"]),
            "normalised and de-duplicated"
        );
        assert!(
            site["key"]
                .as_str()
                .is_some_and(|k| k.starts_with("pk_") && k.len() > 10),
            "{site}"
        );
        assert!(
            site["created_at"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z')),
            "{site}"
        );
        assert_eq!(site["role"], "admin");

        let (status, got) = app.get(&format!("/api/sites/{id}"), &owner.token).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(got, site, "GET answers what POST created");
        let (status, members) = app
            .get(&format!("/api/sites/{id}/members"), &owner.token)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            members,
            json!({"items": [{"account": owner.id, "email": "owner@example.com", "role": "admin"}]})
        );
    }
);

on_both_databases!(
    a_site_without_domains_field_accepts_any_origin,
    |app: TestApp| async move {
        let owner = app.signup("owner@example.com").await;

        let (status, site) = app
            .post("/api/sites", &owner.token, json!({"name": "Open"}))
            .await;

        assert_eq!(status, StatusCode::CREATED, "{site}");
        assert_eq!(site["domains"], json!([]));
        let ws = app
            .visitor_socket(
                site["key"].as_str().expect("key"),
                Some("https://anything.test"),
            )
            .await;
        assert!(ws.is_ok(), "any origin is accepted");
    }
);

on_both_databases!(
    the_sites_list_shows_only_the_callers_sites_with_their_role,
    |app: TestApp| async move {
        let alice = app.signup("alice@example.com").await;
        let bob = app.signup("bob@example.com").await;
        let (status, _) = app
            .post(
                "/api/sites",
                &alice.token,
                json!({"name": "Alice one", "domains": []}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, shared) = app
            .post(
                "/api/sites",
                &bob.token,
                json!({"name": "Bob shared", "domains": []}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, _) = app
            .post(
                "/api/sites",
                &bob.token,
                json!({"name": "Bob private", "domains": []}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        let shared = Site {
            id: shared["id"].as_str().expect("id").into(),
            key: shared["key"].as_str().expect("key").into(),
        };
        add_member(&app, &shared, &bob, &alice, "viewer").await;

        let (status, list) = app.get("/api/sites", &alice.token).await;

        assert_eq!(status, StatusCode::OK);
        let by_name: BTreeMap<String, Value> = list["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|s| {
                (
                    s["name"].as_str().expect("name").to_string(),
                    s["role"].clone(),
                )
            })
            .collect();
        assert_eq!(
            by_name,
            BTreeMap::from([
                ("Alice one".into(), json!("admin")),
                ("Bob shared".into(), json!("viewer"))
            ])
        );
        let (_, bobs) = app.get("/api/sites", &bob.token).await;
        assert_eq!(
            names(&bobs),
            ["Bob shared", "Bob private"],
            "in creation order"
        );
        let newcomer = app.signup("new@example.com").await;
        let (status, none) = app.get("/api/sites", &newcomer.token).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(none, json!({"items": []}));
    }
);

on_both_databases!(
    an_admin_can_rename_the_site_and_change_its_domains,
    |app: TestApp| async move {
        let owner = app.signup("owner@example.com").await;
        let site = app.create_site(&owner.token, json!(["shop.test"])).await;
        let path = format!("/api/sites/{}", site.id);
        assert!(
            app.visitor_socket(&site.key, Some("https://other.test"))
                .await
                .is_err(),
            "other.test is not allowed yet"
        );

        let (status, renamed) = app
            .request(
                "PATCH",
                &path,
                Some(&owner.token),
                Some(json!({"name": "Renamed"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{renamed}");
        assert_eq!(renamed["name"], "Renamed");
        assert_eq!(
            renamed["domains"],
            json!(["shop.test"]),
            "fields not sent are kept"
        );
        assert_eq!(renamed["key"], site.key.as_str(), "the key does not change");

        let (status, redomained) = app
            .request(
                "PATCH",
                &path,
                Some(&owner.token),
                Some(json!({"domains": ["shop.test", "*.Other.test", "other.test"]})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{redomained}");
        assert_eq!(redomained["name"], "Renamed");
        assert_eq!(
            redomained["domains"],
            json!(["shop.test", "*.other.test", "other.test"])
        );

        let (_, got) = app.get(&path, &owner.token).await;
        assert_eq!(got, redomained, "the change is stored");
        assert!(
            app.visitor_socket(&site.key, Some("https://other.test"))
                .await
                .is_ok(),
            "the new domain applies at once"
        );
        assert!(app
            .visitor_socket(&site.key, Some("https://www.other.test:8443"))
            .await
            .is_ok());
        assert!(app
            .visitor_socket(&site.key, Some("https://elsewhere.test"))
            .await
            .is_err());

        let (status, cleared) = app
            .request(
                "PATCH",
                &path,
                Some(&owner.token),
                Some(json!({"domains": []})),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(cleared["domains"], json!([]));
        assert!(
            app.visitor_socket(&site.key, Some("https://elsewhere.test"))
                .await
                .is_ok(),
            "no domains: any origin"
        );
    }
);

on_both_databases!(
    invalid_domains_are_refused_on_create_and_on_update,
    |app: TestApp| async move {
        let owner = app.signup("owner@example.com").await;
        let site = app.create_site(&owner.token, json!(["shop.test"])).await;
        let too_many: Vec<String> = (0..101).map(|i| format!("d{i}.example.com")).collect();

        for domains in [
            json!(["https://example.com"]),
            json!(["example.com:8080"]),
            json!(["example.com/path"]),
            json!([""]),
            json!(["*."]),
            json!(["a..b.com"]),
            json!(["-bad.com"]),
            json!(["exa mple.com"]),
            json!(["*.*.example.com"]),
            json!(["ok.com", "not ok.com"]),
            json!(too_many),
        ] {
            let (status, body) = app
                .post(
                    "/api/sites",
                    &owner.token,
                    json!({"name": "Bad", "domains": domains}),
                )
                .await;
            assert_error(
                status,
                &body,
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_domain",
            );
            let (status, body) = app
                .request(
                    "PATCH",
                    &format!("/api/sites/{}", site.id),
                    Some(&owner.token),
                    Some(json!({"domains": domains})),
                )
                .await;
            assert_error(
                status,
                &body,
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_domain",
            );
        }
        let (_, list) = app.get("/api/sites", &owner.token).await;
        assert_eq!(
            list["items"].as_array().map(Vec::len),
            Some(1),
            "nothing was created: {list}"
        );
        assert_eq!(
            list["items"][0]["domains"],
            json!(["shop.test"]),
            "nothing was changed"
        );
    }
);

on_both_databases!(invalid_site_names_are_refused, |app: TestApp| async move {
    let owner = app.signup("owner@example.com").await;
    let site = app.create_site(&owner.token, json!([])).await;

    for name in ["", "   ", &"n".repeat(101), "tab\there"] {
        let (status, body) = app
            .post(
                "/api/sites",
                &owner.token,
                json!({"name": name, "domains": []}),
            )
            .await;
        assert_error(
            status,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_name",
        );
        let (status, body) = app
            .request(
                "PATCH",
                &format!("/api/sites/{}", site.id),
                Some(&owner.token),
                Some(json!({"name": name})),
            )
            .await;
        assert_error(
            status,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_name",
        );
    }
    let (status, body) = app
        .post(
            "/api/sites",
            &owner.token,
            json!({"name": "n".repeat(100), "domains": []}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "100 characters is the limit: {body}"
    );
});

on_both_databases!(
    deleting_a_site_removes_it_its_keys_and_everything_recorded,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("owner@example.com").await;
        let (other_owner, other_site) = app.owner_with_site("other@example.com").await;
        let (_, key) = create_key(&app, &site, &owner, "ci").await;
        let (_ws, _) = app
            .visitor(
                &site.key,
                "visitor-one",
                "session-one",
                "tab-one",
                "https://shop.test/",
            )
            .await;
        let (_ws2, _) = app
            .visitor(
                &other_site.key,
                "visitor-two",
                "session-two",
                "tab-two",
                "https://other.test/",
            )
            .await;
        app.wait_for_items(
            &format!("/api/sites/{}/pageviews", site.id),
            &owner.token,
            1,
        )
        .await;
        app.wait_for_items(
            &format!("/api/sites/{}/pageviews", other_site.id),
            &other_owner.token,
            1,
        )
        .await;

        let (status, body) = app
            .request(
                "DELETE",
                &format!("/api/sites/{}", site.id),
                Some(&owner.token),
                None,
            )
            .await;

        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        let (status, body) = app
            .get(&format!("/api/sites/{}", site.id), &owner.token)
            .await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
        let (_, list) = app.get("/api/sites", &owner.token).await;
        assert_eq!(list, json!({"items": []}));
        let (status, body) = app
            .get(&format!("/api/sites/{}/pageviews", site.id), &key)
            .await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "invalid_token");
        assert!(
            app.visitor_socket(&site.key, None).await.is_err(),
            "the snippet key no longer works"
        );
        for table in [
            "pageview",
            "visitor",
            "session",
            "membership",
            "api_key",
            "site",
        ] {
            let n: i64 =
                sqlx::query_scalar(&format!("select count(*) from {table} where site_id = $1"))
                    .bind(&site.id)
                    .fetch_one(app.state.db.pool())
                    .await
                    .expect("count");
            assert_eq!(n, 0, "{table} rows of the deleted site remain");
        }
        // The other tenant is untouched.
        let body = app
            .wait_for_items(
                &format!("/api/sites/{}/pageviews", other_site.id),
                &other_owner.token,
                1,
            )
            .await;
        assert_eq!(body["items"][0]["visitor"], "visitor-two");
    }
);

// ---------------------------------------------------------------------------------------------
// Members and roles
// ---------------------------------------------------------------------------------------------

on_both_databases!(
    an_admin_adds_a_member_by_email_with_a_role,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("owner@example.com").await;
        let viewer = app.signup("viewer@example.com").await;

        let (status, added) = app
            .post(
                &format!("/api/sites/{}/members", site.id),
                &owner.token,
                json!({"email": " Viewer@Example.com", "role": "viewer"}),
            )
            .await;

        assert_eq!(status, StatusCode::CREATED, "{added}");
        assert_eq!(
            added,
            json!({"account": viewer.id, "email": "viewer@example.com", "role": "viewer"})
        );
        let (status, list) = app
            .get(&format!("/api/sites/{}/members", site.id), &viewer.token)
            .await;
        assert_eq!(status, StatusCode::OK, "a viewer reads the members: {list}");
        assert_eq!(
            list,
            json!({"items": [
                {"account": owner.id, "email": "owner@example.com", "role": "admin"},
                {"account": viewer.id, "email": "viewer@example.com", "role": "viewer"},
            ]})
        );
        let (_, site_as_viewer) = app
            .get(&format!("/api/sites/{}", site.id), &viewer.token)
            .await;
        assert_eq!(site_as_viewer["role"], "viewer");
    }
);

on_both_databases!(
    adding_a_member_refuses_unknown_accounts_bad_emails_and_bad_roles,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("owner@example.com").await;
        app.signup("exists@example.com").await;
        let path = format!("/api/sites/{}/members", site.id);

        let (status, body) = app
            .post(
                &path,
                &owner.token,
                json!({"email": "nobody@example.com", "role": "viewer"}),
            )
            .await;
        assert_error(
            status,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_account",
        );
        let (status, body) = app
            .post(
                &path,
                &owner.token,
                json!({"email": "not an email", "role": "viewer"}),
            )
            .await;
        assert_error(
            status,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_email",
        );
        for role in ["owner", "Admin", ""] {
            let (status, body) = app
                .post(
                    &path,
                    &owner.token,
                    json!({"email": "exists@example.com", "role": role}),
                )
                .await;
            assert_error(
                status,
                &body,
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_role",
            );
        }
        let (status, body) = app
            .post(
                &path,
                &owner.token,
                json!({"email": "exists@example.com", "role": 1}),
            )
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_body");

        assert_eq!(
            roles(&app, &site, &owner.token).await,
            BTreeMap::from([("owner@example.com".into(), "admin".into())])
        );
    }
);

on_both_databases!(
    adding_an_existing_member_again_changes_their_role,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("owner@example.com").await;
        let member = app.signup("member@example.com").await;
        add_member(&app, &site, &owner, &member, "viewer").await;

        let (status, body) = app
            .post(
                &format!("/api/sites/{}/members", site.id),
                &owner.token,
                json!({"email": "member@example.com", "role": "admin"}),
            )
            .await;

        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body,
            json!({"account": member.id, "email": "member@example.com", "role": "admin"})
        );
        let r = roles(&app, &site, &owner.token).await;
        assert_eq!(r.len(), 2, "no duplicate membership: {r:?}");
        assert_eq!(r["member@example.com"], "admin");
    }
);

on_both_databases!(
    an_admin_can_change_a_members_role_and_the_new_role_applies,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("owner@example.com").await;
        let member = app.signup("member@example.com").await;
        add_member(&app, &site, &owner, &member, "viewer").await;
        let member_path = format!("/api/sites/{}/members/{}", site.id, member.id);
        let (status, body) = app
            .post(
                &format!("/api/sites/{}/api-keys", site.id),
                &member.token,
                json!({"name": "x"}),
            )
            .await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");

        let (status, promoted) = app
            .request(
                "PATCH",
                &member_path,
                Some(&owner.token),
                Some(json!({"role": "admin"})),
            )
            .await;

        assert_eq!(status, StatusCode::OK, "{promoted}");
        assert_eq!(
            promoted,
            json!({"account": member.id, "email": "member@example.com", "role": "admin"})
        );
        let (status, body) = app
            .post(
                &format!("/api/sites/{}/api-keys", site.id),
                &member.token,
                json!({"name": "x"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "an admin now: {body}");

        let (status, demoted) = app
            .request(
                "PATCH",
                &member_path,
                Some(&owner.token),
                Some(json!({"role": "viewer"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{demoted}");
        assert_eq!(demoted["role"], "viewer");
        let (status, body) = app
            .post(
                &format!("/api/sites/{}/api-keys", site.id),
                &member.token,
                json!({"name": "y"}),
            )
            .await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");

        let (status, body) = app
            .request(
                "PATCH",
                &member_path,
                Some(&owner.token),
                Some(json!({"role": "superuser"})),
            )
            .await;
        assert_error(
            status,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_role",
        );
    }
);

on_both_databases!(
    the_last_admin_can_neither_be_demoted_nor_removed,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("owner@example.com").await;
        let viewer = app.signup("viewer@example.com").await;
        add_member(&app, &site, &owner, &viewer, "viewer").await;
        let owner_path = format!("/api/sites/{}/members/{}", site.id, owner.id);

        let (status, body) = app
            .request(
                "PATCH",
                &owner_path,
                Some(&owner.token),
                Some(json!({"role": "viewer"})),
            )
            .await;
        assert_error(
            status,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "last_admin",
        );
        let (status, body) = app
            .request("DELETE", &owner_path, Some(&owner.token), None)
            .await;
        assert_error(
            status,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "last_admin",
        );
        let (status, body) = app
            .post(
                &format!("/api/sites/{}/members", site.id),
                &owner.token,
                json!({"email": "owner@example.com", "role": "viewer"}),
            )
            .await;
        assert_error(
            status,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "last_admin",
        );
        // Re-affirming the admin role is not a demotion.
        let (status, body) = app
            .request(
                "PATCH",
                &owner_path,
                Some(&owner.token),
                Some(json!({"role": "admin"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");

        assert_eq!(
            roles(&app, &site, &owner.token).await,
            BTreeMap::from([
                ("owner@example.com".into(), "admin".into()),
                ("viewer@example.com".into(), "viewer".into())
            ])
        );
    }
);

on_both_databases!(
    with_a_second_admin_the_first_may_step_down_or_leave,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("owner@example.com").await;
        let second = app.signup("second@example.com").await;
        add_member(&app, &site, &owner, &second, "admin").await;

        let (status, body) = app
            .request(
                "PATCH",
                &format!("/api/sites/{}/members/{}", site.id, owner.id),
                Some(&owner.token),
                Some(json!({"role": "viewer"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["role"], "viewer");

        // Now `second` is the last admin.
        let second_path = format!("/api/sites/{}/members/{}", site.id, second.id);
        let (status, body) = app
            .request("DELETE", &second_path, Some(&second.token), None)
            .await;
        assert_error(
            status,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "last_admin",
        );
        // The (now viewer) owner leaves; the site keeps its admin.
        let (status, _) = app
            .request(
                "DELETE",
                &format!("/api/sites/{}/members/{}", site.id, owner.id),
                Some(&owner.token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert_eq!(
            roles(&app, &site, &second.token).await,
            BTreeMap::from([("second@example.com".into(), "admin".into())])
        );
    }
);

on_both_databases!(
    two_admins_demoting_or_removing_each_other_at_once_leave_one_admin,
    |app: TestApp| async move {
        let a = app.signup("a@example.com").await;
        let b = app.signup("b@example.com").await;
        // Even rounds demote each other, odd rounds remove each other, both at the same time.
        for round in 0..20 {
            let site = app.create_site(&a.token, json!([])).await;
            add_member(&app, &site, &a, &b, "admin").await;
            let a_path = format!("/api/sites/{}/members/{}", site.id, a.id);
            let b_path = format!("/api/sites/{}/members/{}", site.id, b.id);
            let (method, body) = if round % 2 == 0 {
                ("PATCH", Some(json!({"role": "viewer"})))
            } else {
                ("DELETE", None)
            };

            let (r1, r2) = tokio::join!(
                app.request(method, &b_path, Some(&a.token), body.clone()),
                app.request(method, &a_path, Some(&b.token), body.clone()),
            );

            let ok = [&r1, &r2]
                .iter()
                .filter(|(s, _)| *s == StatusCode::OK || *s == StatusCode::NO_CONTENT)
                .count();
            let refused = [&r1, &r2]
                .iter()
                .filter(|(s, b)| {
                    // Refused as `last_admin`, or, when checked after the other demotion took
                    // effect, because the sender is now a viewer.
                    // (A removed member no longer finds the site at all.)
                    (*s == StatusCode::UNPROCESSABLE_ENTITY && b["error"]["code"] == "last_admin")
                        || (*s == StatusCode::FORBIDDEN && b["error"]["code"] == "forbidden")
                        || (*s == StatusCode::NOT_FOUND && b["error"]["code"] == "not_found")
                })
                .count();
            assert_eq!(
                (ok, refused),
                (1, 1),
                "round {round}: exactly one demotion wins: {r1:?} {r2:?}"
            );
            let admins: i64 = sqlx::query_scalar(
                "select count(*) from membership where site_id = $1 and role = 'admin'",
            )
            .bind(&site.id)
            .fetch_one(app.state.db.pool())
            .await
            .expect("count");
            assert_eq!(admins, 1, "round {round}: the site kept exactly one admin");
        }
    }
);

on_both_databases!(
    adding_the_same_member_twice_at_once_creates_one_membership,
    |app: TestApp| async move {
        let owner = app.signup("owner@example.com").await;
        let member = app.signup("member@example.com").await;
        for round in 0..10 {
            let site = app.create_site(&owner.token, json!([])).await;
            let path = format!("/api/sites/{}/members", site.id);
            let body = json!({"email": member.email, "role": "viewer"});

            let (r1, r2) = tokio::join!(
                app.post(&path, &owner.token, body.clone()),
                app.post(&path, &owner.token, body.clone()),
            );

            let mut statuses = [r1.0, r2.0];
            statuses.sort();
            assert_eq!(
                statuses,
                [StatusCode::OK, StatusCode::CREATED],
                "round {round}: one adds, the other finds the member: {r1:?} {r2:?}"
            );
            let r = roles(&app, &site, &owner.token).await;
            assert_eq!(
                r,
                BTreeMap::from([
                    ("member@example.com".into(), "viewer".into()),
                    ("owner@example.com".into(), "admin".into())
                ]),
                "round {round}"
            );
        }
    }
);

on_both_databases!(
    any_member_may_leave_and_then_loses_access,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("owner@example.com").await;
        let viewer = app.signup("viewer@example.com").await;
        add_member(&app, &site, &owner, &viewer, "viewer").await;

        let (status, body) = app
            .request(
                "DELETE",
                &format!("/api/sites/{}/members/{}", site.id, viewer.id),
                Some(&viewer.token),
                None,
            )
            .await;

        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        let (status, body) = app
            .get(&format!("/api/sites/{}", site.id), &viewer.token)
            .await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
        let (_, list) = app.get("/api/sites", &viewer.token).await;
        assert_eq!(list, json!({"items": []}));
        assert_eq!(
            roles(&app, &site, &owner.token).await,
            BTreeMap::from([("owner@example.com".into(), "admin".into())])
        );
    }
);

on_both_databases!(an_admin_removes_a_member, |app: TestApp| async move {
    let (owner, site) = app.owner_with_site("owner@example.com").await;
    let member = app.signup("member@example.com").await;
    add_member(&app, &site, &owner, &member, "admin").await;

    let (status, _) = app
        .request(
            "DELETE",
            &format!("/api/sites/{}/members/{}", site.id, member.id),
            Some(&owner.token),
            None,
        )
        .await;

    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app
        .get(&format!("/api/sites/{}/pageviews", site.id), &member.token)
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(roles(&app, &site, &owner.token).await.len(), 1);
});

on_both_databases!(
    changing_or_removing_someone_who_is_not_a_member_is_not_found,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("owner@example.com").await;
        let stranger = app.signup("stranger@example.com").await;

        for account in [stranger.id.as_str(), "no-such-account"] {
            let path = format!("/api/sites/{}/members/{account}", site.id);
            let (status, body) = app
                .request(
                    "PATCH",
                    &path,
                    Some(&owner.token),
                    Some(json!({"role": "viewer"})),
                )
                .await;
            assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
            let (status, body) = app.request("DELETE", &path, Some(&owner.token), None).await;
            assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
        }
        let (status, body) = app
            .get(&format!("/api/sites/{}", site.id), &stranger.token)
            .await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    }
);

on_both_databases!(
    a_viewer_reads_everything_but_every_write_is_forbidden,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("owner@example.com").await;
        let viewer = app.signup("viewer@example.com").await;
        add_member(&app, &site, &owner, &viewer, "viewer").await;
        let (key_id, _) = create_key(&app, &site, &owner, "ci").await;
        let (_ws, _) = app
            .visitor(
                &site.key,
                "visitor-one",
                "session-one",
                "tab-one",
                "https://shop.test/",
            )
            .await;
        app.wait_for_items(
            &format!("/api/sites/{}/pageviews", site.id),
            &owner.token,
            1,
        )
        .await;
        let s = &site.id;

        for path in [
            format!("/api/sites/{s}"),
            format!("/api/sites/{s}/members"),
            format!("/api/sites/{s}/api-keys"),
            format!("/api/sites/{s}/live"),
            format!("/api/sites/{s}/pageviews"),
            format!("/api/sites/{s}/events"),
            format!("/api/sites/{s}/visitors"),
            format!("/api/sites/{s}/visitors/visitor-one"),
            format!("/api/sites/{s}/stats"),
            format!("/api/sites/{s}/messages"),
        ] {
            let (status, body) = app.get(&path, &viewer.token).await;
            assert_eq!(status, StatusCode::OK, "viewer reads {path}: {body}");
        }

        for (method, path, body) in [
            (
                "PATCH",
                format!("/api/sites/{s}"),
                Some(json!({"name": "Viewer was here"})),
            ),
            ("DELETE", format!("/api/sites/{s}"), None),
            (
                "POST",
                format!("/api/sites/{s}/members"),
                Some(json!({"email": "viewer@example.com", "role": "admin"})),
            ),
            (
                "PATCH",
                format!("/api/sites/{s}/members/{}", viewer.id),
                Some(json!({"role": "admin"})),
            ),
            (
                "PATCH",
                format!("/api/sites/{s}/members/{}", owner.id),
                Some(json!({"role": "viewer"})),
            ),
            (
                "DELETE",
                format!("/api/sites/{s}/members/{}", owner.id),
                None,
            ),
            (
                "POST",
                format!("/api/sites/{s}/api-keys"),
                Some(json!({"name": "mine"})),
            ),
            ("DELETE", format!("/api/sites/{s}/api-keys/{key_id}"), None),
            (
                "DELETE",
                format!("/api/sites/{s}/visitors/visitor-one"),
                None,
            ),
            (
                "POST",
                format!("/api/sites/{s}/messages"),
                Some(json!({"to": {"all": true}, "message": {"title": "Hi"}})),
            ),
        ] {
            let (status, resp) = app.request(method, &path, Some(&viewer.token), body).await;
            assert_error(status, &resp, StatusCode::FORBIDDEN, "forbidden");
        }

        // Nothing changed.
        let (_, got) = app.get(&format!("/api/sites/{s}"), &owner.token).await;
        assert_eq!(got["name"], "Shop");
        assert_eq!(
            roles(&app, &site, &owner.token).await,
            BTreeMap::from([
                ("owner@example.com".into(), "admin".into()),
                ("viewer@example.com".into(), "viewer".into())
            ])
        );
        let (_, keys) = app
            .get(&format!("/api/sites/{s}/api-keys"), &owner.token)
            .await;
        assert_eq!(names(&keys), ["ci"]);
        let (status, _) = app
            .get(
                &format!("/api/sites/{s}/visitors/visitor-one"),
                &owner.token,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "the visitor was not erased");
        let (_, messages) = app
            .get(&format!("/api/sites/{s}/messages"), &owner.token)
            .await;
        assert_eq!(messages["items"], json!([]), "no message was sent");
    }
);

// ---------------------------------------------------------------------------------------------
// API keys
// ---------------------------------------------------------------------------------------------

on_both_databases!(
    an_api_key_is_shown_once_and_never_listed,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("owner@example.com").await;

        let (status, created) = app
            .post(
                &format!("/api/sites/{}/api-keys", site.id),
                &owner.token,
                json!({"name": " deploy bot "}),
            )
            .await;

        assert_eq!(status, StatusCode::CREATED, "{created}");
        let key = created["key"].as_str().expect("key");
        assert!(key.starts_with("lk_key_") && key.len() >= 40, "{key}");
        assert_eq!(created["name"], "deploy bot");
        assert!(created["id"].as_str().is_some_and(|id| !id.is_empty()));
        assert!(created["created_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')));

        let (status, list) = app
            .get(&format!("/api/sites/{}/api-keys", site.id), &owner.token)
            .await;
        assert_eq!(status, StatusCode::OK);
        let items = list["items"].as_array().expect("items");
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["id"], created["id"]);
        assert_eq!(items[0]["name"], "deploy bot");
        assert_eq!(items[0]["created_at"], created["created_at"]);
        assert_eq!(items[0]["last_used_at"], Value::Null);
        assert!(items[0].get("key").is_none(), "{list}");
        assert!(
            !list.to_string().contains(key),
            "the key never appears in a list"
        );
        assert!(
            !list.to_string().contains(&key["lk_key_".len()..]),
            "not even without its prefix"
        );

        let (status, body) = app
            .post(
                &format!("/api/sites/{}/api-keys", site.id),
                &owner.token,
                json!({"name": ""}),
            )
            .await;
        assert_error(
            status,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_name",
        );
    }
);

on_both_databases!(
    an_api_key_reads_and_sends_on_its_site_but_cannot_manage_it,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("owner@example.com").await;
        let (_, key) = create_key(&app, &site, &owner, "script").await;
        let s = &site.id;

        let (status, got) = app.get(&format!("/api/sites/{s}"), &key).await;
        assert_eq!(status, StatusCode::OK, "{got}");
        assert_eq!(got["role"], Value::Null, "an API key has no role");
        for path in [
            "members",
            "live",
            "pageviews",
            "events",
            "visitors",
            "stats",
            "messages",
        ] {
            let (status, body) = app.get(&format!("/api/sites/{s}/{path}"), &key).await;
            assert_eq!(status, StatusCode::OK, "key reads {path}: {body}");
        }
        let (status, sent) = app
            .post(
                &format!("/api/sites/{s}/messages"),
                &key,
                json!({"to": {"all": true}, "message": {"title": "Sale"}}),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
        assert_eq!(sent["delivered"], 0);

        for (method, path, body) in [
            (
                "PATCH",
                format!("/api/sites/{s}"),
                Some(json!({"name": "Key was here"})),
            ),
            ("DELETE", format!("/api/sites/{s}"), None),
            ("GET", format!("/api/sites/{s}/api-keys"), None),
            (
                "POST",
                format!("/api/sites/{s}/api-keys"),
                Some(json!({"name": "another"})),
            ),
            (
                "POST",
                format!("/api/sites/{s}/members"),
                Some(json!({"email": "owner@example.com", "role": "viewer"})),
            ),
            (
                "PATCH",
                format!("/api/sites/{s}/members/{}", owner.id),
                Some(json!({"role": "viewer"})),
            ),
            (
                "DELETE",
                format!("/api/sites/{s}/members/{}", owner.id),
                None,
            ),
        ] {
            let (status, resp) = app.request(method, &path, Some(&key), body).await;
            assert_error(status, &resp, StatusCode::FORBIDDEN, "account_required");
        }

        let (_, list) = app
            .get(&format!("/api/sites/{s}/api-keys"), &owner.token)
            .await;
        assert!(
            list["items"][0]["last_used_at"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z')),
            "use is recorded: {list}"
        );
        let (_, got) = app.get(&format!("/api/sites/{s}"), &owner.token).await;
        assert_eq!(got["name"], "Shop");
    }
);

on_both_databases!(
    an_api_key_of_one_site_is_not_found_on_another,
    |app: TestApp| async move {
        let (owner_a, site_a) = app.owner_with_site("a@example.com").await;
        let (_, site_b) = app.owner_with_site("b@example.com").await;
        let (_, key_a) = create_key(&app, &site_a, &owner_a, "a's key").await;

        for path in ["", "/pageviews", "/members", "/stats"] {
            let (status, body) = app
                .get(&format!("/api/sites/{}{path}", site_b.id), &key_a)
                .await;
            assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
        }
        let (status, _) = app
            .get(&format!("/api/sites/{}/pageviews", site_a.id), &key_a)
            .await;
        assert_eq!(status, StatusCode::OK, "it still works on its own site");
    }
);

on_both_databases!(a_revoked_api_key_is_refused, |app: TestApp| async move {
    let (owner, site) = app.owner_with_site("owner@example.com").await;
    let (key_id, key) = create_key(&app, &site, &owner, "temporary").await;
    let (_, kept) = create_key(&app, &site, &owner, "kept").await;
    let (status, _) = app
        .get(&format!("/api/sites/{}/pageviews", site.id), &key)
        .await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = app
        .request(
            "DELETE",
            &format!("/api/sites/{}/api-keys/{key_id}", site.id),
            Some(&owner.token),
            None,
        )
        .await;

    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = app
        .get(&format!("/api/sites/{}/pageviews", site.id), &key)
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "invalid_token");
    let (_, list) = app
        .get(&format!("/api/sites/{}/api-keys", site.id), &owner.token)
        .await;
    assert_eq!(names(&list), ["kept"]);
    let (status, _) = app
        .get(&format!("/api/sites/{}/pageviews", site.id), &kept)
        .await;
    assert_eq!(status, StatusCode::OK, "other keys keep working");
    let (status, body) = app
        .request(
            "DELETE",
            &format!("/api/sites/{}/api-keys/{key_id}", site.id),
            Some(&owner.token),
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
});

on_both_databases!(
    a_key_cannot_be_revoked_through_another_site,
    |app: TestApp| async move {
        let (owner, site_a) = app.owner_with_site("owner@example.com").await;
        let site_b = app.create_site(&owner.token, json!([])).await;
        let (key_id, key) = create_key(&app, &site_a, &owner, "a's key").await;

        let (status, body) = app
            .request(
                "DELETE",
                &format!("/api/sites/{}/api-keys/{key_id}", site_b.id),
                Some(&owner.token),
                None,
            )
            .await;

        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
        let (status, _) = app
            .get(&format!("/api/sites/{}/pageviews", site_a.id), &key)
            .await;
        assert_eq!(status, StatusCode::OK, "the key still works");
    }
);

// ---------------------------------------------------------------------------------------------
// Tenant isolation
// ---------------------------------------------------------------------------------------------

on_both_databases!(
    every_site_endpoint_answers_404_to_callers_who_are_not_members,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("owner@example.com").await;
        let (outsider, outsider_site) = app.owner_with_site("outsider@example.com").await;
        let (_, outsider_key) = create_key(&app, &outsider_site, &outsider, "outsider's key").await;
        let (key_id, owner_key) = create_key(&app, &site, &owner, "owner's key").await;
        let (_ws, _) = app
            .visitor(
                &site.key,
                "visitor-one",
                "session-one",
                "tab-one",
                "https://shop.test/",
            )
            .await;
        app.wait_for_items(&format!("/api/sites/{}/visitors", site.id), &owner.token, 1)
            .await;
        let s = &site.id;
        let o = &owner.id;
        let table: Vec<(&str, String, Option<Value>)> = vec![
            ("GET", format!("/api/sites/{s}"), None),
            (
                "PATCH",
                format!("/api/sites/{s}"),
                Some(json!({"name": "Taken over"})),
            ),
            ("DELETE", format!("/api/sites/{s}"), None),
            ("GET", format!("/api/sites/{s}/members"), None),
            (
                "POST",
                format!("/api/sites/{s}/members"),
                Some(json!({"email": "outsider@example.com", "role": "admin"})),
            ),
            (
                "PATCH",
                format!("/api/sites/{s}/members/{o}"),
                Some(json!({"role": "viewer"})),
            ),
            ("DELETE", format!("/api/sites/{s}/members/{o}"), None),
            ("GET", format!("/api/sites/{s}/api-keys"), None),
            (
                "POST",
                format!("/api/sites/{s}/api-keys"),
                Some(json!({"name": "stolen"})),
            ),
            ("DELETE", format!("/api/sites/{s}/api-keys/{key_id}"), None),
            ("GET", format!("/api/sites/{s}/live"), None),
            ("GET", format!("/api/sites/{s}/pageviews"), None),
            ("GET", format!("/api/sites/{s}/events"), None),
            ("GET", format!("/api/sites/{s}/visitors"), None),
            ("GET", format!("/api/sites/{s}/visitors/visitor-one"), None),
            (
                "DELETE",
                format!("/api/sites/{s}/visitors/visitor-one"),
                None,
            ),
            ("GET", format!("/api/sites/{s}/stats"), None),
            ("GET", format!("/api/sites/{s}/messages"), None),
            (
                "POST",
                format!("/api/sites/{s}/messages"),
                Some(json!({"to": {"all": true}, "message": {"title": "Phish"}})),
            ),
            // Targeting (its own tests cover real segment and campaign ids; here the site check
            // must answer before any id is looked at).
            ("GET", format!("/api/sites/{s}/segments"), None),
            (
                "POST",
                format!("/api/sites/{s}/segments"),
                Some(json!({"name": "x"})),
            ),
            ("GET", format!("/api/sites/{s}/segments/some-segment"), None),
            (
                "PATCH",
                format!("/api/sites/{s}/segments/some-segment"),
                Some(json!({"name": "x"})),
            ),
            (
                "DELETE",
                format!("/api/sites/{s}/segments/some-segment"),
                None,
            ),
            (
                "GET",
                format!("/api/sites/{s}/segments/some-segment/members"),
                None,
            ),
            ("GET", format!("/api/sites/{s}/campaigns"), None),
            (
                "POST",
                format!("/api/sites/{s}/campaigns"),
                Some(json!({"name": "x"})),
            ),
            (
                "GET",
                format!("/api/sites/{s}/campaigns/some-campaign"),
                None,
            ),
            (
                "PATCH",
                format!("/api/sites/{s}/campaigns/some-campaign"),
                Some(json!({"name": "x"})),
            ),
            (
                "DELETE",
                format!("/api/sites/{s}/campaigns/some-campaign"),
                None,
            ),
        ];

        for caller in [outsider.token.as_str(), outsider_key.as_str()] {
            for (method, path, body) in &table {
                let (status, resp) = app.request(method, path, Some(caller), body.clone()).await;
                assert_error(status, &resp, StatusCode::NOT_FOUND, "not_found");
                // Indistinguishable from a site that does not exist.
                let ghost = path.replacen(s.as_str(), "no-such-site", 1);
                let (ghost_status, ghost_resp) = app
                    .request(method, &ghost, Some(&owner.token), body.clone())
                    .await;
                assert_eq!(
                    (ghost_status, ghost_resp),
                    (status, resp),
                    "{method} {path}"
                );
            }
        }

        // Nothing leaked or changed.
        let (status, got) = app.get(&format!("/api/sites/{s}"), &owner.token).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(got["name"], "Shop");
        assert_eq!(
            roles(&app, &site, &owner.token).await,
            BTreeMap::from([("owner@example.com".into(), "admin".into())])
        );
        let (_, keys) = app
            .get(&format!("/api/sites/{s}/api-keys"), &owner.token)
            .await;
        assert_eq!(names(&keys), ["owner's key"]);
        let (status, _) = app
            .get(&format!("/api/sites/{s}/pageviews"), &owner_key)
            .await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = app
            .get(
                &format!("/api/sites/{s}/visitors/visitor-one"),
                &owner.token,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "the visitor was not erased");
        let (_, messages) = app
            .get(&format!("/api/sites/{s}/messages"), &owner.token)
            .await;
        assert_eq!(messages["items"], json!([]));
        let (_, outsider_sites) = app.get("/api/sites", &outsider.token).await;
        assert_eq!(outsider_sites["items"].as_array().map(Vec::len), Some(1));
    }
);

// ---------------------------------------------------------------------------------------------
// Bad bodies, unknown routes
// ---------------------------------------------------------------------------------------------

on_both_databases!(
    every_json_endpoint_refuses_malformed_mistyped_unknown_unlabelled_and_oversized_bodies,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("owner@example.com").await;
        let s = &site.id;
        let o = &owner.id;
        // (method, path, a body of the right shape with one field of the wrong type)
        let endpoints: Vec<(&str, String, Value)> = vec![
            (
                "POST",
                "/api/auth/signup".into(),
                json!({"email": "x@example.com", "password": 12345678}),
            ),
            (
                "POST",
                "/api/auth/login".into(),
                json!({"email": ["x@example.com"], "password": "correct horse"}),
            ),
            (
                "POST",
                "/api/sites".into(),
                json!({"name": "Shop", "domains": "example.com"}),
            ),
            ("PATCH", format!("/api/sites/{s}"), json!({"name": 7})),
            (
                "POST",
                format!("/api/sites/{s}/members"),
                json!({"email": "x@example.com", "role": true}),
            ),
            (
                "PATCH",
                format!("/api/sites/{s}/members/{o}"),
                json!({"role": null}),
            ),
            (
                "POST",
                format!("/api/sites/{s}/api-keys"),
                json!({"name": {"nested": 1}}),
            ),
            (
                "POST",
                format!("/api/sites/{s}/messages"),
                json!({"to": {"all": true}, "message": {"title": 5}}),
            ),
        ];
        let oversized = {
            let mut b = br#"{"name":""#.to_vec();
            b.extend(std::iter::repeat_n(b'x', 1024 * 1024 + 10));
            b.extend(br#""}"#);
            b
        };

        for (method, path, mistyped) in &endpoints {
            let t = Some(owner.token.as_str());
            for broken in [&b"{]"[..], b"not json", b"{,}", b"\"unterminated"] {
                let (status, body) = raw(
                    &app,
                    method,
                    path,
                    t,
                    Some("application/json"),
                    broken.to_vec(),
                )
                .await;
                assert_error(status, &body, StatusCode::BAD_REQUEST, "malformed_json");
            }
            let (status, body) = raw(
                &app,
                method,
                path,
                t,
                Some("application/json"),
                b"".to_vec(),
            )
            .await;
            assert_error(status, &body, StatusCode::BAD_REQUEST, "malformed_json");
            let (status, body) = raw(
                &app,
                method,
                path,
                t,
                Some("application/json"),
                mistyped.to_string().into_bytes(),
            )
            .await;
            assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_body");
            let (status, body) = raw(
                &app,
                method,
                path,
                t,
                Some("application/json"),
                b"[]".to_vec(),
            )
            .await;
            assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_body");
            let mut unknown = mistyped.clone();
            unknown["surprise"] = json!("field");
            let (status, body) = raw(
                &app,
                method,
                path,
                t,
                Some("application/json"),
                unknown.to_string().into_bytes(),
            )
            .await;
            assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_body");
            for ct in [
                None,
                Some("text/plain"),
                Some("application/x-www-form-urlencoded"),
            ] {
                let (status, body) =
                    raw(&app, method, path, t, ct, br#"{"name":"x"}"#.to_vec()).await;
                assert_error(
                    status,
                    &body,
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                );
            }
            let (status, body) = raw(
                &app,
                method,
                path,
                t,
                Some("application/json"),
                oversized.clone(),
            )
            .await;
            assert_error(
                status,
                &body,
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
            );
        }

        // A JSON content type with parameters is still JSON.
        let (status, body) = raw(
            &app,
            "POST",
            "/api/sites",
            Some(&owner.token),
            Some("application/json; charset=utf-8"),
            br#"{"name":"Charset","domains":[]}"#.to_vec(),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (_, list) = app.get("/api/sites", &owner.token).await;
        assert_eq!(
            names(&list),
            ["Shop", "Charset"],
            "no bad request changed anything"
        );
    }
);

on_both_databases!(
    unknown_api_routes_and_methods_answer_the_json_envelope,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("owner@example.com").await;

        for (method, path) in [
            ("GET", "/api/nope".to_string()),
            ("POST", "/api/nope".to_string()),
            ("GET", "/api/sites/x/y/z/w".to_string()),
            ("GET", format!("/api/sites/{}/nope", site.id)),
            ("DELETE", "/api/auth".to_string()),
        ] {
            let (status, body) = app.request(method, &path, Some(&owner.token), None).await;
            assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
            let (status, body) = app.request(method, &path, None, None).await;
            assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
        }
        for (method, path) in [
            ("PUT", "/api/sites".to_string()),
            ("DELETE", "/api/me".to_string()),
            ("GET", "/api/auth/login".to_string()),
        ] {
            let (status, body) = app.request(method, &path, Some(&owner.token), None).await;
            assert_error(
                status,
                &body,
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
            );
        }
    }
);

// ---------------------------------------------------------------------------------------------
// OpenAPI
// ---------------------------------------------------------------------------------------------

/// The REST section of the contract (segments and campaigns excepted), with path parameters
/// written `{}` so that their names do not matter.
const CONTRACT_OPERATIONS: &[(&str, &str)] = &[
    ("/api/auth/signup", "post"),
    ("/api/auth/login", "post"),
    ("/api/auth/logout", "post"),
    ("/api/me", "get"),
    ("/api/sites", "get"),
    ("/api/sites", "post"),
    ("/api/sites/{}", "get"),
    ("/api/sites/{}", "patch"),
    ("/api/sites/{}", "delete"),
    ("/api/sites/{}/members", "get"),
    ("/api/sites/{}/members", "post"),
    ("/api/sites/{}/members/{}", "patch"),
    ("/api/sites/{}/members/{}", "delete"),
    ("/api/sites/{}/api-keys", "get"),
    ("/api/sites/{}/api-keys", "post"),
    ("/api/sites/{}/api-keys/{}", "delete"),
    ("/api/sites/{}/live", "get"),
    ("/api/sites/{}/pageviews", "get"),
    ("/api/sites/{}/events", "get"),
    ("/api/sites/{}/visitors", "get"),
    ("/api/sites/{}/visitors/{}", "get"),
    ("/api/sites/{}/visitors/{}", "delete"),
    ("/api/sites/{}/stats", "get"),
    ("/api/sites/{}/messages", "get"),
    ("/api/sites/{}/messages", "post"),
];

fn template(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push('{');
            }
            '}' => {
                in_param = false;
                out.push('}');
            }
            _ if in_param => {}
            _ => out.push(c),
        }
    }
    out
}

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

on_both_databases!(
    the_openapi_document_describes_every_contract_endpoint,
    |app: TestApp| async move {
        let (status, doc) = app.request("GET", "/api/openapi.json", None, None).await;

        assert_eq!(status, StatusCode::OK, "{doc}");
        assert!(
            doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
            "openapi: {}",
            doc["openapi"]
        );
        assert!(doc["info"]["title"].as_str().is_some_and(|t| !t.is_empty()));
        assert!(doc["info"]["version"]
            .as_str()
            .is_some_and(|t| !t.is_empty()));
        let paths = doc["paths"].as_object().expect("paths");
        let documented: BTreeSet<(String, String)> = paths
            .iter()
            .flat_map(|(p, item)| {
                item.as_object()
                    .into_iter()
                    .flat_map(|o| o.keys())
                    .filter(|k| METHODS.contains(&k.as_str()))
                    .map(move |m| (template(p), m.clone()))
            })
            .collect();
        let missing: Vec<_> = CONTRACT_OPERATIONS
            .iter()
            .filter(|(p, m)| !documented.contains(&(p.to_string(), m.to_string())))
            .collect();
        assert!(missing.is_empty(), "undocumented operations: {missing:?}");
        // The login token / API key scheme is declared for the site endpoints.
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        assert!(paths["/api/sites/{site}/pageviews"]["get"]["security"].is_array());
    }
);

on_both_databases!(
    every_openapi_operation_has_responses_and_every_reference_resolves,
    |app: TestApp| async move {
        let (status, doc) = app.request("GET", "/api/openapi.json", None, None).await;
        assert_eq!(status, StatusCode::OK);

        let mut operations = 0;
        for (path, item) in doc["paths"].as_object().expect("paths") {
            assert!(path.starts_with("/api/"), "{path}");
            for (method, op) in item.as_object().expect("path item") {
                if !METHODS.contains(&method.as_str()) {
                    continue;
                }
                operations += 1;
                let responses = op["responses"].as_object().expect("responses object");
                assert!(!responses.is_empty(), "{method} {path} has no responses");
                for (code, resp) in responses {
                    assert!(
                        code == "default"
                            || (code.len() == 3
                                && code.parse::<u16>().is_ok_and(|c| (100..600).contains(&c))),
                        "{method} {path}: response key {code}"
                    );
                    assert!(
                        resp.get("description").and_then(Value::as_str).is_some()
                            || resp.get("$ref").is_some(),
                        "{method} {path} {code}: a response needs a description"
                    );
                }
                // Every `{param}` of the path is declared as a path parameter.
                let declared: BTreeSet<&str> = op["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["in"] == "path")
                    .filter_map(|p| p["name"].as_str())
                    .collect();
                for segment in path.split('/').filter(|s| s.starts_with('{')) {
                    let name = segment.trim_matches(|c| c == '{' || c == '}');
                    assert!(
                        declared.contains(name),
                        "{method} {path}: path parameter {name} is not declared"
                    );
                }
            }
        }
        assert!(
            operations >= CONTRACT_OPERATIONS.len(),
            "{operations} operations"
        );

        // Every $ref points into components and resolves.
        fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        out.push(r);
                    }
                    m.values().for_each(|x| refs(x, out));
                }
                Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
                _ => {}
            }
        }
        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(!all.is_empty());
        for r in all {
            let pointer = r
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("external $ref {r}"));
            assert!(doc.pointer(pointer).is_some(), "dangling $ref {r}");
        }
    }
);
