//! The admin socket, `GET /ws/admin?site=SITE_ID`: authenticated by the dashboard's session
//! cookie at the upgrade or by a first `auth` frame (login token or the site's API key); then a
//! snapshot and live deltas, and `send` with the contract's targets.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc::Receiver;

use super::hub::{snapshot_frame, AdminGuard, AdminSubscription};
use super::protocol::{close, AdminFrame};
use super::visitor::{IDLE_LIMIT, PING_EVERY};
use crate::auth::extract::{Caller, SiteAccess};
use crate::state::AppState;

pub async fn upgrade(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let site_id = query.get("site").cloned().unwrap_or_default();
    let cookie_caller = Caller::from_cookie(&state, &headers);
    ws.max_message_size(64 * 1024)
        // Admins send a few small commands; the socket layer zeroes its whole read buffer on
        // every read attempt, which the default 128 KiB made a visible cost of fan-out.
        .read_buffer_size(4096)
        .on_upgrade(move |socket| async move {
            let _alive = state.sockets.token();
            run(state, site_id, cookie_caller, socket).await
        })
}

type Sink = SplitSink<WebSocket, Message>;
type Stream = SplitStream<WebSocket>;

async fn send_json(sink: &mut Sink, v: Value) -> bool {
    sink.send(Message::Text(Utf8Bytes::from(v.to_string())))
        .await
        .is_ok()
}

async fn close_with(sink: &mut Sink, code: u16, reason: &str) {
    let _ = sink
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from(reason.to_string()),
        })))
        .await;
    let _ = sink.close().await;
}

async fn run(state: AppState, site_id: String, cookie_caller: Option<Caller>, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    match authenticate(&state, &site_id, cookie_caller, &mut stream).await {
        Ok(access) => serve(state, access, sink, stream).await,
        Err((code, reason)) => close_with(&mut sink, code, reason).await,
    }
}

async fn authenticate(
    state: &AppState,
    site_id: &str,
    cookie_caller: Option<Caller>,
    stream: &mut Stream,
) -> Result<SiteAccess, (u16, &'static str)> {
    let forbidden = (close::FORBIDDEN, "not a member of this site");
    let caller = match cookie_caller {
        Some(c) => c,
        None => {
            let deadline = tokio::time::Instant::now() + state.settings.limits.hello_timeout();
            let text = loop {
                match tokio::time::timeout_at(deadline, stream.next()).await {
                    Err(_) => return Err((close::NO_HELLO, "no auth in time")),
                    Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => {
                        return Err((1000, "closed"))
                    }
                    Ok(Some(Ok(Message::Text(t)))) => break t,
                    Ok(Some(Ok(Message::Binary(_)))) => {
                        return Err((close::MALFORMED, "frames are JSON text"))
                    }
                    Ok(Some(Ok(_))) => continue,
                }
            };
            match serde_json::from_str::<AdminFrame>(&text) {
                Ok(AdminFrame::Auth { token }) => Caller::from_token(state, &token)
                    .await
                    .map_err(|_| (close::FORBIDDEN, "invalid token"))?,
                Ok(_) => return Err((close::FORBIDDEN, "the first frame must be auth")),
                Err(_) => return Err((close::MALFORMED, "malformed frame")),
            }
        }
    };
    if site_id.is_empty() {
        return Err(forbidden);
    }
    SiteAccess::resolve(state, caller, site_id)
        .await
        .map_err(|_| forbidden)
}

/// Most outbox frames written to the socket before one flush: many frames per `write`, while
/// a ping or a command still gets its turn soon.
const FRAMES_PER_FLUSH: usize = 256;

async fn serve(state: AppState, access: SiteAccess, mut sink: Sink, mut stream: Stream) {
    if let Some(cluster) = &state.cluster {
        cluster.ensure_site(&access.site_id);
    }
    let AdminSubscription {
        guard,
        mut outbox,
        signal,
        snapshot,
    } = state.hub.subscribe_admin(&access.site_id);
    // Serialised here, outside the site lock; the deltas queued meanwhile follow it.
    if sink
        .send(Message::Text(snapshot_frame(&snapshot)))
        .await
        .is_err()
    {
        return;
    }
    drop(snapshot);
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    let mut last_heard = std::time::Instant::now();
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => {
                close_with(&mut sink, close::GOING_AWAY, "server shutting down").await;
                return;
            }
            _ = signal.notify.notified() => {
                if signal.resync.load(Ordering::Acquire)
                    && !resync(&state, &guard, &mut outbox, &mut sink).await
                {
                    return;
                }
            }
            out = outbox.recv() => {
                let Some(text) = out else { return };
                if signal.resync.load(Ordering::Acquire) {
                    // Behind: a snapshot replaces this frame and the rest of the outbox.
                    if !resync(&state, &guard, &mut outbox, &mut sink).await { return; }
                    continue;
                }
                if sink.feed(Message::Text(text)).await.is_err() { return; }
                for _ in 1..FRAMES_PER_FLUSH {
                    let Ok(text) = outbox.try_recv() else { break };
                    if sink.feed(Message::Text(text)).await.is_err() { return; }
                }
                if sink.flush().await.is_err() { return; }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > IDLE_LIMIT { return; }
                if sink.send(Message::Ping(Default::default())).await.is_err() { return; }
            }
            msg = stream.next() => {
                last_heard = std::time::Instant::now();
                let text = match msg {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Binary(_))) => {
                        close_with(&mut sink, close::MALFORMED, "frames are JSON text").await;
                        return;
                    }
                    Some(Ok(_)) => continue,
                };
                let frame = match serde_json::from_str::<AdminFrame>(&text) {
                    Ok(f) => f,
                    Err(e) => {
                        // A frame that parses as JSON but not as a command gets an error frame;
                        // text that is not JSON at all closes the socket.
                        if serde_json::from_str::<Value>(&text).is_ok() {
                            let r = json!({"type": "error", "ref": Value::Null, "code": "invalid_frame", "message": e.to_string()});
                            if !send_json(&mut sink, r).await { return; }
                            continue;
                        }
                        close_with(&mut sink, close::MALFORMED, "malformed frame").await;
                        return;
                    }
                };
                if let AdminFrame::Snapshot = frame {
                    // Same path as a resync, so the deltas that follow it are exactly the
                    // changes after it.
                    if !resync(&state, &guard, &mut outbox, &mut sink).await { return; }
                    continue;
                }
                let reply = handle(&state, &access, frame).await;
                if let Some(reply) = reply {
                    if !send_json(&mut sink, reply).await { return; }
                }
            }
        }
    }
}

/// Replaces what is queued for the admin with a fresh snapshot (see `Hub::resync_admin`).
/// False when the socket is gone.
async fn resync(
    state: &AppState,
    guard: &AdminGuard,
    outbox: &mut Receiver<Utf8Bytes>,
    sink: &mut Sink,
) -> bool {
    match state.hub.resync_admin(guard, outbox) {
        Some(visitors) => sink
            .send(Message::Text(snapshot_frame(&visitors)))
            .await
            .is_ok(),
        // The site was deleted: the outbox closes next.
        None => true,
    }
}

async fn handle(state: &AppState, access: &SiteAccess, frame: AdminFrame) -> Option<Value> {
    match frame {
        // `snapshot` is answered by `serve`, in order with the outbox.
        AdminFrame::Auth { .. } | AdminFrame::Snapshot => None,
        AdminFrame::Send { r#ref, to, message } => {
            let r#ref = r#ref.unwrap_or(Value::Null);
            if let Err(e) = access.require_write() {
                return Some(
                    json!({"type": "error", "ref": r#ref, "code": "forbidden", "message": e.to_string()}),
                );
            }
            let sent_by = access.account_id().map(str::to_string);
            match super::send_message(state, &access.site_id, to, message, None, sent_by).await {
                Ok(sent) => Some(
                    json!({"type": "sent", "ref": r#ref, "message": sent.id, "delivered": sent.delivered}),
                ),
                Err(e) => Some(
                    json!({"type": "error", "ref": r#ref, "code": e.code(), "message": e.to_string()}),
                ),
            }
        }
    }
}
