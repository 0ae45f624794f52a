//! Cluster tests: several nodes on one Redis and one fresh Postgres database. In-process nodes
//! for most; separate `lookout` processes where a node must die abruptly; a private
//! redis-server for the outage test. Skipped (with a message) unless LOOKOUT_TEST_POSTGRES and
//! LOOKOUT_TEST_REDIS are set; CI sets both.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use lookout::config::Secret;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

const URL: &str = "https://shop.test/cars/tesla-model-3";

fn redis_url() -> Option<String> {
    let url = std::env::var("LOOKOUT_TEST_REDIS").ok();
    if url.is_none() {
        eprintln!("skipped: set LOOKOUT_TEST_REDIS=redis://127.0.0.1:6379 (and LOOKOUT_TEST_POSTGRES) to run the cluster tests");
    }
    url
}

async fn node(database_url: &str, redis: &str) -> TestApp {
    let mut settings = test_settings(database_url);
    settings.redis_url = Some(Secret(redis.to_string()));
    spawn_with(settings, Backend::Postgres, None).await
}

/// Nodes sharing one fresh Postgres database and a Redis.
async fn cluster(n: usize) -> Option<(Vec<TestApp>, String, String)> {
    let redis = redis_url()?;
    let db = fresh_postgres().await?;
    let mut nodes = Vec::new();
    for _ in 0..n {
        nodes.push(node(&db, &redis).await);
    }
    Some((nodes, db, redis))
}

/// Waits until `n` nodes listen on the site's channel (subscriptions are asynchronous).
async fn wait_for_subscribers(redis: &str, site: &str, n: i64) {
    let client = redis::Client::open(redis).expect("redis url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis connects");
    for _ in 0..100 {
        let counts: Vec<(String, i64)> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(format!("lk:s:{site}"))
            .query_async(&mut conn)
            .await
            .expect("numsub");
        if counts.first().is_some_and(|(_, c)| *c >= n) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    panic!("{n} nodes never subscribed to site {site}");
}

#[tokio::test]
async fn a_visitor_on_one_node_is_live_for_an_admin_on_another() {
    let Some((nodes, _, redis)) = cluster(2).await else {
        return;
    };
    let (a, b) = (&nodes[0], &nodes[1]);
    let (owner, site) = a.owner_with_site("owner@shop.test").await;
    let (mut admin_b, snapshot) = b.admin(&site.id, &owner.token).await;
    assert_eq!(snapshot["visitors"], json!([]));
    wait_for_subscribers(&redis, &site.id, 1).await;

    let (mut v, _) = a
        .visitor(&site.key, "visitor-0001", "session-0001", "tab-00001", URL)
        .await;
    let joined = expect_frame(&mut admin_b, "joined").await;
    assert_eq!(joined["visitor"]["visitor"], "visitor-0001");
    assert_eq!(joined["visitor"]["url"], URL);
    let pv = expect_frame(&mut admin_b, "pageview").await;
    assert_eq!(pv["url"], URL);
    send(
        &mut v,
        json!({"type": "page", "url": "https://shop.test/financing"}),
    )
    .await;
    assert_eq!(
        expect_frame(&mut admin_b, "pageview").await["url"],
        "https://shop.test/financing"
    );
    send(
        &mut v,
        json!({"type": "event", "name": "lead", "props": {"plan": "36m"}}),
    )
    .await;
    assert_eq!(
        expect_frame(&mut admin_b, "event").await["props"]["plan"],
        "36m"
    );

    // A new admin's snapshot and GET /live on node B include the visitor on node A.
    let (_admin2, snap) = b.admin(&site.id, &owner.token).await;
    assert_eq!(snap["visitors"][0]["visitor"], "visitor-0001");
    assert_eq!(snap["visitors"][0]["url"], "https://shop.test/financing");
    let (status, live) = b
        .get(&format!("/api/sites/{}/live", site.id), &owner.token)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        live["visitors"][0]["tabs"].as_array().map(Vec::len),
        Some(1)
    );
    // The /healthz of a node on a working bus says so.
    let (status, health) = b.request("GET", "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["redis"], "ok");
}

/// One visitor with a tab on node 1 and a tab on node 3 of `nodes`.
async fn visitor_on_nodes_1_and_3(nodes: &[TestApp]) -> (Account, Site, Ws, Ws) {
    let (owner, site) = nodes[0].owner_with_site("owner@shop.test").await;
    let (t1, _) = nodes[0]
        .visitor(&site.key, "visitor-0001", "session-0001", "tab-00001", URL)
        .await;
    let (t3, _) = nodes[2]
        .visitor(&site.key, "visitor-0001", "session-0001", "tab-00003", URL)
        .await;
    (owner, site, t1, t3)
}

#[tokio::test]
async fn a_send_reaches_tabs_on_every_node_and_counts_them_all() {
    let Some((nodes, _, redis)) = cluster(3).await else {
        return;
    };
    let (owner, site, mut t1, mut t3) = visitor_on_nodes_1_and_3(&nodes).await;
    let (mut admin, _) = nodes[1].admin(&site.id, &owner.token).await;
    wait_for_subscribers(&redis, &site.id, 3).await;

    send(&mut admin, json!({"type": "send", "ref": 1, "to": {"visitor": "visitor-0001"}, "message": {"title": "Hello from B"}})).await;
    let sent = expect_frame(&mut admin, "sent").await;
    assert_eq!(sent["delivered"], 2, "{sent}");
    assert_eq!(
        expect_frame(&mut t1, "message").await["title"],
        "Hello from B"
    );
    assert_eq!(
        expect_frame(&mut t3, "message").await["title"],
        "Hello from B"
    );
    // The tab on node 3 acks; the admin on node 2 sees it.
    let id = sent["message"].as_str().expect("id").to_string();
    send(
        &mut t3,
        json!({"type": "ack", "message": id, "status": "clicked"}),
    )
    .await;
    loop {
        let s = expect_frame(&mut admin, "message_status").await;
        if s["status"] == "clicked" {
            assert_eq!(s["visitor"], "visitor-0001");
            break;
        }
    }
    // One visitor with tabs on two nodes is one visitor in the snapshot, with both tabs.
    let (_, snap) = nodes[1].admin(&site.id, &owner.token).await;
    assert_eq!(snap["visitors"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        snap["visitors"][0]["tabs"].as_array().map(Vec::len),
        Some(2)
    );
    let (status, body) = nodes[1]
        .post(
            &format!("/api/sites/{}/messages", site.id),
            &owner.token,
            json!({"to": {"all": true}, "message": {"title": "All"}}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body["delivered"], 2);
}

#[tokio::test]
async fn erasing_a_visitor_on_one_node_closes_their_tabs_on_every_node() {
    let Some((nodes, _, redis)) = cluster(3).await else {
        return;
    };
    let (owner, site, mut t1, mut t3) = visitor_on_nodes_1_and_3(&nodes).await;
    let (mut kept, _) = nodes[2]
        .visitor(&site.key, "visitor-0002", "session-0002", "tab-00004", URL)
        .await;
    let (mut admin, _) = nodes[1].admin(&site.id, &owner.token).await;
    wait_for_subscribers(&redis, &site.id, 3).await;
    nodes[1]
        .wait_for_items(&format!("/api/sites/{}/visitors", site.id), &owner.token, 2)
        .await;

    let (status, body) = nodes[1]
        .request(
            "DELETE",
            &format!("/api/sites/{}/visitors/visitor-0001", site.id),
            Some(&owner.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(close_code(&mut t1).await, Some(4403), "tab on node 1");
    assert_eq!(close_code(&mut t3).await, Some(4403), "tab on node 3");
    let left = expect_frame(&mut admin, "left").await;
    assert_eq!(left["visitor"], "visitor-0001");
    for n in &nodes {
        let (_, live) = n
            .get(&format!("/api/sites/{}/live", site.id), &owner.token)
            .await;
        let ids: Vec<&str> = live["visitors"]
            .as_array()
            .expect("visitors")
            .iter()
            .filter_map(|v| v["visitor"].as_str())
            .collect();
        assert_eq!(ids, ["visitor-0002"], "{live}");
    }
    // The other visitor on node 3 is untouched.
    send(
        &mut kept,
        json!({"type": "page", "url": "https://shop.test/still-here"}),
    )
    .await;
    assert_eq!(
        expect_frame(&mut admin, "pageview").await["url"],
        "https://shop.test/still-here"
    );
}

#[tokio::test]
async fn deleting_a_site_on_one_node_closes_it_on_every_node() {
    let Some((nodes, _, _)) = cluster(2).await else {
        return;
    };
    let (a, b) = (&nodes[0], &nodes[1]);
    let (owner, site) = a.owner_with_site("owner@shop.test").await;
    // Node B has the key cached and a tab connected.
    let (mut tab, _) = b
        .visitor(&site.key, "visitor-0001", "session-0001", "tab-00001", URL)
        .await;
    // Node A has nothing of the site live, so only the nodes channel can tell B.
    let (status, body) = a
        .request(
            "DELETE",
            &format!("/api/sites/{}", site.id),
            Some(&owner.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(close_code(&mut tab).await, Some(4403));
    // B's key cache forgot the site (its entries otherwise live 30 s).
    let mut refused = None;
    for _ in 0..50 {
        match b.visitor_socket(&site.key, Some("https://shop.test")).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                refused = Some(resp.status());
                break;
            }
            Err(e) => panic!("unexpected error: {e}"),
            Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    assert_eq!(refused, Some(StatusCode::FORBIDDEN));
}

#[tokio::test]
async fn segments_and_frequency_caps_hold_across_nodes() {
    let Some((nodes, _, redis)) = cluster(2).await else {
        return;
    };
    let (owner, site) = nodes[0].owner_with_site("dealer@shop.test").await;
    let (_, seg) = nodes[0]
        .post(&format!("/api/sites/{}/segments", site.id), &owner.token,
            json!({"name": "M3", "conditions": [{"type": "item", "brand": "Tesla", "model": "Model 3", "min": 3}]}))
        .await;
    let segment = seg["id"].as_str().expect("segment").to_string();
    let (status, _) = nodes[0]
        .post(&format!("/api/sites/{}/campaigns", site.id), &owner.token, json!({
            "name": "Financing", "enabled": true, "trigger": {"type": "segment_entered", "segment": segment},
            "message": {"title": "Financing for your {{model}}"}, "frequency": {"per_visitor": 1}}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (mut on_a, _) = nodes[0]
        .visitor(
            &site.key,
            "visitor-0001",
            "session-0001",
            "tab-00001",
            "https://shop.test/",
        )
        .await;
    let (mut on_b, _) = nodes[1]
        .visitor(
            &site.key,
            "visitor-0001",
            "session-0001",
            "tab-00002",
            "https://shop.test/",
        )
        .await;
    wait_for_subscribers(&redis, &site.id, 2).await;
    // Node B loads the site's rules when it starts listening to the site.
    for _ in 0..100 {
        if nodes[1].state.targeting.segment_exists(&site.id, &segment) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(nodes[1].state.targeting.segment_exists(&site.id, &segment));
    let item = json!({"brand": "Tesla", "model": "Model 3", "price": 41990});
    let view = |n: u32| json!({"type": "page", "url": format!("https://shop.test/m3?l={n}"), "item": item});
    send(&mut on_a, view(1)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    send(&mut on_b, view(2)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    send(&mut on_a, view(3)).await;
    // Node A fired (its view was the third), and the message reached both tabs.
    assert_eq!(
        expect_frame(&mut on_a, "message").await["title"],
        "Financing for your Model 3"
    );
    assert_eq!(
        expect_frame(&mut on_b, "message").await["title"],
        "Financing for your Model 3"
    );
    // Node B mirrored the firing: its own next listing views fire nothing.
    send(&mut on_b, view(4)).await;
    send(&mut on_b, view(5)).await;
    expect_no_frame(&mut on_b, "message", Duration::from_millis(600)).await;
    expect_no_frame(&mut on_a, "message", Duration::from_millis(100)).await;
}

#[tokio::test]
async fn a_graceful_shutdown_hands_visitors_over_without_leave_and_join() {
    let Some((mut nodes, _, redis)) = cluster(2).await else {
        return;
    };
    let (owner, site) = nodes[1].owner_with_site("owner@shop.test").await;
    let (mut admin_b, _) = nodes[1].admin(&site.id, &owner.token).await;
    wait_for_subscribers(&redis, &site.id, 1).await;
    let (mut v, _) = nodes[0]
        .visitor(&site.key, "visitor-0001", "session-0001", "tab-00001", URL)
        .await;
    expect_frame(&mut admin_b, "joined").await;
    let mut a = nodes.remove(0);
    let stopping = tokio::spawn(async move { a.stop().await });
    assert_eq!(close_code(&mut v).await, Some(1001));
    stopping.await.expect("node A stopped");
    // The snippet reconnects elsewhere (resume: the same page).
    let b = &nodes[0];
    let mut ws = b
        .visitor_socket(&site.key, Some("https://shop.test"))
        .await
        .expect("reconnects to B");
    send(&mut ws, json!({"type": "hello", "visitor": "visitor-0001", "session": "session-0001", "tab": "tab-00001", "url": URL, "resume": true})).await;
    assert_eq!(
        expect_frame(&mut ws, "welcome").await["visitor"],
        "visitor-0001"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1500);
    while let Some(f) = next_json_within(
        &mut admin_b,
        deadline.saturating_duration_since(tokio::time::Instant::now()),
    )
    .await
    {
        assert!(f["type"] != "left" && f["type"] != "joined", "spurious {f}");
    }
    let (_, live) = b
        .get(&format!("/api/sites/{}/live", site.id), &owner.token)
        .await;
    assert_eq!(live["visitors"][0]["visitor"], "visitor-0001");
}

/// A `lookout` process on a free port.
struct Proc {
    child: Child,
    base: String,
    ws: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

async fn spawn_process(db: &str, redis: &str, port: u16) -> Proc {
    let child = Command::new(env!("CARGO_BIN_EXE_lookout"))
        .arg("serve")
        .env("LOOKOUT_ADDR", format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", db)
        .env("REDIS_URL", redis)
        .env("LOOKOUT_LEAVE_GRACE_MS", "400")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("lookout starts");
    let mut child = child;
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..200 {
        if reqwest::get(format!("{base}/healthz"))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Proc {
                child,
                base,
                ws: format!("ws://127.0.0.1:{port}"),
            };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("lookout process did not become healthy on port {port}");
}

async fn process_visitor(p: &Proc, key: &str) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{}/ws/visitor?site={key}", p.ws))
        .await
        .expect("connect");
    send(&mut ws, json!({"type": "hello", "visitor": "visitor-0001", "session": "session-0001", "tab": "tab-00001", "url": URL})).await;
    assert_eq!(expect_frame(&mut ws, "welcome").await["type"], "welcome");
    ws
}

#[tokio::test]
async fn a_node_that_dies_takes_its_visitors_away_within_the_bound_and_they_rejoin_once() {
    let Some((nodes, db, redis)) = cluster(1).await else {
        return;
    };
    let b = &nodes[0];
    let (owner, site) = b.owner_with_site("owner@shop.test").await;
    let (mut admin_b, _) = b.admin(&site.id, &owner.token).await;
    wait_for_subscribers(&redis, &site.id, 1).await;
    let port = free_port();
    let mut a = spawn_process(&db, &redis, port).await;
    assert!(a.base.ends_with(&port.to_string()));
    let _v = process_visitor(&a, &site.key).await;
    expect_frame(&mut admin_b, "joined").await;

    // kill -9: no goodbye, sockets just vanish.
    a.child.kill().expect("kill");
    a.child.wait().expect("reaped");
    let killed = std::time::Instant::now();
    let left = loop {
        match next_json_within(&mut admin_b, Duration::from_secs(10)).await {
            Some(f) if f["type"] == "left" => break f,
            Some(_) => continue,
            None => panic!("no left within 10 s of the node's death"),
        }
    };
    assert_eq!(left["visitor"], "visitor-0001");
    let took = killed.elapsed();
    assert!(
        took >= lookout::cluster::NODE_TIMEOUT,
        "not before the node timed out ({took:?})"
    );

    // The node comes back and the visitor reconnects to it: joined exactly once.
    let a = spawn_process(&db, &redis, port).await;
    let _v = process_visitor(&a, &site.key).await;
    let joined = expect_frame(&mut admin_b, "joined").await;
    assert_eq!(joined["visitor"]["visitor"], "visitor-0001");
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1500);
    while let Some(f) = next_json_within(
        &mut admin_b,
        deadline.saturating_duration_since(tokio::time::Instant::now()),
    )
    .await
    {
        assert_ne!(f["type"], "joined", "joined twice");
        assert_ne!(f["type"], "left");
    }
    let mut a = a;
    let _ = a.child.kill();
    let _ = a.child.wait();
}

/// A private redis-server that the test can stop and start.
struct PrivateRedis {
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        std::thread::sleep(Duration::from_millis(300));
        Self {
            port,
            child: Some(child),
        }
    }
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn health(app: &TestApp) -> (StatusCode, Value) {
    app.request("GET", "/healthz", None, None).await
}

#[tokio::test]
async fn without_redis_nodes_serve_their_own_visitors_and_resynchronise_when_it_returns() {
    if redis_url().is_none() {
        return;
    }
    let Some(db) = fresh_postgres().await else {
        return;
    };
    let port = free_port();
    let mut redis = PrivateRedis::start(port);
    let a = node(&db, &redis.url()).await;
    let b = node(&db, &redis.url()).await;
    let (owner, site) = a.owner_with_site("owner@shop.test").await;
    let (mut admin_a, _) = a.admin(&site.id, &owner.token).await;
    let (mut admin_b, _) = b.admin(&site.id, &owner.token).await;
    wait_for_subscribers(&redis.url(), &site.id, 2).await;

    redis.stop();
    // Degraded, visibly; local service goes on.
    let mut degraded = false;
    for _ in 0..100 {
        let (status, body) = health(&a).await;
        if status == StatusCode::SERVICE_UNAVAILABLE && body["status"] == "degraded" {
            degraded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(degraded, "healthz reports the lost bus");
    let (mut v, _) = a
        .visitor(&site.key, "visitor-0001", "session-0001", "tab-00001", URL)
        .await;
    expect_frame(&mut admin_a, "joined").await;
    send(&mut admin_a, json!({"type": "send", "ref": 1, "to": {"visitor": "visitor-0001"}, "message": {"title": "Still here"}})).await;
    assert_eq!(expect_frame(&mut admin_a, "sent").await["delivered"], 1);
    assert_eq!(expect_frame(&mut v, "message").await["title"], "Still here");
    send(
        &mut v,
        json!({"type": "page", "url": "https://shop.test/during-outage"}),
    )
    .await;
    // Nothing accepted is lost: it is in the database.
    a.wait_for_items(
        &format!(
            "/api/sites/{}/pageviews?url=https://shop.test/during-outage",
            site.id
        ),
        &owner.token,
        1,
    )
    .await;

    // Redis returns: the nodes resubscribe and exchange presence; node B's admin sees the visitor.
    let _redis = PrivateRedis::start(port);
    let joined = expect_frame_within(&mut admin_b, "joined", Duration::from_secs(15)).await;
    assert_eq!(joined["visitor"]["visitor"], "visitor-0001");
    let (status, _) = health(&a).await;
    assert_eq!(status, StatusCode::OK);
    send(
        &mut v,
        json!({"type": "page", "url": "https://shop.test/after-outage"}),
    )
    .await;
    let pv = expect_frame(&mut admin_b, "pageview").await;
    assert_eq!(pv["url"], "https://shop.test/after-outage");
}

async fn expect_frame_within(ws: &mut Ws, kind: &str, wait: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match next_json_within(
            ws,
            deadline.saturating_duration_since(tokio::time::Instant::now()),
        )
        .await
        {
            Some(v) if v["type"] == kind => return v,
            Some(_) => continue,
            None => panic!("no `{kind}` frame within {wait:?}"),
        }
    }
}

/// A burst of page views on one node reaches an admin on another complete and in order (the
/// publisher sends what is queued as one pipeline), and consecutive sends from that admin each
/// reach the visitor on the first node (the kept connection for sends).
#[tokio::test]
async fn a_burst_crosses_the_bus_complete_and_in_order_and_sends_keep_working() {
    let Some(redis) = redis_url() else {
        return;
    };
    let Some(db) = fresh_postgres().await else {
        return;
    };
    let mut settings = test_settings(&db);
    settings.redis_url = Some(Secret(redis.clone()));
    // The burst is one visitor's: let it send faster than a browser may.
    settings.limits.max_frames_per_second = 1000;
    let a = spawn_with(settings, Backend::Postgres, None).await;
    let b = node(&db, &redis).await;
    let (owner, site) = a.owner_with_site("owner@shop.test").await;
    let (mut admin_b, _) = b.admin(&site.id, &owner.token).await;
    wait_for_subscribers(&redis, &site.id, 1).await;
    let (mut v, _) = a
        .visitor(&site.key, "visitor-0001", "session-0001", "tab-00001", URL)
        .await;
    wait_for_subscribers(&redis, &site.id, 2).await;
    expect_frame(&mut admin_b, "pageview").await;

    const BURST: usize = 300;
    for i in 0..BURST {
        send(
            &mut v,
            json!({"type": "page", "url": format!("https://shop.test/burst/{i}")}),
        )
        .await;
    }
    for i in 0..BURST {
        let pv = expect_frame(&mut admin_b, "pageview").await;
        assert_eq!(pv["url"], format!("https://shop.test/burst/{i}"), "{pv}");
    }
    // The publisher's round trips are visible to operators.
    let (status, metrics) = a.request("GET", "/metrics", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let metrics = metrics.as_str().unwrap_or_default();
    let round_trips = metrics
        .lines()
        .find_map(|l| l.strip_prefix("lookout_cluster_publish_seconds_count "))
        .and_then(|n| n.trim().parse::<f64>().ok());
    assert!(round_trips.is_some_and(|n| n >= 1.0), "{round_trips:?}");

    for r in 0..3 {
        send(&mut admin_b, json!({"type": "send", "ref": r, "to": {"visitor": "visitor-0001"}, "message": {"title": format!("Hello {r}")}})).await;
        let sent = expect_frame(&mut admin_b, "sent").await;
        assert_eq!(sent["delivered"], 1, "{sent}");
        assert_eq!(
            expect_frame(&mut v, "message").await["title"],
            format!("Hello {r}")
        );
    }
}
