//! The hub: per-site live state in memory (visitors → tabs, current page, this session's page
//! count, identity) and the admins subscribed to each site.
//!
//! Every change is applied under the site's own mutex, which is never held across an `.await`;
//! frames for admins are serialised once and handed to bounded outboxes with `try_send`, so a
//! slow admin never slows visitors or other admins: when its outbox overflows it is flagged and
//! gets a fresh snapshot instead of the missed deltas. Snapshots are cloned under the site lock
//! but serialised outside it (by the admin's own task), so a large site is not stalled by them. Presence is multi-tab aware: `joined` when
//! a visitor's first tab connects, `left` only once the last tab has been gone for the grace
//! period, so a full page navigation is not shown as leave + join.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, Notify};

use crate::domain::rfc3339;

const VISITOR_OUTBOX: usize = 16;
/// Frames an admin may lag behind before it is resynced: ~0.8 s of a 20,000 page views/s site,
/// so bursts (a ramp of joins, a snapshot being written) fit. A slot is a reference-counted
/// frame (32 B), 512 KiB per admin at most.
pub const ADMIN_OUTBOX: usize = 16_384;
const DELIVERED_MEMORY: usize = 64;

/// Locks a mutex, recovering the data if a panicking thread poisoned it (the state stays usable:
/// every mutation below leaves it consistent between statements).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Clone)]
pub struct Hub {
    inner: Arc<HubInner>,
}

struct HubInner {
    sites: Mutex<HashMap<String, Arc<SiteHub>>>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    per_site: Mutex<HashMap<String, usize>>,
    next_conn: AtomicU64,
    grace: Duration,
    /// Where changes go for the other nodes (cluster mode).
    bus: std::sync::OnceLock<mpsc::Sender<HubEvent>>,
}

/// A change other nodes need to hear about (cluster mode).
#[derive(Debug, Clone)]
pub struct HubEvent {
    pub site_id: String,
    pub kind: HubEventKind,
}

#[derive(Debug, Clone)]
pub enum HubEventKind {
    /// This node's view of a visitor (tabs here; empty while in the leave grace), or None when
    /// the visitor is gone from this node.
    Presence {
        visitor: String,
        view: Option<Box<VisitorView>>,
    },
    /// A frame for admins (page view, event, identify, message status, segments).
    Frame(Utf8Bytes),
}

#[derive(Default)]
struct SiteHub {
    state: Mutex<SiteState>,
}

#[derive(Default)]
struct SiteState {
    /// Boxed: the map's spare capacity then costs a pointer per slot, not a whole visitor.
    visitors: HashMap<String, Box<LiveVisitor>>,
    /// Other nodes' views of visitors connected to them: visitor → node → view.
    remote: HashMap<String, HashMap<String, VisitorView>>,
    admins: HashMap<u64, AdminSlot>,
    tabs: usize,
}

struct LiveVisitor {
    visitor: String,
    session: String,
    user_id: Option<String>,
    traits: serde_json::Map<String, Value>,
    referrer: Option<String>,
    landing_url: String,
    first_seen: i64,
    session_started: i64,
    pageviews: u64,
    device: Option<String>,
    browser: Option<String>,
    os: Option<String>,
    /// Usually one; a short list is smaller than a map and as fast at this size.
    tabs: Vec<LiveTab>,
    segments: Vec<String>,
    /// None until the visitor views a page with an item (most never do on many sites).
    interests: Option<Box<Interests>>,
    /// Bumped whenever a tab connects, so a pending leave can tell it was overtaken.
    generation: u64,
}

struct LiveTab {
    /// This socket's connection number.
    conn: u64,
    tab: String,
    session: String,
    url: String,
    title: Option<String>,
    since: i64,
    outbox: TabOutbox,
    delivered: VecDeque<String>,
}

impl Drop for LiveTab {
    fn drop(&mut self) {
        // The hub let go of the tab (site deleted, visitor erased, or the socket closed).
        self.outbox.close();
    }
}

/// A tab's queue of frames (messages) from the hub to its socket, bounded. Most tabs never
/// receive one, so it is a small shared queue that allocates on the first frame, not a channel
/// with its blocks allocated up front.
#[derive(Clone, Default)]
pub struct TabOutbox {
    inner: Arc<OutboxInner>,
}

#[derive(Default)]
struct OutboxInner {
    queue: Mutex<OutboxQueue>,
    notify: Notify,
}

#[derive(Default)]
struct OutboxQueue {
    frames: VecDeque<Utf8Bytes>,
    closed: bool,
}

impl TabOutbox {
    /// Queues a frame unless the queue is full or closed (the frame is then not delivered).
    fn try_send(&self, frame: Utf8Bytes) -> bool {
        {
            let mut q = lock(&self.inner.queue);
            if q.closed || q.frames.len() >= VISITOR_OUTBOX {
                return false;
            }
            q.frames.push_back(frame);
        }
        self.inner.notify.notify_one();
        true
    }

    fn close(&self) {
        lock(&self.inner.queue).closed = true;
        self.inner.notify.notify_one();
    }

    /// The next frame without waiting.
    pub fn try_recv(&self) -> Result<Utf8Bytes, mpsc::error::TryRecvError> {
        let mut q = lock(&self.inner.queue);
        match q.frames.pop_front() {
            Some(f) => {
                if q.frames.is_empty() {
                    // A burst does not keep its queue's memory for the rest of the visit.
                    q.frames = VecDeque::new();
                }
                Ok(f)
            }
            None if q.closed => Err(mpsc::error::TryRecvError::Disconnected),
            None => Err(mpsc::error::TryRecvError::Empty),
        }
    }

    /// The next frame; None once the hub let go of the tab and the queue is drained.
    /// Cancel-safe: a frame stays queued until a call returns it.
    pub async fn recv(&self) -> Option<Utf8Bytes> {
        loop {
            match self.try_recv() {
                Ok(f) => return Some(f),
                Err(mpsc::error::TryRecvError::Disconnected) => return None,
                // One consumer: `notify_one` stores a permit when nobody waits yet, so a frame
                // queued between the check and the wait is not missed.
                Err(mpsc::error::TryRecvError::Empty) => self.inner.notify.notified().await,
            }
        }
    }
}

struct AdminSlot {
    outbox: mpsc::Sender<Utf8Bytes>,
    signal: Arc<AdminSignal>,
}

/// Raised when an admin's outbox overflowed: the admin task sends a fresh snapshot.
#[derive(Default)]
pub struct AdminSignal {
    pub resync: AtomicBool,
    pub notify: Notify,
}

/// What a visitor's hello brings.
pub struct TabInfo {
    pub site_id: String,
    pub visitor: String,
    pub session: String,
    pub tab: String,
    pub url: String,
    pub title: Option<String>,
    pub referrer: Option<String>,
    pub device: Option<String>,
    pub browser: Option<String>,
    pub os: Option<String>,
    pub at: i64,
    /// Record this hello as a page view (false for a reconnect of the same page).
    pub pageview: bool,
    pub item: Option<crate::targeting::Item>,
}

#[derive(Serialize, serde::Deserialize, Clone, Debug, utoipa::ToSchema)]
pub struct TabView {
    pub tab: String,
    pub url: String,
    pub title: Option<String>,
    pub since: String,
}

/// A live visitor as admins see it (the contract's VISITOR).
#[derive(Serialize, serde::Deserialize, Clone, Debug, utoipa::ToSchema)]
pub struct VisitorView {
    pub visitor: String,
    pub session: String,
    pub user_id: Option<String>,
    #[schema(value_type = Object)]
    pub traits: Value,
    pub url: String,
    pub title: Option<String>,
    pub referrer: Option<String>,
    /// The first page of this session (its `utm_*` parameters tell the campaign source).
    #[serde(default)]
    pub landing_url: Option<String>,
    pub tabs: Vec<TabView>,
    pub first_seen: String,
    pub session_started: String,
    /// Page views of this session.
    pub pageviews: u64,
    pub device: Option<String>,
    pub browser: Option<String>,
    pub os: Option<String>,
    /// Segments the visitor is in now.
    #[serde(default)]
    pub segments: Vec<String>,
    /// What the visitor looked at this session (schema.org data of the pages).
    #[serde(default)]
    pub interests: Interests,
}

/// Counts of viewed items by brand, model and category, and the price range seen.
#[derive(Serialize, serde::Deserialize, Clone, Default, Debug, utoipa::ToSchema)]
pub struct Interests {
    pub brands: std::collections::BTreeMap<String, u32>,
    pub models: std::collections::BTreeMap<String, u32>,
    pub categories: std::collections::BTreeMap<String, u32>,
    pub min_price: Option<f64>,
    pub max_price: Option<f64>,
    pub items: u32,
}

/// A visitor's interests before any item was seen.
static NO_INTERESTS: Interests = Interests {
    brands: std::collections::BTreeMap::new(),
    models: std::collections::BTreeMap::new(),
    categories: std::collections::BTreeMap::new(),
    min_price: None,
    max_price: None,
    items: 0,
};

impl Interests {
    fn add(&mut self, item: &crate::targeting::Item) {
        // Bounded: a page can't make this grow past a few hundred keys.
        let bump = |m: &mut std::collections::BTreeMap<String, u32>, k: &Option<String>| {
            if let Some(k) = k {
                if m.len() < 100 || m.contains_key(k) {
                    *m.entry(k.clone()).or_default() += 1;
                }
            }
        };
        bump(&mut self.brands, &item.brand);
        bump(&mut self.models, &item.model);
        bump(&mut self.categories, &item.category);
        if let Some(p) = item.price {
            self.min_price = Some(self.min_price.map_or(p, |m| m.min(p)));
            self.max_price = Some(self.max_price.map_or(p, |m| m.max(p)));
        }
        self.items += 1;
    }
}

impl LiveVisitor {
    fn interests(&self) -> &Interests {
        self.interests.as_deref().unwrap_or(&NO_INTERESTS)
    }

    fn add_interest(&mut self, item: &crate::targeting::Item) {
        self.interests
            .get_or_insert_with(Default::default)
            .add(item);
    }

    fn view(&self) -> VisitorView {
        let mut tabs: Vec<&LiveTab> = self.tabs.iter().collect();
        tabs.sort_by(|a, b| b.since.cmp(&a.since).then_with(|| a.tab.cmp(&b.tab)));
        let current = tabs.first();
        VisitorView {
            visitor: self.visitor.clone(),
            session: self.session.clone(),
            user_id: self.user_id.clone(),
            traits: Value::Object(self.traits.clone()),
            url: current.map(|t| t.url.clone()).unwrap_or_default(),
            title: current.and_then(|t| t.title.clone()),
            referrer: self.referrer.clone(),
            landing_url: Some(self.landing_url.clone()),
            tabs: tabs
                .iter()
                .map(|t| TabView {
                    tab: t.tab.clone(),
                    url: t.url.clone(),
                    title: t.title.clone(),
                    since: rfc3339(t.since),
                })
                .collect(),
            first_seen: rfc3339(self.first_seen),
            session_started: rfc3339(self.session_started),
            pageviews: self.pageviews,
            device: self.device.clone(),
            browser: self.browser.clone(),
            os: self.os.clone(),
            segments: self.segments.clone(),
            interests: self.interests().clone(),
        }
    }
}

/// Serialises a frame for admins. Frames are plain structs serialised straight to a string (no
/// intermediate `Value` tree); their fields are declared in alphabetical order, the order the
/// `json!` objects they replaced had.
fn frame<T: Serialize + ?Sized>(v: &T) -> Utf8Bytes {
    // Serialising these types cannot fail (string keys only).
    Utf8Bytes::from(serde_json::to_string(v).unwrap_or_default())
}

/// `{"type":"snapshot","visitors":[VISITOR…]}`: what an admin gets first and after a resync.
pub fn snapshot_frame(visitors: &[VisitorView]) -> Utf8Bytes {
    #[derive(Serialize)]
    struct Snapshot<'a> {
        r#type: &'static str,
        visitors: &'a [VisitorView],
    }
    frame(&Snapshot {
        r#type: "snapshot",
        visitors,
    })
}

/// `joined` and `visitor` (a visitor's new state).
#[derive(Serialize)]
struct VisitorFrame<'a> {
    r#type: &'static str,
    visitor: &'a VisitorView,
}

#[derive(Serialize)]
struct LeftFrame<'a> {
    r#type: &'static str,
    visitor: &'a str,
}

fn left_frame(visitor: &str) -> Utf8Bytes {
    frame(&LeftFrame {
        r#type: "left",
        visitor,
    })
}

#[derive(Serialize)]
struct PageviewFrame<'a> {
    at: String,
    referrer: Option<&'a str>,
    session: &'a str,
    tab: &'a str,
    title: Option<&'a str>,
    r#type: &'static str,
    url: &'a str,
    visitor: &'a str,
}

#[derive(Serialize)]
struct SegmentsFrame<'a> {
    interests: &'a Interests,
    segments: &'a [String],
    r#type: &'static str,
    visitor: &'a str,
}

fn segments_frame(visitor: &str, segments: &[String], interests: &Interests) -> Utf8Bytes {
    frame(&SegmentsFrame {
        interests,
        segments,
        r#type: "segments",
        visitor,
    })
}

#[derive(Serialize)]
struct EventFrame<'a> {
    at: String,
    name: &'a str,
    props: &'a Value,
    r#type: &'static str,
    visitor: &'a str,
}

#[derive(Serialize)]
struct IdentifyFrame<'a> {
    traits: &'a serde_json::Map<String, Value>,
    r#type: &'static str,
    user_id: Option<&'a str>,
    visitor: &'a str,
}

#[derive(Serialize)]
struct StatusFrame<'a> {
    at: String,
    message: &'a str,
    status: &'a str,
    r#type: &'static str,
    visitor: &'a str,
}

impl SiteState {
    fn broadcast(&mut self, frame: &Utf8Bytes) {
        for slot in self.admins.values() {
            if let Err(mpsc::error::TrySendError::Full(_)) = slot.outbox.try_send(frame.clone()) {
                if !slot.signal.resync.swap(true, Ordering::AcqRel) {
                    metrics::counter!("lookout_admin_resyncs_total").increment(1);
                }
                slot.signal.notify.notify_one();
            }
        }
    }

    fn known(&self, visitor: &str) -> bool {
        self.visitors.contains_key(visitor) || self.remote.contains_key(visitor)
    }

    /// One visitor as seen across the cluster: the tabs of every node, the newest session's
    /// details. None when no node has a tab of it (e.g. all in the leave grace).
    fn merged_view(&self, visitor: &str) -> Option<VisitorView> {
        let mut parts: Vec<VisitorView> = Vec::new();
        if let Some(v) = self.visitors.get(visitor) {
            parts.push(v.view());
        }
        if let Some(r) = self.remote.get(visitor) {
            parts.extend(r.values().cloned());
        }
        if parts.iter().all(|p| p.tabs.is_empty()) {
            return None;
        }
        if parts.len() == 1 {
            return parts.pop();
        }
        parts.sort_by(|a, b| b.session_started.cmp(&a.session_started));
        let mut base = parts[0].clone();
        base.tabs = parts.iter().flat_map(|p| p.tabs.iter().cloned()).collect();
        base.tabs
            .sort_by(|a, b| b.since.cmp(&a.since).then_with(|| a.tab.cmp(&b.tab)));
        base.tabs.dedup_by(|a, b| a.tab == b.tab);
        if let Some(t) = base.tabs.first() {
            base.url = t.url.clone();
            base.title = t.title.clone();
        }
        base.pageviews = parts
            .iter()
            .filter(|p| p.session == base.session)
            .map(|p| p.pageviews)
            .max()
            .unwrap_or(base.pageviews);
        for p in &parts[1..] {
            for s in &p.segments {
                if !base.segments.contains(s) {
                    base.segments.push(s.clone());
                }
            }
        }
        Some(base)
    }

    fn snapshot(&self) -> Vec<VisitorView> {
        let ids: std::collections::BTreeSet<&String> =
            self.visitors.keys().chain(self.remote.keys()).collect();
        let mut v: Vec<VisitorView> = ids
            .into_iter()
            .filter_map(|id| self.merged_view(id))
            .collect();
        v.sort_by(|a, b| {
            a.session_started
                .cmp(&b.session_started)
                .then_with(|| a.visitor.cmp(&b.visitor))
        });
        v
    }
}

/// Whom a message goes to, resolved to concrete selectors.
#[derive(Clone, Copy, Debug)]
pub enum Selector<'a> {
    Visitor(&'a str),
    Session(&'a str),
    Tab(&'a str),
    Segment(&'a str),
    All,
}

/// A navigation inside a tab.
pub struct Nav<'a> {
    pub item: Option<&'a crate::targeting::Item>,
    pub url: &'a str,
    pub title: Option<&'a str>,
    pub referrer: Option<&'a str>,
    pub at: i64,
}

/// One tab a message reached.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub visitor: String,
    pub tab: String,
}

impl Hub {
    pub fn new(grace: Duration) -> Self {
        Self {
            inner: Arc::new(HubInner {
                sites: Mutex::new(HashMap::new()),
                per_ip: Mutex::new(HashMap::new()),
                per_site: Mutex::new(HashMap::new()),
                next_conn: AtomicU64::new(1),
                grace,
                bus: std::sync::OnceLock::new(),
            }),
        }
    }

    fn site(&self, site_id: &str) -> Arc<SiteHub> {
        let mut sites = lock(&self.inner.sites);
        sites.entry(site_id.to_string()).or_default().clone()
    }

    fn existing_site(&self, site_id: &str) -> Option<Arc<SiteHub>> {
        lock(&self.inner.sites).get(site_id).cloned()
    }

    /// Reserves a connection slot for a socket about to be upgraded, unless the site or the
    /// client IP already holds its maximum on this node. The slot is released when dropped.
    pub fn reserve(
        &self,
        site_id: &str,
        ip: IpAddr,
        max_site: usize,
        max_ip: usize,
    ) -> Result<ConnSlot, LimitHit> {
        let mut per_site = lock(&self.inner.per_site);
        let mut per_ip = lock(&self.inner.per_ip);
        let site_n = per_site.get(site_id).copied().unwrap_or(0);
        let ip_n = per_ip.get(&ip).copied().unwrap_or(0);
        if ip_n >= max_ip {
            return Err(LimitHit::Ip);
        }
        if site_n >= max_site {
            return Err(LimitHit::Site);
        }
        per_site.insert(site_id.to_string(), site_n + 1);
        per_ip.insert(ip, ip_n + 1);
        Ok(ConnSlot {
            hub: self.clone(),
            site_id: site_id.to_string(),
            ip,
        })
    }

    fn release(&self, site_id: &str, ip: IpAddr) {
        let mut per_site = lock(&self.inner.per_site);
        if let Some(n) = per_site.get_mut(site_id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                per_site.remove(site_id);
            }
        }
        let mut per_ip = lock(&self.inner.per_ip);
        if let Some(n) = per_ip.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                per_ip.remove(&ip);
            }
        }
    }

    /// Registers a visitor's tab. Broadcasts `joined` (first tab of a visitor not already live)
    /// and `pageview` (unless a reconnect). The guard unregisters on every exit path.
    pub fn connect_tab(&self, info: TabInfo) -> (TabGuard, TabOutbox) {
        let conn = self.inner.next_conn.fetch_add(1, Ordering::Relaxed);
        let outbox = TabOutbox::default();
        let site = self.site(&info.site_id);
        {
            let mut st = lock(&site.state);
            st.tabs += 1;
            let is_new = !st.known(&info.visitor);
            let v = st.visitors.entry(info.visitor.clone()).or_insert_with(|| {
                Box::new(LiveVisitor {
                    visitor: info.visitor.clone(),
                    session: info.session.clone(),
                    user_id: None,
                    traits: Default::default(),
                    referrer: info.referrer.clone(),
                    landing_url: info.url.clone(),
                    first_seen: info.at,
                    session_started: info.at,
                    pageviews: 0,
                    device: None,
                    browser: None,
                    os: None,
                    tabs: Vec::with_capacity(1),
                    segments: Vec::new(),
                    interests: None,
                    generation: 0,
                })
            });
            if v.session != info.session {
                v.session = info.session.clone();
                v.session_started = info.at;
                v.pageviews = 0;
                v.referrer = info.referrer.clone();
                v.landing_url = info.url.clone();
                v.interests = None;
            }
            if let (true, Some(item)) = (info.pageview, &info.item) {
                v.add_interest(item);
            }
            v.device = info.device.clone().or(v.device.take());
            v.browser = info.browser.clone().or(v.browser.take());
            v.os = info.os.clone().or(v.os.take());
            v.generation += 1;
            if info.pageview {
                v.pageviews += 1;
            }
            v.tabs.push(LiveTab {
                conn,
                tab: info.tab.clone(),
                session: info.session.clone(),
                url: info.url.clone(),
                title: info.title.clone(),
                since: info.at,
                outbox: outbox.clone(),
                delivered: VecDeque::new(),
            });
            let local = v.view();
            if is_new {
                st.broadcast(&frame(&VisitorFrame {
                    r#type: "joined",
                    visitor: &local,
                }));
            } else if info.pageview && info.item.is_some() {
                // A known visitor opened a page with an item: its interests changed.
                let f = segments_frame(&info.visitor, &local.segments, &local.interests);
                st.broadcast(&f);
                self.emit(&info.site_id, HubEventKind::Frame(f));
            }
            self.emit(
                &info.site_id,
                HubEventKind::Presence {
                    visitor: info.visitor.clone(),
                    view: Some(Box::new(local)),
                },
            );
            if info.pageview {
                let f = frame(&PageviewFrame {
                    at: rfc3339(info.at),
                    referrer: info.referrer.as_deref(),
                    session: &info.session,
                    tab: &info.tab,
                    title: info.title.as_deref(),
                    r#type: "pageview",
                    url: &info.url,
                    visitor: &info.visitor,
                });
                st.broadcast(&f);
                self.emit(&info.site_id, HubEventKind::Frame(f));
            }
        }
        metrics::gauge!("lookout_visitor_sockets").increment(1.0);
        let guard = TabGuard {
            hub: self.clone(),
            site_id: info.site_id,
            visitor: info.visitor,
            conn,
        };
        (guard, outbox)
    }

    fn disconnect_tab(&self, site_id: &str, visitor: &str, conn: u64) {
        metrics::gauge!("lookout_visitor_sockets").decrement(1.0);
        let Some(site) = self.existing_site(site_id) else {
            return;
        };
        let generation = {
            let mut st = lock(&site.state);
            let Some(v) = st.visitors.get_mut(visitor) else {
                return;
            };
            let Some(i) = v.tabs.iter().position(|t| t.conn == conn) else {
                return;
            };
            v.tabs.swap_remove(i);
            let empty = v.tabs.is_empty();
            let generation = v.generation;
            if !empty {
                // Tabs remain: admins get the visitor's new state (tabs, current page).
                let view = st.merged_view(visitor);
                if let Some(view) = view {
                    st.broadcast(&frame(&VisitorFrame {
                        r#type: "visitor",
                        visitor: &view,
                    }));
                }
            }
            let Some(v) = st.visitors.get_mut(visitor) else {
                return;
            };
            let view = self.bus_attached().then(|| v.view());
            if let Some(view) = view {
                self.emit(
                    site_id,
                    HubEventKind::Presence {
                        visitor: visitor.to_string(),
                        view: Some(Box::new(view)),
                    },
                );
            }
            st.tabs = st.tabs.saturating_sub(1);
            if !empty {
                return;
            }
            generation
        };
        // The last tab is gone: the visitor leaves unless a tab reconnects within the grace.
        let hub = self.clone();
        let site_id = site_id.to_string();
        let visitor = visitor.to_string();
        let grace = self.inner.grace;
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                tokio::time::sleep(grace).await;
                hub.leave_if_gone(&site_id, &visitor, generation);
            });
        } else {
            self.leave_if_gone(site_id.as_str(), visitor.as_str(), generation);
        }
    }

    fn leave_if_gone(&self, site_id: &str, visitor: &str, generation: u64) {
        let Some(site) = self.existing_site(site_id) else {
            return;
        };
        let mut st = lock(&site.state);
        let gone = st
            .visitors
            .get(visitor)
            .is_some_and(|v| v.tabs.is_empty() && v.generation == generation);
        if gone {
            st.visitors.remove(visitor);
            self.emit(
                site_id,
                HubEventKind::Presence {
                    visitor: visitor.to_string(),
                    view: None,
                },
            );
            // Still on another node: not a leave.
            if !st.known(visitor) {
                st.broadcast(&left_frame(visitor));
            }
        }
    }

    /// A navigation inside a page (or a virtual page view).
    pub fn pageview(&self, site_id: &str, visitor: &str, conn: u64, nav: Nav<'_>) {
        let Nav {
            item,
            url,
            title,
            referrer,
            at,
        } = nav;
        let Some(site) = self.existing_site(site_id) else {
            return;
        };
        let mut st = lock(&site.state);
        let Some(v) = st.visitors.get_mut(visitor) else {
            return;
        };
        v.pageviews += 1;
        let interests_changed = item.is_some();
        if let Some(item) = item {
            v.add_interest(item);
        }
        let interests_frame =
            interests_changed.then(|| segments_frame(visitor, &v.segments, v.interests()));
        let Some(t) = v.tabs.iter_mut().find(|t| t.conn == conn) else {
            return;
        };
        t.url = url.to_string();
        t.title = title.map(str::to_string);
        t.since = at;
        let f = frame(&PageviewFrame {
            at: rfc3339(at),
            referrer,
            session: &t.session,
            tab: &t.tab,
            title,
            r#type: "pageview",
            url,
            visitor,
        });
        // Only a cluster bus needs the full view (not built per page view on one node).
        let view = self.bus_attached().then(|| v.view());
        st.broadcast(&f);
        if let Some(view) = view {
            self.emit(
                site_id,
                HubEventKind::Presence {
                    visitor: visitor.to_string(),
                    view: Some(Box::new(view)),
                },
            );
        }
        self.emit(site_id, HubEventKind::Frame(f));
        // What the visitor looks at changed: admins see the new interests at once.
        if let Some(f) = interests_frame {
            st.broadcast(&f);
            self.emit(site_id, HubEventKind::Frame(f));
        }
    }

    pub fn event(&self, site_id: &str, visitor: &str, name: &str, props: &Value, at: i64) {
        let Some(site) = self.existing_site(site_id) else {
            return;
        };
        let mut st = lock(&site.state);
        let f = frame(&EventFrame {
            at: rfc3339(at),
            name,
            props,
            r#type: "event",
            visitor,
        });
        st.broadcast(&f);
        self.emit(site_id, HubEventKind::Frame(f));
    }

    pub fn identify(
        &self,
        site_id: &str,
        visitor: &str,
        user_id: Option<&str>,
        traits: &serde_json::Map<String, Value>,
    ) {
        let Some(site) = self.existing_site(site_id) else {
            return;
        };
        let mut st = lock(&site.state);
        let Some(v) = st.visitors.get_mut(visitor) else {
            return;
        };
        if let Some(u) = user_id {
            v.user_id = Some(u.to_string());
        }
        v.traits.extend(traits.clone());
        let f = frame(&IdentifyFrame {
            traits: &v.traits,
            r#type: "identify",
            user_id: v.user_id.as_deref(),
            visitor,
        });
        // Only a cluster bus needs the full view (not built per page view on one node).
        let view = self.bus_attached().then(|| v.view());
        st.broadcast(&f);
        if let Some(view) = view {
            self.emit(
                site_id,
                HubEventKind::Presence {
                    visitor: visitor.to_string(),
                    view: Some(Box::new(view)),
                },
            );
        }
        self.emit(site_id, HubEventKind::Frame(f));
    }

    /// Fills in what the database knows about a returning visitor (first seen, identity),
    /// without ever making the socket wait for it.
    pub fn enrich(
        &self,
        site_id: &str,
        visitor: &str,
        first_seen: i64,
        user_id: Option<String>,
        traits: serde_json::Map<String, Value>,
    ) {
        let Some(site) = self.existing_site(site_id) else {
            return;
        };
        let mut st = lock(&site.state);
        let Some(v) = st.visitors.get_mut(visitor) else {
            return;
        };
        v.first_seen = v.first_seen.min(first_seen);
        if v.user_id.is_none() {
            v.user_id = user_id;
        }
        for (k, val) in traits {
            v.traits.entry(k).or_insert(val);
        }
    }

    /// Delivers a serialised message frame to the selected tabs; returns the tabs reached.
    pub fn deliver(
        &self,
        site_id: &str,
        selector: Selector<'_>,
        message_id: &str,
        frame: &Utf8Bytes,
    ) -> Vec<Delivery> {
        let Some(site) = self.existing_site(site_id) else {
            return Vec::new();
        };
        let mut st = lock(&site.state);
        let mut reached = Vec::new();
        // One visitor is looked up directly instead of scanning the site under its lock.
        let candidates: Box<dyn Iterator<Item = &mut LiveVisitor>> = match selector {
            Selector::Visitor(id) => {
                Box::new(st.visitors.get_mut(id).into_iter().map(|v| &mut **v))
            }
            _ => Box::new(st.visitors.values_mut().map(|v| &mut **v)),
        };
        for v in candidates {
            let visitor_match = match &selector {
                Selector::Visitor(id) => v.visitor == *id,
                Selector::Segment(id) => v.segments.iter().any(|s| s == id),
                Selector::All | Selector::Session(_) | Selector::Tab(_) => true,
            };
            if !visitor_match {
                continue;
            }
            for t in v.tabs.iter_mut() {
                let tab_match = match &selector {
                    Selector::Session(s) => t.session == *s,
                    Selector::Tab(id) => t.tab == *id,
                    _ => true,
                };
                if tab_match && t.outbox.try_send(frame.clone()) {
                    if t.delivered.len() >= DELIVERED_MEMORY {
                        t.delivered.pop_front();
                    }
                    t.delivered.push_back(message_id.to_string());
                    reached.push(Delivery {
                        visitor: v.visitor.clone(),
                        tab: t.tab.clone(),
                    });
                }
            }
        }
        reached
    }

    /// A visitor's tab reports what happened to a message. Only messages delivered to that tab
    /// count; returns the tab id when the status is accepted.
    pub fn ack(&self, site_id: &str, visitor: &str, conn: u64, message_id: &str) -> Option<String> {
        let site = self.existing_site(site_id)?;
        let st = lock(&site.state);
        let t = st
            .visitors
            .get(visitor)?
            .tabs
            .iter()
            .find(|t| t.conn == conn)?;
        t.delivered
            .iter()
            .any(|m| m == message_id)
            .then(|| t.tab.clone())
    }

    /// Records the visitor's segments (from the targeting engine) and tells the admins.
    pub fn set_segments(&self, site_id: &str, visitor: &str, segments: Vec<String>) {
        let Some(site) = self.existing_site(site_id) else {
            return;
        };
        let mut st = lock(&site.state);
        let Some(v) = st.visitors.get_mut(visitor) else {
            return;
        };
        v.segments = segments;
        let f = segments_frame(visitor, &v.segments, v.interests());
        // Only a cluster bus needs the full view (not built per page view on one node).
        let view = self.bus_attached().then(|| v.view());
        st.broadcast(&f);
        if let Some(view) = view {
            self.emit(
                site_id,
                HubEventKind::Presence {
                    visitor: visitor.to_string(),
                    view: Some(Box::new(view)),
                },
            );
        }
        self.emit(site_id, HubEventKind::Frame(f));
    }

    /// Tells the site's admins about a message status.
    pub fn status(&self, site_id: &str, message_id: &str, visitor: &str, status: &str, at: i64) {
        let Some(site) = self.existing_site(site_id) else {
            return;
        };
        let mut st = lock(&site.state);
        let f = frame(&StatusFrame {
            at: rfc3339(at),
            message: message_id,
            status,
            r#type: "message_status",
            visitor,
        });
        st.broadcast(&f);
        self.emit(site_id, HubEventKind::Frame(f));
    }

    // ----- cluster mode -----

    /// Sends this node's changes to the cluster bus from now on.
    pub fn attach_bus(&self, tx: mpsc::Sender<HubEvent>) {
        let _ = self.inner.bus.set(tx);
    }

    fn bus_attached(&self) -> bool {
        self.inner.bus.get().is_some()
    }

    fn emit(&self, site_id: &str, kind: HubEventKind) {
        if let Some(bus) = self.inner.bus.get() {
            // Never block the hub on the bus: a full queue drops (counted), and the periodic
            // presence refresh repairs what a dropped presence update missed.
            if bus
                .try_send(HubEvent {
                    site_id: site_id.to_string(),
                    kind,
                })
                .is_err()
            {
                metrics::counter!("lookout_cluster_dropped_total").increment(1);
            }
        }
    }

    /// Another node's view of a visitor changed (None: gone from that node).
    pub fn apply_remote_presence(
        &self,
        site_id: &str,
        node: &str,
        visitor: &str,
        view: Option<VisitorView>,
    ) {
        let site = self.site(site_id);
        let mut st = lock(&site.state);
        let before = st.known(visitor);
        match view {
            Some(v) => {
                st.remote
                    .entry(visitor.to_string())
                    .or_default()
                    .insert(node.to_string(), v);
            }
            None => {
                if let Some(m) = st.remote.get_mut(visitor) {
                    m.remove(node);
                    if m.is_empty() {
                        st.remote.remove(visitor);
                    }
                }
            }
        }
        let after = st.known(visitor);
        if !before && after {
            if let Some(view) = st.merged_view(visitor) {
                st.broadcast(&frame(&VisitorFrame {
                    r#type: "joined",
                    visitor: &view,
                }));
            }
        } else if before && !after {
            st.broadcast(&left_frame(visitor));
        }
    }

    /// A frame for admins that happened on another node.
    pub fn apply_remote_frame(&self, site_id: &str, f: Utf8Bytes) {
        if let Some(site) = self.existing_site(site_id) {
            lock(&site.state).broadcast(&f);
        }
    }

    /// A node is gone (dead, or left gracefully and its grace has passed): forget its visitors.
    pub fn drop_node(&self, node: &str) {
        let sites: Vec<(String, Arc<SiteHub>)> = lock(&self.inner.sites)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (_, site) in sites {
            let mut st = lock(&site.state);
            let affected: Vec<String> = st
                .remote
                .iter()
                .filter(|(_, m)| m.contains_key(node))
                .map(|(v, _)| v.clone())
                .collect();
            for visitor in affected {
                if let Some(m) = st.remote.get_mut(&visitor) {
                    m.remove(node);
                    if m.is_empty() {
                        st.remote.remove(&visitor);
                    }
                }
                if !st.known(&visitor) {
                    st.broadcast(&left_frame(&visitor));
                }
            }
        }
    }

    /// This node's own view of each of its visitors on a site (for another node's resync).
    pub fn local_views(&self, site_id: &str) -> Vec<VisitorView> {
        self.existing_site(site_id)
            .map(|s| lock(&s.state).visitors.values().map(|v| v.view()).collect())
            .unwrap_or_default()
    }

    /// Sites with local visitors or admins.
    pub fn active_sites(&self) -> Vec<String> {
        lock(&self.inner.sites)
            .iter()
            .filter(|(_, s)| {
                let st = lock(&s.state);
                !st.visitors.is_empty() || !st.admins.is_empty()
            })
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// The visitors on the site now.
    pub fn snapshot(&self, site_id: &str) -> Vec<VisitorView> {
        self.existing_site(site_id)
            .map(|s| lock(&s.state).snapshot())
            .unwrap_or_default()
    }

    /// Is this visitor live (at least one tab) on this node?
    pub fn is_live(&self, site_id: &str, visitor: &str) -> bool {
        self.existing_site(site_id).is_some_and(|s| {
            lock(&s.state)
                .visitors
                .get(visitor)
                .is_some_and(|v| !v.tabs.is_empty())
        })
    }

    /// Subscribes an admin to a site's live events. The visitors are cloned under the same lock
    /// as the subscription: the caller sends them first (`snapshot_frame`, serialised outside
    /// the lock), then the outbox, which holds exactly the deltas that happened after the clone —
    /// none missed, none applied twice.
    pub fn subscribe_admin(&self, site_id: &str) -> AdminSubscription {
        let conn = self.inner.next_conn.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(ADMIN_OUTBOX);
        let signal = Arc::new(AdminSignal::default());
        let site = self.site(site_id);
        let snapshot = {
            let mut st = lock(&site.state);
            st.admins.insert(
                conn,
                AdminSlot {
                    outbox: tx,
                    signal: signal.clone(),
                },
            );
            st.snapshot()
        };
        metrics::gauge!("lookout_admin_sockets").increment(1.0);
        AdminSubscription {
            guard: AdminGuard {
                hub: self.clone(),
                site_id: site_id.to_string(),
                conn,
            },
            outbox: rx,
            signal,
            snapshot,
        }
    }

    /// A fresh snapshot for an admin (after its outbox overflowed, or on request): clears the
    /// resync flag, drops the queued deltas (the snapshot includes them) and clones the
    /// visitors, all under the site lock, so the outbox then holds exactly the deltas after the
    /// snapshot. The caller serialises it (`snapshot_frame`) and sends it before reading the
    /// outbox again, so at most one resync is in flight per admin. None once the site is gone.
    pub fn resync_admin(
        &self,
        guard: &AdminGuard,
        outbox: &mut mpsc::Receiver<Utf8Bytes>,
    ) -> Option<Vec<VisitorView>> {
        // Most of a full outbox is dropped before taking the lock, the rest under it.
        drain(outbox);
        let site = self.existing_site(&guard.site_id)?;
        let st = lock(&site.state);
        let slot = st.admins.get(&guard.conn)?;
        slot.signal.resync.store(false, Ordering::Release);
        drain(outbox);
        Some(st.snapshot())
    }

    fn unsubscribe_admin(&self, site_id: &str, conn: u64) {
        metrics::gauge!("lookout_admin_sockets").decrement(1.0);
        if let Some(site) = self.existing_site(site_id) {
            lock(&site.state).admins.remove(&conn);
        }
    }

    /// Drops a deleted site's live state; its sockets notice their outboxes closing.
    pub fn close_site(&self, site_id: &str) {
        lock(&self.inner.sites).remove(site_id);
    }

    /// Forgets an erased visitor's live state and disconnects their tabs.
    pub fn forget_visitor(&self, site_id: &str, visitor: &str) {
        if let Some(site) = self.existing_site(site_id) {
            let mut st = lock(&site.state);
            let shown = st.known(visitor);
            if let Some(v) = st.visitors.remove(visitor) {
                st.tabs = st.tabs.saturating_sub(v.tabs.len());
            }
            // Other nodes forget their part too (cluster mode): nothing of it is shown here.
            st.remote.remove(visitor);
            if shown {
                st.broadcast(&left_frame(visitor));
            }
        }
    }

    /// Is the tab still registered (false after its site was deleted or visitor erased)?
    pub fn tab_alive(&self, site_id: &str, visitor: &str, conn: u64) -> bool {
        self.existing_site(site_id).is_some_and(|s| {
            lock(&s.state)
                .visitors
                .get(visitor)
                .is_some_and(|v| v.tabs.iter().any(|t| t.conn == conn))
        })
    }
}

/// Unregisters a visitor's tab when dropped.
pub struct TabGuard {
    hub: Hub,
    site_id: String,
    visitor: String,
    conn: u64,
}

impl TabGuard {
    pub fn conn(&self) -> u64 {
        self.conn
    }

    pub fn site_id(&self) -> &str {
        &self.site_id
    }

    pub fn visitor(&self) -> &str {
        &self.visitor
    }
}

impl Drop for TabGuard {
    fn drop(&mut self) {
        self.hub
            .disconnect_tab(&self.site_id, &self.visitor, self.conn);
    }
}

/// Which connection limit refused a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitHit {
    Site,
    Ip,
}

/// A reserved connection slot (counts towards the per-site and per-IP limits until dropped).
pub struct ConnSlot {
    hub: Hub,
    site_id: String,
    ip: IpAddr,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.hub.release(&self.site_id, self.ip);
    }
}

/// Drops every frame queued in an outbox.
fn drain(outbox: &mut mpsc::Receiver<Utf8Bytes>) {
    loop {
        match outbox.try_recv() {
            Ok(_) => {}
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => return,
        }
    }
}

/// An admin subscribed to a site: send `snapshot` first, then what arrives in `outbox`; when
/// `signal` says the outbox overflowed, resync (`Hub::resync_admin`).
pub struct AdminSubscription {
    pub guard: AdminGuard,
    pub outbox: mpsc::Receiver<Utf8Bytes>,
    pub signal: Arc<AdminSignal>,
    pub snapshot: Vec<VisitorView>,
}

/// Unsubscribes an admin when dropped.
pub struct AdminGuard {
    hub: Hub,
    site_id: String,
    conn: u64,
}

impl Drop for AdminGuard {
    fn drop(&mut self) {
        self.hub.unsubscribe_admin(&self.site_id, self.conn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tab(visitor: &str, tab: &str) -> TabInfo {
        TabInfo {
            site_id: "site".into(),
            visitor: visitor.into(),
            session: "session-1".into(),
            tab: tab.into(),
            url: "https://shop.test/".into(),
            title: None,
            referrer: None,
            device: None,
            browser: None,
            os: None,
            at: 1,
            pageview: true,
            item: None,
        }
    }

    fn nav(at: i64) -> Nav<'static> {
        Nav {
            item: None,
            url: "https://shop.test/next",
            title: None,
            referrer: None,
            at,
        }
    }

    fn frames(rx: &mut mpsc::Receiver<Utf8Bytes>) -> Vec<Value> {
        let mut out = Vec::new();
        while let Ok(f) = rx.try_recv() {
            out.push(serde_json::from_str(f.as_str()).expect("json"));
        }
        out
    }

    fn pageviews_of(snapshot: &[VisitorView], visitor: &str) -> u64 {
        snapshot
            .iter()
            .find(|v| v.visitor == visitor)
            .map_or(0, |v| v.pageviews)
    }

    #[tokio::test]
    async fn a_slow_admin_is_flagged_for_a_snapshot_instead_of_growing_its_outbox() {
        let hub = Hub::new(Duration::from_millis(10));
        let mut admin = hub.subscribe_admin("site");
        assert!(admin.snapshot.is_empty());
        let (_t, _trx) = hub.connect_tab(tab("visitor-1", "tab-1"));
        for _ in 0..(ADMIN_OUTBOX * 2) {
            hub.event("site", "visitor-1", "click", &Value::Null, 2);
        }
        assert!(
            admin.signal.resync.load(Ordering::Acquire),
            "overflow raises the resync flag"
        );
        let mut queued = 0;
        while admin.outbox.try_recv().is_ok() {
            queued += 1;
        }
        assert_eq!(
            queued, ADMIN_OUTBOX,
            "the outbox never holds more than its bound"
        );
        let snap = hub
            .resync_admin(&admin.guard, &mut admin.outbox)
            .expect("a fresh snapshot");
        assert!(!admin.signal.resync.load(Ordering::Acquire));
        let v: Value =
            serde_json::from_str(snapshot_frame(&snap).as_str()).expect("snapshot is json");
        assert_eq!(v["type"], "snapshot");
        assert_eq!(v["visitors"][0]["visitor"], "visitor-1");
        assert_eq!(v["visitors"][0]["pageviews"], 1);
    }

    #[tokio::test]
    async fn a_fast_admin_is_unaffected_by_a_slow_one() {
        let hub = Hub::new(Duration::from_millis(10));
        let slow = hub.subscribe_admin("site");
        let mut fast = hub.subscribe_admin("site");
        for i in 0..(ADMIN_OUTBOX + 10) {
            hub.event("site", "visitor-1", "click", &Value::Null, i as i64);
            // The fast admin keeps up.
            assert!(fast.outbox.try_recv().is_ok());
        }
        assert!(slow.signal.resync.load(Ordering::Acquire));
        assert!(!fast.signal.resync.load(Ordering::Acquire));
    }

    #[test]
    fn a_new_admin_sees_each_page_view_once_either_in_its_snapshot_or_as_a_delta() {
        let hub = Hub::new(Duration::from_millis(10));
        let (t, _trx) = hub.connect_tab(tab("visitor-1", "tab-1"));
        let conn = t.conn();
        // Fewer than the outbox holds, so nothing overflows.
        let total = (ADMIN_OUTBOX / 2) as u64;
        let start = std::sync::Barrier::new(2);
        let mut admin = std::thread::scope(|s| {
            s.spawn(|| {
                start.wait();
                for i in 0..total {
                    hub.pageview("site", "visitor-1", conn, nav(i as i64));
                }
            });
            start.wait();
            // Subscribes while the writer runs.
            hub.subscribe_admin("site")
        });
        let in_snapshot = pageviews_of(&admin.snapshot, "visitor-1");
        let deltas = frames(&mut admin.outbox);
        assert!(deltas.iter().all(|f| f["type"] == "pageview"));
        assert_eq!(in_snapshot + deltas.len() as u64, 1 + total);
        assert!(!admin.signal.resync.load(Ordering::Acquire));
    }

    #[test]
    fn a_resync_under_a_concurrent_writer_is_followed_by_exactly_the_later_deltas() {
        let hub = Hub::new(Duration::from_millis(10));
        let (t, _trx) = hub.connect_tab(tab("visitor-1", "tab-1"));
        let conn = t.conn();
        let mut admin = hub.subscribe_admin("site");
        let overflowed = std::sync::Barrier::new(2);
        let before = ADMIN_OUTBOX as u64 + 10;
        // Fewer than the outbox holds after the resync.
        let after = (ADMIN_OUTBOX / 2) as u64;
        let snap = std::thread::scope(|s| {
            s.spawn(|| {
                for i in 0..before {
                    hub.pageview("site", "visitor-1", conn, nav(i as i64));
                }
                overflowed.wait();
                // These race with the resync below.
                for i in 0..after {
                    hub.pageview("site", "visitor-1", conn, nav(i as i64));
                }
            });
            overflowed.wait();
            assert!(admin.signal.resync.load(Ordering::Acquire));
            hub.resync_admin(&admin.guard, &mut admin.outbox)
                .expect("snapshot")
        });
        let in_snapshot = pageviews_of(&snap, "visitor-1");
        assert!(
            in_snapshot > before,
            "the snapshot includes the missed deltas"
        );
        let deltas = frames(&mut admin.outbox);
        assert!(deltas.iter().all(|f| f["type"] == "pageview"));
        assert_eq!(in_snapshot + deltas.len() as u64, 1 + before + after);
        assert!(
            !admin.signal.resync.load(Ordering::Acquire),
            "one resync was enough"
        );
    }

    #[test]
    fn overflowing_again_before_the_resync_asks_for_one_snapshot() {
        let hub = Hub::new(Duration::from_millis(10));
        let mut admin = hub.subscribe_admin("site");
        for _ in 0..(ADMIN_OUTBOX * 3) {
            hub.event("site", "visitor-1", "click", &Value::Null, 2);
        }
        assert!(admin.signal.resync.load(Ordering::Acquire));
        assert!(hub.resync_admin(&admin.guard, &mut admin.outbox).is_some());
        // The flag is down and the outbox empty: the next delta is the next frame sent.
        assert!(!admin.signal.resync.load(Ordering::Acquire));
        hub.event("site", "visitor-1", "after", &Value::Null, 3);
        let rest = frames(&mut admin.outbox);
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0]["name"], "after");
        assert!(!admin.signal.resync.load(Ordering::Acquire));
    }

    #[tokio::test]
    async fn a_message_to_one_visitor_reaches_all_its_tabs_and_only_them() {
        let hub = Hub::new(Duration::from_millis(10));
        let (_a1, rx_a1) = hub.connect_tab(tab("visitor-1", "tab-1"));
        let (_a2, rx_a2) = hub.connect_tab(tab("visitor-1", "tab-2"));
        let (_b, rx_b) = hub.connect_tab(tab("visitor-2", "tab-3"));
        let frame = Utf8Bytes::from_static("{}");
        let reached = hub.deliver("site", Selector::Visitor("visitor-1"), "m1", &frame);
        assert_eq!(reached.len(), 2);
        assert!(reached.iter().all(|d| d.visitor == "visitor-1"));
        assert!(rx_a1.try_recv().is_ok());
        assert!(rx_a2.try_recv().is_ok());
        assert!(rx_b.try_recv().is_err());
        assert!(hub
            .deliver("site", Selector::Visitor("nobody"), "m2", &frame)
            .is_empty());
    }

    #[tokio::test]
    async fn admin_frames_keep_their_shape() {
        let hub = Hub::new(Duration::from_millis(10));
        let mut admin = hub.subscribe_admin("site");
        let (t, _trx) = hub.connect_tab(tab("visitor-1", "tab-1"));
        hub.pageview(
            "site",
            "visitor-1",
            t.conn(),
            Nav {
                item: None,
                url: "https://shop.test/a",
                title: Some("A"),
                referrer: None,
                at: 0,
            },
        );
        hub.event(
            "site",
            "visitor-1",
            "click",
            &serde_json::json!({"x": 1}),
            0,
        );
        hub.status("site", "m1", "visitor-1", "shown", 0);
        let got = frames(&mut admin.outbox);
        let types: Vec<&str> = got.iter().filter_map(|f| f["type"].as_str()).collect();
        assert_eq!(
            types,
            ["joined", "pageview", "pageview", "event", "message_status"]
        );
        assert_eq!(got[0]["visitor"]["visitor"], "visitor-1");
        assert_eq!(
            got[2],
            serde_json::json!({"type": "pageview", "visitor": "visitor-1", "session": "session-1",
                "tab": "tab-1", "url": "https://shop.test/a", "title": "A", "referrer": null,
                "at": "1970-01-01T00:00:00.000Z"})
        );
        assert_eq!(
            got[3],
            serde_json::json!({"type": "event", "visitor": "visitor-1", "name": "click",
                "props": {"x": 1}, "at": "1970-01-01T00:00:00.000Z"})
        );
        assert_eq!(
            got[4],
            serde_json::json!({"type": "message_status", "message": "m1", "visitor": "visitor-1",
                "status": "shown", "at": "1970-01-01T00:00:00.000Z"})
        );
    }

    #[tokio::test]
    async fn a_tab_outbox_is_bounded_and_closes_when_the_hub_lets_go_of_the_tab() {
        let hub = Hub::new(Duration::from_millis(10));
        let (_g, outbox) = hub.connect_tab(tab("visitor-1", "tab-1"));
        let frame = Utf8Bytes::from_static("{}");
        let mut reached = 0;
        for i in 0..(VISITOR_OUTBOX + 5) {
            reached += hub
                .deliver("site", Selector::All, &format!("m{i}"), &frame)
                .len();
        }
        assert_eq!(reached, VISITOR_OUTBOX, "a full outbox refuses");
        for _ in 0..VISITOR_OUTBOX {
            assert!(outbox.recv().await.is_some());
        }
        assert!(matches!(
            outbox.try_recv(),
            Err(mpsc::error::TryRecvError::Empty)
        ));
        // A frame queued while the socket waits wakes it.
        let waiting = tokio::spawn({
            let outbox = outbox.clone();
            async move { outbox.recv().await }
        });
        tokio::task::yield_now().await;
        assert_eq!(hub.deliver("site", Selector::All, "late", &frame).len(), 1);
        assert!(waiting.await.expect("joins").is_some());
        hub.forget_visitor("site", "visitor-1");
        assert!(outbox.recv().await.is_none(), "erased: the socket is told");
    }

    #[tokio::test]
    async fn messages_reach_only_the_selected_tabs_and_acks_only_count_for_delivered_ones() {
        let hub = Hub::new(Duration::from_millis(10));
        let (g1, rx1) = hub.connect_tab(tab("visitor-1", "tab-1"));
        let (_g2, rx2) = hub.connect_tab(tab("visitor-2", "tab-2"));
        let frame = Utf8Bytes::from_static("{}");
        let reached = hub.deliver("site", Selector::Tab("tab-1"), "m1", &frame);
        assert_eq!(reached.len(), 1);
        assert!(rx1.try_recv().is_ok());
        assert!(rx2.try_recv().is_err());
        assert_eq!(
            hub.ack("site", "visitor-1", g1.conn(), "m1").as_deref(),
            Some("tab-1")
        );
        assert_eq!(hub.ack("site", "visitor-1", g1.conn(), "m2"), None);
        assert_eq!(
            hub.deliver("other-site", Selector::All, "m3", &frame).len(),
            0
        );
    }
}
