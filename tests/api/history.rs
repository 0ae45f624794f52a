//! History: page views, events, visitors and profiles, their filters and keyset paging (also
//! while rows arrive), erasing a visitor, stats, bad parameters, and the batching writer keeping
//! every accepted record across a graceful restart.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use lookout::db::writer::{EventRow, IdentifyRow, PageviewRow, Record};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{self, expect_frame, send, TestApp};
use crate::on_both_databases;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

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

/// Epoch milliseconds of an RFC 3339 time.
fn ms(rfc3339: &str) -> i64 {
    lookout::domain::parse_rfc3339(rfc3339).expect("a valid test time")
}

/// The API's rendering of a time.
fn iso(ms: i64) -> String {
    lookout::domain::rfc3339(ms)
}

/// Percent-encodes a query value.
fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn pageview(site: &str, visitor: &str, session: &str, url: &str, at: i64) -> PageviewRow {
    PageviewRow {
        site_id: site.into(),
        visitor_id: visitor.into(),
        session_id: session.into(),
        tab_id: format!("tab-{session}"),
        url: url.into(),
        title: Some(format!("Title of {url}")),
        referrer: None,
        at,
    }
}

fn event(site: &str, visitor: &str, name: &str, props: Value, at: i64) -> EventRow {
    EventRow {
        site_id: site.into(),
        visitor_id: visitor.into(),
        session_id: format!("session-{visitor}"),
        tab_id: format!("tab-{visitor}"),
        name: name.into(),
        props: props.to_string(),
        url: None,
        at,
    }
}

async fn submit(app: &TestApp, records: impl IntoIterator<Item = Record>) {
    for r in records {
        app.state
            .writer
            .submit(r)
            .await
            .expect("the writer accepts");
    }
}

/// Polls `path` until `done(body)` holds (the writer flushes asynchronously); panics after ~10 s.
async fn wait_until(
    app: &TestApp,
    path: &str,
    token: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let mut last = Value::Null;
    for _ in 0..300 {
        let (status, body) = app.get(path, token).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        if done(&body) {
            return body;
        }
        last = body;
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    panic!("{path} never reached the expected state; last: {last}");
}

/// A list's items' values of one field, in order.
fn field(body: &Value, name: &str) -> Vec<String> {
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            i[name]
                .as_str()
                .unwrap_or_else(|| panic!("{name} of {i}"))
                .to_string()
        })
        .collect()
}

async fn list(app: &TestApp, path: &str, token: &str) -> Value {
    let (status, body) = app.get(path, token).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}

/// Follows `next_cursor` from `path` (which must already have a `?`); returns every item.
async fn walk(app: &TestApp, path: &str, token: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10_000 {
        let page_path = match &cursor {
            Some(c) => format!("{path}&cursor={}", enc(c)),
            None => path.to_string(),
        };
        let body = list(app, &page_path, token).await;
        items.extend(body["items"].as_array().expect("items").iter().cloned());
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => {
                assert_eq!(
                    body["next_cursor"],
                    Value::Null,
                    "next_cursor is null on the last page"
                );
                return items;
            }
        }
    }
    panic!("{path}: paging never ended");
}

// ---------------------------------------------------------------------------------------------
// Lists fed by real visitor sockets
// ---------------------------------------------------------------------------------------------

on_both_databases!(
    pageviews_from_visitor_sockets_are_listed_newest_first_with_every_field,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("owner@example.com").await;
        let (mut ws, _) = app
            .visitor(
                &site.key,
                "visitor-one",
                "session-one",
                "tab-one1",
                "https://shop.test/",
            )
            .await;
        send(
            &mut ws,
            json!({"type": "page", "url": "https://shop.test/cars/1", "title": "Car 1"}),
        )
        .await;
        send(&mut ws, json!({"type": "page", "url": "https://shop.test/cars/2", "title": "Car 2", "referrer": "https://shop.test/cars/1"})).await;

        let body = app
            .wait_for_items(
                &format!("/api/sites/{}/pageviews", site.id),
                &owner.token,
                3,
            )
            .await;

        let items = body["items"].as_array().expect("items");
        assert_eq!(items.len(), 3, "{body}");
        assert_eq!(body["next_cursor"], Value::Null);
        assert_eq!(
            field(&body, "url"),
            [
                "https://shop.test/cars/2",
                "https://shop.test/cars/1",
                "https://shop.test/"
            ]
        );
        assert_eq!(field(&body, "title"), ["Car 2", "Car 1", "Page"]);
        assert_eq!(
            items
                .iter()
                .map(|i| i["referrer"].clone())
                .collect::<Vec<_>>(),
            [
                json!("https://shop.test/cars/1"),
                json!("https://shop.test/"),
                json!("https://search.test/?q=cars")
            ],
            "a navigation without a referrer is referred by the previous page"
        );
        for item in items {
            assert_eq!(item["visitor"], "visitor-one");
            assert_eq!(item["session"], "session-one");
            assert_eq!(item["tab"], "tab-one1");
            assert!(
                item["id"].as_str().is_some_and(|id| !id.is_empty()),
                "ids are strings: {item}"
            );
            let at = item["at"].as_str().expect("at");
            assert!(
                at.ends_with('Z') && lookout::domain::parse_rfc3339(at).is_some(),
                "{at}"
            );
            let keys: BTreeSet<&str> = item
                .as_object()
                .expect("object")
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(
                keys,
                BTreeSet::from([
                    "id", "visitor", "session", "tab", "url", "title", "referrer", "at"
                ])
            );
        }
        let ids: HashSet<&str> = items.iter().filter_map(|i| i["id"].as_str()).collect();
        assert_eq!(ids.len(), 3, "ids are distinct");
        let times: Vec<i64> = items
            .iter()
            .map(|i| ms(i["at"].as_str().expect("at")))
            .collect();
        assert!(
            times.windows(2).all(|w| w[0] >= w[1]),
            "newest first: {times:?}"
        );
    }
);

on_both_databases!(
    events_from_visitor_sockets_are_listed_with_their_props_and_page,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("owner@example.com").await;
        let (mut ws, _) = app
            .visitor(
                &site.key,
                "visitor-one",
                "session-one",
                "tab-one1",
                "https://shop.test/cars/golf",
            )
            .await;
        send(&mut ws, json!({"type": "event", "name": "add_to_cart", "props": {"car": "golf", "price": 19990, "extras": ["gps"]}})).await;
        send(
            &mut ws,
            json!({"type": "page", "url": "https://shop.test/checkout"}),
        )
        .await;
        send(
            &mut ws,
            json!({"type": "event", "name": "checkout", "props": {}}),
        )
        .await;

        let body = app
            .wait_for_items(&format!("/api/sites/{}/events", site.id), &owner.token, 2)
            .await;

        assert_eq!(body["next_cursor"], Value::Null);
        let items = body["items"].as_array().expect("items");
        assert_eq!(items.len(), 2, "{body}");
        assert_eq!(items[0]["name"], "checkout");
        assert_eq!(items[0]["props"], json!({}));
        assert_eq!(
            items[0]["url"], "https://shop.test/checkout",
            "the page the event happened on"
        );
        assert_eq!(items[1]["name"], "add_to_cart");
        assert_eq!(
            items[1]["props"],
            json!({"car": "golf", "price": 19990, "extras": ["gps"]})
        );
        assert_eq!(items[1]["url"], "https://shop.test/cars/golf");
        for item in items {
            assert_eq!(item["visitor"], "visitor-one");
            assert_eq!(item["session"], "session-one");
            assert_eq!(item["tab"], "tab-one1");
            assert!(
                item["id"].is_string() && item["at"].as_str().is_some_and(|t| t.ends_with('Z')),
                "{item}"
            );
        }
    }
);

on_both_databases!(
    a_visitor_profile_summarises_sessions_pageviews_identity_and_device,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("owner@example.com").await;
        let (mut first, _) = app
            .visitor(
                &site.key,
                "visitor-ada1",
                "session-aa",
                "tab-first1",
                "https://shop.test/",
            )
            .await;
        send(
            &mut first,
            json!({"type": "page", "url": "https://shop.test/cars"}),
        )
        .await;
        send(&mut first, json!({"type": "identify", "user_id": "user-99", "traits": {"name": "Ada", "plan": "pro"}})).await;
        let profile_path = format!("/api/sites/{}/visitors/visitor-ada1", site.id);
        wait_until(
            &app,
            &format!("/api/sites/{}/visitors?user_id=user-99", site.id),
            &owner.token,
            |b| b["items"].as_array().is_some_and(|a| a.len() == 1),
        )
        .await;
        drop(first);
        let (_second, _) = app
            .visitor(
                &site.key,
                "visitor-ada1",
                "session-bb",
                "tab-second",
                "https://shop.test/again",
            )
            .await;
        app.wait_for_items(
            &format!("/api/sites/{}/pageviews?visitor=visitor-ada1", site.id),
            &owner.token,
            3,
        )
        .await;

        let profile = wait_until(&app, &profile_path, &owner.token, |p| p["sessions"] == 2).await;

        assert_eq!(profile["visitor"], "visitor-ada1");
        assert_eq!(profile["user_id"], "user-99");
        assert_eq!(profile["traits"], json!({"name": "Ada", "plan": "pro"}));
        assert_eq!(profile["sessions"], 2);
        assert_eq!(profile["pageviews"], 3);
        assert_eq!(profile["device"], "desktop");
        assert_eq!(profile["browser"], "Chrome");
        assert_eq!(profile["os"], "Linux");
        let first_seen = ms(profile["first_seen"].as_str().expect("first_seen"));
        let last_seen = ms(profile["last_seen"].as_str().expect("last_seen"));
        assert!(first_seen <= last_seen, "{profile}");
        let recent = profile["recent_sessions"]
            .as_array()
            .expect("recent_sessions");
        assert_eq!(recent.len(), 2, "{profile}");
        assert_eq!(recent[0]["session"], "session-bb", "newest session first");
        assert_eq!(recent[0]["pageviews"], 1);
        assert_eq!(recent[1]["session"], "session-aa");
        assert_eq!(recent[1]["pageviews"], 2);
        assert_eq!(
            recent[1]["referrer"], "https://search.test/?q=cars",
            "the referrer that started the session"
        );
        for s in recent {
            assert!(
                ms(s["started_at"].as_str().expect("started_at"))
                    <= ms(s["last_seen"].as_str().expect("last_seen"))
            );
        }

        let (status, body) = app
            .get(
                &format!("/api/sites/{}/visitors/visitor-nobody", site.id),
                &owner.token,
            )
            .await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
        let other = app.create_site(&owner.token, json!([])).await;
        let (status, body) = app
            .get(
                &format!("/api/sites/{}/visitors/visitor-ada1", other.id),
                &owner.token,
            )
            .await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    }
);

// ---------------------------------------------------------------------------------------------
// Filters
// ---------------------------------------------------------------------------------------------

on_both_databases!(
    pageviews_filter_by_visitor_session_url_prefix_and_time_window,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("owner@example.com").await;
        let other = app.create_site(&owner.token, json!([])).await;
        let t0 = ms("2026-03-01T10:00:00Z");
        let rows = [
            ("visitor-alice", "session-alice1", "https://shop.test/"),
            ("visitor-alice", "session-alice1", "https://shop.test/cars"),
            (
                "visitor-alice",
                "session-alice2",
                "https://shop.test/cars/golf",
            ),
            (
                "visitor-bob01",
                "session-bob001",
                "https://shop.test/cars/polo",
            ),
            (
                "visitor-bob01",
                "session-bob001",
                "https://shop.test/carsales",
            ),
            ("visitor-bob01", "session-bob001", "https://shop.test/a_b"),
            ("visitor-bob01", "session-bob001", "https://shop.test/axb"),
            (
                "visitor-carol",
                "session-carol1",
                "https://shop.test/cars/über",
            ),
        ];
        submit(
            &app,
            rows.iter().enumerate().map(|(i, (v, s, u))| {
                Record::Pageview(pageview(&site.id, v, s, u, t0 + i as i64 * MINUTE))
            }),
        )
        .await;
        // The same visitor and pages on another site never leak into this one.
        submit(
            &app,
            [Record::Pageview(pageview(
                &other.id,
                "visitor-alice",
                "session-alice1",
                "https://shop.test/cars",
                t0,
            ))],
        )
        .await;
        let base = format!("/api/sites/{}/pageviews", site.id);
        app.wait_for_items(&base, &owner.token, rows.len()).await;
        app.wait_for_items(
            &format!("/api/sites/{}/pageviews", other.id),
            &owner.token,
            1,
        )
        .await;
        let urls = |query: String| {
            let app = &app;
            let base = &base;
            let token = &owner.token;
            async move { field(&list(app, &format!("{base}?{query}"), token).await, "url") }
        };
        let at = |minute: i64| enc(&iso(t0 + minute * MINUTE));

        let all = field(&list(&app, &base, &owner.token).await, "url");
        assert_eq!(
            all,
            rows.iter().rev().map(|r| r.2).collect::<Vec<_>>(),
            "newest first"
        );

        assert_eq!(
            urls("visitor=visitor-alice".into()).await,
            [
                "https://shop.test/cars/golf",
                "https://shop.test/cars",
                "https://shop.test/"
            ]
        );
        assert_eq!(
            urls("session=session-alice1".into()).await,
            ["https://shop.test/cars", "https://shop.test/"]
        );
        assert!(urls("visitor=visitor-alice&session=session-bob001".into())
            .await
            .is_empty());
        assert!(urls("visitor=nobody".into()).await.is_empty());

        // URL prefixes: a whole path segment...
        assert_eq!(
            urls(format!("url={}", enc("https://shop.test/cars/"))).await,
            [
                "https://shop.test/cars/über",
                "https://shop.test/cars/polo",
                "https://shop.test/cars/golf"
            ]
        );
        // ...or any prefix of the text.
        assert_eq!(
            urls(format!("url={}", enc("https://shop.test/cars"))).await,
            [
                "https://shop.test/cars/über",
                "https://shop.test/carsales",
                "https://shop.test/cars/polo",
                "https://shop.test/cars/golf",
                "https://shop.test/cars",
            ]
        );
        assert_eq!(
            urls(format!("url={}", enc("https://shop.test/a_b"))).await,
            ["https://shop.test/a_b"],
            "`_` is not a wildcard"
        );
        assert_eq!(
            urls(format!("url={}", enc("https://shop.test/cars/ü"))).await,
            ["https://shop.test/cars/über"]
        );
        assert_eq!(
            urls(format!("url={}", enc("https://shop.test/cars/polo"))).await,
            ["https://shop.test/cars/polo"]
        );
        assert!(urls(format!("url={}", enc("https://shop.test/zzz")))
            .await
            .is_empty());
        assert!(
            urls(format!("url={}", enc("http://shop.test/")))
                .await
                .is_empty(),
            "the scheme is part of the prefix"
        );
        assert_eq!(
            urls("url=".into()).await.len(),
            rows.len(),
            "an empty prefix filters nothing"
        );

        // Time windows: `from` inclusive, `to` exclusive.
        assert_eq!(
            urls(format!("from={}", at(5))).await,
            [
                "https://shop.test/cars/über",
                "https://shop.test/axb",
                "https://shop.test/a_b"
            ]
        );
        assert_eq!(
            urls(format!("to={}", at(2))).await,
            ["https://shop.test/cars", "https://shop.test/"]
        );
        assert_eq!(
            urls(format!("from={}&to={}", at(2), at(5))).await,
            [
                "https://shop.test/carsales",
                "https://shop.test/cars/polo",
                "https://shop.test/cars/golf"
            ]
        );
        assert!(
            urls(format!("from={}&to={}", at(2), at(2)))
                .await
                .is_empty(),
            "an empty window is not an error"
        );
        assert_eq!(
            urls(format!("from={}", enc("2026-03-01T11:05:00+01:00"))).await,
            urls(format!("from={}", at(5))).await,
            "offsets are honoured"
        );
        // Filters combine.
        assert_eq!(
            urls(format!("visitor=visitor-bob01&from={}", at(5))).await,
            ["https://shop.test/axb", "https://shop.test/a_b"]
        );
        assert_eq!(
            urls(format!(
                "visitor=visitor-bob01&url={}&to={}",
                enc("https://shop.test/ca"),
                at(4)
            ))
            .await,
            ["https://shop.test/cars/polo"]
        );

        let body = list(
            &app,
            &format!("{base}?visitor=visitor-alice&limit=1"),
            &owner.token,
        )
        .await;
        assert_eq!(body["items"][0]["at"], iso(t0 + 2 * MINUTE));
        assert_eq!(
            body["items"][0]["title"],
            "Title of https://shop.test/cars/golf"
        );
        assert_eq!(body["items"][0]["referrer"], Value::Null);
        assert_eq!(body["items"][0]["tab"], "tab-session-alice2");
    }
);

on_both_databases!(
    events_filter_by_visitor_exact_name_and_time_window,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("owner@example.com").await;
        let t0 = ms("2026-03-02T08:00:00Z");
        submit(
            &app,
            [
                event(
                    &site.id,
                    "visitor-alice",
                    "add_to_cart",
                    json!({"car": "golf"}),
                    t0,
                ),
                event(
                    &site.id,
                    "visitor-alice",
                    "add_to_cart_failed",
                    json!({"reason": "stock"}),
                    t0 + MINUTE,
                ),
                event(
                    &site.id,
                    "visitor-bob01",
                    "add_to_cart",
                    json!({"car": "polo", "n": 2}),
                    t0 + 2 * MINUTE,
                ),
                event(
                    &site.id,
                    "visitor-bob01",
                    "checkout",
                    json!({}),
                    t0 + 3 * MINUTE,
                ),
                event(
                    &site.id,
                    "visitor-alice",
                    "checkout",
                    json!({"total": 1.5}),
                    t0 + 4 * MINUTE,
                ),
            ]
            .map(Record::Event),
        )
        .await;
        let base = format!("/api/sites/{}/events", site.id);
        app.wait_for_items(&base, &owner.token, 5).await;
        let names = |query: String| {
            let (app, base, token) = (&app, &base, &owner.token);
            async move {
                let body = list(app, &format!("{base}?{query}"), token).await;
                body["items"]
                    .as_array()
                    .expect("items")
                    .iter()
                    .map(|e| {
                        format!(
                            "{}:{}",
                            e["visitor"].as_str().expect("visitor"),
                            e["name"].as_str().expect("name")
                        )
                    })
                    .collect::<Vec<_>>()
            }
        };
        let at = |minute: i64| enc(&iso(t0 + minute * MINUTE));

        assert_eq!(
            names("name=add_to_cart".into()).await,
            ["visitor-bob01:add_to_cart", "visitor-alice:add_to_cart"],
            "exact, not a prefix"
        );
        assert_eq!(
            names("visitor=visitor-alice".into()).await,
            [
                "visitor-alice:checkout",
                "visitor-alice:add_to_cart_failed",
                "visitor-alice:add_to_cart"
            ]
        );
        assert_eq!(
            names("visitor=visitor-bob01&name=checkout".into()).await,
            ["visitor-bob01:checkout"]
        );
        assert_eq!(
            names(format!("from={}&to={}", at(1), at(3))).await,
            [
                "visitor-bob01:add_to_cart",
                "visitor-alice:add_to_cart_failed"
            ]
        );
        assert_eq!(
            names(format!("name=checkout&from={}", at(4))).await,
            ["visitor-alice:checkout"]
        );
        assert!(
            names("name=Checkout".into()).await.is_empty(),
            "names are case-sensitive"
        );

        let body = list(&app, &format!("{base}?name=add_to_cart"), &owner.token).await;
        assert_eq!(body["items"][0]["props"], json!({"car": "polo", "n": 2}));
        assert_eq!(body["items"][0]["at"], iso(t0 + 2 * MINUTE));
        assert_eq!(body["items"][0]["session"], "session-visitor-bob01");
        assert_eq!(body["items"][0]["url"], Value::Null);
        let body = list(
            &app,
            &format!("{base}?name=checkout&visitor=visitor-alice"),
            &owner.token,
        )
        .await;
        assert_eq!(body["items"][0]["props"], json!({"total": 1.5}));
    }
);

on_both_databases!(
    visitors_are_listed_by_last_activity_and_filter_by_user_id_and_time,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("owner@example.com").await;
        let t0 = ms("2026-03-03T12:00:00Z");
        let identify = |visitor: &str, user_id: Option<&str>, traits: Value, at: i64| {
            Record::Identify(IdentifyRow {
                site_id: site.id.clone(),
                visitor_id: visitor.into(),
                user_id: user_id.map(str::to_string),
                traits: traits.to_string(),
                at,
            })
        };
        submit(
            &app,
            [
                Record::Pageview(pageview(
                    &site.id,
                    "visitor-one",
                    "session-one-a",
                    "https://shop.test/",
                    t0,
                )),
                Record::Pageview(pageview(
                    &site.id,
                    "visitor-two",
                    "session-two-a",
                    "https://shop.test/",
                    t0 + 5 * MINUTE,
                )),
                identify(
                    "visitor-two",
                    Some("user-42"),
                    json!({"plan": "pro"}),
                    t0 + 5 * MINUTE,
                ),
                Record::Pageview(pageview(
                    &site.id,
                    "visitor-six",
                    "session-six-a",
                    "https://shop.test/",
                    t0 + 10 * MINUTE,
                )),
                identify("visitor-six", Some("user-7"), json!({}), t0 + 10 * MINUTE),
                Record::Pageview(pageview(
                    &site.id,
                    "visitor-one",
                    "session-one-b",
                    "https://shop.test/again",
                    t0 + 20 * MINUTE,
                )),
            ],
        )
        .await;
        let base = format!("/api/sites/{}/visitors", site.id);
        app.wait_for_items(&base, &owner.token, 3).await;
        // A later identify merges traits and keeps the user id when it sends none.
        submit(
            &app,
            [identify(
                "visitor-two",
                None,
                json!({"company": "ACME"}),
                t0 + 5 * MINUTE,
            )],
        )
        .await;
        wait_until(
            &app,
            &format!("{base}?user_id=user-42"),
            &owner.token,
            |b| b["items"][0]["traits"]["company"] == "ACME",
        )
        .await;

        let body = list(&app, &base, &owner.token).await;

        assert_eq!(
            field(&body, "visitor"),
            ["visitor-one", "visitor-six", "visitor-two"],
            "most recent activity first"
        );
        assert_eq!(body["next_cursor"], Value::Null);
        let one = &body["items"][0];
        assert_eq!(one["first_seen"], iso(t0));
        assert_eq!(one["last_seen"], iso(t0 + 20 * MINUTE));
        assert_eq!(one["user_id"], Value::Null);
        assert_eq!(one["traits"], json!({}));
        let two = &body["items"][2];
        assert_eq!(two["user_id"], "user-42");
        assert_eq!(two["traits"], json!({"plan": "pro", "company": "ACME"}));
        assert_eq!(two["first_seen"], iso(t0 + 5 * MINUTE));
        assert_eq!(two["last_seen"], iso(t0 + 5 * MINUTE));

        let only = |q: String| {
            let (app, base, token) = (&app, &base, &owner.token);
            async move { field(&list(app, &format!("{base}?{q}"), token).await, "visitor") }
        };
        let at = |minute: i64| enc(&iso(t0 + minute * MINUTE));
        assert_eq!(only("user_id=user-42".into()).await, ["visitor-two"]);
        assert_eq!(only("user_id=user-7".into()).await, ["visitor-six"]);
        assert!(
            only("user_id=user-4".into()).await.is_empty(),
            "exact, not a prefix"
        );
        assert_eq!(
            only(format!("from={}", at(6))).await,
            ["visitor-one", "visitor-six"]
        );
        assert_eq!(
            only(format!("to={}", at(10))).await,
            ["visitor-two"],
            "`to` is exclusive"
        );
        assert_eq!(
            only(format!("from={}&to={}", at(5), at(11))).await,
            ["visitor-six", "visitor-two"]
        );
    }
);

// ---------------------------------------------------------------------------------------------
// Paging
// ---------------------------------------------------------------------------------------------

on_both_databases!(
    lists_default_to_100_items_and_page_with_next_cursor,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("owner@example.com").await;
        let t0 = ms("2026-03-04T00:00:00Z");
        // 250 page views, many sharing a time (ties are broken by id).
        submit(
            &app,
            (0..250).map(|i| {
                Record::Pageview(pageview(
                    &site.id,
                    "visitor-one",
                    "session-one",
                    &format!("https://shop.test/p/{i}"),
                    t0 + (i / 7) * 1000,
                ))
            }),
        )
        .await;
        let base = format!("/api/sites/{}/pageviews", site.id);
        wait_until(
            &app,
            &format!("{base}?url={}", enc("https://shop.test/p/249")),
            &owner.token,
            |b| b["items"].as_array().is_some_and(|a| a.len() == 1),
        )
        .await;

        let first = list(&app, &base, &owner.token).await;
        assert_eq!(
            first["items"].as_array().map(Vec::len),
            Some(100),
            "default page size"
        );
        assert!(first["next_cursor"].is_string());
        let everything = list(&app, &format!("{base}?limit=1000"), &owner.token).await;
        assert_eq!(everything["items"].as_array().map(Vec::len), Some(250));
        assert_eq!(everything["next_cursor"], Value::Null);
        let one = list(&app, &format!("{base}?limit=1"), &owner.token).await;
        assert_eq!(one["items"].as_array().map(Vec::len), Some(1));
        assert_eq!(one["items"][0]["url"], "https://shop.test/p/249");

        let walked = walk(&app, &format!("{base}?limit=100"), &owner.token).await;
        let walked_urls: Vec<&str> = walked.iter().filter_map(|i| i["url"].as_str()).collect();
        let expected: Vec<String> = (0..250)
            .rev()
            .map(|i| format!("https://shop.test/p/{i}"))
            .collect();
        assert_eq!(walked_urls, expected, "pages join up exactly, newest first");
        assert_eq!(
            walked,
            everything["items"].as_array().expect("items").clone()
        );

        // A page that ends exactly at the last row still says there is no more.
        let exact = list(&app, &format!("{base}?limit=250"), &owner.token).await;
        assert_eq!(exact["next_cursor"], Value::Null);

        // Cursors combine with filters and time windows.
        let windowed = walk(
            &app,
            &format!(
                "{base}?limit=3&from={}&to={}",
                enc(&iso(t0 + 10_000)),
                enc(&iso(t0 + 20_000))
            ),
            &owner.token,
        )
        .await;
        let windowed: Vec<&str> = windowed.iter().filter_map(|i| i["url"].as_str()).collect();
        let expected: Vec<String> = (70..140)
            .rev()
            .map(|i| format!("https://shop.test/p/{i}"))
            .collect();
        assert_eq!(windowed, expected);
    }
);

on_both_databases!(
    events_and_visitors_page_through_ties_without_duplicates_or_gaps,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("owner@example.com").await;
        let t0 = ms("2026-03-05T00:00:00Z");
        // 30 visitors all last seen at the same instant, and 25 events in groups of 4 equal times.
        submit(
            &app,
            (0..30).map(|i| {
                Record::Pageview(pageview(
                    &site.id,
                    &format!("visitor-{i:03}"),
                    &format!("session-{i:03}"),
                    "https://shop.test/",
                    t0,
                ))
            }),
        )
        .await;
        submit(
            &app,
            (0..25).map(|i| {
                Record::Event(event(
                    &site.id,
                    "visitor-000",
                    &format!("event-{i:02}"),
                    json!({"i": i}),
                    t0 + (i / 4) * 1000,
                ))
            }),
        )
        .await;
        let visitors_path = format!("/api/sites/{}/visitors", site.id);
        let events_path = format!("/api/sites/{}/events", site.id);
        app.wait_for_items(&visitors_path, &owner.token, 30).await;
        app.wait_for_items(&events_path, &owner.token, 25).await;

        let visitors = walk(&app, &format!("{visitors_path}?limit=7"), &owner.token).await;
        let events = walk(&app, &format!("{events_path}?limit=4"), &owner.token).await;

        let visitor_ids: Vec<&str> = visitors
            .iter()
            .filter_map(|v| v["visitor"].as_str())
            .collect();
        let all_at_once = list(&app, &format!("{visitors_path}?limit=1000"), &owner.token).await;
        assert_eq!(
            visitors,
            all_at_once["items"].as_array().expect("items").clone(),
            "paging gives the same order as one page"
        );
        assert_eq!(
            visitor_ids.iter().collect::<BTreeSet<_>>().len(),
            30,
            "{visitor_ids:?}"
        );
        let event_names: Vec<&str> = events.iter().filter_map(|e| e["name"].as_str()).collect();
        let expected: Vec<String> = (0..25).rev().map(|i| format!("event-{i:02}")).collect();
        assert_eq!(
            event_names, expected,
            "newest first, ties by insertion, each once"
        );
    }
);

on_both_databases!(
    paging_through_thousands_of_pageviews_sees_each_once_while_new_ones_arrive,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("owner@example.com").await;
        const ORIGINALS: i64 = 3_000;
        let t0 = ms("2026-01-10T00:00:00Z");
        // Groups of three share a time, so page boundaries fall inside ties.
        submit(
            &app,
            (0..ORIGINALS).map(|i| {
                Record::Pageview(pageview(
                    &site.id,
                    &format!("visitor-{:03}", i % 97),
                    &format!("session-{:03}", i % 89),
                    &format!("https://shop.test/orig/{i}"),
                    t0 + (i / 3) * 1000,
                ))
            }),
        )
        .await;
        let base = format!("/api/sites/{}/pageviews", site.id);
        wait_until(
            &app,
            &format!("{base}?url={}", enc("https://shop.test/orig/2999")),
            &owner.token,
            |b| b["items"].as_array().is_some_and(|a| a.len() == 1),
        )
        .await;

        // Newer rows keep arriving through the real writer for as long as the walk lasts.
        let stop = Arc::new(AtomicBool::new(false));
        let inserter = tokio::spawn({
            let writer = app.state.writer.clone();
            let site_id = site.id.clone();
            let stop = stop.clone();
            let newer = t0 + DAY;
            async move {
                let mut n: i64 = 0;
                while !stop.load(Ordering::Relaxed) {
                    let url = format!("https://shop.test/new/{n}");
                    let row = pageview(&site_id, "visitor-new", "session-new", &url, newer + n);
                    writer
                        .submit(Record::Pageview(row))
                        .await
                        .expect("the writer accepts");
                    n += 1;
                    if n % 10 == 0 {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
                n
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await; // let some newer rows land first

        let mut seen_ids: HashSet<i64> = HashSet::new();
        let mut originals: HashMap<String, usize> = HashMap::new();
        let mut previous: Option<(i64, i64)> = None;
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        let mut newer_seen: i64 = 0;
        loop {
            let path = match &cursor {
                Some(c) => format!("{base}?limit=250&cursor={}", enc(c)),
                None => format!("{base}?limit=250"),
            };
            let body = list(&app, &path, &owner.token).await;
            pages += 1;
            let items = body["items"].as_array().expect("items");
            assert!(items.len() <= 250);
            for item in items {
                let id: i64 = item["id"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .expect("numeric id text");
                let key = (ms(item["at"].as_str().expect("at")), id);
                if let Some(prev) = previous {
                    assert!(key < prev, "newest first: {key:?} came after {prev:?}");
                }
                previous = Some(key);
                assert!(seen_ids.insert(id), "row {id} seen twice");
                let url = item["url"].as_str().expect("url");
                if url.starts_with("https://shop.test/orig/") {
                    *originals.entry(url.to_string()).or_default() += 1;
                } else {
                    newer_seen += 1;
                }
            }
            match body["next_cursor"].as_str() {
                Some(c) => {
                    assert_eq!(items.len(), 250, "only the last page is short");
                    cursor = Some(c.to_string());
                }
                None => break,
            }
            assert!(pages < 100, "paging never ended");
        }
        stop.store(true, Ordering::Relaxed);
        let inserted = inserter.await.expect("inserter");

        assert!(pages >= 12, "{pages} pages");
        assert_eq!(
            originals.len(),
            ORIGINALS as usize,
            "every original row was seen"
        );
        assert!(originals.values().all(|&n| n == 1), "and each exactly once");
        assert!(
            inserted > newer_seen,
            "rows kept arriving after the walk began ({inserted} written, {newer_seen} seen)"
        );
        // The rows written meanwhile all arrived as well, each once.
        let last = format!("https://shop.test/new/{}", inserted - 1);
        wait_until(
            &app,
            &format!("{base}?url={}", enc(&last)),
            &owner.token,
            |b| b["items"].as_array().is_some_and(|a| !a.is_empty()),
        )
        .await;
        let newer = walk(
            &app,
            &format!("{base}?limit=1000&url={}", enc("https://shop.test/new/")),
            &owner.token,
        )
        .await;
        let newer_urls: HashSet<&str> = newer.iter().filter_map(|p| p["url"].as_str()).collect();
        assert_eq!(
            newer.len() as i64,
            inserted,
            "{inserted} newer rows were submitted"
        );
        assert_eq!(newer_urls.len(), newer.len());
    }
);

// ---------------------------------------------------------------------------------------------
// Bad parameters
// ---------------------------------------------------------------------------------------------

on_both_databases!(
    history_lists_refuse_bad_limits_timestamps_ranges_and_cursors,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("owner@example.com").await;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let (_ws, _) = app
            .visitor(
                &site.key,
                "visitor-one",
                "session-one",
                "tab-one1",
                "https://shop.test/",
            )
            .await;
        let visitors = app
            .wait_for_items(
                &format!("/api/sites/{}/visitors?limit=1", site.id),
                &owner.token,
                1,
            )
            .await;
        assert_eq!(visitors["next_cursor"], Value::Null);
        // A cursor with a text id (as the visitors list makes them) is not one of the numeric lists'.
        let text_id_cursor = b64("1764000000000:visitor-one");

        for list_name in ["pageviews", "events", "visitors", "messages"] {
            let base = format!("/api/sites/{}/{list_name}", site.id);
            let check = |query: String, status: StatusCode, code: &'static str| {
                let (app, base, token) = (&app, &base, &owner.token);
                async move {
                    let (got, body) = app.get(&format!("{base}?{query}"), token).await;
                    assert_eq!(got, status, "{base}?{query}: {body}");
                    assert_eq!(body["error"]["code"], code, "{base}?{query}: {body}");
                }
            };
            for limit in ["0", "1001", "-1", "99999999999"] {
                check(
                    format!("limit={limit}"),
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_limit",
                )
                .await;
            }
            for limit in ["abc", "1.5", "", "1e3", "99999999999999999999999"] {
                check(
                    format!("limit={limit}"),
                    StatusCode::BAD_REQUEST,
                    "invalid_limit",
                )
                .await;
            }
            for name in ["from", "to"] {
                for bad in [
                    "yesterday",
                    "2026-03-01",
                    "2026-13-01T00:00:00Z",
                    "1764000000",
                    "2026-03-01T00:00:00",
                    "2026-03-01T25:00:00Z",
                ] {
                    check(
                        format!("{name}={}", enc(bad)),
                        StatusCode::BAD_REQUEST,
                        "invalid_timestamp",
                    )
                    .await;
                }
            }
            check(
                format!(
                    "from={}&to={}",
                    enc("2026-03-02T00:00:00Z"),
                    enc("2026-03-01T00:00:00Z")
                ),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_range",
            )
            .await;
            for cursor in [
                "!!!".to_string(),
                b64("nonsense"),
                b64("12:"),
                b64("x:1"),
                b64(&format!("1:{}", "y".repeat(200))),
                "%FF".into(),
            ] {
                let query = if cursor == "%FF" {
                    "cursor=%FF".to_string()
                } else {
                    format!("cursor={}", enc(&cursor))
                };
                check(query, StatusCode::BAD_REQUEST, "invalid_cursor").await;
            }
            if matches!(list_name, "pageviews" | "events") {
                check(
                    format!("cursor={text_id_cursor}"),
                    StatusCode::BAD_REQUEST,
                    "invalid_cursor",
                )
                .await;
            }
            for good in [
                "limit=1",
                "limit=1000",
                "limit=100&from=2026-01-01T00:00:00Z&to=2027-01-01T00:00:00Z",
            ] {
                let (status, body) = app.get(&format!("{base}?{good}"), &owner.token).await;
                assert_eq!(status, StatusCode::OK, "{base}?{good}: {body}");
                assert!(body["items"].is_array());
            }
        }
    }
);

// ---------------------------------------------------------------------------------------------
// Erasing a visitor
// ---------------------------------------------------------------------------------------------

on_both_databases!(
    erasing_a_visitor_removes_every_trace_and_keeps_the_others,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("owner@example.com").await;
        let s = &site.id;
        let (mut gone, _) = app
            .visitor(
                &site.key,
                "visitor-gone",
                "session-gone",
                "tab-gone01",
                "https://shop.test/",
            )
            .await;
        let (mut kept, _) = app
            .visitor(
                &site.key,
                "visitor-kept",
                "session-kept",
                "tab-kept01",
                "https://shop.test/",
            )
            .await;
        for (ws, user) in [(&mut gone, "user-gone"), (&mut kept, "user-kept")] {
            send(ws, json!({"type": "page", "url": "https://shop.test/cars"})).await;
            send(
                ws,
                json!({"type": "event", "name": "add_to_cart", "props": {"car": "golf"}}),
            )
            .await;
            send(ws, json!({"type": "identify", "user_id": user, "traits": {"email": format!("{user}@example.com")}})).await;
        }
        let (status, to_gone) = app
            .post(
                &format!("/api/sites/{s}/messages"),
                &owner.token,
                json!({"to": {"visitor": "visitor-gone"}, "message": {"title": "Just for you"}}),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{to_gone}");
        assert_eq!(to_gone["delivered"], 1);
        let (status, to_all) = app
            .post(
                &format!("/api/sites/{s}/messages"),
                &owner.token,
                json!({"to": {"all": true}, "message": {"title": "For everyone"}}),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{to_all}");
        assert_eq!(to_all["delivered"], 2);
        let frame = expect_frame(&mut gone, "message").await;
        send(
            &mut gone,
            json!({"type": "ack", "message": frame["id"], "status": "shown"}),
        )
        .await;
        for v in ["visitor-gone", "visitor-kept"] {
            app.wait_for_items(
                &format!("/api/sites/{s}/pageviews?visitor={v}"),
                &owner.token,
                2,
            )
            .await;
            app.wait_for_items(
                &format!("/api/sites/{s}/events?visitor={v}"),
                &owner.token,
                1,
            )
            .await;
        }
        app.wait_for_items(
            &format!("/api/sites/{s}/visitors?user_id=user-gone"),
            &owner.token,
            1,
        )
        .await;
        app.wait_for_items(
            &format!("/api/sites/{s}/visitors?user_id=user-kept"),
            &owner.token,
            1,
        )
        .await;
        app.wait_for_items(
            &format!("/api/sites/{s}/messages?visitor=visitor-gone"),
            &owner.token,
            2,
        )
        .await;
        app.wait_for_items(
            &format!("/api/sites/{s}/messages?visitor=visitor-kept"),
            &owner.token,
            1,
        )
        .await;
        wait_until(
            &app,
            &format!("/api/sites/{s}/messages?visitor=visitor-gone"),
            &owner.token,
            |b| {
                b["items"].as_array().is_some_and(|items| {
                    items.iter().any(|m| {
                        m["statuses"]
                            .as_array()
                            .is_some_and(|st| st.iter().any(|x| x["status"] == "shown"))
                    })
                })
            },
        )
        .await;

        let (status, body) = app
            .request(
                "DELETE",
                &format!("/api/sites/{s}/visitors/visitor-gone"),
                Some(&owner.token),
                None,
            )
            .await;

        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        for path in [
            format!("/api/sites/{s}/pageviews?visitor=visitor-gone"),
            format!("/api/sites/{s}/events?visitor=visitor-gone"),
            format!("/api/sites/{s}/visitors?user_id=user-gone"),
            format!("/api/sites/{s}/messages?visitor=visitor-gone"),
        ] {
            let body = list(&app, &path, &owner.token).await;
            assert_eq!(body["items"], json!([]), "{path}");
        }
        let (status, body) = app
            .get(
                &format!("/api/sites/{s}/visitors/visitor-gone"),
                &owner.token,
            )
            .await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
        let all_visitors = list(&app, &format!("/api/sites/{s}/visitors"), &owner.token).await;
        assert_eq!(field(&all_visitors, "visitor"), ["visitor-kept"]);
        let all_pageviews = list(&app, &format!("/api/sites/{s}/pageviews"), &owner.token).await;
        assert!(field(&all_pageviews, "visitor")
            .iter()
            .all(|v| v == "visitor-kept"));
        let live = list(&app, &format!("/api/sites/{s}/live"), &owner.token).await;
        let live_ids: Vec<&str> = live["visitors"]
            .as_array()
            .expect("visitors")
            .iter()
            .filter_map(|v| v["visitor"].as_str())
            .collect();
        assert_eq!(
            live_ids,
            ["visitor-kept"],
            "the erased visitor is no longer shown live"
        );
        for table in [
            "pageview",
            "event",
            "session",
            "visitor",
            "message_status",
            "pending_message",
        ] {
            let n: i64 = sqlx::query_scalar(&format!(
                "select count(*) from {table} where site_id = $1 and visitor_id = $2"
            ))
            .bind(s.as_str())
            .bind("visitor-gone")
            .fetch_one(app.state.db.pool())
            .await
            .expect("count");
            assert_eq!(n, 0, "{table} still has rows of the erased visitor");
        }
        let addressed: i64 =
            sqlx::query_scalar("select count(*) from message where site_id = $1 and target = $2")
                .bind(s.as_str())
                .bind(json!({"visitor": "visitor-gone"}).to_string())
                .fetch_one(app.state.db.pool())
                .await
                .expect("count");
        assert_eq!(
            addressed, 0,
            "messages addressed to the erased visitor are gone"
        );

        // The other visitor keeps everything.
        assert_eq!(
            list(
                &app,
                &format!("/api/sites/{s}/pageviews?visitor=visitor-kept"),
                &owner.token
            )
            .await["items"]
                .as_array()
                .map(Vec::len),
            Some(2)
        );
        assert_eq!(
            list(
                &app,
                &format!("/api/sites/{s}/events?visitor=visitor-kept"),
                &owner.token
            )
            .await["items"]
                .as_array()
                .map(Vec::len),
            Some(1)
        );
        let profile = list(
            &app,
            &format!("/api/sites/{s}/visitors/visitor-kept"),
            &owner.token,
        )
        .await;
        assert_eq!(profile["user_id"], "user-kept");
        assert_eq!(profile["pageviews"], 2);
        let kept_messages = list(
            &app,
            &format!("/api/sites/{s}/messages?visitor=visitor-kept"),
            &owner.token,
        )
        .await;
        assert_eq!(
            field(&kept_messages, "id"),
            [to_all["id"].as_str().expect("id")]
        );
        let all_messages = list(&app, &format!("/api/sites/{s}/messages"), &owner.token).await;
        assert_eq!(
            field(&all_messages, "id"),
            [to_all["id"].as_str().expect("id")],
            "the broadcast stays, the personal message goes"
        );
        assert_eq!(
            all_messages["items"][0]["delivered"], 1,
            "only the kept visitor's delivery is still counted"
        );

        let (status, body) = app
            .request(
                "DELETE",
                &format!("/api/sites/{s}/visitors/visitor-gone"),
                Some(&owner.token),
                None,
            )
            .await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    }
);

on_both_databases!(
    an_api_key_may_erase_a_visitor_of_its_site,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("owner@example.com").await;
        let (status, created) = app
            .post(
                &format!("/api/sites/{}/api-keys", site.id),
                &owner.token,
                json!({"name": "gdpr"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        let key = created["key"].as_str().expect("key");
        submit(
            &app,
            [Record::Pageview(pageview(
                &site.id,
                "visitor-one",
                "session-one",
                "https://shop.test/",
                ms("2026-03-01T00:00:00Z"),
            ))],
        )
        .await;
        app.wait_for_items(&format!("/api/sites/{}/visitors", site.id), &owner.token, 1)
            .await;

        let (status, body) = app
            .request(
                "DELETE",
                &format!("/api/sites/{}/visitors/visitor-one", site.id),
                Some(key),
                None,
            )
            .await;

        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        assert_eq!(
            list(
                &app,
                &format!("/api/sites/{}/visitors", site.id),
                &owner.token
            )
            .await["items"],
            json!([])
        );
        assert_eq!(
            list(
                &app,
                &format!("/api/sites/{}/pageviews", site.id),
                &owner.token
            )
            .await["items"],
            json!([])
        );
        let (status, body) = app
            .request(
                "DELETE",
                &format!("/api/sites/{}/visitors/visitor-nobody", site.id),
                Some(key),
                None,
            )
            .await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    }
);

// ---------------------------------------------------------------------------------------------
// Stats
// ---------------------------------------------------------------------------------------------

fn series_sums(stats: &Value) -> (i64, i64) {
    let series = stats["series"].as_array().expect("series");
    (
        series
            .iter()
            .map(|b| b["pageviews"].as_i64().expect("pageviews"))
            .sum(),
        series
            .iter()
            .map(|b| b["visitors"].as_i64().expect("visitors"))
            .sum(),
    )
}

fn with_referrer(mut p: PageviewRow, referrer: &str) -> PageviewRow {
    p.referrer = Some(referrer.into());
    p
}

on_both_databases!(
    stats_count_totals_top_pages_referrers_and_dense_hourly_buckets,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("owner@example.com").await;
        let t0 = ms("2026-03-01T00:00:00Z");
        let s = site.id.as_str();
        let home = "https://shop.test/home";
        let cars = "https://shop.test/cars";
        let about = "https://shop.test/about";
        submit(
            &app,
            [
                // 00:xx — two visitors, three page views
                with_referrer(
                    pageview(s, "visitor-v1", "session-s1", home, t0 + 5 * MINUTE),
                    "https://google.test/",
                ),
                pageview(s, "visitor-v1", "session-s1", cars, t0 + 10 * MINUTE),
                with_referrer(
                    pageview(s, "visitor-v2", "session-s2", home, t0 + 20 * MINUTE),
                    "https://google.test/",
                ),
                // 01:xx — nothing; 02:xx — one visitor, on both edges of the hour
                with_referrer(
                    pageview(s, "visitor-v3", "session-s3", cars, t0 + 2 * HOUR),
                    "https://bing.test/",
                ),
                pageview(s, "visitor-v3", "session-s3", cars, t0 + 3 * HOUR - 1),
                // 03:xx — nothing; 04:xx and 05:xx — one each
                with_referrer(
                    pageview(
                        s,
                        "visitor-v4",
                        "session-s4",
                        home,
                        t0 + 4 * HOUR + 30 * MINUTE,
                    ),
                    "",
                ),
                pageview(s, "visitor-v5", "session-s5", about, t0 + 6 * HOUR - 1),
                // outside the range: at `to` (exclusive) and just before `from`
                pageview(s, "visitor-v6", "session-s6", home, t0 + 6 * HOUR),
                pageview(s, "visitor-v7", "session-s7", home, t0 - 1),
            ]
            .map(Record::Pageview),
        )
        .await;
        app.wait_for_items(&format!("/api/sites/{s}/pageviews"), &owner.token, 9)
            .await;

        let stats = list(
            &app,
            &format!(
                "/api/sites/{s}/stats?from={}&to={}&interval=hour",
                enc(&iso(t0)),
                enc(&iso(t0 + 6 * HOUR))
            ),
            &owner.token,
        )
        .await;

        assert_eq!(stats["pageviews"], 7, "{stats}");
        assert_eq!(stats["visitors"], 5);
        assert_eq!(stats["sessions"], 5);
        assert_eq!(
            stats["top_pages"],
            json!([{"url": cars, "count": 3}, {"url": home, "count": 3}, {"url": about, "count": 1}]),
            "by count, ties by URL"
        );
        assert_eq!(
            stats["top_referrers"],
            json!([{"referrer": "https://google.test/", "count": 2}, {"referrer": "https://bing.test/", "count": 1}]),
            "empty and missing referrers are not listed"
        );
        let series = stats["series"].as_array().expect("series");
        let expected: Vec<Value> = [(3, 2), (0, 0), (2, 1), (0, 0), (1, 1), (1, 1)]
        .iter()
        .enumerate()
        .map(|(h, (p, v))| json!({"t": iso(t0 + h as i64 * HOUR), "pageviews": p, "visitors": v}))
        .collect();
        assert_eq!(
            series, &expected,
            "one bucket per hour, empty ones included"
        );
        // Each visitor is in one bucket here, so both sums equal the totals.
        assert_eq!(series_sums(&stats), (7, 5));

        // A range that does not start on the hour: buckets stay aligned to UTC hours.
        let stats = list(
            &app,
            &format!(
                "/api/sites/{s}/stats?from={}&to={}&interval=hour",
                enc(&iso(t0 + 15 * MINUTE)),
                enc(&iso(t0 + 150 * MINUTE))
            ),
            &owner.token,
        )
        .await;
        assert_eq!(
            stats["pageviews"], 2,
            "the 00:20 view and the 02:00 view: {stats}"
        );
        let ts: Vec<String> = field(&json!({"items": stats["series"]}), "t");
        assert_eq!(ts, [iso(t0), iso(t0 + HOUR), iso(t0 + 2 * HOUR)]);
        assert_eq!(series_sums(&stats).0, 2);
    }
);

on_both_databases!(
    stats_in_day_buckets_count_each_visitor_once_in_the_totals,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("owner@example.com").await;
        let d0 = ms("2026-02-01T00:00:00Z");
        let s = site.id.as_str();
        submit(
            &app,
            [
                pageview(
                    s,
                    "visitor-v1",
                    "session-a",
                    "https://shop.test/",
                    d0 + HOUR,
                ),
                pageview(
                    s,
                    "visitor-v1",
                    "session-a",
                    "https://shop.test/cars",
                    d0 + 2 * HOUR,
                ),
                pageview(
                    s,
                    "visitor-v2",
                    "session-b",
                    "https://shop.test/",
                    d0 + 23 * HOUR,
                ),
                pageview(
                    s,
                    "visitor-v1",
                    "session-c",
                    "https://shop.test/",
                    d0 + 2 * DAY + HOUR,
                ),
                pageview(
                    s,
                    "visitor-v3",
                    "session-d",
                    "https://shop.test/cars",
                    d0 + 3 * DAY - 1,
                ),
            ]
            .map(Record::Pageview),
        )
        .await;
        app.wait_for_items(&format!("/api/sites/{s}/pageviews"), &owner.token, 5)
            .await;
        let range = format!("from={}&to={}", enc(&iso(d0)), enc(&iso(d0 + 3 * DAY)));

        let stats = list(
            &app,
            &format!("/api/sites/{s}/stats?{range}&interval=day"),
            &owner.token,
        )
        .await;

        assert_eq!(stats["pageviews"], 5, "{stats}");
        assert_eq!(
            stats["visitors"], 3,
            "visitor-v1 came on two days but counts once"
        );
        assert_eq!(stats["sessions"], 4);
        assert_eq!(
            stats["series"],
            json!([
                {"t": iso(d0), "pageviews": 3, "visitors": 2},
                {"t": iso(d0 + DAY), "pageviews": 0, "visitors": 0},
                {"t": iso(d0 + 2 * DAY), "pageviews": 2, "visitors": 2},
            ])
        );
        assert_eq!(
            series_sums(&stats).0,
            5,
            "bucket page views add up to the total"
        );
        assert_eq!(
            stats["top_pages"],
            json!([{"url": "https://shop.test/", "count": 3}, {"url": "https://shop.test/cars", "count": 2}])
        );
        assert_eq!(stats["top_referrers"], json!([]));

        // Without `interval`, a range over 48 hours is in days and a shorter one in hours.
        let by_default = list(&app, &format!("/api/sites/{s}/stats?{range}"), &owner.token).await;
        assert_eq!(by_default["series"], stats["series"]);
        let short = list(
            &app,
            &format!(
                "/api/sites/{s}/stats?from={}&to={}",
                enc(&iso(d0)),
                enc(&iso(d0 + 2 * DAY))
            ),
            &owner.token,
        )
        .await;
        assert_eq!(short["series"].as_array().map(Vec::len), Some(48));
        assert_eq!(series_sums(&short).0, 3);
    }
);

on_both_databases!(
    stats_cover_the_last_24_hours_by_default,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("owner@example.com").await;
        let now = chrono::Utc::now().timestamp_millis();
        submit(
            &app,
            [
                pageview(
                    &site.id,
                    "visitor-v1",
                    "session-a",
                    "https://shop.test/",
                    now - HOUR,
                ),
                pageview(
                    &site.id,
                    "visitor-v2",
                    "session-b",
                    "https://shop.test/",
                    now - 23 * HOUR,
                ),
                pageview(
                    &site.id,
                    "visitor-v3",
                    "session-c",
                    "https://shop.test/",
                    now - 25 * HOUR,
                ),
            ]
            .map(Record::Pageview),
        )
        .await;
        app.wait_for_items(
            &format!("/api/sites/{}/pageviews", site.id),
            &owner.token,
            3,
        )
        .await;

        let stats = list(&app, &format!("/api/sites/{}/stats", site.id), &owner.token).await;

        assert_eq!(stats["pageviews"], 2, "{stats}");
        assert_eq!(stats["visitors"], 2);
        let series = stats["series"].as_array().expect("series");
        assert!(
            (24..=25).contains(&series.len()),
            "{} buckets",
            series.len()
        );
        let ts: Vec<i64> = series
            .iter()
            .map(|b| ms(b["t"].as_str().expect("t")))
            .collect();
        assert!(ts.iter().all(|t| t % HOUR == 0), "aligned to hours");
        assert!(
            ts.windows(2).all(|w| w[1] - w[0] == HOUR),
            "consecutive hours"
        );
        assert_eq!(series_sums(&stats), (2, 2));
    }
);

on_both_databases!(
    stats_refuse_bad_intervals_timestamps_and_ranges,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("owner@example.com").await;
        let base = format!("/api/sites/{}/stats", site.id);
        let from = enc("2026-03-01T00:00:00Z");
        let to = enc("2026-03-02T00:00:00Z");

        for (query, status, code) in [
            (
                format!("interval=week&from={from}&to={to}"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_interval",
            ),
            (
                "interval=HOUR".to_string(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_interval",
            ),
            (
                "interval=".to_string(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_interval",
            ),
            (
                "from=yesterday".to_string(),
                StatusCode::BAD_REQUEST,
                "invalid_timestamp",
            ),
            (
                "to=2026-03-01".to_string(),
                StatusCode::BAD_REQUEST,
                "invalid_timestamp",
            ),
            (
                format!("from={to}&to={from}"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_range",
            ),
            (
                format!("from={to}&to={from}&interval=day"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_range",
            ),
            (
                format!("from={}&to={to}&interval=hour", enc("2000-01-01T00:00:00Z")),
                StatusCode::UNPROCESSABLE_ENTITY,
                "range_too_large",
            ),
        ] {
            let (got, body) = app.get(&format!("{base}?{query}"), &owner.token).await;
            assert_error(got, &body, status, code);
        }
        let (status, body) = app
            .get(
                &format!("{base}?from={from}&to={to}&interval=day"),
                &owner.token,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body["series"],
            json!([{"t": "2026-03-01T00:00:00.000Z", "pageviews": 0, "visitors": 0}])
        );
        assert_eq!(body["top_pages"], json!([]));
    }
);

// ---------------------------------------------------------------------------------------------
// The writer across a restart
// ---------------------------------------------------------------------------------------------

on_both_databases!(
    records_accepted_by_the_writer_survive_a_graceful_restart,
    |mut app: TestApp| async move {
        let (owner, site) = app.owner_with_site("owner@example.com").await;
        const RECORDS: i64 = 5_000;
        let t0 = ms("2026-02-10T00:00:00Z");
        let mut expected_pages = BTreeSet::new();
        let mut expected_events = BTreeSet::new();
        let records: Vec<Record> = (0..RECORDS)
            .map(|i| {
                if i % 5 == 4 {
                    expected_events.insert(format!("event-{i}"));
                    Record::Event(event(
                        &site.id,
                        &format!("visitor-{:03}", i % 40),
                        &format!("event-{i}"),
                        json!({"i": i}),
                        t0 + i,
                    ))
                } else {
                    let url = format!("https://shop.test/p/{i}");
                    expected_pages.insert(url.clone());
                    Record::Pageview(pageview(
                        &site.id,
                        &format!("visitor-{:03}", i % 40),
                        &format!("session-{:03}", i % 40),
                        &url,
                        t0 + i,
                    ))
                }
            })
            .collect();

        // Accepted right before the stop: most are still queued when the shutdown begins.
        submit(&app, records).await;
        let dir = app.take_dir();
        let (url, backend) = (app.database_url.clone(), app.backend);
        app.stop().await;
        let app = helpers::spawn_with(helpers::test_settings(&url), backend, dir).await;

        // The login token still works: the generated secret is kept in the database.
        let pages = walk(
            &app,
            &format!("/api/sites/{}/pageviews?limit=1000", site.id),
            &owner.token,
        )
        .await;
        let events = walk(
            &app,
            &format!("/api/sites/{}/events?limit=1000", site.id),
            &owner.token,
        )
        .await;
        let got_pages: BTreeSet<String> = pages
            .iter()
            .filter_map(|p| p["url"].as_str().map(str::to_string))
            .collect();
        let got_events: BTreeSet<String> = events
            .iter()
            .filter_map(|e| e["name"].as_str().map(str::to_string))
            .collect();
        assert_eq!(
            pages.len(),
            expected_pages.len(),
            "no page view lost or doubled"
        );
        assert_eq!(got_pages, expected_pages);
        assert_eq!(
            events.len(),
            expected_events.len(),
            "no event lost or doubled"
        );
        assert_eq!(got_events, expected_events);
        let visitors = walk(
            &app,
            &format!("/api/sites/{}/visitors?limit=1000", site.id),
            &owner.token,
        )
        .await;
        assert_eq!(visitors.len(), 40);
        let profile = list(
            &app,
            &format!("/api/sites/{}/visitors/visitor-000", site.id),
            &owner.token,
        )
        .await;
        // visitor-000 has i = 0, 40, 80, …: 125 records, of which those with i % 5 == 4 are events (none: 40k % 5 == 0).
        assert_eq!(profile["pageviews"], 125, "{profile}");
        let stats = list(
            &app,
            &format!(
                "/api/sites/{}/stats?from={}&to={}&interval=hour",
                site.id,
                enc(&iso(t0)),
                enc(&iso(t0 + HOUR))
            ),
            &owner.token,
        )
        .await;
        assert_eq!(stats["pageviews"], expected_pages.len());
    }
);

on_both_databases!(
    visitors_within_one_minute_keep_their_order_bounds_and_paging,
    |app: TestApp| async move {
        // The visitor list is indexed by the minute of the last activity; within one minute
        // the exact time still orders, bounds and pages.
        let (owner, site) = app.owner_with_site("owner@example.com").await;
        let t0 = ms("2026-03-03T12:00:00Z");
        let seconds = [5i64, 10, 10, 30, 59, 60, 61];
        let records = seconds.iter().enumerate().map(|(i, s)| {
            let v = format!("visitor-{i}");
            Record::Pageview(pageview(
                &site.id,
                &v,
                &format!("session-{i}"),
                "https://shop.test/",
                t0 + s * 1000,
            ))
        });
        submit(&app, records).await;
        let base = format!("/api/sites/{}/visitors", site.id);
        app.wait_for_items(&base, &owner.token, seconds.len()).await;
        let expected = [
            "visitor-6",
            "visitor-5",
            "visitor-4",
            "visitor-3",
            "visitor-2",
            "visitor-1",
            "visitor-0",
        ];
        let body = list(&app, &format!("{base}?limit=100"), &owner.token).await;
        assert_eq!(field(&body, "visitor"), expected);
        let paged: Vec<String> = walk(&app, &format!("{base}?limit=1"), &owner.token)
            .await
            .iter()
            .map(|i| i["visitor"].as_str().expect("visitor").to_string())
            .collect();
        assert_eq!(paged, expected, "one per page, same order");
        let at = |s: i64| enc(&iso(t0 + s * 1000));
        let body = list(
            &app,
            &format!("{base}?from={}&to={}", at(10), at(60)),
            &owner.token,
        )
        .await;
        assert_eq!(
            field(&body, "visitor"),
            ["visitor-4", "visitor-3", "visitor-2", "visitor-1"],
            "from inclusive, to exclusive, to the millisecond"
        );
        let body = list(
            &app,
            &format!("{base}?from={}&to={}", at(11), at(61)),
            &owner.token,
        )
        .await;
        assert_eq!(
            field(&body, "visitor"),
            ["visitor-5", "visitor-4", "visitor-3"]
        );
        // A later page view moves a visitor to the top.
        submit(
            &app,
            [Record::Pageview(pageview(
                &site.id,
                "visitor-0",
                "session-0",
                "https://shop.test/later",
                t0 + 62_000,
            ))],
        )
        .await;
        let body = wait_until(&app, &base, &owner.token, |b| {
            b["items"][0]["visitor"] == "visitor-0"
        })
        .await;
        assert_eq!(body["items"][0]["last_seen"], iso(t0 + 62_000));
        assert_eq!(body["items"][0]["first_seen"], iso(t0 + 5_000));
    }
);

on_both_databases!(
    the_writer_stores_any_text_exactly_and_nul_as_a_replacement_character,
    |app: TestApp| async move {
        // Postgres takes page views and events through binary COPY and visitors through binary
        // arrays: tabs, newlines, backslashes, quotes and any Unicode come back unchanged; NUL,
        // which Postgres text cannot hold, becomes U+FFFD instead of failing the batch.
        let (owner, site) = app.owner_with_site("owner@example.com").await;
        let t0 = ms("2026-03-03T12:00:00Z");
        let odd = "tab\there\nnew\r\nline \\ back\\slash \"quoted\" 'single' {a,b} NULL \\N é 漢字 🚗 \u{7f}";
        let url = format!("https://shop.test/p?q={}", enc(odd));
        let mut row = pageview(&site.id, "visitor-odd", "session-odd", &url, t0);
        row.title = Some(odd.to_string());
        row.referrer = Some(format!("https://other.test/\\x\t{}", "y"));
        let mut nul = pageview(
            &site.id,
            "visitor-odd",
            "session-odd",
            "https://shop.test/n",
            t0 + 1,
        );
        nul.title = Some("a\0b".into());
        submit(
            &app,
            [
                Record::Pageview(row),
                Record::Pageview(nul),
                Record::Event(EventRow {
                    site_id: site.id.clone(),
                    visitor_id: "visitor-odd".into(),
                    session_id: "session-odd".into(),
                    tab_id: "tab\t1".into(),
                    name: "odd event".into(),
                    props: json!({ "text": odd, "nul": "x\u{0}y" }).to_string(),
                    url: Some(url.clone()),
                    at: t0 + 2,
                }),
                Record::Identify(IdentifyRow {
                    site_id: site.id.clone(),
                    visitor_id: "visitor-odd".into(),
                    user_id: Some("user\t\\1".into()),
                    traits: json!({ "name": odd, "k\u{0}": "v\u{0}" }).to_string(),
                    at: t0 + 3,
                }),
            ],
        )
        .await;
        let pv_path = format!("/api/sites/{}/pageviews", site.id);
        let body = app.wait_for_items(&pv_path, &owner.token, 2).await;
        let items = body["items"].as_array().expect("items");
        let pg = matches!(app.backend, helpers::Backend::Postgres);
        if pg {
            assert_eq!(items[0]["title"], "a\u{FFFD}b");
        }
        assert_eq!(items[1]["title"], odd);
        assert_eq!(items[1]["url"], url);
        assert_eq!(items[1]["referrer"], "https://other.test/\\x\ty");
        let ev = app
            .wait_for_items(&format!("/api/sites/{}/events", site.id), &owner.token, 1)
            .await;
        assert_eq!(ev["items"][0]["props"]["text"], odd);
        assert_eq!(
            ev["items"][0]["props"]["nul"], "x\u{0}y",
            "JSON keeps NUL escaped"
        );
        assert_eq!(ev["items"][0]["tab"], "tab\t1");
        assert_eq!(ev["items"][0]["name"], "odd event");
        let profile = wait_until(
            &app,
            &format!("/api/sites/{}/visitors/visitor-odd", site.id),
            &owner.token,
            |b| b["user_id"].is_string(),
        )
        .await;
        assert_eq!(profile["user_id"], "user\t\\1");
        assert_eq!(profile["traits"]["name"], odd);
        if pg {
            assert_eq!(profile["traits"]["k\u{FFFD}"], "v\u{FFFD}", "{profile}");
        }
        assert_eq!(profile["pageviews"], 2);
    }
);
