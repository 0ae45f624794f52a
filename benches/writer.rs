//! The batching writer (src/db/writer.rs) against a real database: rows per second for page
//! views from 2,000 live visitors (each row also touches its visitor and session), on a temp
//! SQLite file and, when `LOOKOUT_TEST_POSTGRES` is set, on a fresh Postgres database.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use lookout::db::writer::{self, PageviewRow, Record, WriterConfig};
use lookout::db::{now_ms, Db};
use sqlx::Connection;
use tokio_util::sync::CancellationToken;

const ROWS: usize = 10_000;
const VISITORS: usize = 2_000;

fn rows(round: usize) -> Vec<Record> {
    let at = now_ms();
    (0..ROWS)
        .map(|i| {
            let v = i % VISITORS;
            Record::Pageview(PageviewRow {
                site_id: "bench-site".into(),
                visitor_id: format!("visitor-{v:08}"),
                session_id: format!("session-{v:08}"),
                tab_id: format!("tab-{v:08}"),
                url: format!("https://shop.example.com/cars/{round}/{i}"),
                title: Some("Example Motors – used cars".into()),
                referrer: Some("https://shop.example.com/".into()),
                at,
            })
        })
        .collect()
}

/// Submits `ROWS` records to a fresh writer and waits until it has committed them all.
async fn write_all(db: &Db, batch: usize, round: usize) -> Duration {
    let records = rows(round);
    let stop = CancellationToken::new();
    let start = Instant::now();
    let (handle, task) = writer::spawn(
        db.clone(),
        WriterConfig {
            capacity: 100_000,
            batch,
            flush_interval: Duration::from_millis(50),
        },
        stop.clone(),
    );
    for r in records {
        handle.submit(r).await.expect("queued");
    }
    // Cancelling drains the queue, in full batches, and ends the task.
    stop.cancel();
    task.await.expect("writer task");
    start.elapsed()
}

async fn fresh_postgres() -> Option<(String, String)> {
    let admin = std::env::var("LOOKOUT_TEST_POSTGRES").ok()?;
    let name = format!(
        "lookout_bench_{}",
        lookout::domain::random_id(10).to_lowercase()
    );
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .expect("LOOKOUT_TEST_POSTGRES is set but Postgres does not answer");
    sqlx::query(&format!("create database {name}"))
        .execute(&mut conn)
        .await
        .expect("create bench database");
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
    Some((format!("{base}/{name}"), name))
}

async fn drop_postgres(name: &str) {
    if let Ok(admin) = std::env::var("LOOKOUT_TEST_POSTGRES") {
        if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
            let _ = sqlx::query(&format!("drop database if exists {name} with (force)"))
                .execute(&mut conn)
                .await;
        }
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut dbs: Vec<(&str, Db, Option<String>)> = Vec::new();
    let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
    dbs.push((
        "sqlite",
        rt.block_on(Db::connect(&sqlite)).expect("sqlite"),
        None,
    ));
    if let Some((url, name)) = rt.block_on(fresh_postgres()) {
        dbs.push((
            "postgres",
            rt.block_on(Db::connect(&url)).expect("postgres"),
            Some(name),
        ));
    } else {
        eprintln!("writer bench: set LOOKOUT_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/postgres for the Postgres variant");
    }
    let mut g = c.benchmark_group("writer_pageviews");
    g.throughput(Throughput::Elements(ROWS as u64));
    g.sample_size(10);
    for (backend, db, _) in &dbs {
        for batch in [2_000usize, 8_000] {
            let id = BenchmarkId::new(*backend, format!("batch_{batch}"));
            let mut round = 0usize;
            g.bench_function(id, |b| {
                b.iter_custom(|iters| {
                    let mut spent = Duration::ZERO;
                    for _ in 0..iters {
                        round += 1;
                        spent += rt.block_on(write_all(db, batch, round));
                    }
                    spent
                })
            });
        }
    }
    g.finish();
    for (_, db, name) in dbs {
        rt.block_on(db.close());
        if let Some(name) = name {
            rt.block_on(drop_postgres(&name));
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
