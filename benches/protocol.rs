//! Frame parsing and validation of the visitor and admin sockets (src/live/protocol.rs): what
//! every inbound frame costs before it reaches the hub.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use lookout::live::protocol::{
    check_object, check_title, check_url, clean_referrer, parse_visitor_frame, AdminFrame,
    VisitorFrame,
};
use std::hint::black_box;

mod common;

const HELLO: &str = r#"{"type":"hello","visitor":"v-0123456789abcdef","session":"s-0123456789abcdef","tab":"t-0123456789abcdef","url":"https://shop.example.com/cars/bmw/3-series?utm_source=newsletter&utm_medium=email","title":"BMW 3 Series – Example Motors","referrer":"https://www.google.com/search?q=bmw+3+series","lang":"en-GB","screen":"1920x1080","tz":"Europe/London","resume":false}"#;
const PAGE: &str = r#"{"type":"page","url":"https://shop.example.com/cars/bmw/3-series/320d-touring?color=blue","title":"BMW 320d Touring – Example Motors","referrer":"https://shop.example.com/cars/bmw/3-series"}"#;
const PAGE_ITEM: &str = r#"{"type":"page","url":"https://shop.example.com/cars/bmw/320d","title":"BMW 320d","item":{"type":"Car","brand":"BMW","model":"320d","name":"BMW 320d Touring","category":"estate","sku":"B-320-T","price":38900,"currency":"EUR"}}"#;
const EVENT: &str = r#"{"type":"event","name":"add_to_cart","props":{"sku":"B-320-T","price":38900,"options":{"color":"blue","wheels":18}}}"#;
const SEND: &str = r#"{"type":"send","ref":42,"to":{"visitor":"v-0123456789abcdef"},"message":{"title":"Need help?","body":"Our team is online: ask us anything about the 320d.","style":"toast","cta":{"label":"Chat","url":"https://shop.example.com/contact"},"data":{"campaign":"manual"}}}"#;

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("protocol");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_hello", |b| {
        b.iter(|| parse_visitor_frame(black_box(HELLO)).is_ok())
    });
    g.bench_function("parse_page", |b| {
        b.iter(|| parse_visitor_frame(black_box(PAGE)).is_ok())
    });
    g.bench_function("parse_page_with_item", |b| {
        b.iter(|| parse_visitor_frame(black_box(PAGE_ITEM)).is_ok())
    });
    // The whole inbound path of a page view frame before the hub: parse, URL check, title,
    // referrer.
    g.bench_function("page_parse_and_validate", |b| {
        b.iter(|| {
            let Ok(VisitorFrame::Page(p)) = parse_visitor_frame(black_box(PAGE)) else {
                panic!("page frame");
            };
            let url = check_url(&p.url).expect("valid url");
            let title = check_title(p.title).expect("title");
            let referrer = clean_referrer(p.referrer);
            black_box((url, title, referrer))
        })
    });
    g.bench_function("event_parse_and_validate", |b| {
        b.iter(|| {
            let Ok(VisitorFrame::Event { name, props }) = parse_visitor_frame(black_box(EVENT))
            else {
                panic!("event frame");
            };
            black_box((name, check_object("props", props).is_ok()))
        })
    });
    g.bench_function("check_url", |b| {
        b.iter(|| check_url(black_box("https://shop.example.com/cars/bmw/3-series?x=1")).is_ok())
    });
    g.bench_function("admin_send_parse_and_validate", |b| {
        b.iter(|| {
            let Ok(AdminFrame::Send {
                to, mut message, ..
            }) = serde_json::from_str::<AdminFrame>(black_box(SEND))
            else {
                panic!("send frame");
            };
            black_box((to.validate().is_ok(), message.validate().is_ok()))
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::quick(30);
    targets = parse
}
criterion_main!(benches);
