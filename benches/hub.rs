//! The hub (src/live/hub.rs): a page view fanned out to K admins, a tab connecting and leaving
//! (joined/left broadcasts), and an admin subscribing (visitors cloned under the site lock, then
//! the snapshot serialised outside it).

use std::hint::black_box;
use std::time::{Duration, Instant};

use axum::extract::ws::Utf8Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use lookout::live::hub::{snapshot_frame, Hub, Nav, Selector, TabInfo};
use tokio::sync::mpsc::Receiver;

mod common;

fn tab(i: usize) -> TabInfo {
    TabInfo {
        site_id: "site".into(),
        visitor: format!("visitor-{i:08}"),
        session: format!("session-{i:08}"),
        tab: format!("tab-{i:08}"),
        url: format!("https://shop.example.com/cars/{i}"),
        title: Some("Example Motors".into()),
        referrer: Some("https://www.google.com/".into()),
        device: Some("desktop".into()),
        browser: Some("Chrome".into()),
        os: Some("Linux".into()),
        at: 1_700_000_000_000,
        pageview: true,
        item: None,
    }
}

fn drain(rxs: &mut [Receiver<Utf8Bytes>]) {
    for rx in rxs {
        while rx.try_recv().is_ok() {}
    }
}

fn fanout(c: &mut Criterion) {
    let mut g = c.benchmark_group("hub_pageview_fanout");
    g.throughput(Throughput::Elements(1));
    for admins in [0usize, 1, 10, 100] {
        g.bench_with_input(BenchmarkId::from_parameter(admins), &admins, |b, &k| {
            let hub = Hub::new(Duration::from_secs(5));
            // 1,000 live visitors on the site, the measured one among them.
            let tabs: Vec<_> = (0..1000).map(|i| hub.connect_tab(tab(i))).collect();
            let conn = tabs[0].0.conn();
            let mut guards = Vec::new();
            let mut rxs = Vec::new();
            for _ in 0..k {
                let sub = hub.subscribe_admin("site");
                guards.push(sub.guard);
                rxs.push(sub.outbox);
            }
            drain(&mut rxs);
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    // Drain the admin outboxes (not timed) between rounds.
                    let round = (iters - done).min(512);
                    let start = Instant::now();
                    for n in 0..round {
                        hub.pageview(
                            "site",
                            "visitor-00000000",
                            conn,
                            Nav {
                                item: None,
                                url: black_box("https://shop.example.com/cars/bmw/320d?x=1"),
                                title: Some("BMW 320d"),
                                referrer: Some("https://shop.example.com/cars"),
                                at: 1_700_000_000_000 + n as i64,
                            },
                        );
                    }
                    spent += start.elapsed();
                    done += round;
                    drain(&mut rxs);
                }
                spent
            });
        });
    }
    g.finish();
}

fn connect(c: &mut Criterion) {
    let mut g = c.benchmark_group("hub");
    g.throughput(Throughput::Elements(1));
    g.bench_function("connect_and_leave_tab_10_admins", |b| {
        // Outside a runtime the leave is applied at once (no grace timer).
        let hub = Hub::new(Duration::from_secs(5));
        let _live: Vec<_> = (0..1000).map(|i| hub.connect_tab(tab(i))).collect();
        let mut rxs = Vec::new();
        let mut guards = Vec::new();
        for _ in 0..10 {
            let sub = hub.subscribe_admin("site");
            guards.push(sub.guard);
            rxs.push(sub.outbox);
        }
        let mut i = 1_000_000usize;
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            let mut done = 0;
            while done < iters {
                let round = (iters - done).min(256);
                let start = Instant::now();
                for _ in 0..round {
                    i += 1;
                    let (guard, rx) = hub.connect_tab(tab(i));
                    drop(guard);
                    drop(rx);
                }
                spent += start.elapsed();
                done += round;
                drain(&mut rxs);
            }
            spent
        });
    });
    // What the site lock is held for: registering the admin and cloning the visitors.
    g.bench_function("subscribe_admin_snapshot_1000_visitors", |b| {
        let hub = Hub::new(Duration::from_secs(5));
        let _live: Vec<_> = (0..1000).map(|i| hub.connect_tab(tab(i))).collect();
        b.iter(|| {
            let sub = hub.subscribe_admin("site");
            black_box(&sub.snapshot);
        });
    });
    // Serialising that snapshot, outside the lock (in the admin's task).
    g.bench_function("snapshot_frame_1000_visitors", |b| {
        let hub = Hub::new(Duration::from_secs(5));
        let _live: Vec<_> = (0..1000).map(|i| hub.connect_tab(tab(i))).collect();
        let visitors = hub.subscribe_admin("site").snapshot;
        b.iter(|| black_box(snapshot_frame(&visitors)));
    });
    // A slow admin's resync: its full outbox dropped, the visitors cloned.
    g.bench_function("resync_admin_full_outbox_1000_visitors", |b| {
        let hub = Hub::new(Duration::from_secs(5));
        let live: Vec<_> = (0..1000).map(|i| hub.connect_tab(tab(i))).collect();
        let conn = live[0].0.conn();
        let mut sub = hub.subscribe_admin("site");
        let nav = |at| Nav {
            item: None,
            url: "https://shop.example.com/cars/bmw/320d?x=1",
            title: Some("BMW 320d"),
            referrer: None,
            at,
        };
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for i in 0..iters {
                while !sub.signal.resync.load(std::sync::atomic::Ordering::Acquire) {
                    hub.pageview("site", "visitor-00000000", conn, nav(i as i64));
                }
                let start = Instant::now();
                black_box(hub.resync_admin(&sub.guard, &mut sub.outbox));
                spent += start.elapsed();
            }
            spent
        });
    });
    g.bench_function("deliver_to_one_visitor_of_1000", |b| {
        let hub = Hub::new(Duration::from_secs(5));
        let mut live: Vec<_> = (0..1000).map(|i| hub.connect_tab(tab(i))).collect();
        let frame = Utf8Bytes::from_static(r#"{"type":"message","id":"m","title":"Hi"}"#);
        let mut n = 0usize;
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            let mut done = 0;
            while done < iters {
                let round = (iters - done).min(8);
                let start = Instant::now();
                for _ in 0..round {
                    n += 1;
                    let v = format!("visitor-{:08}", n % 1000);
                    black_box(hub.deliver("site", Selector::Visitor(&v), "m", &frame));
                }
                spent += start.elapsed();
                done += round;
                for (_, rx) in live.iter_mut() {
                    while rx.try_recv().is_ok() {}
                }
            }
            spent
        });
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::quick(20);
    targets = fanout, connect
}
criterion_main!(benches);
