//! Targeting: segments evaluated live and campaigns fired on the server, on each event a visitor
//! sends (and on timers for time-based rules — never by polling).
//!
//! The engine keeps, per site, the compiled rules and a context per visitor (this session's
//! pages, items, events, identity, segment membership, campaign counters, pending goals). An
//! observation updates the context under the site's lock and returns an `Outcome` (segment
//! changes, messages to send, control-group and conversion records, the next timer); `apply`
//! then acts on it outside the lock.

pub mod rules;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::db::writer::{ConversionRow, DeliveryRow, MessageRow, Record};
use crate::db::{now_ms, Db};
use crate::live::hub::Selector;
use crate::live::protocol::MessageContent;
use crate::state::AppState;
use rules::{
    CampaignDef, Combine, CompiledCampaign, CompiledCondition, CompiledGoal, CompiledSegment,
    CompiledTrigger, ItemFilter, SegmentDef,
};

const MAX_PAGES: usize = 500;
const MAX_ITEMS: usize = 200;
const MAX_EVENTS: usize = 200;
const MAX_MESSAGE_TIMES: usize = 100;
/// Contexts of visitors without tabs are dropped after a session's length of inactivity (on
/// sites with rules: the context holds this session's pages, items and events, message caps
/// and pending goals).
const IDLE_MS: i64 = 30 * 60 * 1000;
/// On a site without rules a context only matters while the visitor is there (a segment
/// created then is evaluated at once): it is dropped this long after the last tab closed, which
/// covers the leave grace of a page navigation. What a later rule needs of the visitor's past
/// (sessions, campaign deliveries) is loaded from the database (`load_history`).
const DEPARTED_MS: i64 = 10_000;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Schema.org data of a page (JSON-LD Product/Car/Vehicle/Offer, or `data-lookout-*`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Item {
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
}

impl Item {
    /// Reads an item from a visitor's frame. The item is informative, so it never costs the
    /// visitor its socket: texts are cut to 200 bytes, fields of the wrong type or unknown are
    /// dropped, and anything but an object is ignored.
    pub fn parse(v: Option<Value>) -> Result<Option<Item>, String> {
        let Some(Value::Object(map)) = v else {
            return Ok(None);
        };
        let text = |key: &str| -> Option<String> {
            let s = map.get(key)?.as_str()?.trim();
            if s.is_empty() {
                return None;
            }
            let mut end = s.len().min(200);
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            Some(s[..end].to_string())
        };
        let price = map
            .get("price")
            .and_then(|p| {
                p.as_f64()
                    .or_else(|| p.as_str().and_then(|s| s.trim().parse().ok()))
            })
            .filter(|p| p.is_finite() && *p >= 0.0);
        let item = Item {
            kind: text("type"),
            brand: text("brand"),
            model: text("model"),
            name: text("name"),
            category: text("category"),
            sku: text("sku"),
            price,
            currency: text("currency"),
        };
        Ok((item != Item::default()).then_some(item))
    }

    fn matches(&self, f: &ItemFilter) -> bool {
        let eq = |want: &Option<String>, have: &Option<String>| match want {
            None => true,
            Some(w) => have.as_ref().is_some_and(|h| h.trim().to_lowercase() == *w),
        };
        eq(&f.brand, &self.brand)
            && eq(&f.model, &self.model)
            && eq(&f.category, &self.category)
            && eq(&f.name, &self.name)
            && f.min_price
                .is_none_or(|lo| self.price.is_some_and(|p| p >= lo))
            && f.max_price
                .is_none_or(|hi| self.price.is_some_and(|p| p <= hi))
    }
}

/// What a visitor did, as the engine sees it.
pub enum Obs<'a> {
    Hello {
        session: &'a str,
        tab: &'a str,
        url: &'a str,
        title: Option<&'a str>,
        referrer: Option<&'a str>,
        device: Option<&'a str>,
        item: Option<&'a Item>,
        pageview: bool,
    },
    Page {
        tab: &'a str,
        url: &'a str,
        title: Option<&'a str>,
        item: Option<&'a Item>,
    },
    Event {
        name: &'a str,
        props: &'a Map<String, Value>,
    },
    Identify {
        user_id: Option<&'a str>,
        traits: &'a Map<String, Value>,
    },
    Close {
        tab: &'a str,
    },
    Tick,
}

/// A campaign message to send to the visitor.
#[derive(Debug, Clone)]
pub struct CampaignSend {
    pub campaign_id: String,
    pub delivery_id: String,
    pub session: String,
    pub message: MessageContent,
    pub test: bool,
}

#[derive(Debug, Clone)]
pub struct ControlHold {
    pub campaign_id: String,
    pub delivery_id: String,
    pub session: String,
}

#[derive(Debug, Default)]
pub struct Outcome {
    /// The visitor's segments, when membership changed.
    pub segments: Option<Vec<String>>,
    pub sends: Vec<CampaignSend>,
    pub controls: Vec<ControlHold>,
    /// Deliveries whose goal was reached.
    pub conversions: Vec<String>,
    /// When to look at this visitor again (time-based rules), epoch ms.
    pub next_check: Option<i64>,
    /// The visitor's history (sessions, past deliveries) must be loaded for this session before
    /// campaigns can fire; set once per context, only when the site has rules.
    pub load_history: Option<String>,
}

impl Outcome {
    pub fn is_empty(&self) -> bool {
        self.segments.is_none()
            && self.sends.is_empty()
            && self.controls.is_empty()
            && self.conversions.is_empty()
            && self.next_check.is_none()
            && self.load_history.is_none()
    }
}

#[derive(Default)]
struct SiteRules {
    segments: Vec<CompiledSegment>,
    /// Highest priority first.
    campaigns: Vec<CompiledCampaign>,
}

#[derive(Default)]
struct SiteTargets {
    rules: Arc<SiteRules>,
    /// Boxed: the map's spare capacity then costs a pointer per slot, not a whole context.
    visitors: HashMap<String, Box<VisitorCtx>>,
}

impl SiteRules {
    fn is_empty(&self) -> bool {
        self.segments.is_empty() && self.campaigns.is_empty()
    }
}

/// A visitor whose last tab closed on a site without rules.
struct Departed {
    site: Arc<Mutex<SiteTargets>>,
    visitor: String,
    /// When the last tab closed (the context's `last_active` then).
    at: i64,
}

struct TabPage {
    url: String,
    since: i64,
    /// Sockets open for this tab id: a tab that reconnected before its old socket was noticed
    /// gone has two for a while, and stays open when the old one closes.
    open: u32,
}

struct PendingGoal {
    delivery_id: String,
    goal: CompiledGoal,
    deadline: i64,
}

/// A trigger that arrived before the visitor's history was loaded.
enum Deferred {
    Pageview(String),
    Event(String),
    Entered(Vec<String>),
}

#[derive(Default)]
struct VisitorCtx {
    session: String,
    session_started: i64,
    sessions: u32,
    device: Option<String>,
    referrer: Option<String>,
    utm: HashMap<String, String>,
    tabs: HashMap<String, TabPage>,
    last_url: String,
    last_title: Option<String>,
    pages: VecDeque<String>,
    items: VecDeque<Item>,
    events: VecDeque<(String, Map<String, Value>)>,
    user_id: Option<String>,
    traits: Map<String, Value>,
    segments: BTreeSet<String>,
    /// campaign → (all time, per session)
    fired: HashMap<String, (u32, HashMap<String, u32>)>,
    message_times: VecDeque<i64>,
    goals: Vec<PendingGoal>,
    time_fired: BTreeSet<(String, String, i64)>,
    history_loaded: bool,
    history_loading: bool,
    deferred: Vec<Deferred>,
    scheduled: Option<i64>,
    last_active: i64,
}

#[derive(Clone, Default)]
pub struct Engine {
    sites: Arc<Mutex<HashMap<String, Arc<Mutex<SiteTargets>>>>>,
    /// Oldest first; reaped when tabs close and by `sweep`.
    departed: Arc<Mutex<VecDeque<Departed>>>,
}

fn utm_of(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .map(|u| {
            u.query_pairs()
                .filter_map(|(k, v)| {
                    k.strip_prefix("utm_")
                        .map(|k| (k.to_lowercase(), v.to_lowercase()))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn push_bounded<T>(q: &mut VecDeque<T>, v: T, max: usize) {
    if q.len() >= max {
        q.pop_front();
    }
    q.push_back(v);
}

/// Is `want` a subset of `have` (props matching)?
fn props_match(want: &Map<String, Value>, have: &Map<String, Value>) -> bool {
    want.iter().all(|(k, v)| have.get(k) == Some(v))
}

/// Control-group assignment: stable per visitor and campaign.
pub fn in_control(visitor: &str, campaign: &str, percent: u8) -> bool {
    if percent == 0 {
        return false;
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (visitor, campaign).hash(&mut h);
    (h.finish() % 100) < percent as u64
}

impl VisitorCtx {
    fn matches(&self, c: &CompiledCondition, now: i64) -> bool {
        match c {
            CompiledCondition::CurrentUrl(p) => self.tabs.values().any(|t| p.matches_url(&t.url)),
            CompiledCondition::Pages(p, min) => {
                self.pages.iter().filter(|u| p.matches_url(u)).count() >= *min as usize
            }
            CompiledCondition::Item(f, min) => {
                self.items.iter().filter(|i| i.matches(f)).count() >= *min as usize
            }
            CompiledCondition::TimeOnSite(s) => now - self.session_started >= (*s as i64) * 1000,
            CompiledCondition::TimeOnPage(s) => self
                .tabs
                .values()
                .any(|t| now - t.since >= (*s as i64) * 1000),
            CompiledCondition::Sessions(min, max) => {
                min.is_none_or(|m| self.sessions >= m) && max.is_none_or(|m| self.sessions <= m)
            }
            CompiledCondition::Referrer(p) => {
                self.referrer.as_deref().is_some_and(|r| p.matches_text(r))
            }
            CompiledCondition::Utm(param, value) => self
                .utm
                .get(param)
                .is_some_and(|v| v.eq_ignore_ascii_case(value)),
            CompiledCondition::Device(d) => self.device.as_deref() == Some(d.as_str()),
            CompiledCondition::Trait(k, v) => match v {
                None => self.traits.contains_key(k),
                Some(v) => self.traits.get(k) == Some(v),
            },
            CompiledCondition::Event(name, props, min) => {
                self.events
                    .iter()
                    .filter(|(n, p)| n == name && props_match(props, p))
                    .count()
                    >= *min as usize
            }
        }
    }

    fn in_segment(&self, s: &CompiledSegment, now: i64) -> bool {
        match s.combine {
            Combine::All => s.conditions.iter().all(|c| self.matches(c, now)),
            Combine::Any => s.conditions.iter().any(|c| self.matches(c, now)),
        }
    }

    /// The earliest future time at which a time-based rule could change its answer.
    fn next_time_change(&self, rules: &SiteRules, now: i64) -> Option<i64> {
        let mut next: Option<i64> = None;
        let mut consider = |t: i64| {
            if t > now {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        for s in &rules.segments {
            for c in &s.conditions {
                match c {
                    CompiledCondition::TimeOnSite(secs) => {
                        consider(self.session_started + (*secs as i64) * 1000)
                    }
                    CompiledCondition::TimeOnPage(secs) => {
                        for t in self.tabs.values() {
                            consider(t.since + (*secs as i64) * 1000);
                        }
                    }
                    _ => {}
                }
            }
        }
        for c in &rules.campaigns {
            if let CompiledTrigger::TimeOnPage(secs) = c.trigger {
                for t in self.tabs.values() {
                    consider(t.since + (secs as i64) * 1000);
                }
            }
        }
        next
    }

    /// Fills `{{placeholders}}` from the visitor's context (the last item viewed, the page, the
    /// identity).
    fn fill(&self, text: &str) -> String {
        self.fill_with(text, str::to_string)
    }

    /// Fills placeholders, passing each value through `encode` (e.g. URL-encoding for links).
    fn fill_with(&self, text: &str, encode: impl Fn(&str) -> String) -> String {
        let item = self.items.back();
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                out.push_str(&rest[start..]);
                return out;
            };
            let name = after[..end].trim();
            let value = match name {
                "brand" => item.and_then(|i| i.brand.clone()),
                "model" => item.and_then(|i| i.model.clone()),
                "name" => item.and_then(|i| i.name.clone()),
                "category" => item.and_then(|i| i.category.clone()),
                "sku" => item.and_then(|i| i.sku.clone()),
                "currency" => item.and_then(|i| i.currency.clone()),
                "price" => item.and_then(|i| i.price).map(|p| {
                    if p.fract() == 0.0 {
                        format!("{p:.0}")
                    } else {
                        format!("{p:.2}")
                    }
                }),
                "url" => Some(self.last_url.clone()),
                "title" => self.last_title.clone(),
                "user_id" => self.user_id.clone(),
                other => other.strip_prefix("trait.").and_then(|k| {
                    self.traits.get(k).map(|v| match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                }),
            };
            out.push_str(&encode(&value.unwrap_or_default()));
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        out
    }

    fn allowed_by_caps(&self, c: &CompiledCampaign, now: i64) -> bool {
        let (total, per_session) = self
            .fired
            .get(&c.id)
            .map(|(t, s)| (*t, s.get(&self.session).copied().unwrap_or(0)))
            .unwrap_or((0, 0));
        if c.frequency.per_visitor.is_some_and(|max| total >= max) {
            return false;
        }
        if c.frequency
            .per_session
            .is_some_and(|max| per_session >= max)
        {
            return false;
        }
        if let (Some(max), Some(period)) = (c.frequency.max_messages, c.frequency.period_seconds) {
            let since = now - (period as i64) * 1000;
            if self.message_times.iter().filter(|t| **t >= since).count() >= max as usize {
                return false;
            }
        }
        true
    }
}

impl Engine {
    /// Loads every site's rules (at start-up).
    pub async fn load_all(db: &Db) -> Result<Self, sqlx::Error> {
        let engine = Self::default();
        let sites: Vec<(String,)> = sqlx::query_as(
            "select distinct site_id from segment union select distinct site_id from campaign",
        )
        .fetch_all(db.pool())
        .await?;
        for (site,) in sites {
            engine.reload_site(db, &site).await?;
        }
        Ok(engine)
    }

    fn site(&self, site_id: &str) -> Arc<Mutex<SiteTargets>> {
        lock(&self.sites)
            .entry(site_id.to_string())
            .or_default()
            .clone()
    }

    /// Recompiles a site's rules after a change (definitions were validated when stored; one
    /// that no longer compiles is skipped and logged).
    pub async fn reload_site(&self, db: &Db, site_id: &str) -> Result<(), sqlx::Error> {
        let segs: Vec<(String, String)> = sqlx::query_as(
            "select segment_id, definition from segment where site_id = $1 order by created_at",
        )
        .bind(site_id)
        .fetch_all(db.pool())
        .await?;
        let camps: Vec<(String, String)> = sqlx::query_as(
            "select campaign_id, definition from campaign where site_id = $1 order by created_at",
        )
        .bind(site_id)
        .fetch_all(db.pool())
        .await?;
        let mut rules = SiteRules::default();
        for (id, def) in segs {
            match serde_json::from_str::<SegmentDef>(&def)
                .map_err(|e| e.to_string())
                .and_then(|d| rules::compile_segment(&id, &d).map_err(|e| e.0))
            {
                Ok(s) => rules.segments.push(s),
                Err(e) => {
                    tracing::warn!(segment = %id, error = %e, "skipping a segment that does not compile")
                }
            }
        }
        let ids: BTreeSet<String> = rules.segments.iter().map(|s| s.id.clone()).collect();
        for (id, def) in camps {
            match serde_json::from_str::<CampaignDef>(&def)
                .map_err(|e| e.to_string())
                .and_then(|d| {
                    rules::compile_campaign(&id, &d, |s| ids.contains(s)).map_err(|e| e.0)
                }) {
                Ok(c) => rules.campaigns.push(c),
                Err(e) => {
                    tracing::warn!(campaign = %id, error = %e, "skipping a campaign that does not compile")
                }
            }
        }
        rules
            .campaigns
            .sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| a.id.cmp(&b.id)));
        let site = self.site(site_id);
        let mut st = lock(&site);
        st.rules = Arc::new(rules);
        // Membership is re-evaluated with the new rules on each visitor's next observation.
        Ok(())
    }

    /// Re-evaluates every known visitor of a site after its rules changed; returns the visitors
    /// whose membership changed, with their segments now. (Entering a segment this way fires no
    /// campaign: only what visitors do does.)
    pub fn reevaluate(&self, site_id: &str, now: i64) -> Vec<(String, Vec<String>)> {
        let site = self.site(site_id);
        let mut st = lock(&site);
        let rules = st.rules.clone();
        let mut changed = Vec::new();
        for (id, v) in st.visitors.iter_mut() {
            let mut out = Outcome::default();
            evaluate_segments(v, &rules, id, now, &mut out);
            if let Some(segments) = out.segments {
                changed.push((id.clone(), segments));
            }
        }
        changed
    }

    pub fn forget_site(&self, site_id: &str) {
        lock(&self.sites).remove(site_id);
    }

    pub fn forget_visitor(&self, site_id: &str, visitor: &str) {
        if let Some(site) = lock(&self.sites).get(site_id).cloned() {
            lock(&site).visitors.remove(visitor);
        }
    }

    pub fn segment_exists(&self, site_id: &str, segment: &str) -> bool {
        lock(&self.sites)
            .get(site_id)
            .cloned()
            .is_some_and(|s| lock(&s).rules.segments.iter().any(|x| x.id == segment))
    }

    /// Counts a message the visitor received (for `max_messages` caps), manual ones included.
    pub fn note_message(&self, site_id: &str, visitor: &str, at: i64) {
        let site = self.site(site_id);
        let mut st = lock(&site);
        if let Some(v) = st.visitors.get_mut(visitor) {
            push_bounded(&mut v.message_times, at, MAX_MESSAGE_TIMES);
        }
    }

    /// Merges the visitor's history and runs what waited for it.
    pub fn history_loaded(
        &self,
        site_id: &str,
        visitor: &str,
        earlier_sessions: u32,
        deliveries: Vec<(String, String, u32)>,
        now: i64,
    ) -> Outcome {
        let site = self.site(site_id);
        let mut st = lock(&site);
        let rules = st.rules.clone();
        let Some(v) = st.visitors.get_mut(visitor) else {
            return Outcome::default();
        };
        if v.history_loaded {
            return Outcome::default();
        }
        v.history_loaded = true;
        v.sessions = earlier_sessions + 1;
        for (campaign, session, n) in deliveries {
            let e = v.fired.entry(campaign).or_default();
            e.0 += n;
            *e.1.entry(session).or_default() += n;
        }
        let deferred = std::mem::take(&mut v.deferred);
        let mut out = Outcome::default();
        evaluate_segments(v, &rules, visitor, now, &mut out);
        for d in deferred {
            let (pageview, event, entered) = match &d {
                Deferred::Pageview(u) => (Some(u.as_str()), None, Vec::new()),
                Deferred::Event(n) => (None, Some(n.as_str()), Vec::new()),
                Deferred::Entered(e) => (None, None, e.clone()),
            };
            fire_campaigns(v, &rules, visitor, now, pageview, event, &entered, &mut out);
        }
        fire_campaigns(v, &rules, visitor, now, None, None, &[], &mut out);
        schedule(v, &rules, now, &mut out);
        out
    }

    /// Applies an observation to the visitor's context and decides what follows.
    pub fn observe(&self, site_id: &str, visitor: &str, obs: Obs<'_>, now: i64) -> Outcome {
        let closing = matches!(obs, Obs::Close { .. });
        let out = self.observe_at(site_id, visitor, obs, now);
        if closing {
            self.reap_departed(now);
        }
        out
    }

    /// Drops the contexts of visitors gone from sites without rules for `DEPARTED_MS`, unless
    /// they came back or the site got rules meanwhile.
    fn reap_departed(&self, now: i64) {
        let mut due = Vec::new();
        {
            let mut q = lock(&self.departed);
            while let Some(d) = q.pop_front() {
                if now - d.at < DEPARTED_MS {
                    q.push_front(d);
                    break;
                }
                due.push(d);
            }
        }
        for d in due {
            let mut st = lock(&d.site);
            let gone = st.rules.is_empty()
                && st
                    .visitors
                    .get(&d.visitor)
                    .is_some_and(|v| v.tabs.is_empty() && v.last_active == d.at);
            if gone {
                st.visitors.remove(&d.visitor);
            }
        }
    }

    fn observe_at(&self, site_id: &str, visitor: &str, obs: Obs<'_>, now: i64) -> Outcome {
        let site = self.site(site_id);
        let mut st = lock(&site);
        let rules = st.rules.clone();
        let mut out = Outcome::default();
        let v = st.visitors.entry(visitor.to_string()).or_default();
        v.last_active = now;
        let mut pageview: Option<String> = None;
        let mut event: Option<String> = None;
        match obs {
            Obs::Hello {
                session,
                tab,
                url,
                title,
                referrer,
                device,
                item,
                pageview: is_view,
            } => {
                if v.session != session {
                    // A new session: its pages, items and events start afresh.
                    let returning = !v.session.is_empty();
                    v.session = session.to_string();
                    v.session_started = now;
                    v.pages.clear();
                    v.items.clear();
                    v.events.clear();
                    v.referrer = referrer.map(str::to_string);
                    v.utm = utm_of(url);
                    if returning {
                        v.sessions += 1;
                    }
                }
                if v.sessions == 0 {
                    v.sessions = 1;
                }
                v.device = device.map(str::to_string).or(v.device.take());
                let t = v.tabs.entry(tab.to_string()).or_insert(TabPage {
                    url: String::new(),
                    since: now,
                    open: 0,
                });
                t.url = url.to_string();
                t.since = now;
                t.open += 1;
                v.last_url = url.to_string();
                v.last_title = title.map(str::to_string);
                if is_view {
                    push_bounded(&mut v.pages, url.to_string(), MAX_PAGES);
                    if let Some(i) = item {
                        push_bounded(&mut v.items, i.clone(), MAX_ITEMS);
                    }
                    pageview = Some(url.to_string());
                }
            }
            Obs::Page {
                tab,
                url,
                title,
                item,
            } => {
                let t = v.tabs.entry(tab.to_string()).or_insert(TabPage {
                    url: String::new(),
                    since: now,
                    open: 1,
                });
                t.url = url.to_string();
                t.since = now;
                v.last_url = url.to_string();
                v.last_title = title.map(str::to_string);
                push_bounded(&mut v.pages, url.to_string(), MAX_PAGES);
                if let Some(i) = item {
                    push_bounded(&mut v.items, i.clone(), MAX_ITEMS);
                }
                pageview = Some(url.to_string());
            }
            Obs::Event { name, props } => {
                push_bounded(&mut v.events, (name.to_string(), props.clone()), MAX_EVENTS);
                event = Some(name.to_string());
            }
            Obs::Identify { user_id, traits } => {
                if let Some(u) = user_id {
                    v.user_id = Some(u.to_string());
                }
                v.traits.extend(traits.clone());
            }
            Obs::Close { tab } => {
                if let Some(t) = v.tabs.get_mut(tab) {
                    t.open = t.open.saturating_sub(1);
                    if t.open == 0 {
                        v.tabs.remove(tab);
                    }
                }
                if v.tabs.is_empty() && rules.is_empty() {
                    lock(&self.departed).push_back(Departed {
                        site: site.clone(),
                        visitor: visitor.to_string(),
                        at: now,
                    });
                }
            }
            Obs::Tick => {
                if v.scheduled.is_some_and(|t| t <= now) {
                    v.scheduled = None;
                }
            }
        }
        // Goals: a page view or event reached within the window converts.
        if pageview.is_some() || event.is_some() {
            v.goals.retain(|g| g.deadline >= now);
            let mut reached = Vec::new();
            v.goals.retain(|g| {
                let hit = match (&g.goal, &pageview, &event) {
                    (CompiledGoal::Pageview(p), Some(url), _) => p.matches_url(url),
                    (CompiledGoal::Event(n), _, Some(e)) => n == e,
                    _ => false,
                };
                if hit {
                    reached.push(g.delivery_id.clone());
                }
                !hit
            });
            out.conversions = reached;
        }
        if rules.segments.is_empty() && rules.campaigns.is_empty() {
            return out;
        }
        let entered = evaluate_segments(v, &rules, visitor, now, &mut out);
        if !v.history_loaded && !v.history_loading && !v.session.is_empty() {
            v.history_loading = true;
            out.load_history = Some(v.session.clone());
        }
        if !v.history_loaded {
            if let Some(u) = pageview {
                v.deferred.push(Deferred::Pageview(u));
            }
            if let Some(e) = event {
                v.deferred.push(Deferred::Event(e));
            }
            if !entered.is_empty() {
                v.deferred.push(Deferred::Entered(entered));
            }
            return out;
        }
        fire_campaigns(
            v,
            &rules,
            visitor,
            now,
            pageview.as_deref(),
            event.as_deref(),
            &entered,
            &mut out,
        );
        schedule(v, &rules, now, &mut out);
        out
    }

    /// The ids of the segments the visitor is in now.
    pub fn segments_of(&self, site_id: &str, visitor: &str) -> Vec<String> {
        let site = self.site(site_id);
        let st = lock(&site);
        st.visitors
            .get(visitor)
            .map(|v| v.segments.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Drops contexts of visitors gone for longer than a session (sites with rules) or than
    /// `DEPARTED_MS` (sites without).
    pub fn sweep(&self, now: i64) {
        self.reap_departed(now);
        let sites: Vec<_> = lock(&self.sites).values().cloned().collect();
        for site in sites {
            let mut st = lock(&site);
            let keep_ms = if st.rules.is_empty() {
                DEPARTED_MS
            } else {
                IDLE_MS
            };
            st.visitors
                .retain(|_, v| !v.tabs.is_empty() || now - v.last_active < keep_ms);
        }
    }
}

/// Re-evaluates membership; returns the segments entered.
fn evaluate_segments(
    v: &mut VisitorCtx,
    rules: &SiteRules,
    _visitor: &str,
    now: i64,
    out: &mut Outcome,
) -> Vec<String> {
    let now_in: BTreeSet<String> = rules
        .segments
        .iter()
        .filter(|s| v.in_segment(s, now))
        .map(|s| s.id.clone())
        .collect();
    if now_in == v.segments {
        return Vec::new();
    }
    let entered: Vec<String> = now_in.difference(&v.segments).cloned().collect();
    v.segments = now_in;
    out.segments = Some(v.segments.iter().cloned().collect());
    entered
}

fn schedule(v: &mut VisitorCtx, rules: &SiteRules, now: i64, out: &mut Outcome) {
    if let Some(next) = v.next_time_change(rules, now) {
        if v.scheduled.is_none_or(|s| next < s || s <= now) {
            v.scheduled = Some(next);
            out.next_check = Some(next);
        }
    }
}

/// Fires at most one campaign (the highest priority whose trigger, audience, schedule, test
/// mode and caps allow it) for this observation.
#[allow(clippy::too_many_arguments)]
fn fire_campaigns(
    v: &mut VisitorCtx,
    rules: &SiteRules,
    visitor: &str,
    now: i64,
    pageview: Option<&str>,
    event: Option<&str>,
    entered: &[String],
    out: &mut Outcome,
) {
    for c in &rules.campaigns {
        if !c.active_at(now) {
            continue;
        }
        let triggered = match &c.trigger {
            CompiledTrigger::SegmentEntered(s) => entered.contains(s),
            CompiledTrigger::Pageview(p) => pageview.is_some_and(|u| p.matches_url(u)),
            CompiledTrigger::Event(n) => event == Some(n.as_str()),
            CompiledTrigger::TimeOnPage(secs) => {
                let due: Vec<(String, i64)> = v
                    .tabs
                    .iter()
                    .filter(|(tab, t)| {
                        now - t.since >= (*secs as i64) * 1000
                            && !v
                                .time_fired
                                .contains(&(c.id.clone(), (*tab).clone(), t.since))
                    })
                    .map(|(tab, t)| (tab.clone(), t.since))
                    .collect();
                for (tab, since) in &due {
                    v.time_fired.insert((c.id.clone(), tab.clone(), *since));
                }
                !due.is_empty()
            }
        };
        if !triggered {
            continue;
        }
        if c.segment.as_ref().is_some_and(|s| !v.segments.contains(s)) {
            continue;
        }
        if c.test_visitor.as_deref().is_some_and(|t| t != visitor) {
            continue;
        }
        if !v.allowed_by_caps(c, now) {
            continue;
        }
        let delivery_id = crate::domain::new_id();
        let e = v.fired.entry(c.id.clone()).or_default();
        e.0 += 1;
        *e.1.entry(v.session.clone()).or_default() += 1;
        if let Some(goal) = &c.goal {
            v.goals.push(PendingGoal {
                delivery_id: delivery_id.clone(),
                goal: goal.clone(),
                deadline: now + c.goal_window_ms,
            });
        }
        let test = c.test_visitor.is_some();
        if !test && in_control(visitor, &c.id, c.control_percent) {
            out.controls.push(ControlHold {
                campaign_id: c.id.clone(),
                delivery_id,
                session: v.session.clone(),
            });
        } else {
            let mut message = c.message.clone();
            message.title = v.fill(&message.title);
            message.body = v.fill(&message.body);
            if let Some(cta) = &mut message.cta {
                cta.label = v.fill(&cta.label);
                cta.url = v.fill_with(&cta.url, |value| {
                    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
                });
            }
            push_bounded(&mut v.message_times, now, MAX_MESSAGE_TIMES);
            out.sends.push(CampaignSend {
                campaign_id: c.id.clone(),
                delivery_id,
                session: v.session.clone(),
                message,
                test,
            });
        }
        // One campaign per observation: the highest priority wins.
        return;
    }
}

/// Loads a visitor's history for the engine beside the socket (never in its way).
pub fn load_history(
    state: AppState,
    site_id: String,
    visitor: String,
    session: String,
    local: bool,
) -> futures_util::future::BoxFuture<'static, ()> {
    // Boxed: it applies an outcome, which may start another load.
    Box::pin(load_history_inner(state, site_id, visitor, session, local))
}

async fn load_history_inner(
    state: AppState,
    site_id: String,
    visitor: String,
    session: String,
    local: bool,
) {
    let earlier: Result<i64, _> = sqlx::query_scalar(
        "select count(*) from session where site_id = $1 and visitor_id = $2 and session_id <> $3",
    )
    .bind(&site_id)
    .bind(&visitor)
    .bind(&session)
    .fetch_one(state.db.pool())
    .await;
    let deliveries: Result<Vec<(String, String, i64)>, _> = sqlx::query_as(
        "select campaign_id, session_id, count(*) from campaign_delivery where site_id = $1 and visitor_id = $2 \
         and variant <> 'test' group by campaign_id, session_id",
    )
    .bind(&site_id)
    .bind(&visitor)
    .fetch_all(state.db.pool())
    .await;
    let (earlier, deliveries) = match (earlier, deliveries) {
        (Ok(e), Ok(d)) => (e, d),
        (Err(e), _) | (_, Err(e)) => {
            // Without history the visitor is treated as new, with no campaign sent yet.
            tracing::warn!(error = %e, "loading a visitor's targeting history failed");
            (0, Vec::new())
        }
    };
    let deliveries = deliveries
        .into_iter()
        .map(|(c, s, n)| (c, s, n.max(0) as u32))
        .collect();
    let out = state.targeting.history_loaded(
        &site_id,
        &visitor,
        earlier.max(0) as u32,
        deliveries,
        now_ms(),
    );
    apply_as(&state, &site_id, &visitor, out, local).await;
}

/// Acts on an outcome: segment badges, campaign messages, control-group and conversion records,
/// and the next timer.
pub async fn apply(state: &AppState, site_id: &str, visitor: &str, out: Outcome) {
    apply_as(state, site_id, visitor, out, true).await
}

/// `local`: the observation happened on this node. Every node mirrors every observation of the
/// visitors it hears about (so segments and caps agree across the cluster), but only the node
/// where it happened sends, holds back or schedules; conversions are recorded by each node for
/// the deliveries it made (others' ids match no row).
async fn apply_as(state: &AppState, site_id: &str, visitor: &str, mut out: Outcome, local: bool) {
    if !local {
        out.sends.clear();
        out.controls.clear();
        out.next_check = None;
    }
    if out.is_empty() {
        return;
    }
    if let Some(session) = out.load_history.take() {
        tokio::spawn(load_history(
            state.clone(),
            site_id.to_string(),
            visitor.to_string(),
            session,
            local,
        ));
    }
    let now = now_ms();
    if let Some(segments) = out.segments {
        state.hub.set_segments(site_id, visitor, segments);
    }
    for delivery_id in out.conversions {
        metrics::counter!("lookout_campaign_conversions_total").increment(1);
        let _ = state
            .writer
            .submit(Record::Conversion(ConversionRow {
                delivery_id,
                at: now,
            }))
            .await;
    }
    for c in out.controls {
        metrics::counter!("lookout_campaign_triggered_total", "variant" => "control").increment(1);
        let _ = state
            .writer
            .submit(Record::Delivery(DeliveryRow {
                delivery_id: c.delivery_id,
                campaign_id: c.campaign_id,
                site_id: site_id.to_string(),
                visitor_id: visitor.to_string(),
                session_id: c.session,
                variant: "control".into(),
                message_id: None,
                at: now,
            }))
            .await;
    }
    for s in out.sends {
        metrics::counter!("lookout_campaign_triggered_total", "variant" => if s.test { "test" } else { "sent" })
            .increment(1);
        let message_id = crate::domain::new_id();
        let frame = crate::live::message_frame(&message_id, &s.message);
        let reached = state
            .hub
            .deliver(site_id, Selector::Visitor(visitor), &message_id, &frame);
        if let Some(cluster) = &state.cluster {
            // The visitor's tabs on other nodes; those nodes record their deliveries.
            let selector = Selector::Visitor(visitor);
            cluster
                .deliver_remote(site_id, &message_id, &selector, frame.as_str())
                .await;
        }
        let records = [
            Record::Message(MessageRow {
                message_id: message_id.clone(),
                site_id: site_id.to_string(),
                target: serde_json::json!({ "visitor": visitor }).to_string(),
                payload: serde_json::to_string(&s.message).unwrap_or_default(),
                created_at: now,
                expires_at: None,
                sent_by: None,
                campaign_id: Some(s.campaign_id.clone()),
            }),
            Record::Delivery(DeliveryRow {
                delivery_id: s.delivery_id,
                campaign_id: s.campaign_id,
                site_id: site_id.to_string(),
                visitor_id: visitor.to_string(),
                session_id: s.session,
                variant: if s.test { "test" } else { "sent" }.into(),
                message_id: Some(message_id.clone()),
                at: now,
            }),
        ];
        for r in records {
            let _ = state.writer.submit(r).await;
        }
        crate::live::record_delivered(state, site_id, &message_id, &reached, now).await;
    }
    if let Some(at) = out.next_check {
        tokio::spawn(tick_at(
            state.clone(),
            site_id.to_string(),
            visitor.to_string(),
            at,
        ));
    }
}

/// An observation made on another node: mirrored here (see `apply_as`).
pub async fn observe_remote(
    state: &AppState,
    site_id: &str,
    visitor: &str,
    obs: crate::cluster::ObsMsg,
) {
    use crate::cluster::ObsMsg;
    let now = now_ms();
    let parse_map = |s: &str| match serde_json::from_str(s) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let out = match &obs {
        ObsMsg::Hello {
            session,
            tab,
            url,
            title,
            referrer,
            device,
            item,
            pageview,
        } => {
            let o = Obs::Hello {
                session,
                tab,
                url,
                title: title.as_deref(),
                referrer: referrer.as_deref(),
                device: device.as_deref(),
                item: item.as_ref(),
                pageview: *pageview,
            };
            state.targeting.observe(site_id, visitor, o, now)
        }
        ObsMsg::Page {
            tab,
            url,
            title,
            item,
        } => {
            let o = Obs::Page {
                tab,
                url,
                title: title.as_deref(),
                item: item.as_ref(),
            };
            state.targeting.observe(site_id, visitor, o, now)
        }
        ObsMsg::Event { name, props } => {
            let props = parse_map(props);
            state.targeting.observe(
                site_id,
                visitor,
                Obs::Event {
                    name,
                    props: &props,
                },
                now,
            )
        }
        ObsMsg::Identify { user_id, traits } => {
            let traits = parse_map(traits);
            let o = Obs::Identify {
                user_id: user_id.as_deref(),
                traits: &traits,
            };
            state.targeting.observe(site_id, visitor, o, now)
        }
        ObsMsg::Close { tab } => state
            .targeting
            .observe(site_id, visitor, Obs::Close { tab }, now),
    };
    apply_as(state, site_id, visitor, out, false).await;
}

/// Looks at the visitor again at `at` (time-based rules). Boxed: it calls `apply`, which may
/// schedule the next one.
fn tick_at(
    state: AppState,
    site_id: String,
    visitor: String,
    at: i64,
) -> futures_util::future::BoxFuture<'static, ()> {
    Box::pin(async move {
        let wait = (at - now_ms()).max(0) as u64;
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_millis(wait)) => {}
            _ = state.shutdown.cancelled() => return,
        }
        let out = state
            .targeting
            .observe(&site_id, &visitor, Obs::Tick, now_ms());
        apply(&state, &site_id, &visitor, out).await;
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn engine_with(segments: Value, campaigns: Value) -> Engine {
        let engine = Engine::default();
        let mut rules = SiteRules::default();
        for (i, s) in segments.as_array().into_iter().flatten().enumerate() {
            let def: SegmentDef = serde_json::from_value(s.clone()).expect("segment parses");
            rules
                .segments
                .push(rules::compile_segment(&format!("seg{i}"), &def).expect("segment compiles"));
        }
        let ids: Vec<String> = rules.segments.iter().map(|s| s.id.clone()).collect();
        for (i, c) in campaigns.as_array().into_iter().flatten().enumerate() {
            let def: CampaignDef = serde_json::from_value(c.clone()).expect("campaign parses");
            rules.campaigns.push(
                rules::compile_campaign(&format!("camp{i}"), &def, |s| ids.iter().any(|x| x == s))
                    .expect("compiles"),
            );
        }
        rules
            .campaigns
            .sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| a.id.cmp(&b.id)));
        engine.site("site").lock().expect("lock").rules = Arc::new(rules);
        engine
    }

    fn tesla(model: &str) -> Item {
        Item {
            brand: Some("Tesla".into()),
            model: Some(model.into()),
            price: Some(41990.0),
            ..Default::default()
        }
    }

    fn hello<'a>(item: Option<&'a Item>) -> Obs<'a> {
        Obs::Hello {
            session: "s1",
            tab: "t1",
            url: "https://shop.test/",
            title: None,
            referrer: None,
            device: Some("desktop"),
            item,
            pageview: true,
        }
    }

    fn has_context(engine: &Engine, visitor: &str) -> bool {
        lock(&engine.site("site")).visitors.contains_key(visitor)
    }

    #[test]
    fn on_a_site_without_rules_a_context_is_dropped_once_the_visitor_is_gone() {
        let engine = Engine::default();
        engine.observe("site", "v1", hello(None), 1_000);
        engine.observe("site", "v2", hello(None), 1_000);
        engine.observe("site", "v1", Obs::Close { tab: "t1" }, 2_000);
        engine.observe("site", "v2", Obs::Close { tab: "t1" }, 2_000);
        // v2 navigates: its next page reconnects within the leave grace.
        engine.observe("site", "v2", hello(None), 3_000);
        assert!(has_context(&engine, "v1"), "kept through the leave grace");
        // Another visitor's tab closing reaps what is due.
        engine.observe("site", "v3", hello(None), 2_000 + DEPARTED_MS);
        engine.observe("site", "v3", Obs::Close { tab: "t1" }, 2_000 + DEPARTED_MS);
        assert!(!has_context(&engine, "v1"), "dropped after the grace");
        assert!(has_context(&engine, "v2"), "came back: kept");
        assert!(has_context(&engine, "v3"), "just left: kept");
        engine.sweep(2_000 + 2 * DEPARTED_MS);
        assert!(!has_context(&engine, "v3"), "the sweep drops it too");
        assert!(has_context(&engine, "v2"), "still has a tab");
    }

    #[test]
    fn on_a_site_with_rules_a_context_outlives_the_visit_for_a_session() {
        let engine = engine_with(
            json!([{"name": "s", "conditions": [{"type": "pages", "match": "prefix", "value": "/", "min": 2}]}]),
            json!([]),
        );
        engine.observe("site", "v1", hello(None), 1_000);
        engine.observe("site", "v1", Obs::Close { tab: "t1" }, 2_000);
        engine.sweep(2_000 + DEPARTED_MS);
        assert!(
            has_context(&engine, "v1"),
            "this session's pages still count"
        );
        // The second page view of the session puts the visitor in the segment.
        let out = engine.observe("site", "v1", hello(None), 3_000 + DEPARTED_MS);
        assert_eq!(out.segments, Some(vec!["seg0".to_string()]));
        engine.observe("site", "v1", Obs::Close { tab: "t1" }, 4_000 + DEPARTED_MS);
        engine.sweep(4_000 + DEPARTED_MS + IDLE_MS);
        assert!(!has_context(&engine, "v1"), "gone after a session's length");
    }

    #[test]
    fn a_tab_that_reconnected_stays_open_when_its_old_socket_closes() {
        let engine = Engine::default();
        engine.observe("site", "v1", hello(None), 1_000);
        // Same tab id again before the first socket was noticed gone.
        engine.observe("site", "v1", hello(None), 2_000);
        engine.observe("site", "v1", Obs::Close { tab: "t1" }, 3_000);
        engine.sweep(3_000 + 2 * DEPARTED_MS);
        assert!(has_context(&engine, "v1"), "the new socket is still open");
        engine.observe("site", "v1", Obs::Close { tab: "t1" }, 4_000);
        engine.sweep(4_000 + DEPARTED_MS);
        assert!(!has_context(&engine, "v1"));
    }

    #[test]
    fn items_are_read_leniently() {
        let long = "é".repeat(150);
        let item = Item::parse(Some(json!({"brand": {"@type": "Brand", "name": "Tesla"}, "name": long, "price": "41990", "x": 1})))
            .expect("never an error")
            .expect("an item");
        assert_eq!(item.brand, None, "a wrongly typed field is dropped");
        assert!(item
            .name
            .as_deref()
            .is_some_and(|n| n.len() <= 200 && n.starts_with('é')));
        assert_eq!(item.price, Some(41990.0));
        assert_eq!(Item::parse(Some(json!("nope"))).expect("ok"), None);
        assert_eq!(Item::parse(Some(json!({"price": -1}))).expect("ok"), None);
    }

    #[test]
    fn the_third_listing_of_one_model_fires_the_campaign_with_its_placeholders() {
        let engine = engine_with(
            json!([{"name": "Model 3 shoppers", "conditions": [{"type": "item", "brand": "tesla", "model": "Model 3", "min": 3}]}]),
            json!([{"name": "Financing", "enabled": true, "trigger": {"type": "segment_entered", "segment": "seg0"},
                    "message": {"title": "Financing for your {{brand}} {{model}}", "body": "From {{price}} {{currency}}"},
                    "frequency": {"per_visitor": 1}}]),
        );
        let m3 = tesla("Model 3");
        let out = engine.observe("site", "v1", hello(None), 1_000);
        assert!(out.sends.is_empty());
        engine.history_loaded("site", "v1", 0, vec![], 1_001);
        for i in 0..2 {
            let out = engine.observe(
                "site",
                "v1",
                Obs::Page {
                    tab: "t1",
                    url: "https://shop.test/m3",
                    title: None,
                    item: Some(&m3),
                },
                2_000 + i,
            );
            assert!(out.sends.is_empty(), "not before the third");
        }
        let out = engine.observe(
            "site",
            "v1",
            Obs::Page {
                tab: "t1",
                url: "https://shop.test/m3",
                title: None,
                item: Some(&m3),
            },
            3_000,
        );
        assert_eq!(out.segments, Some(vec!["seg0".to_string()]));
        assert_eq!(out.sends.len(), 1);
        assert_eq!(
            out.sends[0].message.title,
            "Financing for your Tesla Model 3"
        );
        assert_eq!(out.sends[0].message.body, "From 41990 ");
        // Once per visitor: a fourth view does not send again.
        let out = engine.observe(
            "site",
            "v1",
            Obs::Page {
                tab: "t1",
                url: "https://shop.test/m3",
                title: None,
                item: Some(&m3),
            },
            4_000,
        );
        assert!(out.sends.is_empty());
    }

    #[test]
    fn past_deliveries_from_history_hold_the_per_visitor_cap() {
        let engine = engine_with(
            json!([]),
            json!([{"name": "c", "enabled": true, "trigger": {"type": "pageview", "match": "prefix", "value": "/"},
                    "message": {"title": "hi"}, "frequency": {"per_visitor": 1}}]),
        );
        let out = engine.observe("site", "v1", hello(None), 1_000);
        assert!(out.sends.is_empty(), "waits for history");
        let out = engine.history_loaded(
            "site",
            "v1",
            3,
            vec![("camp0".into(), "old".into(), 1)],
            1_001,
        );
        assert!(out.sends.is_empty(), "already sent in an earlier session");
    }

    #[test]
    fn a_control_group_visitor_is_counted_but_not_sent() {
        let engine = engine_with(
            json!([]),
            json!([{"name": "c", "enabled": true, "trigger": {"type": "event", "name": "lead"},
                    "message": {"title": "hi"}, "control_percent": 90,
                    "goal": {"type": "pageview", "match": "exact", "value": "/thanks"}}]),
        );
        // Find a visitor that falls in the 90 % control group.
        let visitor = (0..100)
            .map(|i| format!("visitor-{i}"))
            .find(|v| in_control(v, "camp0", 90))
            .expect("one in control");
        engine.observe("site", &visitor, hello(None), 1);
        engine.history_loaded("site", &visitor, 0, vec![], 2);
        let out = engine.observe(
            "site",
            &visitor,
            Obs::Event {
                name: "lead",
                props: &Map::new(),
            },
            3,
        );
        assert!(out.sends.is_empty());
        assert_eq!(out.controls.len(), 1);
        let held = out.controls[0].delivery_id.clone();
        let out = engine.observe(
            "site",
            &visitor,
            Obs::Page {
                tab: "t1",
                url: "https://shop.test/thanks",
                title: None,
                item: None,
            },
            4,
        );
        assert_eq!(out.conversions, vec![held]);
    }

    #[test]
    fn the_highest_priority_campaign_wins_and_time_on_page_uses_a_timer() {
        let engine = engine_with(
            json!([]),
            json!([
                {"name": "low", "enabled": true, "priority": 1, "trigger": {"type": "pageview", "match": "prefix", "value": "/"}, "message": {"title": "low"}},
                {"name": "high", "enabled": true, "priority": 5, "trigger": {"type": "pageview", "match": "prefix", "value": "/"}, "message": {"title": "high"}},
                {"name": "dwell", "enabled": true, "trigger": {"type": "time_on_page", "seconds": 30}, "message": {"title": "still there?"}}
            ]),
        );
        engine.observe("site", "v1", hello(None), 0);
        let out = engine.history_loaded("site", "v1", 0, vec![], 0);
        assert_eq!(
            out.sends
                .iter()
                .map(|s| s.message.title.as_str())
                .collect::<Vec<_>>(),
            vec!["high"]
        );
        assert_eq!(out.next_check, Some(30_000));
        let out = engine.observe("site", "v1", Obs::Tick, 30_000);
        assert_eq!(
            out.sends
                .iter()
                .map(|s| s.message.title.as_str())
                .collect::<Vec<_>>(),
            vec!["still there?"]
        );
        let out = engine.observe("site", "v1", Obs::Tick, 31_000);
        assert!(out.sends.is_empty(), "once per page");
    }
}
