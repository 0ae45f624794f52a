//! Targeting tests: segments and campaigns over real sockets, the car dealer's scenario end to end.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::on_both_databases;

fn model3() -> Value {
    json!({"type": "Car", "brand": "Tesla", "model": "Model 3", "name": "Tesla Model 3 Long Range", "price": 41990, "currency": "USD", "sku": "TM3-LR"})
}

async fn view_listing(ws: &mut Ws, n: usize) {
    send(ws, json!({"type": "page", "url": format!("https://shop.test/cars/tesla-model-3?listing={n}"), "title": "Model 3", "item": model3()})).await;
}

/// A segment "viewed three Model 3 listings" and a campaign that offers financing on entering it.
async fn car_dealer(app: &TestApp, token: &str, site: &str, extra: Value) -> (String, String) {
    let (status, seg) = app
        .post(
            &format!("/api/sites/{site}/segments"),
            token,
            json!({"name": "Model 3 shoppers", "conditions": [{"type": "item", "brand": "Tesla", "model": "Model 3", "min": 3}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{seg}");
    let segment = seg["id"].as_str().expect("segment id").to_string();
    let mut campaign = json!({
        "name": "Model 3 financing", "enabled": true, "priority": 10,
        "trigger": {"type": "segment_entered", "segment": segment},
        "message": {"title": "Financing for your {{model}}", "body": "{{brand}} from {{price}} {{currency}}", "style": "modal",
                    "cta": {"label": "See rates", "url": "https://shop.test/financing?model={{model}}"}},
        "frequency": {"per_visitor": 1},
        "goal": {"type": "pageview", "match": "prefix", "value": "/financing"},
        "goal_window_seconds": 3600
    });
    if let (Value::Object(c), Value::Object(e)) = (&mut campaign, extra) {
        c.extend(e);
    }
    let (status, camp) = app
        .post(&format!("/api/sites/{site}/campaigns"), token, campaign)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{camp}");
    (
        segment,
        camp["id"].as_str().expect("campaign id").to_string(),
    )
}

async fn campaign_stats(
    app: &TestApp,
    token: &str,
    site: &str,
    campaign: &str,
    until: impl Fn(&Value) -> bool,
) -> Value {
    let mut last = Value::Null;
    for _ in 0..100 {
        let (status, body) = app
            .get(&format!("/api/sites/{site}/campaigns/{campaign}"), token)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if until(&body["stats"]) {
            return body["stats"].clone();
        }
        last = body;
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    panic!("campaign stats never reached the expected state; last: {last}");
}

on_both_databases!(
    the_third_model_3_listing_brings_the_financing_offer_and_the_goal_counts_a_conversion,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("dealer@shop.test").await;
        let (segment, campaign) = car_dealer(&app, &owner.token, &site.id, json!({})).await;
        let (mut admin, _) = app.admin(&site.id, &owner.token).await;
        let (mut v, _) = app
            .visitor(
                &site.key,
                "visitor-buyer1",
                "session-0001",
                "tab-00001",
                "https://shop.test/",
            )
            .await;

        view_listing(&mut v, 1).await;
        view_listing(&mut v, 2).await;
        expect_no_frame(&mut v, "message", Duration::from_millis(400)).await;
        view_listing(&mut v, 3).await;
        let m = expect_frame(&mut v, "message").await;
        assert_eq!(m["title"], "Financing for your Model 3");
        assert_eq!(m["body"], "Tesla from 41990 USD");
        assert_eq!(m["style"], "modal");
        assert_eq!(m["cta"]["url"], "https://shop.test/financing?model=Model+3");

        // The admin sees the segment badge and the interests; the API lists the segment's members.
        // Interests arrive with each listing; the third also brings the segment.
        let first = expect_frame(&mut admin, "segments").await;
        assert_eq!(first["interests"]["models"]["Model 3"], 1);
        assert_eq!(first["segments"], json!([]));
        let seg = loop {
            let f = expect_frame(&mut admin, "segments").await;
            if f["segments"] != json!([]) {
                break f;
            }
        };
        assert_eq!(seg["segments"], json!([segment]));
        assert_eq!(seg["interests"]["models"]["Model 3"], 3);
        let (_, members) = app
            .get(
                &format!("/api/sites/{}/segments/{segment}/members", site.id),
                &owner.token,
            )
            .await;
        assert_eq!(members["items"][0]["visitor"], "visitor-buyer1");
        let (_, snap) = app.admin(&site.id, &owner.token).await;
        assert_eq!(snap["visitors"][0]["segments"], json!([segment]));
        assert_eq!(snap["visitors"][0]["interests"]["brands"]["Tesla"], 3);

        // Shown, clicked, then the goal page.
        let id = m["id"].as_str().expect("id").to_string();
        send(
            &mut v,
            json!({"type": "ack", "message": id, "status": "shown"}),
        )
        .await;
        send(
            &mut v,
            json!({"type": "ack", "message": id, "status": "clicked"}),
        )
        .await;
        send(
            &mut v,
            json!({"type": "page", "url": "https://shop.test/financing"}),
        )
        .await;
        let stats = campaign_stats(&app, &owner.token, &site.id, &campaign, |s| {
            s["converted"] == 1 && s["clicked"] == 1
        })
        .await;
        assert_eq!(stats["triggered"], 1);
        assert_eq!(stats["sent"], 1);
        assert_eq!(stats["control"], 0);
        assert_eq!(stats["delivered"], 1);
        assert_eq!(stats["shown"], 1);
        assert_eq!(stats["conversion_rate"], 1.0);
        // A fourth listing does not send again (once per visitor).
        view_listing(&mut v, 4).await;
        expect_no_frame(&mut v, "message", Duration::from_millis(400)).await;
    }
);

on_both_databases!(
    the_frequency_cap_holds_across_two_tabs_and_a_reconnect,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("dealer@shop.test").await;
        let (_segment, campaign) = car_dealer(&app, &owner.token, &site.id, json!({})).await;
        let (mut t1, _) = app
            .visitor(
                &site.key,
                "visitor-buyer2",
                "session-0001",
                "tab-00001",
                "https://shop.test/",
            )
            .await;
        let (mut t2, _) = app
            .visitor(
                &site.key,
                "visitor-buyer2",
                "session-0001",
                "tab-00002",
                "https://shop.test/",
            )
            .await;
        view_listing(&mut t1, 1).await;
        view_listing(&mut t2, 2).await;
        view_listing(&mut t1, 3).await;
        // One message, to both tabs of the visitor.
        assert_eq!(
            expect_frame(&mut t1, "message").await["title"],
            "Financing for your Model 3"
        );
        assert_eq!(
            expect_frame(&mut t2, "message").await["title"],
            "Financing for your Model 3"
        );
        campaign_stats(&app, &owner.token, &site.id, &campaign, |s| s["sent"] == 1).await;
        // Both tabs reconnect (a network drop) and browse on: nothing more.
        drop(t1);
        drop(t2);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (mut t3, _) = app
            .visitor(
                &site.key,
                "visitor-buyer2",
                "session-0001",
                "tab-00001",
                "https://shop.test/",
            )
            .await;
        for n in 4..8 {
            view_listing(&mut t3, n).await;
        }
        expect_no_frame(&mut t3, "message", Duration::from_millis(500)).await;
        // A new session long after (the hub has forgotten the visitor): the per-visitor cap is
        // held by the stored deliveries.
        drop(t3);
        tokio::time::sleep(Duration::from_millis(600)).await;
        app.state
            .targeting
            .sweep(lookout::db::now_ms() + 31 * 60 * 1000);
        let (mut t4, _) = app
            .visitor(
                &site.key,
                "visitor-buyer2",
                "session-0002",
                "tab-00009",
                "https://shop.test/",
            )
            .await;
        for n in 8..12 {
            view_listing(&mut t4, n).await;
        }
        expect_no_frame(&mut t4, "message", Duration::from_millis(500)).await;
        let stats = campaign_stats(&app, &owner.token, &site.id, &campaign, |_| true).await;
        assert_eq!(stats["sent"], 1);
    }
);

on_both_databases!(
    a_control_group_visitor_gets_nothing_but_is_counted_and_converts,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("dealer@shop.test").await;
        let (_segment, campaign) =
            car_dealer(&app, &owner.token, &site.id, json!({"control_percent": 50})).await;
        let held = (0..200)
            .map(|i| format!("visitor-ctl{i:04}"))
            .find(|v| lookout::targeting::in_control(v, &campaign, 50))
            .expect("some visitor falls in the control group");
        let treated = (0..200)
            .map(|i| format!("visitor-trt{i:04}"))
            .find(|v| !lookout::targeting::in_control(v, &campaign, 50))
            .expect("some visitor is treated");
        let (mut c, _) = app
            .visitor(
                &site.key,
                &held,
                "session-c001",
                "tab-c0001",
                "https://shop.test/",
            )
            .await;
        let (mut t, _) = app
            .visitor(
                &site.key,
                &treated,
                "session-t001",
                "tab-t0001",
                "https://shop.test/",
            )
            .await;
        for n in 1..=3 {
            view_listing(&mut c, n).await;
            view_listing(&mut t, n).await;
        }
        expect_frame(&mut t, "message").await;
        expect_no_frame(&mut c, "message", Duration::from_millis(500)).await;
        send(
            &mut c,
            json!({"type": "page", "url": "https://shop.test/financing/apply"}),
        )
        .await;
        let stats = campaign_stats(&app, &owner.token, &site.id, &campaign, |s| {
            s["control_converted"] == 1
        })
        .await;
        assert_eq!(stats["triggered"], 2);
        assert_eq!(stats["sent"], 1);
        assert_eq!(stats["control"], 1);
        assert_eq!(stats["converted"], 0);
        assert_eq!(stats["control_conversion_rate"], 1.0);
        assert_eq!(stats["conversion_rate"], 0.0);
        assert_eq!(stats["lift"], -1.0);
    }
);

on_both_databases!(
    rules_of_one_site_never_act_on_another_sites_visitors,
    |app: TestApp| async move {
        let (alice, site_a) = app.owner_with_site("alice@a.test").await;
        let (_bob, site_b) = app.owner_with_site("bob@b.test").await;
        let (segment, _campaign) = car_dealer(&app, &alice.token, &site_a.id, json!({})).await;
        let (mut vb, _) = app
            .visitor(
                &site_b.key,
                "visitor-onb01",
                "session-0001",
                "tab-00001",
                "https://b.test/",
            )
            .await;
        for n in 1..=4 {
            view_listing(&mut vb, n).await;
        }
        expect_no_frame(&mut vb, "message", Duration::from_millis(500)).await;
        let (_, members) = app
            .get(
                &format!("/api/sites/{}/segments/{segment}/members", site_a.id),
                &alice.token,
            )
            .await;
        assert_eq!(members["items"], json!([]));
        // Site A's segment id means nothing on site B.
        let (bob_status, _) = app
            .get(
                &format!("/api/sites/{}/segments/{segment}", site_b.id),
                &alice.token,
            )
            .await;
        assert_eq!(bob_status, StatusCode::NOT_FOUND);
    }
);

on_both_databases!(
    messages_can_target_a_segment_and_test_mode_reaches_only_the_chosen_visitor,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("dealer@shop.test").await;
        let (_, seg) = app
        .post(&format!("/api/sites/{}/segments", site.id), &owner.token,
            json!({"name": "On financing", "conditions": [{"type": "current_url", "match": "prefix", "value": "/financing"}]}))
        .await;
        let segment = seg["id"].as_str().expect("id").to_string();
        let (status, camp) = app
            .post(
                &format!("/api/sites/{}/campaigns", site.id),
                &owner.token,
                json!({
            "name": "Try", "enabled": true, "trigger": {"type": "event", "name": "lead"},
            "message": {"title": "Thanks {{user_id}}"}, "test_visitor": "visitor-tester"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{camp}");
        let (mut a, _) = app
            .visitor(
                &site.key,
                "visitor-tester",
                "session-0001",
                "tab-00001",
                "https://shop.test/financing",
            )
            .await;
        let (mut b, _) = app
            .visitor(
                &site.key,
                "visitor-other1",
                "session-0002",
                "tab-00002",
                "https://shop.test/",
            )
            .await;
        let (mut admin, _) = app.admin(&site.id, &owner.token).await;
        send(&mut admin, json!({"type": "send", "ref": 1, "to": {"segment": segment}, "message": {"title": "Rates today"}})).await;
        assert_eq!(expect_frame(&mut admin, "sent").await["delivered"], 1);
        assert_eq!(
            expect_frame(&mut a, "message").await["title"],
            "Rates today"
        );
        expect_no_frame(&mut b, "message", Duration::from_millis(300)).await;

        send(&mut a, json!({"type": "identify", "user_id": "ann"})).await;
        send(&mut a, json!({"type": "event", "name": "lead"})).await;
        send(&mut b, json!({"type": "event", "name": "lead"})).await;
        assert_eq!(expect_frame(&mut a, "message").await["title"], "Thanks ann");
        expect_no_frame(&mut b, "message", Duration::from_millis(300)).await;
        let id = camp["id"].as_str().expect("id");
        let stats =
            campaign_stats(&app, &owner.token, &site.id, id, |s| s["test_sends"] == 1).await;
        assert_eq!(
            stats["triggered"], 0,
            "test sends are not counted as real ones"
        );
    }
);

on_both_databases!(
    a_time_on_page_campaign_fires_from_a_timer_not_an_event,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("dealer@shop.test").await;
        let (status, _) = app
            .post(
                &format!("/api/sites/{}/campaigns", site.id),
                &owner.token,
                json!({
            "name": "Dwell", "enabled": true, "trigger": {"type": "time_on_page", "seconds": 1},
            "message": {"title": "Questions about {{title}}?"}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        let (mut v, _) = app
            .visitor(
                &site.key,
                "visitor-dwell1",
                "session-0001",
                "tab-00001",
                "https://shop.test/cars/bmw-i4",
            )
            .await;
        let m = expect_frame(&mut v, "message").await;
        assert_eq!(m["title"], "Questions about Page?");
    }
);

on_both_databases!(
    invalid_rule_definitions_are_refused_with_a_clear_error,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("dealer@shop.test").await;
        let segs = format!("/api/sites/{}/segments", site.id);
        let bad_segments = [
            (json!({"name": "x", "conditions": []}), "conditions"),
            (
                json!({"name": "", "conditions": [{"type": "device", "value": "mobile"}]}),
                "name",
            ),
            (
                json!({"name": "x", "conditions": [{"type": "moon_phase"}]}),
                "conditions[0]",
            ),
            (
                json!({"name": "x", "conditions": [{"type": "current_url", "match": "regex", "value": "(unclosed"}]}),
                "regex",
            ),
            (
                json!({"name": "x", "conditions": [{"type": "current_url", "match": "regex", "value": "(a{1000}){1000}"}]}),
                "regex",
            ),
            (
                json!({"name": "x", "conditions": [{"type": "current_url", "match": "fuzzy", "value": "/"}]}),
                "conditions[0]",
            ),
            (
                json!({"name": "x", "conditions": [{"type": "pages", "match": "prefix", "value": "/", "min": 0}]}),
                "min",
            ),
            (
                json!({"name": "x", "conditions": [{"type": "item"}]}),
                "attribute",
            ),
            (
                json!({"name": "x", "conditions": [{"type": "item", "min_price": 9, "max_price": 1}]}),
                "min_price",
            ),
            (
                json!({"name": "x", "conditions": [{"type": "utm", "param": "x", "value": "y"}]}),
                "param",
            ),
            (
                json!({"name": "x", "conditions": [{"type": "device", "value": "toaster"}]}),
                "value",
            ),
            (
                json!({"name": "x", "conditions": [{"type": "sessions"}]}),
                "min or max",
            ),
            (
                json!({"name": "x", "conditions": [{"type": "time_on_site", "min_seconds": 0}]}),
                "min_seconds",
            ),
            (
                json!({"name": "x", "match": "some", "conditions": [{"type": "device", "value": "mobile"}]}),
                "match",
            ),
            (
                json!({"name": "x", "conditions": [{"type": "device", "value": "mobile", "extra": 1}]}),
                "extra",
            ),
        ];
        for (body, hint) in bad_segments {
            let (status, err) = app.post(&segs, &owner.token, body.clone()).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body} → {err}");
            assert_eq!(err["error"]["code"], "invalid_rule");
            let msg = err["error"]["message"].as_str().unwrap_or_default();
            assert!(
                msg.contains(hint),
                "message for {body} should mention {hint}: {msg}"
            );
        }
        let camps = format!("/api/sites/{}/campaigns", site.id);
        let ok = json!({"name": "c", "trigger": {"type": "event", "name": "x"}, "message": {"title": "hi"}});
        let bad_campaigns = [
            (
                json!({"trigger": {"type": "segment_entered", "segment": "nope"}}),
                "segment",
            ),
            (json!({"trigger": {"type": "telepathy"}}), "trigger"),
            (
                json!({"message": {"title": "Hi {{shoe_size}}"}}),
                "shoe_size",
            ),
            (json!({"message": {"title": ""}}), "message"),
            (
                json!({"message": {"title": "x", "cta": {"label": "Go", "url": "javascript:alert(1)"}}}),
                "cta",
            ),
            (json!({"frequency": {"per_visitor": 0}}), "frequency"),
            (json!({"frequency": {"max_messages": 2}}), "period_seconds"),
            (json!({"schedule": {"starts_at": "tomorrow"}}), "starts_at"),
            (
                json!({"schedule": {"starts_at": "2026-02-01T00:00:00Z", "ends_at": "2026-01-01T00:00:00Z"}}),
                "before",
            ),
            (json!({"control_percent": 95}), "control_percent"),
            (
                json!({"goal": {"type": "pageview", "match": "regex", "value": "["}}),
                "regex",
            ),
            (json!({"goal_window_seconds": 0}), "goal_window_seconds"),
            (json!({"test_visitor": "no spaces allowed"}), "test_visitor"),
            (json!({"segment": "nope"}), "segment"),
        ];
        for (patch, hint) in bad_campaigns {
            let mut body = ok.clone();
            if let (Value::Object(b), Value::Object(p)) = (&mut body, patch.clone()) {
                b.extend(p);
            }
            let (status, err) = app.post(&camps, &owner.token, body.clone()).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body} → {err}");
            assert_eq!(err["error"]["code"], "invalid_rule");
            let msg = err["error"]["message"].as_str().unwrap_or_default();
            assert!(
                msg.contains(hint),
                "message for {patch} should mention {hint}: {msg}"
            );
        }
        // Malformed JSON is a 400; a viewer may not create rules.
        let (status, _) = app.request("POST", &segs, Some(&owner.token), None).await;
        assert!(status == StatusCode::UNSUPPORTED_MEDIA_TYPE || status == StatusCode::BAD_REQUEST);
        let viewer = app.signup("viewer@shop.test").await;
        app.post(
            &format!("/api/sites/{}/members", site.id),
            &owner.token,
            json!({"email": "viewer@shop.test", "role": "viewer"}),
        )
        .await;
        let (status, _) = app.post(&camps, &viewer.token, ok).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
);

on_both_databases!(
    segments_and_campaigns_can_be_listed_changed_and_deleted,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("dealer@shop.test").await;
        let (segment, campaign) =
            car_dealer(&app, &owner.token, &site.id, json!({"enabled": false})).await;
        let (_, list) = app
            .get(&format!("/api/sites/{}/segments", site.id), &owner.token)
            .await;
        assert_eq!(list["items"][0]["name"], "Model 3 shoppers");
        assert_eq!(list["items"][0]["live_members"], 0);
        let (_, list) = app
            .get(&format!("/api/sites/{}/campaigns", site.id), &owner.token)
            .await;
        assert_eq!(list["items"][0]["enabled"], false);
        assert_eq!(list["items"][0]["stats"]["triggered"], 0);

        let (status, c) = app
            .request(
                "PATCH",
                &format!("/api/sites/{}/campaigns/{campaign}", site.id),
                Some(&owner.token),
                Some(json!({"enabled": true, "priority": 3})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{c}");
        assert_eq!(c["enabled"], true);
        assert_eq!(c["priority"], 3);
        assert_eq!(
            c["name"], "Model 3 financing",
            "fields not in the patch are kept"
        );
        let (status, s) = app
            .request(
                "PATCH",
                &format!("/api/sites/{}/segments/{segment}", site.id),
                Some(&owner.token),
                Some(json!({"name": "M3"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{s}");
        assert_eq!(s["name"], "M3");
        assert_eq!(s["conditions"][0]["model"], "Model 3");

        // A segment in use cannot be deleted; after the campaign goes, it can.
        let (status, err) = app
            .request(
                "DELETE",
                &format!("/api/sites/{}/segments/{segment}", site.id),
                Some(&owner.token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(err["error"]["code"], "segment_in_use");
        let (status, _) = app
            .request(
                "DELETE",
                &format!("/api/sites/{}/campaigns/{campaign}", site.id),
                Some(&owner.token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = app
            .request(
                "DELETE",
                &format!("/api/sites/{}/segments/{segment}", site.id),
                Some(&owner.token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = app
            .get(
                &format!("/api/sites/{}/campaigns/{campaign}", site.id),
                &owner.token,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
);

on_both_databases!(
    a_new_segment_applies_at_once_to_visitors_already_on_the_site,
    |app: TestApp| async move {
        let (owner, site) = app.owner_with_site("dealer@shop.test").await;
        let (mut admin, _) = app.admin(&site.id, &owner.token).await;
        let (mut v, _) = app
            .visitor(
                &site.key,
                "visitor-pro01",
                "session-0001",
                "tab-00001",
                "https://shop.test/",
            )
            .await;
        send(
            &mut v,
            json!({"type": "identify", "user_id": "u1", "traits": {"plan": "pro"}}),
        )
        .await;
        expect_frame(&mut admin, "identify").await;
        let (status, seg) = app
        .post(&format!("/api/sites/{}/segments", site.id), &owner.token,
            json!({"name": "Pro plan", "conditions": [{"type": "trait", "key": "plan", "value": "pro"}]}))
        .await;
        assert_eq!(status, StatusCode::CREATED, "{seg}");
        assert_eq!(
            seg["live_members"], 1,
            "evaluated on creation, not on the next event"
        );
        let id = seg["id"].as_str().expect("id");
        assert_eq!(
            expect_frame(&mut admin, "segments").await["segments"],
            json!([id])
        );
        send(&mut admin, json!({"type": "send", "ref": 1, "to": {"segment": id}, "message": {"title": "Pro offer"}})).await;
        assert_eq!(expect_frame(&mut admin, "sent").await["delivered"], 1);
        assert_eq!(expect_frame(&mut v, "message").await["title"], "Pro offer");
    }
);
