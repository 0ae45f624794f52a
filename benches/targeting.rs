//! Rule evaluation (src/targeting): `Engine::observe` for a page view on a site with 50 active
//! segments and 100 enabled campaigns, loaded through `Engine::reload_site` from a temp SQLite
//! database exactly as the service loads them.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use lookout::db::{now_ms, Db};
use lookout::targeting::{Engine, Item, Obs};
use serde_json::{json, Value};

mod common;

const SITE: &str = "bench-site";

fn segment(i: usize) -> Value {
    let brand = ["BMW", "Audi", "VW", "Ford"][i % 4];
    let conditions = match i % 8 {
        0 => {
            json!([{"type": "current_url", "match": "prefix", "value": format!("/cars/{}", i % 5)}])
        }
        1 => {
            json!([{"type": "pages", "match": "glob", "value": "/cars/*/detail*", "min": 2 + i % 3}])
        }
        2 => json!([{"type": "item", "brand": brand, "min": 1}]),
        3 => json!([{"type": "time_on_site", "min_seconds": 60 + i}]),
        4 => json!([{"type": "referrer", "match": "regex", "value": "google\\.(com|de|fr)"}]),
        5 => {
            json!([{"type": "utm", "param": "source", "value": "newsletter"}, {"type": "device", "value": "desktop"}])
        }
        6 => {
            json!([{"type": "event", "name": "add_to_cart", "min": 1}, {"type": "sessions", "min": 2}])
        }
        _ => {
            json!([{"type": "item", "min_price": 10000.0 + i as f64 * 100.0, "max_price": 60000.0, "min": 2},
                    {"type": "pages", "match": "regex", "value": "^/cars/[0-9]+/detail", "min": 3}])
        }
    };
    json!({"name": format!("segment {i}"), "match": if i % 3 == 0 { "any" } else { "all" }, "conditions": conditions})
}

fn campaign(i: usize, segments: &[String]) -> Value {
    let trigger = match i % 4 {
        0 => json!({"type": "pageview", "match": "glob", "value": format!("/cars/{}/**", i % 7)}),
        1 => json!({"type": "segment_entered", "segment": segments[i % segments.len()]}),
        2 => json!({"type": "event", "name": "add_to_cart"}),
        _ => json!({"type": "time_on_page", "seconds": 30 + i}),
    };
    json!({
        "name": format!("campaign {i}"),
        "enabled": true,
        "priority": (i % 10) as i32,
        "trigger": trigger,
        "segment": if i % 2 == 0 { Value::String(segments[(i * 7) % segments.len()].clone()) } else { Value::Null },
        "message": {"title": "Hello {{brand}}", "body": "Have a look at the {{model}} for {{price}} {{currency}}", "style": "toast"},
        "frequency": {"per_visitor": 3, "per_session": 1, "max_messages": 5, "period_seconds": 3600},
        "goal": {"type": "pageview", "match": "prefix", "value": "/checkout"},
        "control_percent": 10,
    })
}

async fn setup() -> (Engine, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let db = Db::connect(&url).await.expect("sqlite");
    let now = now_ms();
    sqlx::query("insert into site (site_id, name, site_key, domains, created_at) values ($1, 'Bench', 'bench-key', '[]', $2)")
        .bind(SITE)
        .bind(now)
        .execute(db.pool())
        .await
        .expect("site");
    let mut segments = Vec::new();
    for i in 0..50 {
        let id = format!("seg{i:03}");
        sqlx::query("insert into segment (segment_id, site_id, definition, created_at, updated_at) values ($1, $2, $3, $4, $4)")
            .bind(&id)
            .bind(SITE)
            .bind(segment(i).to_string())
            .bind(now + i as i64)
            .execute(db.pool())
            .await
            .expect("segment");
        segments.push(id);
    }
    for i in 0..100 {
        sqlx::query("insert into campaign (campaign_id, site_id, definition, created_at, updated_at) values ($1, $2, $3, $4, $4)")
            .bind(format!("camp{i:03}"))
            .bind(SITE)
            .bind(campaign(i, &segments).to_string())
            .bind(now + i as i64)
            .execute(db.pool())
            .await
            .expect("campaign");
    }
    let engine = Engine::default();
    engine.reload_site(&db, SITE).await.expect("reload");
    db.close().await;
    (engine, dir)
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (engine, _dir) = rt.block_on(setup());
    let visitors: Vec<String> = (0..1000).map(|i| format!("visitor-{i:08}")).collect();
    let now = now_ms();
    for (i, v) in visitors.iter().enumerate() {
        let session = format!("session-{i:08}");
        let _ = engine.observe(
            SITE,
            v,
            Obs::Hello {
                session: &session,
                tab: "tab-00000001",
                url: "https://shop.example.com/?utm_source=newsletter",
                title: Some("Example Motors"),
                referrer: Some("https://www.google.de/"),
                device: Some("desktop"),
                item: None,
                pageview: true,
            },
            now,
        );
        let _ = engine.history_loaded(SITE, v, 1, Vec::new(), now);
    }
    assert!(engine.segment_exists(SITE, "seg000"), "rules loaded");
    let urls: Vec<String> = (0..32)
        .map(|i| format!("https://shop.example.com/cars/{}/detail?id={i}", i % 9))
        .collect();
    let item = Item {
        kind: Some("Car".into()),
        brand: Some("BMW".into()),
        model: Some("320d".into()),
        name: Some("BMW 320d Touring".into()),
        category: Some("estate".into()),
        sku: None,
        price: Some(38_900.0),
        currency: Some("EUR".into()),
    };
    let mut g = c.benchmark_group("targeting_observe");
    g.throughput(Throughput::Elements(1));
    let mut n = 0usize;
    g.bench_function("page_50_segments_100_campaigns", |b| {
        b.iter(|| {
            n += 1;
            let v = &visitors[n % visitors.len()];
            let out = engine.observe(
                SITE,
                v,
                Obs::Page {
                    tab: "tab-00000001",
                    url: &urls[n % urls.len()],
                    title: Some("BMW 320d Touring"),
                    item: Some(&item),
                },
                now + n as i64,
            );
            black_box(out.is_empty())
        })
    });
    let props = serde_json::Map::new();
    g.bench_function("event_50_segments_100_campaigns", |b| {
        b.iter(|| {
            n += 1;
            let v = &visitors[n % visitors.len()];
            let out = engine.observe(
                SITE,
                v,
                Obs::Event {
                    name: "add_to_cart",
                    props: &props,
                },
                now + n as i64,
            );
            black_box(out.is_empty())
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::quick(20);
    targets = bench
}
criterion_main!(benches);
