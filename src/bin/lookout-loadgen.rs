//! `lookout-loadgen`: drives a running Lookout over real WebSockets and measures it.
//!
//! Scenarios:
//! - `idle`: open N visitor connections (upgrade + hello + welcome) and hold them D seconds.
//! - `pageviews`: N visitors send page views at a total rate R for D seconds while A admins are
//!   subscribed; visitor→admin latency from a timestamp in the page URL (`lgt=` micros) read
//!   back from the admins' `pageview` frames.
//! - `push`: N visitors connected, A admins send `send` frames to single visitors at a total
//!   rate R; admin→visitor latency from a timestamp in the message body.
//! - `churn`: connect / hello / welcome / close cycles at rate R for D seconds.
//!
//! The coordinating process sets up (a throwaway account and site via the REST API unless
//! given), forks `--procs` worker processes (each under the 20,000 fd limit) that split the
//! connections and the rate, spreads sockets over `--sources` (127.0.0.x) addresses, samples the
//! server's RSS and CPU from /proc (`--server-pid`), and at the end checks how many page views
//! reached the database against how many were sent. Output: a human table, then one JSON line.
//! Loopback only; every run is bounded in time and stops by itself.

#![recursion_limit = "512"]

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context};
use base64::Engine as _;
use clap::{Parser, ValueEnum};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;
use rand::Rng;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

const MAX_FDS_PER_PROCESS: usize = 20_000;
const UA: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36 lookout-loadgen";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Idle,
    Pageviews,
    Push,
    Churn,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Idle => "idle",
            Scenario::Pageviews => "pageviews",
            Scenario::Push => "push",
            Scenario::Churn => "churn",
        }
    }
}

#[derive(Debug, Clone, Parser)]
#[command(
    name = "lookout-loadgen",
    about = "Load generator for Lookout: idle connections, page views, pushes, churn (loopback only)"
)]
struct Opts {
    /// What to run.
    #[arg(value_enum)]
    scenario: Scenario,
    /// The server under test (http://127.0.0.1:PORT; loopback only), or a comma list of the
    /// nodes of one cluster: visitor connection i goes to node i mod K (round-robin per
    /// connection; with --procs equal to K, each worker talks to one node).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The node admins connect to; setup (account, site) and the stored page view count go
    /// through it too. Default: the first --url.
    #[arg(long)]
    admin_url: Option<String>,
    /// Site key for visitors; with --site-id and --token. Unset: a throwaway account and site
    /// are created through the REST API.
    #[arg(long)]
    site_key: Option<String>,
    /// Site id (admins subscribe to it; stats are read from it).
    #[arg(long)]
    site_id: Option<String>,
    /// Login token or site API key for admins and the stats check.
    #[arg(long)]
    token: Option<String>,
    /// Source addresses for visitor sockets: `127.0.0.2-127.0.0.9` or a comma list.
    #[arg(long, default_value = "127.0.0.1")]
    sources: String,
    /// Worker processes that split the connections and the rate (each stays under 20,000 fds).
    #[arg(long, default_value_t = 1)]
    procs: usize,
    /// Server process id(s), for RSS and CPU from /proc: one, or a comma list (the nodes in
    /// the order of --url, then the admin node if it is not one of them); figures per node and
    /// summed.
    #[arg(long)]
    server_pid: Option<String>,
    /// Redis process id (cluster runs), for its CPU per phase from /proc.
    #[arg(long)]
    redis_pid: Option<u32>,
    /// Visitor connections (idle, pageviews, push).
    #[arg(short = 'n', long, default_value_t = 1000)]
    connections: usize,
    /// Seconds of the measured phase (hold, send, push or churn).
    #[arg(short = 'd', long, default_value_t = 10)]
    duration: u64,
    /// Total rate per second: page views (pageviews), messages (push), cycles (churn).
    #[arg(short = 'r', long, default_value_t = 1000.0)]
    rate: f64,
    /// Admin sockets subscribed to the site (pageviews: receive; push: send).
    #[arg(short = 'a', long, default_value_t = 0)]
    admins: usize,
    /// Handshakes in flight at once per worker while connecting.
    #[arg(long, default_value_t = 256)]
    connect_concurrency: usize,
    /// Limit of handshakes per second while connecting, all workers together (0 = no limit).
    #[arg(long, default_value_t = 0.0)]
    connect_rate: f64,
    /// Seconds to wait for the writer to persist everything before counting.
    #[arg(long, default_value_t = 60)]
    settle: u64,
    /// Skip the database check (counting page views through the stats API).
    #[arg(long)]
    no_db_check: bool,
    /// Hard limit on the whole run in seconds (default: duration + 240).
    #[arg(long)]
    max_runtime: Option<u64>,
    /// Append the JSON result line to this file too.
    #[arg(long)]
    json_out: Option<String>,
    /// Free text copied into the JSON (e.g. the database backend).
    #[arg(long, default_value = "")]
    label: String,
    #[arg(long, hide = true)]
    child: Option<usize>,
    #[arg(long, hide = true, default_value = "")]
    run_id: String,
}

fn main() -> anyhow::Result<()> {
    let opts = Opts::parse();
    let limit = opts.max_runtime.unwrap_or(opts.duration + 240);
    // Whatever happens, the process stops by itself.
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(limit));
        eprintln!("lookout-loadgen: max runtime of {limit} s reached, exiting");
        std::process::exit(3);
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    match opts.child {
        Some(i) => rt.block_on(child_main(opts.clone(), i)),
        None => rt.block_on(coordinator(opts)),
    }
}

// ---------------------------------------------------------------- shared helpers

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid histogram bounds")
}

fn hist_to_b64(h: &Histogram<u64>) -> String {
    let mut buf = Vec::new();
    if V2Serializer::new().serialize(h, &mut buf).is_err() {
        return String::new();
    }
    base64::engine::general_purpose::STANDARD.encode(buf)
}

fn hist_from_b64(s: &str) -> Histogram<u64> {
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(s) else {
        return new_hist();
    };
    Deserializer::new()
        .deserialize(&mut &bytes[..])
        .unwrap_or_else(|_| new_hist())
}

fn hist_json(h: &Histogram<u64>) -> Value {
    if h.is_empty() {
        return json!({"count": 0});
    }
    let ms = |v: u64| (v as f64 / 1000.0 * 1000.0).round() / 1000.0;
    json!({
        "count": h.len(),
        "p50_ms": ms(h.value_at_quantile(0.50)),
        "p90_ms": ms(h.value_at_quantile(0.90)),
        "p99_ms": ms(h.value_at_quantile(0.99)),
        "p999_ms": ms(h.value_at_quantile(0.999)),
        "max_ms": ms(h.max()),
        "mean_ms": (h.mean() / 1000.0 * 1000.0).round() / 1000.0,
    })
}

fn record(h: &mut Histogram<u64>, us: u64) {
    h.saturating_record(us.max(1));
}

/// `127.0.0.2-127.0.0.9` or `127.0.0.1,127.0.0.5`; only 127.0.0.0/8.
fn parse_sources(s: &str) -> anyhow::Result<Vec<IpAddr>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if let Some((a, b)) = part.split_once('-') {
            let a: std::net::Ipv4Addr = a.parse().context("source range start")?;
            let b: std::net::Ipv4Addr = b.parse().context("source range end")?;
            let (a, b) = (u32::from(a), u32::from(b));
            if b < a || b - a > 65_536 {
                bail!("bad source range {part}");
            }
            out.extend((a..=b).map(|x| IpAddr::V4(x.into())));
        } else {
            out.push(part.parse().context("source address")?);
        }
    }
    if out.is_empty() {
        bail!("no source address");
    }
    if let Some(bad) = out.iter().find(|ip| !ip.is_loopback()) {
        bail!("source {bad} is not a loopback address: the load generator only runs on loopback");
    }
    Ok(out)
}

#[derive(Clone)]
struct Target {
    addr: SocketAddr,
    host: String,
}

/// The visitor nodes of `--url` (one or a comma list).
fn parse_urls(s: &str) -> anyhow::Result<Vec<String>> {
    let urls: Vec<String> = s
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_string)
        .collect();
    if urls.is_empty() {
        bail!("--url: no server URL");
    }
    Ok(urls)
}

/// The admins' node: `--admin-url`, else the first `--url`.
fn admin_url(opts: &Opts) -> anyhow::Result<String> {
    match &opts.admin_url {
        Some(u) => Ok(u.trim().to_string()),
        None => Ok(parse_urls(&opts.url)?.swap_remove(0)),
    }
}

/// Every node of the run: the visitor nodes, then the admin node unless it is one of them.
fn node_urls(opts: &Opts) -> anyhow::Result<Vec<String>> {
    let mut nodes = parse_urls(&opts.url)?;
    let admin = admin_url(opts)?;
    if !nodes.contains(&admin) {
        nodes.push(admin);
    }
    Ok(nodes)
}

fn parse_pids(s: Option<&str>) -> anyhow::Result<Vec<u32>> {
    let Some(s) = s else {
        return Ok(Vec::new());
    };
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse()
                .with_context(|| format!("--server-pid: bad pid {p:?}"))
        })
        .collect()
}

fn target(url: &str) -> anyhow::Result<Target> {
    let u = url::Url::parse(url).with_context(|| format!("bad server URL {url:?}"))?;
    let host = u.host_str().ok_or_else(|| anyhow!("--url has no host"))?;
    let port = u.port_or_known_default().unwrap_or(80);
    let addr = (host, port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| anyhow!("cannot resolve {host}"))?;
    if !addr.ip().is_loopback() {
        bail!("{addr} is not a loopback address: the load generator only runs on loopback");
    }
    Ok(Target {
        addr,
        host: format!("{host}:{port}"),
    })
}

/// A minimal HTTP/1.1 client (one request per connection) for setup, stats and /metrics.
async fn http(
    t: &Target,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect(t.addr).await?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAccept: application/json\r\nUser-Agent: lookout-loadgen\r\n",
        t.host
    );
    if let Some(tok) = token {
        req.push_str(&format!("Authorization: Bearer {tok}\r\n"));
    }
    if !body.is_empty() {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    stream.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(120), stream.read_to_end(&mut raw))
        .await
        .context("HTTP request timed out")??;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("malformed HTTP response"))?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("malformed status line"))?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        let mut out = String::new();
        let mut rest = rest;
        while let Some((size, after)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 || after.len() < n {
                break;
            }
            out.push_str(&after[..n]);
            rest = after[n..].trim_start_matches("\r\n");
        }
        out
    } else {
        rest.to_string()
    };
    Ok((status, body))
}

async fn http_json(
    t: &Target,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> anyhow::Result<(u16, Value)> {
    let (status, text) = http(t, method, path, token, body).await?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

fn proc_field_kb(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// User + system CPU seconds of a process (clock ticks of 1/100 s).
fn proc_cpu_secs(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = s.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn self_pid() -> u32 {
    std::process::id()
}

// ---------------------------------------------------------------- ids and frames

fn visitor_id(run: &str, idx: usize) -> String {
    format!("lg{run}v{idx:07}")
}

fn hello_frame(run: &str, tag: &str, idx: usize) -> String {
    json!({
        "type": "hello",
        "visitor": format!("lg{run}{tag}{idx:07}"),
        "session": format!("lg{run}s{tag}{idx:07}"),
        "tab": format!("lg{run}t{tag}{idx:07}"),
        "url": format!("https://load.test/landing/{idx}"),
        "title": "Load test landing",
        "referrer": "https://search.test/?q=lookout",
        "lang": "en", "screen": "1280x720", "tz": "UTC", "resume": false,
    })
    .to_string()
}

fn page_frame(idx: usize, t: u64) -> String {
    format!(
        r#"{{"type":"page","url":"https://load.test/p/{idx}?lgt={t}","title":"Load test page","referrer":"https://search.test/"}}"#
    )
}

/// The `lgt=` timestamp after `after` in a frame.
fn stamp_after(text: &str, after: &str) -> Option<u64> {
    let from = text.find(after)? + after.len();
    let rest = &text[from..];
    let at = rest.find("lgt=")? + 4;
    let digits: &str = &rest[at..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

// ---------------------------------------------------------------- coordinator

struct Setup {
    site_key: String,
    site_id: String,
    token: String,
}

async fn setup(opts: &Opts, t: &Target, run: &str) -> anyhow::Result<Setup> {
    if let (Some(k), Some(i), Some(tok)) = (&opts.site_key, &opts.site_id, &opts.token) {
        return Ok(Setup {
            site_key: k.clone(),
            site_id: i.clone(),
            token: tok.clone(),
        });
    }
    if opts.site_key.is_some() || opts.site_id.is_some() || opts.token.is_some() {
        bail!(
            "give all of --site-key, --site-id and --token, or none (a throwaway site is created)"
        );
    }
    let email = format!("loadgen-{run}@loadgen.test");
    let (status, body) = http_json(
        t,
        "POST",
        "/api/auth/signup",
        None,
        Some(&json!({"email": email, "password": "loadgen-password-123"})),
    )
    .await?;
    if status != 201 {
        bail!("signup failed: {status} {body}");
    }
    let token = body["token"]
        .as_str()
        .ok_or_else(|| anyhow!("signup: no token"))?
        .to_string();
    let (status, body) = http_json(
        t,
        "POST",
        "/api/sites",
        Some(&token),
        Some(&json!({"name": format!("loadgen {run}"), "domains": []})),
    )
    .await?;
    if status != 201 {
        bail!("creating the site failed: {status} {body}");
    }
    Ok(Setup {
        site_key: body["key"].as_str().unwrap_or_default().to_string(),
        site_id: body["id"].as_str().unwrap_or_default().to_string(),
        token,
    })
}

/// Page views stored for the site (all time), through the stats API.
async fn stored_pageviews(t: &Target, s: &Setup) -> anyhow::Result<i64> {
    let to = chrono::Utc::now() + chrono::Duration::minutes(10);
    let from = to - chrono::Duration::days(365);
    let path = format!(
        "/api/sites/{}/stats?interval=day&from={}&to={}",
        s.site_id,
        from.format("%Y-%m-%dT%H:%M:%SZ"),
        to.format("%Y-%m-%dT%H:%M:%SZ")
    );
    let (status, body) = http_json(t, "GET", &path, Some(&s.token), None).await?;
    if status != 200 {
        bail!("stats: {status} {body}");
    }
    body["pageviews"]
        .as_i64()
        .ok_or_else(|| anyhow!("stats: no pageviews in {body}"))
}

/// Selected lines of the server's /metrics (writer latency, drops, resyncs, refusals).
async fn server_metrics(t: &Target) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let Ok((200, text)) = http(t, "GET", "/metrics", None, None).await else {
        return out;
    };
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let keep = [
            "lookout_writer_commit_latency_seconds",
            "lookout_writer_batch_seconds",
            "lookout_writer_rows_total",
            "lookout_writer_batches_total",
            "lookout_writer_dropped_total",
            "lookout_writer_pushback_total",
            "lookout_writer_lost_total",
            "lookout_writer_errors_total",
            "lookout_admin_resyncs_total",
            "lookout_visitor_refused_total",
            "lookout_visitor_closed_total",
            "lookout_cluster_",
        ];
        if keep.iter().any(|k| line.starts_with(k)) {
            if let Some((k, v)) = line.rsplit_once(' ') {
                if let Ok(v) = v.parse::<f64>() {
                    out.insert(k.to_string(), v);
                }
            }
        }
    }
    out
}

struct ChildProc {
    child: tokio::process::Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    stdin: tokio::process::ChildStdin,
}

impl ChildProc {
    /// The next line starting with `tag`, as JSON.
    async fn expect(&mut self, tag: &str, wait: Duration) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.next_line())
                .await
                .with_context(|| format!("worker did not report {tag} in time"))??
                .ok_or_else(|| anyhow!("worker exited before {tag}"))?;
            if let Some(rest) = line.strip_prefix(tag) {
                return Ok(serde_json::from_str(rest.trim())?);
            }
        }
    }
}

fn child_args(opts: &Opts, i: usize, s: &Setup, run: &str, admin: &str) -> Vec<String> {
    let mut a = vec![
        opts.scenario.name().to_string(),
        "--url".into(),
        opts.url.clone(),
        "--admin-url".into(),
        admin.to_string(),
        "--site-key".into(),
        s.site_key.clone(),
        "--site-id".into(),
        s.site_id.clone(),
        "--token".into(),
        s.token.clone(),
        "--sources".into(),
        opts.sources.clone(),
        "--procs".into(),
        opts.procs.to_string(),
        "--connections".into(),
        opts.connections.to_string(),
        "--duration".into(),
        opts.duration.to_string(),
        "--rate".into(),
        opts.rate.to_string(),
        "--admins".into(),
        opts.admins.to_string(),
        "--connect-concurrency".into(),
        opts.connect_concurrency.to_string(),
        "--connect-rate".into(),
        opts.connect_rate.to_string(),
        "--child".into(),
        i.to_string(),
        "--run-id".into(),
        run.to_string(),
    ];
    if let Some(m) = opts.max_runtime {
        a.push("--max-runtime".into());
        a.push(m.to_string());
    }
    a
}

/// RSS (KiB) and CPU seconds of each server process at one moment.
#[derive(Clone, Default)]
struct ProcSample {
    rss: Vec<Option<u64>>,
    cpu: Vec<Option<f64>>,
}

fn sample_procs(pids: &[u32]) -> ProcSample {
    ProcSample {
        rss: pids.iter().map(|&p| proc_field_kb(p, "VmRSS")).collect(),
        cpu: pids.iter().map(|&p| proc_cpu_secs(p)).collect(),
    }
}

/// The sum over the nodes, or None when no node could be read.
fn sum_some<T: Copy + std::iter::Sum<T>>(v: &[Option<T>]) -> Option<T> {
    v.iter()
        .any(Option::is_some)
        .then(|| v.iter().flatten().copied().sum())
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// CPU cores used between two samples (`secs` of wall time).
fn cores(a: Option<f64>, b: Option<f64>, secs: f64) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if secs > 0.0 => Some(round2((b - a) / secs)),
        _ => None,
    }
}

/// `/metrics` of every node, in order.
async fn all_metrics(nodes: &[Target]) -> Vec<BTreeMap<String, f64>> {
    let mut out = Vec::new();
    for t in nodes {
        out.push(server_metrics(t).await);
    }
    out
}

/// A counter's increase between two scrapes of one node.
fn counter_delta(a: &BTreeMap<String, f64>, b: &BTreeMap<String, f64>, key: &str) -> f64 {
    b.get(key).copied().unwrap_or(0.0) - a.get(key).copied().unwrap_or(0.0)
}

/// A counter's increase between two scrapes, summed over the nodes.
fn cluster_delta(a: &[BTreeMap<String, f64>], b: &[BTreeMap<String, f64>], key: &str) -> f64 {
    a.iter().zip(b).map(|(a, b)| counter_delta(a, b, key)).sum()
}

const BUS_PUBLISHED: &str = "lookout_cluster_published_total";
const BUS_BYTES: &str = "lookout_cluster_published_bytes_total";
const BUS_RECEIVED: &str = "lookout_cluster_received_total";
const BUS_DROPPED: &str = "lookout_cluster_dropped_total";
const BUS_ERRORS: &str = "lookout_cluster_publish_errors_total";

/// What the cluster bus carried between two scrapes, per event (`events` of them).
fn bus_json(a: &[BTreeMap<String, f64>], b: &[BTreeMap<String, f64>], events: u64) -> Value {
    let published = cluster_delta(a, b, BUS_PUBLISHED);
    let bytes = cluster_delta(a, b, BUS_BYTES);
    let received = cluster_delta(a, b, BUS_RECEIVED);
    let per = |x: f64| (events > 0).then(|| round2(x / events as f64));
    json!({
        "events": events,
        "published": published,
        "published_bytes": bytes,
        "received": received,
        "dropped": cluster_delta(a, b, BUS_DROPPED),
        "publish_errors": cluster_delta(a, b, BUS_ERRORS),
        "bytes_per_publish": (published > 0.0).then(|| round2(bytes / published)),
        "publishes_per_event": per(published),
        "bytes_per_event": per(bytes),
        "received_per_event": per(received),
    })
}

async fn coordinator(opts: Opts) -> anyhow::Result<()> {
    let visitor_urls = parse_urls(&opts.url)?;
    let visitor_targets: Vec<Target> = visitor_urls
        .iter()
        .map(|u| target(u))
        .collect::<anyhow::Result<_>>()?;
    let admin = admin_url(&opts)?;
    // Setup and the stored count go through the admins' node (the nodes share the database).
    let t = target(&admin)?;
    let node_list = node_urls(&opts)?;
    let node_targets: Vec<Target> = node_list
        .iter()
        .map(|u| target(u))
        .collect::<anyhow::Result<_>>()?;
    let pids = parse_pids(opts.server_pid.as_deref())?;
    let sources = parse_sources(&opts.sources)?;
    let procs = opts.procs.max(1);
    let per_proc = opts.connections.div_ceil(procs) + opts.admins.div_ceil(procs);
    if matches!(
        opts.scenario,
        Scenario::Idle | Scenario::Pageviews | Scenario::Push
    ) && per_proc + 64 > MAX_FDS_PER_PROCESS
    {
        bail!(
            "{per_proc} sockets per worker would pass the {MAX_FDS_PER_PROCESS} fd limit: raise --procs"
        );
    }
    if opts.connections > 28_000 * sources.len() {
        bail!("more than ~28,000 connections per source address: add --sources");
    }
    if matches!(opts.scenario, Scenario::Pageviews | Scenario::Push) && opts.connections == 0 {
        bail!("this scenario needs --connections > 0");
    }
    if opts.scenario == Scenario::Push && opts.admins == 0 {
        bail!("push needs --admins > 0");
    }
    let run: String = {
        let mut r = rand::thread_rng();
        (0..6)
            .map(|_| char::from(b'a' + r.gen_range(0..26u8)))
            .collect()
    };
    let s = setup(&opts, &t, &run).await?;
    let check_db = !opts.no_db_check;
    let pv_before = if check_db {
        stored_pageviews(&t, &s).await?
    } else {
        0
    };
    let metrics_before = all_metrics(&node_targets).await;
    let redis_cpu = || opts.redis_pid.and_then(proc_cpu_secs);
    let p_before = sample_procs(&pids);
    let redis_before = redis_cpu();

    let exe = std::env::current_exe()?;
    let started = Instant::now();
    let mut children = Vec::new();
    for i in 0..procs {
        let mut cmd = tokio::process::Command::new(&exe);
        cmd.args(child_args(&opts, i, &s, &run, &admin))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd.spawn().context("starting a worker")?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("worker stdout"))?;
        let stdin = child.stdin.take().ok_or_else(|| anyhow!("worker stdin"))?;
        children.push(ChildProc {
            child,
            lines: BufReader::new(stdout).lines(),
            stdin,
        });
    }
    // Connect phase.
    let mut readies = Vec::new();
    for c in &mut children {
        readies.push(c.expect("READY", Duration::from_secs(180)).await?);
    }
    let connect_elapsed = started.elapsed().as_secs_f64();
    let p_connected = sample_procs(&pids);
    let redis_connected = redis_cpu();
    let mut metrics_connected = all_metrics(&node_targets).await;
    // Several nodes: the measured phase starts once the bus has carried the ramp (what the
    // nodes receive stops growing beyond heartbeats), so that its latency is not the ramp's.
    let settle_started = Instant::now();
    if node_targets.len() > 1 {
        let received = |m: &[BTreeMap<String, f64>]| -> f64 {
            m.iter()
                .map(|n| n.get(BUS_RECEIVED).copied().unwrap_or(0.0))
                .sum()
        };
        let mut last = received(&metrics_connected);
        while settle_started.elapsed() < Duration::from_secs(60) {
            tokio::time::sleep(Duration::from_secs(1)).await;
            metrics_connected = all_metrics(&node_targets).await;
            let now = received(&metrics_connected);
            if now - last < 100.0 {
                break;
            }
            last = now;
        }
    }
    let bus_settle_secs = settle_started.elapsed().as_secs_f64();
    let p_go = sample_procs(&pids);
    let redis_go = redis_cpu();
    let mut handshake = new_hist();
    let (mut connected, mut failed, mut admins_ok) = (0u64, 0u64, 0u64);
    let mut per_node_connected = vec![0u64; visitor_targets.len()];
    let mut errors: Vec<String> = Vec::new();
    let mut ramp_secs: f64 = 0.0;
    for r in &readies {
        connected += r["connected"].as_u64().unwrap_or(0);
        failed += r["failed"].as_u64().unwrap_or(0);
        admins_ok += r["admins"].as_u64().unwrap_or(0);
        ramp_secs = ramp_secs.max(r["connect_secs"].as_f64().unwrap_or(0.0));
        let _ = handshake.add(hist_from_b64(r["handshake"].as_str().unwrap_or_default()));
        if let Some(per) = r["per_node"].as_array() {
            for (slot, n) in per_node_connected.iter_mut().zip(per) {
                *slot += n.as_u64().unwrap_or(0);
            }
        }
        if let Some(e) = r["errors"].as_array() {
            errors.extend(e.iter().filter_map(|x| x.as_str().map(str::to_string)));
        }
    }
    // Measured phase.
    for c in &mut children {
        c.stdin.write_all(b"GO\n").await?;
        c.stdin.flush().await?;
    }
    let phase_started = Instant::now();
    let sampler = {
        let dur = opts.duration;
        let pids = pids.clone();
        async move {
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            let mut peak = vec![0u64; pids.len()];
            let mut mid: Vec<Option<u64>> = vec![None; pids.len()];
            let start = Instant::now();
            loop {
                tick.tick().await;
                let el = start.elapsed().as_secs_f64();
                if el > dur as f64 {
                    break;
                }
                for (i, &p) in pids.iter().enumerate() {
                    if let Some(r) = proc_field_kb(p, "VmRSS") {
                        peak[i] = peak[i].max(r);
                        if mid[i].is_none() && el >= dur as f64 * 0.8 {
                            mid[i] = Some(r);
                        }
                    }
                }
            }
            (peak, mid)
        }
    };
    let (peak, mid) = sampler.await;
    let rss_peak: Vec<u64> = peak
        .iter()
        .zip(&p_connected.rss)
        .map(|(p, c)| (*p).max(c.unwrap_or(0)))
        .collect();
    let p_phase_end = sample_procs(&pids);
    let redis_phase_end = redis_cpu();
    let phase_wall = phase_started.elapsed().as_secs_f64();
    let metrics_phase_end = all_metrics(&node_targets).await;
    let mut results = Vec::new();
    for c in &mut children {
        results.push(c.expect("RESULT", Duration::from_secs(120)).await?);
    }
    let phase_secs = phase_started.elapsed().as_secs_f64();
    for c in &mut children {
        match tokio::time::timeout(Duration::from_secs(15), c.child.wait()).await {
            Ok(_) => {}
            Err(_) => {
                let _ = c.child.start_kill();
            }
        }
    }

    // Merge the workers' results.
    let mut v2a = new_hist();
    let mut a2v = new_hist();
    let mut rtt = new_hist();
    let mut churn_h = new_hist();
    let mut sum = BTreeMap::<String, u64>::new();
    let mut close_codes = BTreeMap::<String, u64>::new();
    let mut loadgen_cpu = 0.0;
    for r in &results {
        let _ = v2a.add(hist_from_b64(r["v2a"].as_str().unwrap_or_default()));
        let _ = a2v.add(hist_from_b64(r["a2v"].as_str().unwrap_or_default()));
        let _ = rtt.add(hist_from_b64(r["send_rtt"].as_str().unwrap_or_default()));
        let _ = churn_h.add(hist_from_b64(r["churn"].as_str().unwrap_or_default()));
        if let Some(obj) = r["counters"].as_object() {
            for (k, v) in obj {
                *sum.entry(k.clone()).or_default() += v.as_u64().unwrap_or(0);
            }
        }
        if let Some(obj) = r["close_codes"].as_object() {
            for (k, v) in obj {
                *close_codes.entry(k.clone()).or_default() += v.as_u64().unwrap_or(0);
            }
        }
        loadgen_cpu += r["cpu_secs"].as_f64().unwrap_or(0.0);
        if let Some(e) = r["errors"].as_array() {
            errors.extend(e.iter().filter_map(|x| x.as_str().map(str::to_string)));
        }
    }
    let c = |k: &str| sum.get(k).copied().unwrap_or(0);
    let p_after = sample_procs(&pids);

    // Page views sent: every hello (not resumed) and every page frame written.
    let pv_sent = connected + c("pages_sent") + c("churn_ok");
    let mut db = json!(null);
    if check_db {
        let wait_started = Instant::now();
        let deadline = wait_started + Duration::from_secs(opts.settle);
        let mut stored;
        let mut last_change = Instant::now();
        let mut last = -1i64;
        loop {
            stored = stored_pageviews(&t, &s).await? - pv_before;
            if stored as u64 >= pv_sent || Instant::now() >= deadline {
                break;
            }
            if stored != last {
                last = stored;
                last_change = Instant::now();
            } else if last_change.elapsed() > Duration::from_secs(10) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        db = json!({
            "pageviews_sent": pv_sent,
            "pageviews_stored": stored,
            "lost": pv_sent as i64 - stored,
            "settle_secs": (wait_started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        });
    }
    let metrics_after = all_metrics(&node_targets).await;
    // Counters: the increase summed over the nodes; anything else (quantiles, gauges): the
    // highest node's value. With one node that is the node's own figure.
    let mut server_metrics_json = serde_json::Map::new();
    for (before, after) in metrics_before.iter().zip(&metrics_after) {
        for (k, v) in after {
            let is_counter = k.ends_with("_total") || k.contains("_total{");
            let value = if is_counter {
                v - before.get(k).copied().unwrap_or(0.0)
            } else {
                *v
            };
            let merged = match server_metrics_json.get(k).and_then(Value::as_f64) {
                Some(prev) if is_counter => prev + value,
                Some(prev) => prev.max(value),
                None => value,
            };
            server_metrics_json.insert(k.clone(), json!(merged));
        }
    }

    let d = opts.duration as f64;
    let conn_rate = if ramp_secs > 0.0 {
        connected as f64 / ramp_secs
    } else {
        0.0
    };
    let kib = |x: Option<u64>| x.map(|v| v as f64);
    let held: Vec<Option<u64>> = mid
        .iter()
        .zip(&p_connected.rss)
        .map(|(m, c)| m.or(*c))
        .collect();
    let rss_per_conn = match (sum_some(&p_before.rss), sum_some(&held)) {
        (Some(b), Some(h)) if connected > 0 => {
            Some((h as f64 - b as f64) * 1024.0 / connected as f64)
        }
        _ => None,
    };
    let total_secs = |a: &[Option<f64>], b: &[Option<f64>]| match (sum_some(a), sum_some(b)) {
        (Some(a), Some(b)) => Some(round2(b - a)),
        _ => None,
    };
    // Per node: the visitors it holds, its process, and what it put on the bus.
    let nodes_json: Vec<Value> = (0..node_list.len().max(pids.len()))
        .map(|i| {
            let url = node_list.get(i);
            let pid = pids.get(i);
            let rss = |s: &ProcSample| s.rss.get(i).copied().flatten().map(|v| v as f64);
            let cpu = |s: &ProcSample| s.cpu.get(i).copied().flatten();
            let m = |v: &[BTreeMap<String, f64>]| v.get(i).cloned().unwrap_or_default();
            let (mb, ma) = (m(&metrics_before), m(&metrics_after));
            json!({
                "url": url,
                "pid": pid,
                "admins": url.is_some_and(|u| *u == admin),
                "visitors_connected": per_node_connected.get(i).copied().unwrap_or(0),
                "rss_kib": {
                    "before": rss(&p_before), "connected": rss(&p_connected),
                    "held": held.get(i).copied().flatten(), "peak": rss_peak.get(i),
                    "after": rss(&p_after),
                },
                "cpu_cores_connect": cores(cpu(&p_before), cpu(&p_connected), connect_elapsed),
                "cpu_cores_phase": cores(cpu(&p_go), cpu(&p_phase_end), d),
                "cpu_secs_total": match (cpu(&p_before), cpu(&p_after)) { (Some(a), Some(b)) => Some(round2(b - a)), _ => None },
                "bus_published": counter_delta(&mb, &ma, BUS_PUBLISHED),
                "bus_published_bytes": counter_delta(&mb, &ma, BUS_BYTES),
                "bus_received": counter_delta(&mb, &ma, BUS_RECEIVED),
                "bus_dropped": counter_delta(&mb, &ma, BUS_DROPPED),
            })
        })
        .collect();
    // The bus per event: per connection while connecting (hello: presence, joined, page view,
    // observation), per measured event during the phase.
    let phase_events = match opts.scenario {
        Scenario::Pageviews => c("pages_sent"),
        Scenario::Push => c("push_sent"),
        Scenario::Churn => c("churn_ok"),
        Scenario::Idle => 0,
    };
    let bus = json!({
        "connect": bus_json(&metrics_before, &metrics_connected, connected),
        "phase": bus_json(&metrics_connected, &metrics_phase_end, phase_events),
        "settle_secs_before_phase": round2(bus_settle_secs),
        "redis_cpu_cores_connect": cores(redis_before, redis_connected, connect_elapsed),
        "redis_cpu_cores_phase": cores(redis_go, redis_phase_end, phase_wall),
    });
    let out = json!({
        "scenario": opts.scenario.name(),
        "label": opts.label,
        "run": run,
        "procs": procs,
        "sources": sources.len(),
        "connections": opts.connections,
        "admins": opts.admins,
        "admins_connected": admins_ok,
        "duration_s": opts.duration,
        "rate_target": opts.rate,
        "connected": connected,
        "connect_failed": failed,
        "connect_secs": (ramp_secs * 100.0).round() / 100.0,
        "connects_per_s": conn_rate.round(),
        "handshake": hist_json(&handshake),
        "pages_sent": c("pages_sent"),
        "pages_per_s": (c("pages_sent") as f64 / d).round(),
        "page_send_errors": c("page_send_errors"),
        "closed_by_server": c("closed_by_server"),
        "close_codes": close_codes,
        "v2a_latency": hist_json(&v2a),
        "admin_pageview_frames": c("admin_pageviews"),
        "admin_pageview_frames_expected": c("pages_sent") * opts.admins as u64,
        "admin_resyncs": c("admin_resyncs"),
        "push_sent": c("push_sent"),
        "push_per_s": (c("push_sent") as f64 / d).round(),
        "push_replies": c("push_replies"),
        "push_delivered": c("push_delivered"),
        "push_undelivered": c("push_undelivered"),
        "push_errors": c("push_errors"),
        "push_received": c("push_received"),
        "a2v_latency": hist_json(&a2v),
        "send_rtt": hist_json(&rtt),
        "churn_ok": c("churn_ok"),
        "churn_failed": c("churn_failed"),
        "churn_skipped": c("churn_skipped"),
        "churn_per_s": (c("churn_ok") as f64 / d).round(),
        "churn_handshake": hist_json(&churn_h),
        "db": db,
        "server_rss_kib": {"before": kib(sum_some(&p_before.rss)), "connected": kib(sum_some(&p_connected.rss)), "held": kib(sum_some(&held)), "peak": rss_peak.iter().sum::<u64>(), "after": kib(sum_some(&p_after.rss))},
        "server_rss_bytes_per_connection": rss_per_conn.map(|x| x.round()),
        "server_cpu_cores_connect": cores(sum_some(&p_before.cpu), sum_some(&p_connected.cpu), connect_elapsed),
        "server_cpu_cores_phase": cores(sum_some(&p_go.cpu), sum_some(&p_phase_end.cpu), d),
        "server_cpu_secs_total": total_secs(&p_before.cpu, &p_after.cpu),
        "loadgen_cpu_secs": (loadgen_cpu * 100.0_f64).round() / 100.0,
        "phase_secs": (phase_secs * 10.0).round() / 10.0,
        "server_metrics": server_metrics_json,
        "nodes": nodes_json,
        "bus": bus,
        "errors": errors.iter().take(10).collect::<Vec<_>>(),
    });
    print_table(&out);
    let line = out.to_string();
    println!("{line}");
    if let Some(path) = &opts.json_out {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        writeln!(f, "{line}")?;
    }
    Ok(())
}

fn print_table(o: &Value) {
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut row = |k: &str, v: String| rows.push((k.to_string(), v));
    let lat = |v: &Value| -> String {
        if v["count"].as_u64().unwrap_or(0) == 0 {
            return "-".into();
        }
        format!(
            "p50 {} / p90 {} / p99 {} / p99.9 {} / max {} ms (n={})",
            v["p50_ms"], v["p90_ms"], v["p99_ms"], v["p999_ms"], v["max_ms"], v["count"]
        )
    };
    row(
        "scenario",
        format!(
            "{} {} (procs {}, sources {})",
            o["scenario"].as_str().unwrap_or(""),
            o["label"].as_str().unwrap_or(""),
            o["procs"],
            o["sources"]
        ),
    );
    row(
        "connections",
        format!(
            "{} ok, {} failed, {} admins",
            o["connected"], o["connect_failed"], o["admins_connected"]
        ),
    );
    row(
        "connect rate",
        format!(
            "{} handshakes/s over {} s",
            o["connects_per_s"], o["connect_secs"]
        ),
    );
    row("handshake latency", lat(&o["handshake"]));
    match o["scenario"].as_str() {
        Some("pageviews") => {
            row(
                "page views sent",
                format!(
                    "{} ({} /s, target {}), {} send errors",
                    o["pages_sent"], o["pages_per_s"], o["rate_target"], o["page_send_errors"]
                ),
            );
            row("visitor→admin latency", lat(&o["v2a_latency"]));
            row(
                "admin pageview frames",
                format!(
                    "{} of {} expected, {} resyncs",
                    o["admin_pageview_frames"],
                    o["admin_pageview_frames_expected"],
                    o["admin_resyncs"]
                ),
            );
        }
        Some("push") => {
            row(
                "messages sent",
                format!(
                    "{} ({} /s, target {}), replies {}, delivered {}, undelivered {}, errors {}",
                    o["push_sent"],
                    o["push_per_s"],
                    o["rate_target"],
                    o["push_replies"],
                    o["push_delivered"],
                    o["push_undelivered"],
                    o["push_errors"]
                ),
            );
            row("admin→visitor latency", lat(&o["a2v_latency"]));
            row("send→sent round trip", lat(&o["send_rtt"]));
        }
        Some("churn") => {
            row(
                "churn cycles",
                format!(
                    "{} ok ({} /s, target {}), {} failed, {} skipped (over concurrency)",
                    o["churn_ok"],
                    o["churn_per_s"],
                    o["rate_target"],
                    o["churn_failed"],
                    o["churn_skipped"]
                ),
            );
            row("cycle handshake latency", lat(&o["churn_handshake"]));
        }
        _ => {}
    }
    row(
        "closed by server",
        format!("{} {}", o["closed_by_server"], o["close_codes"]),
    );
    if !o["db"].is_null() {
        row(
            "database",
            format!(
                "{} page views stored of {} sent (lost {}), settled in {} s",
                o["db"]["pageviews_stored"],
                o["db"]["pageviews_sent"],
                o["db"]["lost"],
                o["db"]["settle_secs"]
            ),
        );
    }
    let r = &o["server_rss_kib"];
    row(
        "server RSS (KiB)",
        format!(
            "before {} / connected {} / held {} / peak {} / after {}",
            r["before"], r["connected"], r["held"], r["peak"], r["after"]
        ),
    );
    // Per connection only where nothing else grows (queues and caches do under page views).
    if matches!(o["scenario"].as_str(), Some("idle" | "push")) {
        row(
            "server RSS per connection",
            format!("{} bytes", o["server_rss_bytes_per_connection"]),
        );
    }
    row(
        "server CPU (cores)",
        format!(
            "connect {} / phase {}; load generator CPU {} s",
            o["server_cpu_cores_connect"], o["server_cpu_cores_phase"], o["loadgen_cpu_secs"]
        ),
    );
    // Cluster runs: each node, and what the bus carried.
    if let Some(nodes) = o["nodes"].as_array().filter(|n| n.len() > 1) {
        for (i, n) in nodes.iter().enumerate() {
            let r = &n["rss_kib"];
            row(
                &format!("node {i}"),
                format!(
                    "{} pid {}{}: {} visitors; RSS held {} / peak {} KiB; CPU connect {} / phase {} cores; bus out {} msgs {} B, in {} msgs, dropped {}",
                    n["url"].as_str().unwrap_or("-"),
                    n["pid"],
                    if n["admins"].as_bool() == Some(true) { " (admins)" } else { "" },
                    n["visitors_connected"],
                    r["held"],
                    r["peak"],
                    n["cpu_cores_connect"],
                    n["cpu_cores_phase"],
                    n["bus_published"],
                    n["bus_published_bytes"],
                    n["bus_received"],
                    n["bus_dropped"],
                ),
            );
        }
    }
    let bus = &o["bus"];
    let bus_row = |b: &Value, per: &str| -> String {
        format!(
            "{} published ({} B, {} B each), {} received, {} dropped, {} errors; per {per}: {} publishes, {} B, {} received",
            b["published"],
            b["published_bytes"],
            b["bytes_per_publish"],
            b["received"],
            b["dropped"],
            b["publish_errors"],
            b["publishes_per_event"],
            b["bytes_per_event"],
            b["received_per_event"],
        )
    };
    if bus["connect"]["published"].as_f64().unwrap_or(0.0) > 0.0
        || bus["phase"]["published"].as_f64().unwrap_or(0.0) > 0.0
    {
        row(
            "bus while connecting",
            bus_row(&bus["connect"], "connection"),
        );
        row("bus during the phase", bus_row(&bus["phase"], "event"));
    }
    if !bus["redis_cpu_cores_phase"].is_null() {
        row(
            "Redis CPU (cores)",
            format!(
                "connect {} / phase {}",
                bus["redis_cpu_cores_connect"], bus["redis_cpu_cores_phase"]
            ),
        );
    }
    if o["nodes"].as_array().is_some_and(|n| n.len() > 1) {
        row(
            "bus settled after ramp",
            format!("{} s before the phase", bus["settle_secs_before_phase"]),
        );
    }
    let m = &o["server_metrics"];
    let q = |name: &str| -> String {
        let key = format!("lookout_writer_commit_latency_seconds{{quantile=\"{name}\"}}");
        m[&key]
            .as_f64()
            .map(|x| format!("{:.1}", x * 1000.0))
            .unwrap_or_else(|| "-".into())
    };
    row(
        "receipt→commit (server)",
        format!(
            "p50 {} / p99 {} / p99.9 {} / max {} ms",
            q("0.5"),
            q("0.99"),
            q("0.999"),
            q("1")
        ),
    );
    if let Some(e) = o["errors"].as_array().filter(|e| !e.is_empty()) {
        row("first errors", format!("{e:?}"));
    }
    let w = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    println!("{}", "-".repeat(w + 60));
    for (k, v) in rows {
        println!("{k:<w$}  {v}");
    }
    println!("{}", "-".repeat(w + 60));
}

// ---------------------------------------------------------------- worker process

type Ws = WebSocketStream<TcpStream>;
type Sink = SplitSink<Ws, Message>;
type Stream = SplitStream<Ws>;

struct Ctx {
    opts: Opts,
    /// Visitor nodes: connection i goes to `targets[i % len]`.
    targets: Vec<Target>,
    admin_target: Target,
    sources: Vec<IpAddr>,
    run: String,
    site_key: String,
    site_id: String,
    token: String,
    counters: Counters,
    handshake: Mutex<Histogram<u64>>,
    a2v: Mutex<Histogram<u64>>,
    churn: Mutex<Histogram<u64>>,
    close_codes: Mutex<BTreeMap<String, u64>>,
    errors: Mutex<Vec<String>>,
}

#[derive(Default)]
struct Counters {
    pages_sent: AtomicU64,
    page_send_errors: AtomicU64,
    closed_by_server: AtomicU64,
    admin_pageviews: AtomicU64,
    admin_resyncs: AtomicU64,
    push_sent: AtomicU64,
    push_replies: AtomicU64,
    push_delivered: AtomicU64,
    push_undelivered: AtomicU64,
    push_errors: AtomicU64,
    push_received: AtomicU64,
    churn_ok: AtomicU64,
    churn_failed: AtomicU64,
    churn_skipped: AtomicU64,
}

impl Counters {
    fn json(&self) -> Value {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        json!({
            "pages_sent": g(&self.pages_sent),
            "page_send_errors": g(&self.page_send_errors),
            "closed_by_server": g(&self.closed_by_server),
            "admin_pageviews": g(&self.admin_pageviews),
            "admin_resyncs": g(&self.admin_resyncs),
            "push_sent": g(&self.push_sent),
            "push_replies": g(&self.push_replies),
            "push_delivered": g(&self.push_delivered),
            "push_undelivered": g(&self.push_undelivered),
            "push_errors": g(&self.push_errors),
            "push_received": g(&self.push_received),
            "churn_ok": g(&self.churn_ok),
            "churn_failed": g(&self.churn_failed),
            "churn_skipped": g(&self.churn_skipped),
        })
    }
}

fn inc(a: &AtomicU64) {
    a.fetch_add(1, Ordering::Relaxed);
}

impl Ctx {
    fn error(&self, e: String) {
        let mut errs = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        if errs.len() < 10 {
            errs.push(e);
        }
    }

    fn closed_with(&self, code: Option<u16>) {
        inc(&self.counters.closed_by_server);
        let key = code.map_or_else(|| "none".to_string(), |c| c.to_string());
        *self
            .close_codes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_default() += 1;
    }
}

fn client_config(big: bool) -> WebSocketConfig {
    let c = WebSocketConfig::default()
        .read_buffer_size(if big { 64 * 1024 } else { 4 * 1024 })
        .write_buffer_size(0);
    if big {
        c.max_message_size(Some(512 << 20))
            .max_frame_size(Some(512 << 20))
    } else {
        c
    }
}

async fn open_ws(t: &Target, src: IpAddr, path: &str, big: bool) -> anyhow::Result<Ws> {
    let sock = if src.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    sock.bind(SocketAddr::new(src, 0))
        .with_context(|| format!("binding {src}"))?;
    let stream = sock.connect(t.addr).await.context("connect")?;
    stream.set_nodelay(true)?;
    let mut req = format!("ws://{}{path}", t.host).into_client_request()?;
    req.headers_mut()
        .insert("origin", "https://load.test".parse()?);
    req.headers_mut().insert("user-agent", UA.parse()?);
    let (ws, _) =
        tokio_tungstenite::client_async_with_config(req, stream, Some(client_config(big))).await?;
    Ok(ws)
}

/// The node of visitor connection `idx` (round-robin over the nodes).
fn visitor_target(ctx: &Ctx, idx: usize) -> &Target {
    &ctx.targets[idx % ctx.targets.len()]
}

/// Opens a visitor socket to node `t`, says hello and waits for the welcome.
async fn visitor_handshake(
    ctx: &Ctx,
    t: &Target,
    src: IpAddr,
    hello: String,
) -> anyhow::Result<Ws> {
    let mut ws = open_ws(t, src, &format!("/ws/visitor?site={}", ctx.site_key), false).await?;
    ws.send(Message::Text(hello.into())).await?;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Err(_) => bail!("no welcome within 10 s"),
            Ok(None) => bail!("closed before welcome"),
            Ok(Some(Err(e))) => bail!("before welcome: {e}"),
            Ok(Some(Ok(Message::Text(t)))) if t.contains("\"welcome\"") => return Ok(ws),
            Ok(Some(Ok(Message::Close(f)))) => {
                bail!("closed before welcome: {:?}", f.map(|f| u16::from(f.code)))
            }
            Ok(Some(Ok(_))) => continue,
        }
    }
}

async fn admin_handshake(ctx: &Ctx) -> anyhow::Result<Ws> {
    let src = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    let path = format!("/ws/admin?site={}", ctx.site_id);
    let mut ws = open_ws(&ctx.admin_target, src, &path, true).await?;
    ws.send(Message::Text(
        json!({"type": "auth", "token": ctx.token})
            .to_string()
            .into(),
    ))
    .await?;
    loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) if t.contains("\"snapshot\"") => return Ok(ws),
            Ok(Some(Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_)))) => continue,
            other => bail!("admin: no snapshot: {other:?}"),
        }
    }
}

fn cpu_self() -> f64 {
    proc_cpu_secs(self_pid()).unwrap_or(0.0)
}

async fn child_main(opts: Opts, me: usize) -> anyhow::Result<()> {
    let procs = opts.procs.max(1);
    let ctx = Arc::new(Ctx {
        targets: parse_urls(&opts.url)?
            .iter()
            .map(|u| target(u))
            .collect::<anyhow::Result<_>>()?,
        admin_target: target(&admin_url(&opts)?)?,
        sources: parse_sources(&opts.sources)?,
        run: opts.run_id.clone(),
        site_key: opts.site_key.clone().unwrap_or_default(),
        site_id: opts.site_id.clone().unwrap_or_default(),
        token: opts.token.clone().unwrap_or_default(),
        counters: Counters::default(),
        handshake: Mutex::new(new_hist()),
        a2v: Mutex::new(new_hist()),
        churn: Mutex::new(new_hist()),
        close_codes: Mutex::new(BTreeMap::new()),
        errors: Mutex::new(Vec::new()),
        opts,
    });
    let opts = &ctx.opts;
    let go = CancellationToken::new();
    let stop = CancellationToken::new();
    let admin_stop = CancellationToken::new();
    let mine: Vec<usize> = (0..opts.connections).filter(|i| i % procs == me).collect();
    let my_admins: Vec<usize> = (0..opts.admins).filter(|i| i % procs == me).collect();
    let uses_visitors = opts.scenario != Scenario::Churn;
    let uses_admins = matches!(opts.scenario, Scenario::Pageviews | Scenario::Push);

    // Admins first, so that they see the visitors arrive.
    let mut admin_tasks = Vec::new();
    let mut admins_ok = 0u64;
    if uses_admins {
        let push_rate = opts.rate / opts.admins.max(1) as f64;
        for a in &my_admins {
            match admin_handshake(&ctx).await {
                Ok(ws) => {
                    admins_ok += 1;
                    let ctx = ctx.clone();
                    let (go, phase_end, stop) = (go.clone(), stop.clone(), admin_stop.clone());
                    let seed = *a as u64;
                    admin_tasks.push(tokio::spawn(async move {
                        run_admin(ctx, ws, [go, phase_end, stop], push_rate, seed).await
                    }));
                }
                Err(e) => ctx.error(format!("admin: {e:#}")),
            }
        }
    }

    // Visitors: connect with bounded concurrency (and an optional rate).
    let connect_started = Instant::now();
    // Each handshake reports the node it connected to, or None when it failed.
    let (done_tx, mut done_rx) = mpsc::channel::<Option<usize>>(1024);
    let sem = Arc::new(Semaphore::new(opts.connect_concurrency.max(1)));
    let per_proc_connect_rate = opts.connect_rate / procs as f64;
    let visitor_period = if opts.scenario == Scenario::Pageviews && !mine.is_empty() {
        let per_visitor_rate = opts.rate / opts.connections as f64;
        Some(Duration::from_secs_f64(1.0 / per_visitor_rate.max(1e-6)))
    } else {
        None
    };
    let mut visitor_tasks = Vec::new();
    if uses_visitors {
        let mut pacer = (per_proc_connect_rate > 0.0).then(|| {
            let mut i = tokio::time::interval(Duration::from_secs_f64(1.0 / per_proc_connect_rate));
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            i
        });
        for &idx in &mine {
            if let Some(p) = pacer.as_mut() {
                p.tick().await;
            }
            let permit = sem.clone().acquire_owned().await?;
            let ctx = ctx.clone();
            let (go, stop, done) = (go.clone(), stop.clone(), done_tx.clone());
            visitor_tasks.push(tokio::spawn(async move {
                let src = ctx.sources[idx % ctx.sources.len()];
                let started = Instant::now();
                let node = visitor_target(&ctx, idx);
                let res = visitor_handshake(&ctx, node, src, hello_frame(&ctx.run, "v", idx)).await;
                drop(permit);
                match res {
                    Ok(ws) => {
                        record(
                            &mut ctx.handshake.lock().unwrap_or_else(|e| e.into_inner()),
                            started.elapsed().as_micros() as u64,
                        );
                        let _ = done.send(Some(idx % ctx.targets.len())).await;
                        run_visitor(ctx, ws, idx, visitor_period, go, stop).await;
                    }
                    Err(e) => {
                        ctx.error(format!("visitor {idx}: {e:#}"));
                        let _ = done.send(None).await;
                    }
                }
            }));
        }
    }
    drop(done_tx);
    let (mut connected, mut failed) = (0u64, 0u64);
    let mut per_node = vec![0u64; ctx.targets.len()];
    while let Some(res) = done_rx.recv().await {
        match res {
            Some(node) => {
                connected += 1;
                per_node[node] += 1;
            }
            None => failed += 1,
        }
        if (connected + failed) as usize == mine.len() {
            break;
        }
    }
    let connect_secs = connect_started.elapsed().as_secs_f64();
    let ready = json!({
        "connected": connected,
        "per_node": per_node,
        "failed": failed,
        "admins": admins_ok,
        "connect_secs": connect_secs,
        "handshake": hist_to_b64(&ctx.handshake.lock().unwrap_or_else(|e| e.into_inner())),
        "errors": ctx.errors.lock().unwrap_or_else(|e| e.into_inner()).clone(),
    });
    println!("READY {ready}");

    // Wait for the coordinator's go (or its end).
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    match tokio::time::timeout(Duration::from_secs(600), stdin.next_line()).await {
        Ok(Ok(Some(l))) if l.trim() == "GO" => {}
        _ => bail!("no GO from the coordinator"),
    }
    let cpu_start = cpu_self();
    go.cancel();
    let churn_task = (opts.scenario == Scenario::Churn).then(|| {
        let ctx = ctx.clone();
        let stop = stop.clone();
        let rate = opts.rate / procs as f64;
        tokio::spawn(async move { run_churn(ctx, me, rate, stop).await })
    });
    tokio::time::sleep(Duration::from_secs(opts.duration)).await;
    stop.cancel();
    if let Some(t) = churn_task {
        let _ = t.await;
    }
    // Visitors close (their frames before the close are all processed by the server).
    for t in visitor_tasks {
        let _ = tokio::time::timeout(Duration::from_secs(20), t).await;
    }
    // Give admins a moment for the frames still in flight.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    admin_stop.cancel();
    let mut v2a = new_hist();
    let mut rtt = new_hist();
    for t in admin_tasks {
        if let Ok(Ok((a, b))) = tokio::time::timeout(Duration::from_secs(10), t).await {
            let _ = v2a.add(a);
            let _ = rtt.add(b);
        }
    }
    let result = json!({
        "counters": ctx.counters.json(),
        "close_codes": ctx.close_codes.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        "v2a": hist_to_b64(&v2a),
        "send_rtt": hist_to_b64(&rtt),
        "a2v": hist_to_b64(&ctx.a2v.lock().unwrap_or_else(|e| e.into_inner())),
        "churn": hist_to_b64(&ctx.churn.lock().unwrap_or_else(|e| e.into_inner())),
        "cpu_secs": cpu_self() - cpu_start,
        "errors": ctx.errors.lock().unwrap_or_else(|e| e.into_inner()).clone(),
    });
    println!("RESULT {result}");
    Ok(())
}

/// What a visitor does with a frame from the server; false when the socket ended.
fn visitor_inbound(
    ctx: &Ctx,
    m: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
) -> bool {
    match m {
        Some(Ok(Message::Text(t))) => {
            if let Some(sent) = stamp_after(&t, "\"body\":\"") {
                let lat = now_us().saturating_sub(sent);
                record(&mut ctx.a2v.lock().unwrap_or_else(|e| e.into_inner()), lat);
                inc(&ctx.counters.push_received);
            }
            true
        }
        Some(Ok(Message::Close(f))) => {
            ctx.closed_with(f.map(|f| u16::from(f.code)));
            false
        }
        Some(Ok(_)) => true,
        Some(Err(_)) | None => {
            ctx.closed_with(None);
            false
        }
    }
}

async fn run_visitor(
    ctx: Arc<Ctx>,
    ws: Ws,
    idx: usize,
    period: Option<Duration>,
    go: CancellationToken,
    stop: CancellationToken,
) {
    let (mut sink, mut stream) = ws.split();
    // Before the measured phase: only read (pings, messages).
    loop {
        tokio::select! {
            _ = go.cancelled() => break,
            _ = stop.cancelled() => break,
            m = stream.next() => if !visitor_inbound(&ctx, m) { return; },
        }
    }
    if let Some(period) = period {
        // Spread the visitors' first sends over one period.
        let offset = period.mul_f64((idx % 997) as f64 / 997.0);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                m = stream.next() => if !visitor_inbound(&ctx, m) { return; },
                _ = tick.tick() => {
                    let frame = page_frame(idx, now_us());
                    if sink.send(Message::Text(frame.into())).await.is_ok() {
                        inc(&ctx.counters.pages_sent);
                    } else {
                        inc(&ctx.counters.page_send_errors);
                        return;
                    }
                }
            }
        }
    } else {
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                m = stream.next() => if !visitor_inbound(&ctx, m) { return; },
            }
        }
    }
    close_visitor(&ctx, sink, stream).await;
}

async fn close_visitor(ctx: &Ctx, mut sink: Sink, mut stream: Stream) {
    let _ = sink
        .send(Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        })))
        .await;
    // Read until the server's close (or the end), bounded.
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(m) = stream.next().await {
            match m {
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(Message::Text(t)) => {
                    if let Some(sent) = stamp_after(&t, "\"body\":\"") {
                        record(
                            &mut ctx.a2v.lock().unwrap_or_else(|e| e.into_inner()),
                            now_us().saturating_sub(sent),
                        );
                        inc(&ctx.counters.push_received);
                    }
                }
                Ok(_) => {}
            }
        }
    })
    .await;
}

/// An admin: reads everything (pageview latency, resyncs, `sent` replies); in `push` it also
/// sends messages to random visitors at `rate` per second.
async fn run_admin(
    ctx: Arc<Ctx>,
    ws: Ws,
    [go, phase_end, stop]: [CancellationToken; 3],
    rate: f64,
    seed: u64,
) -> (Histogram<u64>, Histogram<u64>) {
    let mut v2a = new_hist();
    let mut rtt = new_hist();
    let (mut sink, mut stream) = ws.split();
    let pushing = ctx.opts.scenario == Scenario::Push;
    let period = Duration::from_secs_f64(1.0 / rate.max(1e-6));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed ^ 0x5eed);
    let mut sending = false;
    let n = ctx.opts.connections.max(1);
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            _ = go.cancelled(), if !sending && pushing && !phase_end.is_cancelled() => {
                sending = true;
                tick.reset();
            }
            m = stream.next() => match m {
                Some(Ok(Message::Text(t))) => {
                    let t = t.as_str();
                    if t.contains("\"type\":\"pageview\"") {
                        if let Some(sent) = stamp_after(t, "\"url\":\"") {
                            record(&mut v2a, now_us().saturating_sub(sent));
                            inc(&ctx.counters.admin_pageviews);
                        }
                    } else if t.contains("\"type\":\"sent\"") {
                        inc(&ctx.counters.push_replies);
                        if let Ok(v) = serde_json::from_str::<Value>(t) {
                            if let Some(r) = v["ref"].as_u64() {
                                record(&mut rtt, now_us().saturating_sub(r));
                            }
                            match v["delivered"].as_u64() {
                                Some(0) | None => inc(&ctx.counters.push_undelivered),
                                Some(d) => { ctx.counters.push_delivered.fetch_add(d, Ordering::Relaxed); }
                            }
                        }
                    } else if t.contains("\"type\":\"error\"") {
                        inc(&ctx.counters.push_errors);
                        ctx.error(format!("admin error frame: {}", &t[..t.len().min(200)]));
                    } else if t.contains("\"type\":\"snapshot\"") {
                        inc(&ctx.counters.admin_resyncs);
                    }
                }
                Some(Ok(Message::Close(f))) => { ctx.closed_with(f.map(|f| u16::from(f.code))); break; }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => { ctx.closed_with(None); break; }
            },
            // Sending ends with the phase (the visitors close then); reading goes on a little.
            _ = phase_end.cancelled(), if sending => sending = false,
            _ = tick.tick(), if sending => {
                let to = visitor_id(&ctx.run, rng.gen_range(0..n));
                let t = now_us();
                let frame = format!(
                    r#"{{"type":"send","ref":{t},"to":{{"visitor":"{to}"}},"message":{{"title":"Load","body":"lgt={t}","style":"toast"}}}}"#
                );
                if sink.send(Message::Text(frame.into())).await.is_err() {
                    break;
                }
                inc(&ctx.counters.push_sent);
            }
        }
    }
    let _ = sink.send(Message::Close(None)).await;
    (v2a, rtt)
}

/// Connect / hello / welcome / close cycles at `rate` per second until `stop`.
async fn run_churn(ctx: Arc<Ctx>, me: usize, rate: f64, stop: CancellationToken) {
    let sem = Arc::new(Semaphore::new(ctx.opts.connect_concurrency.max(1)));
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(1e-6)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut n = 0usize;
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {
                let Ok(permit) = sem.clone().try_acquire_owned() else {
                    inc(&ctx.counters.churn_skipped);
                    continue;
                };
                n += 1;
                let idx = n * ctx.opts.procs.max(1) + me;
                let ctx = ctx.clone();
                tasks.spawn(async move {
                    let src = ctx.sources[idx % ctx.sources.len()];
                    let started = Instant::now();
                    let node = visitor_target(&ctx, idx);
                    match visitor_handshake(&ctx, node, src, hello_frame(&ctx.run, "c", idx)).await {
                        Ok(ws) => {
                            record(&mut ctx.churn.lock().unwrap_or_else(|e| e.into_inner()), started.elapsed().as_micros() as u64);
                            inc(&ctx.counters.churn_ok);
                            let (sink, stream) = ws.split();
                            close_visitor(&ctx, sink, stream).await;
                        }
                        Err(e) => {
                            inc(&ctx.counters.churn_failed);
                            ctx.error(format!("churn: {e:#}"));
                        }
                    }
                    drop(permit);
                });
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(20), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
}
