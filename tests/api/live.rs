//! Live channel tests: visitor and admin sockets over real tokio-tungstenite clients.

use std::time::Duration;

use futures_util::SinkExt;
use reqwest::StatusCode;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::*;
use crate::on_both_databases;

const URL: &str = "https://shop.test/cars/tesla-model-3";

on_both_databases!(
    visitor_hello_gets_welcome_and_admin_sees_join_and_pageview,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("owner@shop.test").await;
        let (mut admin, snapshot) = app.admin(&site.id, &owner.token).await;
        assert_eq!(snapshot["visitors"], json!([]));

        let (_v, welcome) = app
            .visitor(&site.key, "visitor-0001", "session-0001", "tab-00001", URL)
            .await;
        assert_eq!(
            welcome,
            json!({"type": "welcome", "visitor": "visitor-0001", "session": "session-0001", "tab": "tab-00001"})
        );

        let joined = expect_frame(&mut admin, "joined").await;
        let v = &joined["visitor"];
        assert_eq!(v["visitor"], "visitor-0001");
        assert_eq!(v["session"], "session-0001");
        assert_eq!(v["url"], URL);
        assert_eq!(v["pageviews"], 1);
        assert_eq!(v["device"], "desktop");
        assert_eq!(v["browser"], "Chrome");
        assert_eq!(v["tabs"][0]["tab"], "tab-00001");
        let pv = expect_frame(&mut admin, "pageview").await;
        assert_eq!(pv["url"], URL);
        assert_eq!(pv["tab"], "tab-00001");
        assert_eq!(pv["referrer"], "https://search.test/?q=cars");

        // The page view is stored, and a new admin's snapshot and GET /live show the visitor.
        app.wait_for_items(
            &format!("/api/sites/{}/pageviews?visitor=visitor-0001", site.id),
            &owner.token,
            1,
        )
        .await;
        let (_a2, snap) = app.admin(&site.id, &owner.token).await;
        assert_eq!(snap["visitors"][0]["visitor"], "visitor-0001");
        let (status, live) = app
            .get(&format!("/api/sites/{}/live", site.id), &owner.token)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            live["visitors"][0]["tabs"].as_array().map(Vec::len),
            Some(1)
        );
    }
);

on_both_databases!(
    invalid_ids_in_hello_are_replaced_by_the_server,
    |app: TestApp| async move {
        let (_owner, site) = app.owner_with_site("owner@shop.test").await;
        let (_v, welcome) = app
            .visitor(&site.key, "bad id!", "short", "ok-tab-id-1", URL)
            .await;
        let visitor = welcome["visitor"].as_str().expect("visitor id");
        assert_ne!(visitor, "bad id!");
        assert!(lookout::domain::ClientId::parse(visitor).is_some());
        assert!(
            lookout::domain::ClientId::parse(welcome["session"].as_str().expect("session"))
                .is_some()
        );
        assert_eq!(welcome["tab"], "ok-tab-id-1");
    }
);

on_both_databases!(
    spa_navigation_event_and_identify_reach_the_admin_and_the_history,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("owner@shop.test").await;
        let (mut admin, _) = app.admin(&site.id, &owner.token).await;
        let (mut v, _) = app
            .visitor(&site.key, "visitor-0001", "session-0001", "tab-00001", URL)
            .await;
        expect_frame(&mut admin, "pageview").await;

        send(&mut v, json!({"type": "page", "url": "https://shop.test/cars/tesla-model-y", "title": "Model Y"})).await;
        let pv = expect_frame(&mut admin, "pageview").await;
        assert_eq!(pv["url"], "https://shop.test/cars/tesla-model-y");
        assert_eq!(pv["title"], "Model Y");
        // Without an explicit referrer, the previous page of the tab is the referrer.
        assert_eq!(pv["referrer"], URL);

        send(
            &mut v,
            json!({"type": "event", "name": "add_to_favorites", "props": {"sku": "M3-2024"}}),
        )
        .await;
        let ev = expect_frame(&mut admin, "event").await;
        assert_eq!(ev["name"], "add_to_favorites");
        assert_eq!(ev["props"]["sku"], "M3-2024");

        send(
            &mut v,
            json!({"type": "identify", "user_id": "u-42", "traits": {"plan": "gold"}}),
        )
        .await;
        let id = expect_frame(&mut admin, "identify").await;
        assert_eq!(id["user_id"], "u-42");
        assert_eq!(id["traits"]["plan"], "gold");
        send(&mut v, json!({"type": "visibility", "state": "hidden"})).await;

        let (_, snap) = app.admin(&site.id, &owner.token).await;
        assert_eq!(snap["visitors"][0]["pageviews"], 2);
        assert_eq!(snap["visitors"][0]["user_id"], "u-42");
        assert_eq!(
            snap["visitors"][0]["url"],
            "https://shop.test/cars/tesla-model-y"
        );

        let pvs = app
            .wait_for_items(
                &format!("/api/sites/{}/pageviews", site.id),
                &owner.token,
                2,
            )
            .await;
        assert_eq!(
            pvs["items"][0]["url"],
            "https://shop.test/cars/tesla-model-y"
        );
        let evs = app
            .wait_for_items(
                &format!("/api/sites/{}/events?name=add_to_favorites", site.id),
                &owner.token,
                1,
            )
            .await;
        assert_eq!(evs["items"][0]["props"]["sku"], "M3-2024");
        assert_eq!(
            evs["items"][0]["url"],
            "https://shop.test/cars/tesla-model-y"
        );
        // Identify is stored on the visitor's profile.
        let mut profile = serde_json::Value::Null;
        for _ in 0..50 {
            let (_, p) = app
                .get(
                    &format!("/api/sites/{}/visitors/visitor-0001", site.id),
                    &owner.token,
                )
                .await;
            if p["user_id"] == "u-42" {
                profile = p;
                break;
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        assert_eq!(profile["traits"]["plan"], "gold");
        assert_eq!(profile["pageviews"], 2);
        assert_eq!(profile["device"], "desktop");
    }
);

on_both_databases!(
    a_visitor_with_two_tabs_joins_once_and_leaves_after_the_last_tab_and_grace,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("owner@shop.test").await;
        let (mut admin, _) = app.admin(&site.id, &owner.token).await;
        let (mut tab1, _) = app
            .visitor(&site.key, "visitor-0001", "session-0001", "tab-00001", URL)
            .await;
        expect_frame(&mut admin, "joined").await;
        let (mut tab2, _) = app
            .visitor(&site.key, "visitor-0001", "session-0001", "tab-00002", URL)
            .await;
        // The second tab is a page view, not a second join.
        let next = expect_frame(&mut admin, "pageview").await;
        assert_eq!(next["tab"], "tab-00001");
        let next = expect_frame(&mut admin, "pageview").await;
        assert_eq!(next["tab"], "tab-00002");
        let (_, snap) = app.admin(&site.id, &owner.token).await;
        assert_eq!(snap["visitors"].as_array().map(Vec::len), Some(1));
        assert_eq!(
            snap["visitors"][0]["tabs"].as_array().map(Vec::len),
            Some(2)
        );

        tab1.close(None).await.expect("close tab 1");
        expect_no_frame(&mut admin, "left", Duration::from_millis(800)).await;
        tab2.close(None).await.expect("close tab 2");
        let left = expect_frame(&mut admin, "left").await;
        assert_eq!(left["visitor"], "visitor-0001");
        let (_, live) = app
            .get(&format!("/api/sites/{}/live", site.id), &owner.token)
            .await;
        assert_eq!(live["visitors"], json!([]));
    }
);

on_both_databases!(
    a_full_page_navigation_is_not_shown_as_leave_and_join,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("owner@shop.test").await;
        let (mut admin, _) = app.admin(&site.id, &owner.token).await;
        let (mut page1, _) = app
            .visitor(&site.key, "visitor-0001", "session-0001", "tab-00001", URL)
            .await;
        expect_frame(&mut admin, "joined").await;
        expect_frame(&mut admin, "pageview").await;
        // The browser closes the old page's socket and opens the next one within the grace period.
        page1.close(None).await.expect("close");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (_page2, _) = app
            .visitor(
                &site.key,
                "visitor-0001",
                "session-0001",
                "tab-00001",
                "https://shop.test/financing",
            )
            .await;
        let pv = expect_frame(&mut admin, "pageview").await;
        assert_eq!(pv["url"], "https://shop.test/financing");
        // Neither a left nor a second joined follows.
        let deadline = tokio::time::Instant::now() + Duration::from_millis(900);
        while let Some(f) = next_json_within(
            &mut admin,
            deadline.saturating_duration_since(tokio::time::Instant::now()),
        )
        .await
        {
            assert!(
                f["type"] != "left" && f["type"] != "joined",
                "unexpected {f}"
            );
        }
        let (_, snap) = app.admin(&site.id, &owner.token).await;
        assert_eq!(snap["visitors"][0]["pageviews"], 2);
    }
);

on_both_databases!(
    messages_reach_each_kind_of_target_with_the_right_delivered_count,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("owner@shop.test").await;
        let (mut admin, _) = app.admin(&site.id, &owner.token).await;
        let (mut a1, _) = app
            .visitor(&site.key, "visitor-000a", "session-000a", "tab-0000a1", URL)
            .await;
        let (mut a2, _) = app
            .visitor(&site.key, "visitor-000a", "session-000a", "tab-0000a2", URL)
            .await;
        let (mut b1, _) = app
            .visitor(&site.key, "visitor-000b", "session-000b", "tab-0000b1", URL)
            .await;
        let msg = json!({"title": "0% financing", "body": "This week only", "style": "toast", "cta": {"label": "See offer", "url": "https://shop.test/financing"}, "data": {"k": 1}});

        let cases = [
            (json!({"visitor": "visitor-000a"}), 2usize),
            (json!({"session": "session-000b"}), 1),
            (json!({"tab": "tab-0000a2"}), 1),
            (json!({"all": true}), 3),
            (json!({"visitor": "nobody-here"}), 0),
        ];
        for (i, (to, expected)) in cases.iter().enumerate() {
            send(
                &mut admin,
                json!({"type": "send", "ref": i, "to": to, "message": msg}),
            )
            .await;
            let sent = expect_frame(&mut admin, "sent").await;
            assert_eq!(sent["ref"], i, "{sent}");
            assert_eq!(sent["delivered"], *expected as u64, "target {to}");
        }
        // What each tab received: a1 got visitor + all, a2 got visitor + tab + all, b1 got session + all.
        for (ws, n) in [(&mut a1, 2), (&mut a2, 3), (&mut b1, 2)] {
            for _ in 0..n {
                let m = expect_frame(ws, "message").await;
                assert_eq!(m["title"], "0% financing");
                assert_eq!(m["style"], "toast");
                assert_eq!(m["cta"]["url"], "https://shop.test/financing");
                assert_eq!(m["data"]["k"], 1);
            }
            expect_no_frame(ws, "message", Duration::from_millis(200)).await;
        }
        // The REST API sends too, and an unknown segment is refused clearly.
        let (status, body) = app
            .post(
                &format!("/api/sites/{}/messages", site.id),
                &owner.token,
                json!({"to": {"all": true}, "message": msg}),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(body["delivered"], 3);
        let (status, body) = app
            .post(
                &format!("/api/sites/{}/messages", site.id),
                &owner.token,
                json!({"to": {"segment": "nope"}, "message": msg}),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["error"]["code"], "unknown_segment");
        send(
            &mut admin,
            json!({"type": "send", "ref": "s", "to": {"segment": "nope"}, "message": msg}),
        )
        .await;
        let err = expect_frame(&mut admin, "error").await;
        assert_eq!(err["code"], "unknown_segment");
        assert_eq!(err["ref"], "s");
    }
);

on_both_databases!(
    statuses_flow_from_the_visitor_to_admins_and_into_the_counts,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("owner@shop.test").await;
        let (mut admin, _) = app.admin(&site.id, &owner.token).await;
        let (mut v, _) = app
            .visitor(&site.key, "visitor-0001", "session-0001", "tab-00001", URL)
            .await;
        send(&mut admin, json!({"type": "send", "ref": 1, "to": {"visitor": "visitor-0001"}, "message": {"title": "Hi", "style": "modal"}})).await;
        let sent = expect_frame(&mut admin, "sent").await;
        let id = sent["message"].as_str().expect("message id").to_string();
        let delivered = expect_frame(&mut admin, "message_status").await;
        assert_eq!(delivered["status"], "delivered");
        assert_eq!(delivered["message"], id.as_str());
        let m = expect_frame(&mut v, "message").await;
        assert_eq!(m["id"], id.as_str());

        for status in ["shown", "clicked", "dismissed"] {
            send(
                &mut v,
                json!({"type": "ack", "message": id, "status": status}),
            )
            .await;
            let s = expect_frame(&mut admin, "message_status").await;
            assert_eq!(s["status"], status);
            assert_eq!(s["visitor"], "visitor-0001");
        }
        // An ack for a message this tab never received is ignored.
        send(
            &mut v,
            json!({"type": "ack", "message": "forged-message", "status": "clicked"}),
        )
        .await;
        expect_no_frame(&mut admin, "message_status", Duration::from_millis(300)).await;

        let list = app
            .wait_for_items(&format!("/api/sites/{}/messages", site.id), &owner.token, 1)
            .await;
        let mut item = list["items"][0].clone();
        for _ in 0..50 {
            if item["dismissed"] == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
            item = app
                .get(&format!("/api/sites/{}/messages", site.id), &owner.token)
                .await
                .1["items"][0]
                .clone();
        }
        assert_eq!(item["id"], id.as_str());
        assert_eq!(item["message"]["title"], "Hi");
        assert_eq!(item["to"], json!({"visitor": "visitor-0001"}));
        assert_eq!(
            (
                item["delivered"].clone(),
                item["shown"].clone(),
                item["clicked"].clone(),
                item["dismissed"].clone()
            ),
            (json!(1), json!(1), json!(1), json!(1))
        );
        let per_visitor = app
            .wait_for_items(
                &format!("/api/sites/{}/messages?visitor=visitor-0001", site.id),
                &owner.token,
                1,
            )
            .await;
        assert_eq!(
            per_visitor["items"][0]["statuses"].as_array().map(Vec::len),
            Some(4)
        );
    }
);

on_both_databases!(
    a_message_with_ttl_waits_for_an_offline_visitor,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("owner@shop.test").await;
        let (status, body) = app
        .post(
            &format!("/api/sites/{}/messages", site.id),
            &owner.token,
            json!({"to": {"visitor": "visitor-late1"}, "message": {"title": "Welcome back"}, "ttl": 600}),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(body["delivered"], 0);
        // Let the writer store the message before the visitor arrives.
        app.wait_for_items(&format!("/api/sites/{}/messages", site.id), &owner.token, 1)
            .await;
        let (mut v, _) = app
            .visitor(&site.key, "visitor-late1", "session-0001", "tab-00001", URL)
            .await;
        let m = expect_frame(&mut v, "message").await;
        assert_eq!(m["title"], "Welcome back");
        // Delivered once: a second tab later does not get it again.
        let (mut v2, _) = app
            .visitor(&site.key, "visitor-late1", "session-0001", "tab-00002", URL)
            .await;
        expect_no_frame(&mut v2, "message", Duration::from_millis(400)).await;
        // ttl only applies to one visitor.
        let (status, body) = app
            .post(
                &format!("/api/sites/{}/messages", site.id),
                &owner.token,
                json!({"to": {"all": true}, "message": {"title": "x"}, "ttl": 60}),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["error"]["code"], "invalid_ttl");
    }
);

on_both_databases!(viewers_watch_but_cannot_send, |app: TestApp| async move {
    let (owner, site) = app.owner_with_site("owner@shop.test").await;
    let viewer = app.signup("viewer@shop.test").await;
    let (status, _) = app
        .post(
            &format!("/api/sites/{}/members", site.id),
            &owner.token,
            json!({"email": "viewer@shop.test", "role": "viewer"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (mut vadmin, _) = app.admin(&site.id, &viewer.token).await;
    let (mut v, _) = app
        .visitor(&site.key, "visitor-0001", "session-0001", "tab-00001", URL)
        .await;
    expect_frame(&mut vadmin, "joined").await;
    send(
        &mut vadmin,
        json!({"type": "send", "ref": "x", "to": {"all": true}, "message": {"title": "nope"}}),
    )
    .await;
    let err = expect_frame(&mut vadmin, "error").await;
    assert_eq!(err["code"], "forbidden");
    assert_eq!(err["ref"], "x");
    expect_no_frame(&mut v, "message", Duration::from_millis(300)).await;
    let (status, body) = app
        .post(
            &format!("/api/sites/{}/messages", site.id),
            &viewer.token,
            json!({"to": {"all": true}, "message": {"title": "x"}}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
});

on_both_databases!(
    an_admin_of_one_site_never_sees_another_sites_visitors,
    |app: TestApp| async move {
        let (alice, site_a) = app.owner_with_site("alice@a.test").await;
        let (bob, site_b) = app.owner_with_site("bob@b.test").await;
        let (mut admin_a, _) = app.admin(&site_a.id, &alice.token).await;
        let (mut admin_b, _) = app.admin(&site_b.id, &bob.token).await;
        let (mut vb, _) = app
            .visitor(
                &site_b.key,
                "visitor-000b",
                "session-000b",
                "tab-0000b",
                URL,
            )
            .await;
        expect_frame(&mut admin_b, "joined").await;
        send(
            &mut vb,
            json!({"type": "event", "name": "secret", "props": {}}),
        )
        .await;
        send(
            &mut vb,
            json!({"type": "identify", "user_id": "bob-customer"}),
        )
        .await;
        expect_frame(&mut admin_b, "identify").await;
        // Alice's admin socket gets nothing of site B, and her sends do not reach B's visitors.
        send(&mut admin_a, json!({"type": "send", "ref": 1, "to": {"visitor": "visitor-000b"}, "message": {"title": "hi"}})).await;
        assert_eq!(expect_frame(&mut admin_a, "sent").await["delivered"], 0);
        send(
            &mut admin_a,
            json!({"type": "send", "ref": 2, "to": {"all": true}, "message": {"title": "hi"}}),
        )
        .await;
        assert_eq!(expect_frame(&mut admin_a, "sent").await["delivered"], 0);
        expect_no_frame(&mut vb, "message", Duration::from_millis(300)).await;
        let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
        while let Some(f) = next_json_within(
            &mut admin_a,
            deadline.saturating_duration_since(tokio::time::Instant::now()),
        )
        .await
        {
            assert!(!f.to_string().contains("visitor-000b"), "leaked: {f}");
        }
        // Alice's token on site B's admin socket is refused with 4403; so is her API access.
        let (mut ws, _) = tokio_tungstenite::connect_async(format!(
            "{}/ws/admin?site={}",
            app.ws_base, site_b.id
        ))
        .await
        .expect("connect");
        send(&mut ws, json!({"type": "auth", "token": alice.token})).await;
        assert_eq!(close_code(&mut ws).await, Some(4403));
        let (status, _) = app
            .get(&format!("/api/sites/{}/live", site_b.id), &alice.token)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
);

on_both_databases!(
    admin_sockets_refuse_missing_and_bad_auth,
    |app: TestApp| async move {
        let (_owner, site) = app.owner_with_site("owner@shop.test").await;
        let (mut ws, _) =
            tokio_tungstenite::connect_async(format!("{}/ws/admin?site={}", app.ws_base, site.id))
                .await
                .expect("connect");
        assert_eq!(
            close_code(&mut ws).await,
            Some(4408),
            "no auth within the timeout"
        );
        let (mut ws, _) =
            tokio_tungstenite::connect_async(format!("{}/ws/admin?site={}", app.ws_base, site.id))
                .await
                .expect("connect");
        send(&mut ws, json!({"type": "auth", "token": "garbage"})).await;
        assert_eq!(close_code(&mut ws).await, Some(4403));
        let (mut ws, _) =
            tokio_tungstenite::connect_async(format!("{}/ws/admin?site={}", app.ws_base, site.id))
                .await
                .expect("connect");
        ws.send(Message::Text("{not json".into()))
            .await
            .expect("send");
        assert_eq!(close_code(&mut ws).await, Some(4400));
    }
);

on_both_databases!(
    an_api_key_authenticates_the_admin_socket_of_its_site,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("owner@shop.test").await;
        let (_, key) = app
            .post(
                &format!("/api/sites/{}/api-keys", site.id),
                &owner.token,
                json!({"name": "backend"}),
            )
            .await;
        let key = key["key"].as_str().expect("key").to_string();
        let (mut admin, _) = app.admin(&site.id, &key).await;
        let (mut v, _) = app
            .visitor(&site.key, "visitor-0001", "session-0001", "tab-00001", URL)
            .await;
        expect_frame(&mut admin, "joined").await;
        send(&mut admin, json!({"type": "send", "ref": 1, "to": {"visitor": "visitor-0001"}, "message": {"title": "From the backend"}})).await;
        assert_eq!(expect_frame(&mut admin, "sent").await["delivered"], 1);
        assert_eq!(
            expect_frame(&mut v, "message").await["title"],
            "From the backend"
        );
    }
);

on_both_databases!(
    unknown_keys_and_foreign_origins_are_refused_before_the_upgrade,
    |app: TestApp| async move {
        let owner = app.signup("owner@shop.test").await;
        let strict = app
            .create_site(&owner.token, json!(["shop.test", "*.shop.test"]))
            .await;
        let open = app.create_site(&owner.token, json!([])).await;
        let status_of = |r: Result<Ws, tokio_tungstenite::tungstenite::Error>| match r {
            Ok(_) => 101,
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
            Err(e) => panic!("unexpected error {e}"),
        };
        assert_eq!(
            status_of(
                app.visitor_socket("pk_unknown", Some("https://shop.test"))
                    .await
            ),
            403
        );
        assert_eq!(
            status_of(
                app.visitor_socket(&strict.key, Some("https://evil.test"))
                    .await
            ),
            403
        );
        assert_eq!(status_of(app.visitor_socket(&strict.key, None).await), 403);
        assert_eq!(
            status_of(
                app.visitor_socket(&strict.key, Some("https://evilshop.test"))
                    .await
            ),
            403
        );
        assert_eq!(
            status_of(
                app.visitor_socket(&strict.key, Some("https://shop.test:8443"))
                    .await
            ),
            101
        );
        assert_eq!(
            status_of(
                app.visitor_socket(&strict.key, Some("http://www.shop.test"))
                    .await
            ),
            101
        );
        assert_eq!(status_of(app.visitor_socket(&open.key, None).await), 101);
        assert_eq!(
            status_of(
                app.visitor_socket(&open.key, Some("https://anything.test"))
                    .await
            ),
            101
        );
        // A domain change applies at once (the key cache is invalidated).
        let (status, _) = app
            .request(
                "PATCH",
                &format!("/api/sites/{}", open.id),
                Some(&owner.token),
                Some(json!({"domains": ["only.test"]})),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            status_of(
                app.visitor_socket(&open.key, Some("https://anything.test"))
                    .await
            ),
            403
        );
    }
);

/// Provokes a close code, then checks that what was accepted before is stored and that a good
/// client still works.
async fn provoke(
    app: &TestApp,
    owner: &Account,
    site: &Site,
    n: usize,
    bad: impl FnOnce(&mut Ws) -> futures_util::future::BoxFuture<'_, ()>,
) -> Option<u16> {
    let visitor = format!("visitor-{n:04}");
    let (mut ws, _) = app
        .visitor(&site.key, &visitor, "session-0001", "tab-00001", URL)
        .await;
    send(
        &mut ws,
        json!({"type": "page", "url": "https://shop.test/accepted-before"}),
    )
    .await;
    bad(&mut ws).await;
    let code = close_code(&mut ws).await;
    app.wait_for_items(
        &format!("/api/sites/{}/pageviews?visitor={visitor}", site.id),
        &owner.token,
        2,
    )
    .await;
    let (_good, welcome) = app
        .visitor(&site.key, "visitor-good", "session-good", "tab-good1", URL)
        .await;
    assert_eq!(welcome["type"], "welcome");
    code
}

on_both_databases!(
    every_close_code_of_the_contract_can_be_provoked_without_losing_accepted_data,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("owner@shop.test").await;
        let code = provoke(&app, &owner, &site, 1, |ws| {
            Box::pin(async move {
                ws.send(Message::Text("{\"type\":".into()))
                    .await
                    .expect("send");
            })
        })
        .await;
        assert_eq!(code, Some(4400), "malformed JSON");
        let code = provoke(&app, &owner, &site, 2, |ws| {
            Box::pin(async move {
                send(ws, json!({"type": "page", "url": "javascript:alert(1)"})).await;
            })
        })
        .await;
        assert_eq!(code, Some(4400), "bad URL scheme");
        let code = provoke(&app, &owner, &site, 3, |ws| Box::pin(async move {
        send(ws, json!({"type": "event", "name": "x", "props": {"a": {"b": {"c": {"d": {"e": 1}}}}}})).await;
    })).await;
        assert_eq!(code, Some(4400), "props too deep");
        let code = provoke(&app, &owner, &site, 4, |ws| {
            Box::pin(async move {
                ws.send(Message::Text(
                    format!("{{\"type\":\"event\",\"name\":\"{}\"}}", "x".repeat(40_000)).into(),
                ))
                .await
                .expect("send");
            })
        })
        .await;
        assert_eq!(code, Some(4413), "frame too large");
        let code = provoke(&app, &owner, &site, 5, |ws| {
            Box::pin(async move {
                for i in 0..200 {
                    if ws
                        .send(Message::Text(
                            json!({"type": "event", "name": format!("e{i}")})
                                .to_string()
                                .into(),
                        ))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            })
        })
        .await;
        assert_eq!(code, Some(4429), "rate limited");

        // No hello in time, and a first frame that is not a hello.
        let mut ws = app.visitor_socket(&site.key, None).await.expect("connect");
        assert_eq!(close_code(&mut ws).await, Some(4408));
        let mut ws = app.visitor_socket(&site.key, None).await.expect("connect");
        send(&mut ws, json!({"type": "page", "url": URL})).await;
        assert_eq!(close_code(&mut ws).await, Some(4400));
        let mut ws = app.visitor_socket(&site.key, None).await.expect("connect");
        ws.send(Message::Binary(vec![1u8, 2, 3].into()))
            .await
            .expect("send");
        assert_eq!(close_code(&mut ws).await, Some(4400));
    }
);

on_both_databases!(
    graceful_shutdown_closes_sockets_with_going_away_after_storing_their_data,
    |mut app: TestApp| async move {
        let (owner, site) = app.owner_with_site("owner@shop.test").await;
        let (mut v, _) = app
            .visitor(&site.key, "visitor-0001", "session-0001", "tab-00001", URL)
            .await;
        for i in 0..50 {
            send(&mut v, json!({"type": "event", "name": format!("e{i}")})).await;
            if i % 10 == 9 {
                tokio::time::sleep(Duration::from_millis(600)).await;
            }
        }
        let backend = app.backend;
        let dir = app.take_dir();
        let url = app.database_url.clone();
        let stopping = tokio::spawn(async move {
            app.stop().await;
            app
        });
        assert_eq!(close_code(&mut v).await, Some(1001));
        drop(stopping.await.expect("stopped"));
        let app = spawn_with(test_settings(&url), backend, dir).await;
        let (status, events) = app
            .get(
                &format!(
                    "/api/sites/{}/events?visitor=visitor-0001&limit=1000",
                    site.id
                ),
                &owner.token,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(events["items"].as_array().map(Vec::len), Some(50));
    }
);

#[tokio::test]
async fn connections_beyond_the_per_ip_and_per_site_limits_are_refused_with_429() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("lookout.db").display());
    let mut settings = test_settings(&url);
    settings.limits.max_connections_per_ip = 2;
    settings.limits.max_connections_per_site = 3;
    let app = spawn_with(settings, Backend::Sqlite, Some(dir)).await;
    let (_owner, site) = app.owner_with_site("owner@shop.test").await;
    let status_of = |r: Result<Ws, tokio_tungstenite::tungstenite::Error>| match r {
        Ok(_) => 101,
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("unexpected error {e}"),
    };
    let (_a, _) = app
        .visitor(&site.key, "visitor-0001", "session-0001", "tab-00001", URL)
        .await;
    let (_b, _) = app
        .visitor(&site.key, "visitor-0002", "session-0002", "tab-00002", URL)
        .await;
    assert_eq!(
        status_of(app.visitor_socket(&site.key, None).await),
        429,
        "third socket from one IP"
    );
    // From other source addresses the per-site limit (3) applies.
    let from = |ip: [u8; 4]| {
        let key = site.key.clone();
        let port = app.base.rsplit(':').next().expect("port").to_string();
        async move {
            let socket = tokio::net::TcpSocket::new_v4().expect("socket");
            socket
                .bind(std::net::SocketAddr::from((ip, 0)))
                .expect("bind source address");
            let stream = socket
                .connect(format!("127.0.0.1:{port}").parse().expect("addr"))
                .await
                .expect("connect");
            let req = format!("ws://127.0.0.1:{port}/ws/visitor?site={key}");
            tokio_tungstenite::client_async(req, stream)
                .await
                .map(|(ws, _)| ws)
        }
    };
    let third = from([127, 0, 0, 2])
        .await
        .expect("third socket of the site, from another IP");
    let refused = match from([127, 0, 0, 3]).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        other => panic!("expected 429, got {:?}", other.map(|_| "an upgrade")),
    };
    assert_eq!(refused, 429, "fourth socket of the site");
    drop(third);
    let (status, metrics) = app.request("GET", "/metrics", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let metrics = metrics.as_str().unwrap_or_default().to_string();
    assert!(
        metrics.contains("reason=\"ip_connection_limit\""),
        "refusal counted"
    );
    assert!(
        metrics.contains("reason=\"site_connection_limit\""),
        "refusal counted"
    );
}

on_both_databases!(
    closing_one_of_several_tabs_updates_the_visitor_for_admins,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("owner@shop.test").await;
        let (mut admin, _) = app.admin(&site.id, &owner.token).await;
        let (t1, _) = app
            .visitor(
                &site.key,
                "visitor-0001",
                "session-0001",
                "tab-00001",
                "https://shop.test/?utm_source=newsletter",
            )
            .await;
        let joined = expect_frame(&mut admin, "joined").await;
        assert_eq!(
            joined["visitor"]["landing_url"],
            "https://shop.test/?utm_source=newsletter"
        );
        let (_t2, _) = app
            .visitor(
                &site.key,
                "visitor-0001",
                "session-0001",
                "tab-00002",
                "https://shop.test/financing",
            )
            .await;
        drop(t1);
        let update = expect_frame(&mut admin, "visitor").await;
        assert_eq!(update["visitor"]["tabs"].as_array().map(Vec::len), Some(1));
        assert_eq!(update["visitor"]["url"], "https://shop.test/financing");
        // Same-site referrers are navigations, not sources: the stats count the external one only.
        let (status, stats) = app
            .get(&format!("/api/sites/{}/stats", site.id), &owner.token)
            .await;
        assert_eq!(status, StatusCode::OK);
        for _ in 0..50 {
            let (_, s) = app
                .get(&format!("/api/sites/{}/stats", site.id), &owner.token)
                .await;
            if s["top_referrers"].as_array().is_some_and(|a| !a.is_empty()) {
                assert_eq!(
                    s["top_referrers"],
                    json!([{"referrer": "https://search.test/?q=cars", "count": 1}])
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        panic!("no referrer counted: {stats}");
    }
);
