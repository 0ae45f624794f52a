//! Cluster mode: several nodes share live state over Redis pub/sub.
//!
//! - One channel per site (`lk:s:{site}`), subscribed by the nodes that have visitors or admins
//!   of that site, carries presence (each node's view of its visitors), admin frames, targeting
//!   observations, message deliveries and erasures. No node reads a channel of every event.
//! - `lk:nodes` carries heartbeats (every `HEARTBEAT`), goodbyes and site changes (a deletion
//!   closes the site everywhere; any change drops the key from every node's cache); a node silent for
//!   `NODE_TIMEOUT` is dead and its visitors are shown as left. A node that shuts down
//!   gracefully says goodbye and its visitors are kept for the leave grace, so that they
//!   reconnect elsewhere without a leave and join.
//! - `lk:n:{node}` carries replies to one node (delivery counts).
//! - Frames are MessagePack. When Redis is unavailable the node keeps serving its own visitors
//!   and admins (degraded: `/healthz` 503, `lookout_cluster_redis_up` 0) and resynchronises
//!   (re-subscribes, republishes its presence, asks for the others') when Redis returns.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::live::hub::{Delivery, HubEvent, HubEventKind, Selector, VisitorView};
use crate::state::AppState;
use crate::targeting::Item;

pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// A node not heard from for this long is dead; its visitors leave (bound: this + 1 s check).
pub const NODE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a sender waits for other nodes to report the tabs a message reached.
const DELIVERY_WAIT: Duration = Duration::from_millis(500);
const NODES: &str = "lk:nodes";
/// How long a command to Redis may take. redis-rs defaults to 500 ms, which a busy node (or a
/// busy Redis) exceeds for a pipeline of a few hundred messages: the batch was then counted as
/// failed and the connection dropped although Redis had taken it.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

fn conn_config() -> redis::AsyncConnectionConfig {
    redis::AsyncConnectionConfig::new().set_response_timeout(Some(RESPONSE_TIMEOUT))
}

fn site_channel(site: &str) -> String {
    format!("lk:s:{site}")
}

fn node_channel(node: &str) -> String {
    format!("lk:n:{node}")
}

/// A targeting observation, owned, for the bus.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ObsMsg {
    Hello {
        session: String,
        tab: String,
        url: String,
        title: Option<String>,
        referrer: Option<String>,
        device: Option<String>,
        item: Option<Item>,
        pageview: bool,
    },
    Page {
        tab: String,
        url: String,
        title: Option<String>,
        item: Option<Item>,
    },
    Event {
        name: String,
        props: String,
    },
    Identify {
        user_id: Option<String>,
        traits: String,
    },
    Close {
        tab: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum SelectorMsg {
    Visitor(String),
    Session(String),
    Tab(String),
    Segment(String),
    All,
}

impl SelectorMsg {
    pub fn from_selector(s: &Selector<'_>) -> Self {
        match s {
            Selector::Visitor(v) => SelectorMsg::Visitor(v.to_string()),
            Selector::Session(v) => SelectorMsg::Session(v.to_string()),
            Selector::Tab(v) => SelectorMsg::Tab(v.to_string()),
            Selector::Segment(v) => SelectorMsg::Segment(v.to_string()),
            Selector::All => SelectorMsg::All,
        }
    }

    fn as_selector(&self) -> Selector<'_> {
        match self {
            SelectorMsg::Visitor(v) => Selector::Visitor(v),
            SelectorMsg::Session(v) => Selector::Session(v),
            SelectorMsg::Tab(v) => Selector::Tab(v),
            SelectorMsg::Segment(v) => Selector::Segment(v),
            SelectorMsg::All => Selector::All,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Bus {
    Heartbeat {
        node: String,
    },
    Bye {
        node: String,
    },
    Presence {
        node: String,
        site: String,
        visitor: String,
        view: Option<VisitorView>,
    },
    Frame {
        node: String,
        site: String,
        frame: String,
    },
    Obs {
        node: String,
        site: String,
        visitor: String,
        obs: ObsMsg,
    },
    Deliver {
        node: String,
        site: String,
        message: String,
        selector: SelectorMsg,
        frame: String,
    },
    Delivered {
        message: String,
        deliveries: Vec<(String, String)>,
    },
    SyncRequest {
        node: String,
        site: String,
    },
    /// A site's segments or campaigns changed: reload them from the database.
    Rules {
        node: String,
        site: String,
    },
    /// A visitor was erased: drop their live state and close their tabs on every node.
    Forget {
        node: String,
        site: String,
        visitor: String,
    },
    /// A site's settings changed or it was deleted. Sent on the nodes channel, which every node
    /// reads (rare), since a node may hold the site key in its cache without any live state.
    Site {
        node: String,
        site: String,
        key: String,
        deleted: bool,
    },
}

enum SubCmd {
    Subscribe(String),
}

#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

struct Inner {
    node: String,
    client: redis::Client,
    up: AtomicBool,
    publish: mpsc::Sender<(String, Vec<u8>)>,
    sub_cmd: mpsc::UnboundedSender<SubCmd>,
    sites: Mutex<HashSet<String>>,
    nodes: Mutex<HashMap<String, std::time::Instant>>,
    waiting: Mutex<HashMap<String, ReplyTx>>,
    /// The connection for admin sends (kept: opening one per message cost a TCP connect and
    /// a handshake with Redis each time).
    direct: Mutex<Option<redis::aio::MultiplexedConnection>>,
    /// Receivers taken by `start`.
    pending_rx: Mutex<Option<Receivers>>,
}

/// Where a node's delivery replies for one message go: (visitor, tab) pairs.
type ReplyTx = mpsc::UnboundedSender<Vec<(String, String)>>;
type Receivers = (
    mpsc::Receiver<(String, Vec<u8>)>,
    mpsc::UnboundedReceiver<SubCmd>,
);

/// What the bus costs: every message put on it, whichever way it is sent.
fn count_published(bytes: &[u8]) {
    metrics::counter!("lookout_cluster_published_total").increment(1);
    metrics::counter!("lookout_cluster_published_bytes_total").increment(bytes.len() as u64);
}

/// MessagePack with field names: compact, and robust to optional fields that are skipped.
fn encode(msg: &Bus) -> Vec<u8> {
    rmp_serde::to_vec_named(msg).unwrap_or_default()
}

impl Cluster {
    pub fn new(url: &str) -> anyhow::Result<Self> {
        use redis::IntoConnectionInfo;
        // Small messages go out at once: with Nagle's algorithm (redis-rs' default) a reply
        // could wait for the acknowledgement of the previous write.
        let info = url
            .into_connection_info()?
            .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
        let client = redis::Client::open(info)?;
        let (publish, publish_rx) = mpsc::channel(100_000);
        let (sub_cmd, sub_rx) = mpsc::unbounded_channel();
        Ok(Self {
            inner: Arc::new(Inner {
                node: crate::domain::random_id(12),
                client,
                up: AtomicBool::new(false),
                publish,
                sub_cmd,
                sites: Mutex::new(HashSet::new()),
                nodes: Mutex::new(HashMap::new()),
                waiting: Mutex::new(HashMap::new()),
                direct: Mutex::new(None),
                pending_rx: Mutex::new(Some((publish_rx, sub_rx))),
            }),
        })
    }

    pub fn node(&self) -> &str {
        &self.inner.node
    }

    pub fn is_up(&self) -> bool {
        self.inner.up.load(Ordering::Acquire)
    }

    /// Live nodes other than this one, as last heard.
    pub fn peers(&self) -> Vec<String> {
        self.inner
            .nodes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    fn send(&self, channel: String, msg: &Bus) {
        let bytes = encode(msg);
        count_published(&bytes);
        if self.inner.publish.try_send((channel, bytes)).is_err() {
            metrics::counter!("lookout_cluster_dropped_total").increment(1);
        }
    }

    /// Makes sure this node hears a site's channel (it has visitors or admins there).
    pub fn ensure_site(&self, site: &str) {
        let new = self
            .inner
            .sites
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(site.to_string());
        if new {
            let _ = self.inner.sub_cmd.send(SubCmd::Subscribe(site.to_string()));
        }
    }

    /// Tells the other nodes that a site's targeting rules changed.
    pub fn rules_changed(&self, site: &str) {
        let msg = Bus::Rules {
            node: self.inner.node.clone(),
            site: site.into(),
        };
        self.send(site_channel(site), &msg);
    }

    pub fn forget_visitor(&self, site: &str, visitor: &str) {
        let msg = Bus::Forget {
            node: self.inner.node.clone(),
            site: site.into(),
            visitor: visitor.into(),
        };
        self.send(site_channel(site), &msg);
    }

    pub fn site_changed(&self, site: &str, key: &str, deleted: bool) {
        let msg = Bus::Site {
            node: self.inner.node.clone(),
            site: site.into(),
            key: key.into(),
            deleted,
        };
        self.send(NODES.to_string(), &msg);
    }

    pub fn publish_obs(&self, site: &str, visitor: &str, obs: ObsMsg) {
        let msg = Bus::Obs {
            node: self.inner.node.clone(),
            site: site.into(),
            visitor: visitor.into(),
            obs,
        };
        self.send(site_channel(site), &msg);
    }

    /// The kept connection for direct commands, opened when missing.
    async fn direct_conn(&self) -> Result<redis::aio::MultiplexedConnection, redis::RedisError> {
        let kept = self
            .inner
            .direct
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(c) = kept {
            return Ok(c);
        }
        let c = self
            .inner
            .client
            .get_multiplexed_async_connection_with_config(&conn_config())
            .await?;
        *self.inner.direct.lock().unwrap_or_else(|e| e.into_inner()) = Some(c.clone());
        Ok(c)
    }

    /// Asks the other nodes to deliver a message to their tabs of the target; returns the tabs
    /// they reached (waits at most `DELIVERY_WAIT`).
    pub async fn deliver_remote(
        &self,
        site: &str,
        message: &str,
        selector: &Selector<'_>,
        frame: &str,
    ) -> Vec<Delivery> {
        if !self.is_up() {
            return Vec::new();
        }
        let (tx, mut rx) = mpsc::unbounded_channel();
        self.inner
            .waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(message.to_string(), tx);
        let msg = Bus::Deliver {
            node: self.inner.node.clone(),
            site: site.into(),
            message: message.into(),
            selector: SelectorMsg::from_selector(selector),
            frame: frame.into(),
        };
        // PUBLISH answers how many subscribers got it: that many replies (less this node) to wait for.
        let bytes = encode(&msg);
        count_published(&bytes);
        let receivers: Result<i64, redis::RedisError> = async {
            let mut conn = self.direct_conn().await?;
            redis::cmd("PUBLISH")
                .arg(site_channel(site))
                .arg(bytes)
                .query_async(&mut conn)
                .await
        }
        .await;
        if receivers.is_err() {
            // Open a fresh connection next time.
            *self.inner.direct.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
        let expected = receivers.map(|n| (n - 1).max(0) as usize).unwrap_or(0);
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + DELIVERY_WAIT;
        for _ in 0..expected {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(d)) => out.extend(
                    d.into_iter()
                        .map(|(visitor, tab)| Delivery { visitor, tab }),
                ),
                _ => break,
            }
        }
        self.inner
            .waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(message);
        out
    }

    /// Starts the bus tasks: publisher, subscriber (with reconnection), heartbeats, the hub's
    /// outgoing events, and the dead-node watchdog.
    pub fn start(&self, state: AppState, hub_events: mpsc::Receiver<HubEvent>) {
        let Some((publish_rx, sub_rx)) = self
            .inner
            .pending_rx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        else {
            return;
        };
        tokio::spawn(publisher(self.clone(), publish_rx, state.shutdown.clone()));
        tokio::spawn(subscriber(self.clone(), state.clone(), sub_rx));
        tokio::spawn(forward_hub_events(self.clone(), hub_events));
        tokio::spawn(heartbeat(self.clone(), state.clone()));
    }

    /// Says goodbye so that the other nodes keep this node's visitors for the leave grace.
    pub async fn goodbye(&self) {
        let msg = Bus::Bye {
            node: self.inner.node.clone(),
        };
        if let Ok(mut conn) = self.inner.client.get_multiplexed_async_connection().await {
            let _: Result<i64, _> = redis::cmd("PUBLISH")
                .arg(NODES)
                .arg(encode(&msg))
                .query_async(&mut conn)
                .await;
        }
    }

    pub async fn ping(&self) -> bool {
        let fut = async {
            let mut conn = self.inner.client.get_multiplexed_async_connection().await?;
            redis::cmd("PING").query_async::<String>(&mut conn).await
        };
        matches!(
            tokio::time::timeout(Duration::from_secs(2), fut).await,
            Ok(Ok(_))
        )
    }
}

async fn forward_hub_events(cluster: Cluster, mut rx: mpsc::Receiver<HubEvent>) {
    while let Some(ev) = rx.recv().await {
        let node = cluster.inner.node.clone();
        let msg = match ev.kind {
            HubEventKind::Presence { visitor, view } => Bus::Presence {
                node,
                site: ev.site_id.clone(),
                visitor,
                view: view.map(|v| *v),
            },
            HubEventKind::Frame(f) => Bus::Frame {
                node,
                site: ev.site_id.clone(),
                frame: f.as_str().to_string(),
            },
        };
        cluster.ensure_site(&ev.site_id);
        cluster.send(site_channel(&ev.site_id), &msg);
    }
}

/// Most messages sent to Redis in one pipeline.
const PUBLISH_BATCH: usize = 512;

/// Sends the queued messages to Redis in order, as pipelines of everything queued at the time
/// (up to `PUBLISH_BATCH`): one PUBLISH per round trip could not keep up with a busy node
/// (during a ramp of 2,000 visitors/s presence reached the other nodes ~15 s late), a
/// pipeline costs one round trip and one write for the whole batch.
async fn publisher(
    cluster: Cluster,
    mut rx: mpsc::Receiver<(String, Vec<u8>)>,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut conn: Option<redis::aio::MultiplexedConnection> = None;
    let mut batch: Vec<(String, Vec<u8>)> = Vec::with_capacity(PUBLISH_BATCH);
    loop {
        let first = tokio::select! {
            m = rx.recv() => match m { Some(m) => m, None => return },
            _ = stop.cancelled() => return,
        };
        batch.clear();
        batch.push(first);
        while batch.len() < PUBLISH_BATCH {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        if conn.is_none() {
            conn = cluster
                .inner
                .client
                .get_multiplexed_async_connection_with_config(&conn_config())
                .await
                .ok();
        }
        let Some(c) = conn.as_mut() else {
            // Redis is down: these messages are lost for the others; presence is republished
            // in full when the bus comes back.
            metrics::counter!("lookout_cluster_publish_errors_total").increment(batch.len() as u64);
            continue;
        };
        let mut pipe = redis::pipe();
        for (channel, bytes) in &batch {
            pipe.cmd("PUBLISH")
                .arg(channel)
                .arg(bytes.as_slice())
                .ignore();
        }
        let started = std::time::Instant::now();
        let sent: Result<(), _> = pipe.query_async(c).await;
        // What a message made meanwhile waits for, at most: the next pipeline goes out after it.
        metrics::histogram!("lookout_cluster_publish_seconds")
            .record(started.elapsed().as_secs_f64());
        metrics::counter!("lookout_cluster_publish_batches_total").increment(1);
        if sent.is_err() {
            metrics::counter!("lookout_cluster_publish_errors_total").increment(batch.len() as u64);
            conn = None;
        }
    }
}

async fn heartbeat(cluster: Cluster, state: AppState) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = state.shutdown.cancelled() => return,
        }
        cluster.send(
            NODES.to_string(),
            &Bus::Heartbeat {
                node: cluster.inner.node.clone(),
            },
        );
        // Dead nodes: silent for too long.
        let dead: Vec<String> = {
            let mut nodes = cluster
                .inner
                .nodes
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let dead: Vec<String> = nodes
                .iter()
                .filter(|(_, at)| at.elapsed() > NODE_TIMEOUT)
                .map(|(n, _)| n.clone())
                .collect();
            for n in &dead {
                nodes.remove(n);
            }
            dead
        };
        for n in dead {
            tracing::warn!(node = %n, "cluster node timed out; its visitors leave");
            metrics::counter!("lookout_cluster_nodes_lost_total").increment(1);
            state.hub.drop_node(&n);
        }
        metrics::gauge!("lookout_cluster_peers").set(cluster.peers().len() as f64);
    }
}

/// Subscribes, dispatches what arrives, and reconnects (resubscribing and resynchronising)
/// after Redis went away.
async fn subscriber(cluster: Cluster, state: AppState, mut cmds: mpsc::UnboundedReceiver<SubCmd>) {
    let mut delay = Duration::from_millis(200);
    loop {
        if state.shutdown.is_cancelled() {
            return;
        }
        match run_subscription(&cluster, &state, &mut cmds).await {
            Ok(()) => return,
            Err(e) => {
                if cluster.inner.up.swap(false, Ordering::AcqRel) {
                    tracing::warn!(error = %e, "cluster bus lost; serving this node's visitors only");
                }
                metrics::gauge!("lookout_cluster_redis_up").set(0.0);
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = state.shutdown.cancelled() => return,
                }
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn run_subscription(
    cluster: &Cluster,
    state: &AppState,
    cmds: &mut mpsc::UnboundedReceiver<SubCmd>,
) -> Result<(), redis::RedisError> {
    let pubsub = cluster.inner.client.get_async_pubsub().await?;
    let (mut sink, mut stream) = pubsub.split();
    sink.subscribe(NODES).await?;
    sink.subscribe(node_channel(&cluster.inner.node)).await?;
    let sites: Vec<String> = cluster
        .inner
        .sites
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .cloned()
        .collect();
    for site in &sites {
        sink.subscribe(site_channel(site)).await?;
    }
    cluster.inner.up.store(true, Ordering::Release);
    metrics::gauge!("lookout_cluster_redis_up").set(1.0);
    tracing::info!(node = %cluster.inner.node, "cluster bus connected");
    // (Re)connected: tell the others what is here and ask for what is there.
    for site in &sites {
        resync_site(cluster, state, site);
    }
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return Ok(()),
            cmd = cmds.recv() => match cmd {
                Some(SubCmd::Subscribe(site)) => {
                    sink.subscribe(site_channel(&site)).await?;
                    resync_site(cluster, state, &site);
                    // Rules may have changed while this node did not listen.
                    let state = state.clone();
                    tokio::spawn(async move {
                        if let Err(e) = state.targeting.reload_site(&state.db, &site).await {
                            tracing::warn!(error = %e, "reloading targeting rules failed");
                        }
                    });
                }
                None => return Ok(()),
            },
            msg = stream.next() => {
                let Some(msg) = msg else {
                    return Err(redis::RedisError::from((redis::ErrorKind::Io, "subscription closed")));
                };
                let payload: Vec<u8> = msg.get_payload_bytes().to_vec();
                metrics::counter!("lookout_cluster_received_total").increment(1);
                match rmp_serde::from_slice::<Bus>(&payload) {
                    Ok(bus) => dispatch(cluster, state, bus).await,
                    Err(e) => tracing::warn!(error = %e, "undecodable cluster message"),
                }
            }
        }
    }
}

fn resync_site(cluster: &Cluster, state: &AppState, site: &str) {
    let node = cluster.inner.node.clone();
    for view in state.hub.local_views(site) {
        let msg = Bus::Presence {
            node: node.clone(),
            site: site.into(),
            visitor: view.visitor.clone(),
            view: Some(view),
        };
        cluster.send(site_channel(site), &msg);
    }
    cluster.send(
        site_channel(site),
        &Bus::SyncRequest {
            node,
            site: site.into(),
        },
    );
}

async fn dispatch(cluster: &Cluster, state: &AppState, bus: Bus) {
    let me = cluster.inner.node.as_str();
    match bus {
        Bus::Heartbeat { node } => {
            if node != me {
                let new = cluster
                    .inner
                    .nodes
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(node.clone(), std::time::Instant::now())
                    .is_none();
                if new {
                    tracing::info!(node = %node, "cluster node joined");
                }
            }
        }
        Bus::Bye { node } => {
            if node != me {
                cluster
                    .inner
                    .nodes
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&node);
                // Its visitors reconnect elsewhere: keep them through the leave grace.
                let hub = state.hub.clone();
                let grace = state.settings.limits.leave_grace();
                tokio::spawn(async move {
                    tokio::time::sleep(grace).await;
                    hub.drop_node(&node);
                });
            }
        }
        Bus::Presence {
            node,
            site,
            visitor,
            view,
        } => {
            if node != me {
                cluster
                    .inner
                    .nodes
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(node.clone())
                    .or_insert_with(std::time::Instant::now);
                state
                    .hub
                    .apply_remote_presence(&site, &node, &visitor, view);
            }
        }
        Bus::Frame { node, site, frame } => {
            if node != me {
                state.hub.apply_remote_frame(&site, Utf8Bytes::from(frame));
            }
        }
        Bus::Obs {
            node,
            site,
            visitor,
            obs,
        } => {
            if node != me {
                crate::targeting::observe_remote(state, &site, &visitor, obs).await;
            }
        }
        Bus::Deliver {
            node,
            site,
            message,
            selector,
            frame,
        } => {
            if node == me {
                return;
            }
            let reached = state.hub.deliver(
                &site,
                selector.as_selector(),
                &message,
                &Utf8Bytes::from(frame),
            );
            let now = crate::db::now_ms();
            for d in &reached {
                state.targeting.note_message(&site, &d.visitor, now);
            }
            crate::live::record_delivered(state, &site, &message, &reached, now).await;
            let reply = Bus::Delivered {
                message,
                deliveries: reached.into_iter().map(|d| (d.visitor, d.tab)).collect(),
            };
            cluster.send(node_channel(&node), &reply);
        }
        Bus::Delivered {
            message,
            deliveries,
        } => {
            let waiter = cluster
                .inner
                .waiting
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&message)
                .cloned();
            if let Some(w) = waiter {
                let _ = w.send(deliveries);
            }
        }
        Bus::Rules { node, site } => {
            if node != me {
                if let Err(e) = state.targeting.reload_site(&state.db, &site).await {
                    tracing::warn!(error = %e, "reloading targeting rules failed");
                }
                for (visitor, segments) in state.targeting.reevaluate(&site, crate::db::now_ms()) {
                    state.hub.set_segments(&site, &visitor, segments);
                }
            }
        }
        Bus::Forget {
            node,
            site,
            visitor,
        } => {
            if node != me {
                state.hub.forget_visitor(&site, &visitor);
                state.targeting.forget_visitor(&site, &visitor);
            }
        }
        Bus::Site {
            node,
            site,
            key,
            deleted,
        } => {
            if node != me {
                state.sites.invalidate(&key);
                if deleted {
                    state.hub.close_site(&site);
                    state.targeting.forget_site(&site);
                }
            }
        }
        Bus::SyncRequest { node, site } => {
            if node != me {
                for view in state.hub.local_views(&site) {
                    let msg = Bus::Presence {
                        node: me.to_string(),
                        site: site.clone(),
                        visitor: view.visitor.clone(),
                        view: Some(view),
                    };
                    cluster.send(site_channel(&site), &msg);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bus_messages_round_trip_including_skipped_optional_fields() {
        let item = Item {
            brand: Some("Tesla".into()),
            price: Some(1.5),
            ..Default::default()
        };
        let msg = Bus::Obs {
            node: "n1".into(),
            site: "s1".into(),
            visitor: "v1".into(),
            obs: ObsMsg::Page {
                tab: "t".into(),
                url: "https://a.test/".into(),
                title: None,
                item: Some(item.clone()),
            },
        };
        let back: Bus = rmp_serde::from_slice(&encode(&msg)).expect("decodes");
        match back {
            Bus::Obs {
                obs: ObsMsg::Page { item: Some(i), .. },
                ..
            } => assert_eq!(i, item),
            other => panic!("unexpected {other:?}"),
        }
    }
}
