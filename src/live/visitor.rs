//! The visitor socket, `GET /ws/visitor?site=KEY`: site key and Origin checked before the
//! upgrade, then one task per socket with one `select!` over inbound frames, the tab's outbox,
//! a heartbeat and the shutdown token. Page views and events go to the batching writer; the
//! socket never waits on the database.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::SinkExt;
use governor::{Quota, RateLimiter};
use serde_json::{json, Value};

use super::hub::{LimitHit, Nav, TabGuard, TabInfo, TabOutbox};
use super::protocol::{self, close, Invalid, VisitorFrame};
use crate::cluster::ObsMsg;
use crate::db::now_ms;
use crate::db::writer::{EventRow, IdentifyRow, PageviewRow, Record, StatusRow, VisitRow};
use crate::domain::{origin_allowed, ClientId};
use crate::error::ApiError;
use crate::state::AppState;
use crate::targeting::{Item, Obs};

pub const PING_EVERY: Duration = Duration::from_secs(25);
pub const IDLE_LIMIT: Duration = Duration::from_secs(70);

fn refuse(status: StatusCode, reason: &'static str, message: &str) -> Response {
    metrics::counter!("lookout_visitor_refused_total", "reason" => reason).increment(1);
    let err = match status {
        StatusCode::FORBIDDEN => ApiError::Forbidden {
            code: reason,
            message: message.into(),
        },
        StatusCode::TOO_MANY_REQUESTS => {
            return (
                status,
                axum::Json(json!({"error": {"code": reason, "message": message}})),
            )
                .into_response()
        }
        _ => ApiError::bad_request(reason, message),
    };
    err.into_response()
}

/// Device class, browser and OS from the User-Agent header.
pub fn parse_user_agent(ua: Option<&str>) -> (Option<String>, Option<String>, Option<String>) {
    let Some(r) = ua.and_then(|ua| woothee::parser::Parser::new().parse(ua)) else {
        return (None, None, None);
    };
    let device = match r.category {
        "pc" => "desktop",
        "smartphone" => "mobile",
        "mobilephone" => "mobile",
        "crawler" => "bot",
        "appliance" => "appliance",
        _ => "other",
    };
    let known = |s: &str| (!s.is_empty() && s != "UNKNOWN").then(|| s.to_string());
    (Some(device.to_string()), known(r.name), known(r.os))
}

pub async fn upgrade(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let Some(key) = query.get("site").filter(|k| !k.is_empty() && k.len() <= 64) else {
        return refuse(StatusCode::FORBIDDEN, "unknown_site", "unknown site key");
    };
    let site = match state.sites.lookup(&state.db, key).await {
        Ok(Some(site)) => site,
        Ok(None) => return refuse(StatusCode::FORBIDDEN, "unknown_site", "unknown site key"),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    if !origin_allowed(&site.domains, origin) {
        return refuse(
            StatusCode::FORBIDDEN,
            "origin_refused",
            "this origin is not one of the site's domains",
        );
    }
    let limits = &state.settings.limits;
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    let slot = match state.hub.reserve(
        &site.site_id,
        peer.ip(),
        limits.max_connections_per_site,
        limits.max_connections_per_ip,
    ) {
        Ok(slot) => slot,
        Err(LimitHit::Site) => {
            let msg = "too many connections for this site";
            return refuse(StatusCode::TOO_MANY_REQUESTS, "site_connection_limit", msg);
        }
        Err(LimitHit::Ip) => {
            let msg = "too many connections from this address";
            return refuse(StatusCode::TOO_MANY_REQUESTS, "ip_connection_limit", msg);
        }
    };
    let ua = parse_user_agent(
        headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok()),
    );
    let max_frame = limits.max_frame_bytes;
    // Boxed, and only what the socket needs: the upgrade task keeps its callback for as long as
    // the socket is open, so whatever it captures stays resident per visitor.
    let conn = Box::new(VisitorConn {
        _alive: state.sockets.token(),
        _slot: slot,
        site_id: site.site_id,
        ua,
        state,
    });
    ws
        // Small buffers keep an idle socket cheap; frames are small JSON. The read buffer is
        // allocated up front for every socket (512 B holds a typical frame; a larger frame
        // reserves its own length), and writes go out eagerly (no write buffer kept).
        .read_buffer_size(512)
        .write_buffer_size(0)
        .max_write_buffer_size(256 * 1024)
        .max_message_size(max_frame)
        .max_frame_size(max_frame)
        .on_upgrade(move |socket| conn.run(socket))
}

struct VisitorConn {
    state: AppState,
    site_id: String,
    ua: (Option<String>, Option<String>, Option<String>),
    /// Counts towards the site's and the address's connection limits while the socket lives.
    _slot: super::hub::ConnSlot,
    /// Lets shutdown wait for this socket to close.
    _alive: tokio_util::task::task_tracker::TaskTrackerToken,
}

/// Why the socket closes.
enum Exit {
    Close(u16, String),
    Gone,
}

fn invalid(e: Invalid) -> Exit {
    Exit::Close(close::MALFORMED, e.0)
}

/// Reads the next text frame; other frames are handled or refused here.
enum Inbound {
    Text(Utf8Bytes),
    Skip,
    Exit(Exit),
}

fn classify(msg: Option<Result<Message, axum::Error>>) -> Inbound {
    match msg {
        None | Some(Ok(Message::Close(_))) => Inbound::Exit(Exit::Gone),
        Some(Ok(Message::Text(t))) => Inbound::Text(t),
        Some(Ok(Message::Binary(_))) => {
            Inbound::Exit(Exit::Close(close::MALFORMED, "frames are JSON text".into()))
        }
        Some(Ok(Message::Ping(_) | Message::Pong(_))) => Inbound::Skip,
        Some(Err(e)) => {
            let too_large = e
                .into_inner()
                .downcast_ref::<tungstenite::Error>()
                .is_some_and(|e| matches!(e, tungstenite::Error::Capacity(_)));
            if too_large {
                metrics::counter!("lookout_visitor_refused_total", "reason" => "frame_too_large")
                    .increment(1);
                Inbound::Exit(Exit::Close(close::TOO_LARGE, "frame too large".into()))
            } else {
                Inbound::Exit(Exit::Gone)
            }
        }
    }
}

async fn close_with(socket: &mut WebSocket, code: u16, reason: &str) {
    let reason: String = reason.chars().take(120).collect();
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from(reason),
        })))
        .await;
    let _ = socket.close().await;
}

/// What an idle socket keeps between frames. Everything else (the hello phase, handling a
/// frame) lives in boxed futures that exist only while they run, so an idle visitor costs
/// little more than this and its socket.
struct Live<'a> {
    ctx: Ctx<'a>,
    outbox: TabOutbox,
    limiter: governor::DefaultDirectRateLimiter,
    ping: tokio::time::Interval,
    last_heard: Instant,
    current_url: Option<String>,
}

impl VisitorConn {
    async fn run(self: Box<Self>, mut socket: WebSocket) {
        // One socket, not split: the loop below reads with `recv` in a `select!` (cancel-safe)
        // and sends from the branch bodies, which saves the split's shared lock and halves.
        let exit = self.session(&mut socket).await;
        if let Exit::Close(code, reason) = exit {
            if code >= 4000 {
                metrics::counter!("lookout_visitor_closed_total", "code" => code.to_string())
                    .increment(1);
            }
            close_with(&mut socket, code, &reason).await;
        }
    }

    async fn session(&self, socket: &mut WebSocket) -> Exit {
        let mut live = match Box::pin(self.hello(socket)).await {
            Ok(live) => live,
            Err(exit) => return exit,
        };
        let state = &self.state;
        loop {
            tokio::select! {
                _ = state.shutdown.cancelled() => {
                    return Exit::Close(close::GOING_AWAY, "server shutting down".into());
                }
                out = live.outbox.recv() => match out {
                    Some(text) => {
                        if socket.send(Message::Text(text)).await.is_err() { return Exit::Gone; }
                    }
                    // The hub dropped this tab (site deleted or visitor erased).
                    None => return Exit::Close(close::FORBIDDEN, "no longer tracked".into()),
                },
                _ = live.ping.tick() => {
                    if live.last_heard.elapsed() > IDLE_LIMIT {
                        return Exit::Gone;
                    }
                    if socket.send(Message::Ping(Default::default())).await.is_err() { return Exit::Gone; }
                }
                msg = socket.recv() => {
                    live.last_heard = Instant::now();
                    let text = match classify(msg) {
                        Inbound::Text(t) => t,
                        Inbound::Skip => continue,
                        Inbound::Exit(e) => return e,
                    };
                    if live.limiter.check().is_err() {
                        metrics::counter!("lookout_visitor_refused_total", "reason" => "rate_limited").increment(1);
                        return Exit::Close(close::RATE_LIMITED, "too many frames".into());
                    }
                    let frame = match protocol::parse_visitor_frame(&text) {
                        Ok(f) => f,
                        Err(e) => return invalid(e),
                    };
                    // Boxed: handling a frame (targeting, campaigns, the writer) needs a large
                    // state, only while it runs.
                    let handled = Box::pin(self.handle(&live.ctx, frame, &mut live.current_url)).await;
                    if let Err(exit) = handled {
                        return exit;
                    }
                }
            }
        }
    }

    /// The hello phase: the first frame, registration in the hub, the first records and the
    /// targeting of the hello. Returns what the socket keeps while it is open.
    async fn hello<'a>(&'a self, socket: &mut WebSocket) -> Result<Live<'a>, Exit> {
        let state = &self.state;
        let limits = &state.settings.limits;
        // The first frame must be a hello, in time.
        let first = loop {
            let next = tokio::select! {
                m = tokio::time::timeout(limits.hello_timeout(), socket.recv()) => m,
                _ = state.shutdown.cancelled() => return Err(Exit::Close(close::GOING_AWAY, "server shutting down".into())),
            };
            match next {
                Err(_) => return Err(Exit::Close(close::NO_HELLO, "no hello in time".into())),
                Ok(m) => match classify(m) {
                    Inbound::Text(t) => break t,
                    Inbound::Skip => continue,
                    Inbound::Exit(e) => return Err(e),
                },
            }
        };
        let hello = match protocol::parse_visitor_frame(&first) {
            Ok(VisitorFrame::Hello(h)) => h,
            Ok(_) => {
                return Err(Exit::Close(
                    close::MALFORMED,
                    "the first frame must be hello".into(),
                ))
            }
            Err(e) => return Err(invalid(e)),
        };
        drop(first);
        let url = protocol::check_url(&hello.url).map_err(invalid)?;
        let title = protocol::check_title(hello.title).map_err(invalid)?;
        for (field, v) in [
            ("lang", hello.lang),
            ("screen", hello.screen),
            ("tz", hello.tz),
        ] {
            protocol::check_short(field, v).map_err(invalid)?;
        }
        let referrer = protocol::clean_referrer(hello.referrer);
        let item = Item::parse(hello.item).map_err(|e| invalid(Invalid(e)))?;
        let visitor = ClientId::parse_or_new(hello.visitor.as_deref()).into_string();
        let session = ClientId::parse_or_new(hello.session.as_deref()).into_string();
        let tab = ClientId::parse_or_new(hello.tab.as_deref()).into_string();
        let at = now_ms();
        let site_id = self.site_id.clone();
        tracing::debug!(site = %site_id, visitor = %visitor, resume = hello.resume, "visitor hello");
        let (title_for_rules, referrer_for_rules) = (title.clone(), referrer.clone());

        let was_live = state.hub.is_live(&site_id, &visitor);
        let (guard, outbox) = state.hub.connect_tab(TabInfo {
            site_id: site_id.clone(),
            visitor: visitor.clone(),
            session: session.clone(),
            tab: tab.clone(),
            url: url.clone(),
            title: title.clone(),
            referrer: referrer.clone(),
            device: self.ua.0.clone(),
            browser: self.ua.1.clone(),
            os: self.ua.2.clone(),
            at,
            pageview: !hello.resume,
            item: item.clone(),
        });
        let welcome =
            json!({"type": "welcome", "visitor": visitor, "session": session, "tab": tab});
        if socket
            .send(Message::Text(Utf8Bytes::from(welcome.to_string())))
            .await
            .is_err()
        {
            return Err(Exit::Gone);
        }
        let mut records = vec![Record::Visit(VisitRow {
            site_id: site_id.clone(),
            visitor_id: visitor.clone(),
            session_id: session.clone(),
            // Where the session came from: only a referrer outside the site counts.
            referrer: protocol::external_referrer(referrer.as_deref(), &url),
            device: self.ua.0.clone(),
            browser: self.ua.1.clone(),
            os: self.ua.2.clone(),
            at,
        })];
        if !hello.resume {
            records.push(Record::Pageview(PageviewRow {
                site_id: site_id.clone(),
                visitor_id: visitor.clone(),
                session_id: session.clone(),
                tab_id: tab.clone(),
                url,
                title,
                referrer,
                at,
            }));
        }
        for r in records {
            if state.writer.submit(r).await.is_err() {
                return Err(Exit::Close(
                    close::TRY_AGAIN,
                    "busy, try again later".into(),
                ));
            }
        }
        if !was_live {
            tokio::spawn(enrich(state.clone(), site_id.clone(), visitor.clone()));
        }
        tokio::spawn(super::deliver_pending(
            state.clone(),
            site_id.clone(),
            visitor.clone(),
        ));

        let hello_obs = Obs::Hello {
            session: &session,
            tab: &tab,
            url: &hello.url,
            title: title_for_rules.as_deref(),
            referrer: referrer_for_rules.as_deref(),
            device: self.ua.0.as_deref(),
            item: item.as_ref(),
            pageview: !hello.resume,
        };
        let out = state.targeting.observe(&site_id, &visitor, hello_obs, at);
        if let Some(cluster) = &state.cluster {
            cluster.ensure_site(&site_id);
            let obs = ObsMsg::Hello {
                session: session.clone(),
                tab: tab.clone(),
                url: hello.url.clone(),
                title: title_for_rules.clone(),
                referrer: referrer_for_rules.clone(),
                device: self.ua.0.clone(),
                item: item.clone(),
                pageview: !hello.resume,
            };
            cluster.publish_obs(&site_id, &visitor, obs);
        }
        // From here on, every exit path tells the targeting engine that the tab closed.
        let ctx = Ctx {
            state,
            session,
            tab,
            guard,
        };
        crate::targeting::apply(state, &site_id, &visitor, out).await;
        let per_second =
            NonZeroU32::new(limits.max_frames_per_second.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = per_second.saturating_mul(NonZeroU32::new(2).unwrap_or(NonZeroU32::MIN));
        Ok(Live {
            ctx,
            outbox,
            limiter: RateLimiter::direct(Quota::per_second(per_second).allow_burst(burst)),
            ping: tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY),
            last_heard: Instant::now(),
            current_url: Some(hello.url),
        })
    }

    async fn handle(
        &self,
        ctx: &Ctx<'_>,
        frame: VisitorFrame,
        current_url: &mut Option<String>,
    ) -> Result<(), Exit> {
        let state = &self.state;
        let at = now_ms();
        let record = match frame {
            VisitorFrame::Hello(_) => {
                return Err(Exit::Close(
                    close::MALFORMED,
                    "hello was already sent".into(),
                ))
            }
            VisitorFrame::Page(p) => {
                let url = protocol::check_url(&p.url).map_err(invalid)?;
                let title = protocol::check_title(p.title).map_err(invalid)?;
                let referrer = protocol::clean_referrer(p.referrer).or_else(|| current_url.clone());
                let item = Item::parse(p.item).map_err(|e| invalid(Invalid(e)))?;
                let obs = Obs::Page {
                    tab: &ctx.tab,
                    url: &url,
                    title: title.as_deref(),
                    item: item.as_ref(),
                };
                let out = state
                    .targeting
                    .observe(ctx.site_id(), ctx.visitor(), obs, at);
                if let Some(cluster) = &state.cluster {
                    let (url, title, item) = (url.clone(), title.clone(), item.clone());
                    let obs = ObsMsg::Page {
                        tab: ctx.tab.clone(),
                        url,
                        title,
                        item,
                    };
                    cluster.publish_obs(ctx.site_id(), ctx.visitor(), obs);
                }
                let nav = Nav {
                    item: item.as_ref(),
                    url: &url,
                    title: title.as_deref(),
                    referrer: referrer.as_deref(),
                    at,
                };
                state
                    .hub
                    .pageview(ctx.site_id(), ctx.visitor(), ctx.conn(), nav);
                *current_url = Some(url.clone());
                crate::targeting::apply(state, ctx.site_id(), ctx.visitor(), out).await;
                Record::Pageview(PageviewRow {
                    site_id: ctx.site_id().to_string(),
                    visitor_id: ctx.visitor().to_string(),
                    session_id: ctx.session.clone(),
                    tab_id: ctx.tab.clone(),
                    url,
                    title,
                    referrer,
                    at,
                })
            }
            VisitorFrame::Event { name, props } => {
                let name = protocol::check_name(&name).map_err(invalid)?;
                let props = protocol::check_object("props", props).map_err(invalid)?;
                let obs = Obs::Event {
                    name: &name,
                    props: &props,
                };
                let out = state
                    .targeting
                    .observe(ctx.site_id(), ctx.visitor(), obs, at);
                if let Some(cluster) = &state.cluster {
                    let props = Value::Object(props.clone()).to_string();
                    let msg = ObsMsg::Event {
                        name: name.clone(),
                        props,
                    };
                    cluster.publish_obs(ctx.site_id(), ctx.visitor(), msg);
                }
                let props = Value::Object(props);
                state
                    .hub
                    .event(ctx.site_id(), ctx.visitor(), &name, &props, at);
                crate::targeting::apply(state, ctx.site_id(), ctx.visitor(), out).await;
                Record::Event(EventRow {
                    site_id: ctx.site_id().to_string(),
                    visitor_id: ctx.visitor().to_string(),
                    session_id: ctx.session.clone(),
                    tab_id: ctx.tab.clone(),
                    name,
                    props: props.to_string(),
                    url: current_url.clone(),
                    at,
                })
            }
            VisitorFrame::Identify { user_id, traits } => {
                let user_id = protocol::check_user_id(user_id).map_err(invalid)?;
                let traits = protocol::check_object("traits", traits).map_err(invalid)?;
                state
                    .hub
                    .identify(ctx.site_id(), ctx.visitor(), user_id.as_deref(), &traits);
                let obs = Obs::Identify {
                    user_id: user_id.as_deref(),
                    traits: &traits,
                };
                let out = state
                    .targeting
                    .observe(ctx.site_id(), ctx.visitor(), obs, at);
                if let Some(cluster) = &state.cluster {
                    let traits = Value::Object(traits.clone()).to_string();
                    let msg = ObsMsg::Identify {
                        user_id: user_id.clone(),
                        traits,
                    };
                    cluster.publish_obs(ctx.site_id(), ctx.visitor(), msg);
                }
                crate::targeting::apply(state, ctx.site_id(), ctx.visitor(), out).await;
                Record::Identify(IdentifyRow {
                    site_id: ctx.site_id().to_string(),
                    visitor_id: ctx.visitor().to_string(),
                    user_id,
                    traits: Value::Object(traits).to_string(),
                    at,
                })
            }
            VisitorFrame::Visibility { state: vis } => {
                if !matches!(vis.as_str(), "visible" | "hidden") {
                    return Err(invalid(Invalid(
                        "visibility state must be visible or hidden".into(),
                    )));
                }
                return Ok(());
            }
            VisitorFrame::Ack { message, status } => {
                if !matches!(status.as_str(), "shown" | "clicked" | "dismissed") {
                    return Err(invalid(Invalid(
                        "ack status must be shown, clicked or dismissed".into(),
                    )));
                }
                // Acks for messages this tab never received are ignored.
                let Some(tab) = state
                    .hub
                    .ack(ctx.site_id(), ctx.visitor(), ctx.conn(), &message)
                else {
                    return Ok(());
                };
                state
                    .hub
                    .status(ctx.site_id(), &message, ctx.visitor(), &status, at);
                Record::Status(StatusRow {
                    message_id: message,
                    site_id: ctx.site_id().to_string(),
                    visitor_id: ctx.visitor().to_string(),
                    tab_id: tab,
                    status,
                    at,
                })
            }
        };
        state
            .writer
            .submit(record)
            .await
            .map_err(|_| Exit::Close(close::TRY_AGAIN, "busy, try again later".into()))
    }
}

/// The open tab: its ids and its registration in the hub. Dropped on every exit path: the
/// targeting engine hears that the tab closed, then the hub unregisters it.
struct Ctx<'a> {
    state: &'a AppState,
    session: String,
    tab: String,
    guard: TabGuard,
}

impl Ctx<'_> {
    fn site_id(&self) -> &str {
        self.guard.site_id()
    }

    fn visitor(&self) -> &str {
        self.guard.visitor()
    }

    fn conn(&self) -> u64 {
        self.guard.conn()
    }
}

impl Drop for Ctx<'_> {
    fn drop(&mut self) {
        let (site_id, visitor) = (self.guard.site_id(), self.guard.visitor());
        let obs = Obs::Close { tab: &self.tab };
        // Closing a tab only narrows what the visitor is doing; nothing is sent for it.
        let _ = self
            .state
            .targeting
            .observe(site_id, visitor, obs, now_ms());
        if let Some(cluster) = &self.state.cluster {
            let obs = ObsMsg::Close {
                tab: self.tab.clone(),
            };
            cluster.publish_obs(site_id, visitor, obs);
        }
    }
}

/// Loads what the database knows of a returning visitor into the hub.
async fn enrich(state: AppState, site_id: String, visitor: String) {
    let row: Result<Option<(i64, Option<String>, String)>, _> = sqlx::query_as(
        "select first_seen, user_id, traits from visitor where site_id = $1 and visitor_id = $2",
    )
    .bind(&site_id)
    .bind(&visitor)
    .fetch_optional(state.db.pool())
    .await;
    if let Ok(Some((first_seen, user_id, traits))) = row {
        let traits = match serde_json::from_str(&traits) {
            Ok(Value::Object(m)) => m,
            _ => Default::default(),
        };
        state
            .hub
            .enrich(&site_id, &visitor, first_seen, user_id, traits);
    }
}
