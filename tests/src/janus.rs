//! A small client of the Janus WebRTC server's HTTP API (Janus 1.1, the REST transport), enough
//! to drive its VideoRoom plugin as the load generator drives Accordo (`accordo-loadgen --target
//! janus`, issue #7): sessions, handles attached to `janus.plugin.videoroom`, rooms, publishers
//! and multistream subscribers.
//!
//! # How the API is spoken
//!
//! Every request is a JSON POST to `{base}` (create a session), `{base}/{session}` (attach,
//! keep-alive, destroy) or `{base}/{session}/{handle}` (plugin messages), with a
//! fresh `transaction` string. Janus answers at once with `success` (synchronous requests, such
//! as `attach` or the VideoRoom's `create`), `error`, or `ack` for the plugin requests it
//! handles asynchronously (`join`, `publish`, `start`); their outcome comes later as an `event`
//! carrying the same transaction.
//!
//! Events arrive by long poll: each [`JanusSession`] runs one task that keeps a
//! `GET {base}/{session}?maxev=…` outstanding and dispatches what comes back, first by
//! transaction (to the request waiting for it) and otherwise by the `sender` handle (to that
//! [`VideoRoomHandle`]'s queue: `webrtcup`, `media`, `hangup`, room notifications). Janus ends an
//! idle long poll after 30 s with a `keepalive` event of its own. A second task posts
//! `{"janus": "keepalive"}` every [`KEEPALIVE_PERIOD`], well inside the 60 s session timeout, as
//! `janus.js` does, rather than rely on the long poll counting as the session's activity (it
//! does in 1.1.2, but that is the transport's business).
//!
//! SDP is exchanged without trickle: the descriptions [`crate::media_peer::MediaPeer`] returns
//! are complete (ICE gathering done, candidates inside), so every `jsep` says `"trickle": false`,
//! and Janus puts its own candidates in its descriptions (half-trickle, its default).
//!
//! # Subscriptions
//!
//! Janus 1.1 is multistream: one subscriber handle, and one peer connection, receives several
//! publishers' streams (`join` with `ptype: "subscriber"` and `streams: [{feed}, …]`). Janus
//! offers; the subscriber answers with `start`.
//!
//! Every wait has a time-out: [`REPLY_PATIENCE`] for answers and events, [`LONG_POLL_PATIENCE`]
//! for a long poll.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::network::lock;

/// How long a request waits for Janus's answer, or for the event that concludes it.
pub const REPLY_PATIENCE: Duration = Duration::from_secs(15);
/// How long one long poll may stay outstanding (Janus answers an idle one after 30 s).
pub const LONG_POLL_PATIENCE: Duration = Duration::from_secs(45);
/// Events one long poll asks for at most.
const EVENTS_PER_POLL: usize = 16;
/// Events kept per handle for [`VideoRoomHandle::next_event`]; later ones are dropped while the
/// queue is full (nobody is reading it).
const HANDLE_EVENTS_KEPT: usize = 256;
/// The pause after a failed long poll before the next one.
const LONG_POLL_RETRY: Duration = Duration::from_millis(200);
/// How often a session says it is alive (Janus's default session timeout is 60 s).
pub const KEEPALIVE_PERIOD: Duration = Duration::from_secs(25);
/// The VideoRoom plugin's package name.
pub const VIDEOROOM: &str = "janus.plugin.videoroom";

/// The entry point: Janus's HTTP API at one base URL (`http://127.0.0.1:8088/janus`).
#[derive(Clone)]
pub struct JanusClient {
    http: reqwest::Client,
    base: String,
}

impl JanusClient {
    /// A client of the Janus API at `base_url` (the HTTP transport's base path included).
    pub fn new(base_url: &str) -> Result<JanusClient> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .context("build the HTTP client")?;
        Ok(JanusClient {
            http,
            base: base_url.trim_end_matches('/').to_owned(),
        })
    }

    /// `GET {base}/info`: the server's name, version, plugins and transports.
    pub async fn info(&self) -> Result<Value> {
        let response = self
            .http
            .get(format!("{}/info", self.base))
            .timeout(REPLY_PATIENCE)
            .send()
            .await
            .with_context(|| format!("GET {}/info", self.base))?;
        let info: Value = response.json().await.context("the info is not JSON")?;
        if info["janus"] != "server_info" {
            bail!("unexpected answer to info: {info}");
        }
        Ok(info)
    }

    /// Creates a session and starts its long poll.
    pub async fn create_session(&self) -> Result<JanusSession> {
        let reply = post(&self.http, &self.base, json!({ "janus": "create" })).await?;
        let id = expect_success(&reply)?["data"]["id"]
            .as_u64()
            .ok_or_else(|| anyhow!("no session id in {reply}"))?;
        let inner = Arc::new(SessionInner {
            http: self.http.clone(),
            base: self.base.clone(),
            id,
            waiters: Mutex::new(HashMap::new()),
            handles: Mutex::new(HashMap::new()),
        });
        let tasks = vec![
            tokio::spawn(long_poll(Arc::clone(&inner))),
            tokio::spawn(keep_alive(Arc::clone(&inner))),
        ];
        Ok(JanusSession { inner, tasks })
    }
}

/// One Janus session (what a browser tab holds), with its long-poll and keep-alive tasks.
/// Dropping it stops the tasks; Janus then ends the session after its timeout.
/// [`JanusSession::destroy`] ends it now.
pub struct JanusSession {
    inner: Arc<SessionInner>,
    tasks: Vec<JoinHandle<()>>,
}

/// What the session, its handles and its long-poll task share.
struct SessionInner {
    http: reqwest::Client,
    base: String,
    id: u64,
    /// Requests waiting for their asynchronous outcome, by transaction.
    waiters: Mutex<HashMap<String, oneshot::Sender<Value>>>,
    /// The event queue of each handle, by handle id.
    handles: Mutex<HashMap<u64, mpsc::Sender<Value>>>,
}

impl SessionInner {
    fn url(&self) -> String {
        format!("{}/{}", self.base, self.id)
    }

    /// Posts a plugin message to `handle`; returns the plugin's reply, whether Janus gave it at
    /// once (`success`) or later as an event with the same transaction (after `ack`).
    async fn message(&self, handle: u64, body: Value, jsep: Option<Value>) -> Result<PluginReply> {
        let transaction = new_transaction();
        let (sender, receiver) = oneshot::channel();
        // Registered before the request: the event may come back before the POST's answer.
        lock(&self.waiters).insert(transaction.clone(), sender);
        let request = body["request"].as_str().unwrap_or("?").to_owned();
        let mut message = json!({ "janus": "message", "transaction": transaction, "body": body });
        if let Some(jsep) = jsep {
            message["jsep"] = jsep;
        }
        let url = format!("{}/{handle}", self.url());
        let reply = post(&self.http, &url, message).await;
        let reply = match reply {
            Ok(reply) => reply,
            Err(error) => {
                lock(&self.waiters).remove(&transaction);
                return Err(error);
            }
        };
        let event = match reply["janus"].as_str() {
            Some("success") => {
                lock(&self.waiters).remove(&transaction);
                reply
            }
            Some("ack") => {
                let outcome = tokio::time::timeout(REPLY_PATIENCE, receiver).await;
                lock(&self.waiters).remove(&transaction);
                match outcome {
                    Ok(Ok(event)) => event,
                    Ok(Err(_)) => bail!("the session's long poll ended before {request} concluded"),
                    Err(_) => bail!("no outcome of {request} within {REPLY_PATIENCE:?}"),
                }
            }
            _ => {
                lock(&self.waiters).remove(&transaction);
                expect_success(&reply).with_context(|| format!("{request} refused"))?;
                bail!("unexpected answer to {request}: {reply}");
            }
        };
        PluginReply::from_event(&event).with_context(|| format!("{request} failed"))
    }
}

impl JanusSession {
    /// The session id Janus gave.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// Attaches a new handle to the VideoRoom plugin.
    pub async fn attach_videoroom(&self) -> Result<VideoRoomHandle> {
        let reply = post(
            &self.inner.http,
            &self.inner.url(),
            json!({ "janus": "attach", "plugin": VIDEOROOM }),
        )
        .await?;
        let id = expect_success(&reply)?["data"]["id"]
            .as_u64()
            .ok_or_else(|| anyhow!("no handle id in {reply}"))?;
        let (sender, receiver) = mpsc::channel(HANDLE_EVENTS_KEPT);
        lock(&self.inner.handles).insert(id, sender);
        Ok(VideoRoomHandle {
            session: Arc::clone(&self.inner),
            id,
            events: tokio::sync::Mutex::new(receiver),
        })
    }

    /// Ends the session on Janus (its handles are detached, their peer connections closed).
    pub async fn destroy(mut self) -> Result<()> {
        // The long poll ends with the session: stop it first rather than watch it fail.
        self.stop_tasks();
        let reply = post(
            &self.inner.http,
            &self.inner.url(),
            json!({ "janus": "destroy" }),
        )
        .await?;
        expect_success(&reply)?;
        Ok(())
    }
}

impl JanusSession {
    fn stop_tasks(&mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }
}

impl Drop for JanusSession {
    fn drop(&mut self) {
        self.stop_tasks();
    }
}

/// A room's settings for [`VideoRoomHandle::create_room`].
#[derive(Debug, Clone)]
pub struct RoomSettings {
    pub description: String,
    /// The most publishers the room admits at once.
    pub publishers: u32,
    /// The bitrate cap Janus announces to each publisher (REMB), in bits per second.
    pub bitrate: u64,
}

/// What a publisher's `join` gives back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublisherJoined {
    /// The publisher's id in the room: the `feed` subscribers ask for.
    pub id: u64,
    /// The id that ties this participant's subscriptions to its publisher handle.
    pub private_id: Option<u64>,
}

/// A VideoRoom plugin's reply: the plugin's data and, if any, a session description.
#[derive(Debug, Clone)]
pub struct PluginReply {
    pub data: Value,
    pub jsep: Option<Value>,
}

impl PluginReply {
    /// Reads a `success` or `event` carrying `plugindata`; a plugin error becomes an `Err`.
    fn from_event(event: &Value) -> Result<PluginReply> {
        expect_success(event)?;
        let data = &event["plugindata"]["data"];
        if !data.is_object() {
            bail!("no plugin data in {event}");
        }
        if let Some(code) = data.get("error_code") {
            bail!(
                "VideoRoom error {code}: {}",
                data["error"].as_str().unwrap_or("(no reason)")
            );
        }
        Ok(PluginReply {
            data: data.clone(),
            jsep: event.get("jsep").cloned(),
        })
    }

    /// The SDP of the reply's `jsep`, which must be of `kind` (`offer` or `answer`).
    fn sdp(&self, kind: &str) -> Result<String> {
        let jsep = self
            .jsep
            .as_ref()
            .ok_or_else(|| anyhow!("no {kind} in {}", self.data))?;
        if jsep["type"] != kind {
            bail!("expected an {kind}, got {}", jsep["type"]);
        }
        jsep["sdp"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("the {kind} has no SDP"))
    }
}

/// A handle attached to the VideoRoom plugin: one role (room administration, a publisher or a
/// subscriber) and at most one peer connection.
pub struct VideoRoomHandle {
    session: Arc<SessionInner>,
    id: u64,
    events: tokio::sync::Mutex<mpsc::Receiver<Value>>,
}

impl VideoRoomHandle {
    /// The handle id Janus gave.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Sends a VideoRoom request (`body`, with a session description `jsep` if any) and returns
    /// the plugin's reply.
    pub async fn message(&self, body: Value, jsep: Option<Value>) -> Result<PluginReply> {
        self.session.message(self.id, body, jsep).await
    }

    /// Creates a room for VP8 and Opus, not recorded, that does not tell its participants who
    /// joins; returns the room id Janus chose.
    pub async fn create_room(&self, settings: &RoomSettings) -> Result<u64> {
        let reply = self
            .message(
                json!({
                    "request": "create",
                    "description": settings.description,
                    "publishers": settings.publishers,
                    "bitrate": settings.bitrate,
                    "audiocodec": "opus",
                    "videocodec": "vp8",
                    "record": false,
                    "notify_joining": false,
                    "permanent": false,
                }),
                None,
            )
            .await?;
        if reply.data["videoroom"] != "created" {
            bail!("unexpected answer to create: {}", reply.data);
        }
        reply.data["room"]
            .as_u64()
            .ok_or_else(|| anyhow!("no room id in {}", reply.data))
    }

    /// Joins `room` as a publisher named `display` (no media yet: see [`Self::publish`]).
    pub async fn join_as_publisher(&self, room: u64, display: &str) -> Result<PublisherJoined> {
        let reply = self
            .message(
                json!({ "request": "join", "ptype": "publisher", "room": room, "display": display }),
                None,
            )
            .await?;
        if reply.data["videoroom"] != "joined" {
            bail!("unexpected answer to join: {}", reply.data);
        }
        Ok(PublisherJoined {
            id: reply.data["id"]
                .as_u64()
                .ok_or_else(|| anyhow!("no publisher id in {}", reply.data))?,
            private_id: reply.data["private_id"].as_u64(),
        })
    }

    /// Publishes with `offer` (a complete SDP offer: audio and video, send-only); returns
    /// Janus's answer.
    pub async fn publish(&self, offer: &str) -> Result<String> {
        let reply = self
            .message(
                json!({ "request": "publish", "audio": true, "video": true }),
                Some(json!({ "type": "offer", "sdp": offer, "trickle": false })),
            )
            .await?;
        if reply.data["configured"] != "ok" {
            bail!("unexpected answer to publish: {}", reply.data);
        }
        reply.sdp("answer")
    }

    /// Subscribes to every stream of the publishers `feeds` of `room` on this one handle (Janus
    /// 1.1 multistream); `private_id` ties the subscription to the subscriber's own publisher.
    /// Returns Janus's offer, to answer with [`Self::start`].
    pub async fn join_as_subscriber(
        &self,
        room: u64,
        feeds: &[u64],
        private_id: Option<u64>,
    ) -> Result<String> {
        let streams: Vec<Value> = feeds.iter().map(|feed| json!({ "feed": feed })).collect();
        let mut body = json!({
            "request": "join",
            "ptype": "subscriber",
            "room": room,
            "streams": streams,
        });
        if let Some(private_id) = private_id {
            body["private_id"] = json!(private_id);
        }
        let reply = self.message(body, None).await?;
        if reply.data["videoroom"] != "attached" {
            bail!("unexpected answer to a subscriber's join: {}", reply.data);
        }
        reply.sdp("offer")
    }

    /// Answers the subscription's offer with `answer` and starts the media.
    pub async fn start(&self, answer: &str) -> Result<()> {
        let reply = self
            .message(
                json!({ "request": "start" }),
                Some(json!({ "type": "answer", "sdp": answer, "trickle": false })),
            )
            .await?;
        if reply.data["started"] != "ok" {
            bail!("unexpected answer to start: {}", reply.data);
        }
        Ok(())
    }

    /// The next event Janus sent about this handle outside a transaction (`webrtcup`, `media`,
    /// `slowlink`, `hangup`, room notifications), waiting up to `timeout`.
    pub async fn next_event(&self, timeout: Duration) -> Result<Value> {
        let mut events = self.events.lock().await;
        match tokio::time::timeout(timeout, events.recv()).await {
            Ok(Some(event)) => Ok(event),
            Ok(None) => bail!("the handle's event queue is closed"),
            Err(_) => bail!("no event on handle {} within {timeout:?}", self.id),
        }
    }

    /// Waits up to `timeout` for Janus to report the handle's peer connection up (ICE and DTLS
    /// done: `webrtcup`); other events on the way are skipped.
    pub async fn wait_for_webrtc_up(&self, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let event = self
                .next_event(left)
                .await
                .context("waiting for webrtcup")?;
            match event["janus"].as_str() {
                Some("webrtcup") => return Ok(()),
                Some("hangup") => bail!("Janus hung up: {event}"),
                _ => {}
            }
        }
    }
}

impl Drop for VideoRoomHandle {
    fn drop(&mut self) {
        lock(&self.session.handles).remove(&self.id);
    }
}

/// The session's long-poll loop: fetches events and dispatches them until the task is aborted
/// or Janus says the session is gone.
async fn long_poll(session: Arc<SessionInner>) {
    let url = format!("{}?maxev={EVENTS_PER_POLL}", session.url());
    let mut reported = false;
    loop {
        let polled = async {
            let response = session
                .http
                .get(&url)
                .timeout(LONG_POLL_PATIENCE)
                .send()
                .await?;
            response.json::<Value>().await
        }
        .await;
        let events = match polled {
            Ok(Value::Array(events)) => events,
            Ok(event) => vec![event],
            Err(error) => {
                if !reported {
                    eprintln!("janus session {}: long poll failed: {error}", session.id);
                    reported = true;
                }
                tokio::time::sleep(LONG_POLL_RETRY).await;
                continue;
            }
        };
        reported = false;
        for event in events {
            if event["janus"] == "error" && event.get("transaction").is_none() {
                // 458: no such session (timed out or destroyed); nothing more will come.
                eprintln!("janus session {}: {event}", session.id);
                if event["error"]["code"] == 458 {
                    return;
                }
                continue;
            }
            dispatch(&session, event);
        }
    }
}

/// The session's keep-alive loop: a `keepalive` request every [`KEEPALIVE_PERIOD`] until the
/// task is aborted.
async fn keep_alive(session: Arc<SessionInner>) {
    let url = session.url();
    loop {
        tokio::time::sleep(KEEPALIVE_PERIOD).await;
        let sent = post(&session.http, &url, json!({ "janus": "keepalive" })).await;
        let refused = match &sent {
            Ok(reply) => expect_success(reply).err(),
            Err(error) => Some(anyhow!("{error:#}")),
        };
        if let Some(error) = refused {
            eprintln!("janus session {}: keep-alive failed: {error:#}", session.id);
        }
    }
}

/// Hands one event to the request waiting for its transaction, or else to its handle's queue.
fn dispatch(session: &SessionInner, event: Value) {
    if event["janus"] == "keepalive" {
        return;
    }
    if let Some(transaction) = event["transaction"].as_str() {
        if let Some(waiter) = lock(&session.waiters).remove(transaction) {
            // The requester may have given up (time-out): then the event is dropped.
            let _ = waiter.send(event);
            return;
        }
    }
    let Some(sender) = event["sender"].as_u64() else {
        return;
    };
    if let Some(queue) = lock(&session.handles).get(&sender) {
        // A full queue means nobody reads this handle's events: dropping them is harmless.
        let _ = queue.try_send(event);
    }
}

/// Posts `body` (with a new transaction unless it has one) to `url`; returns Janus's JSON
/// answer, whatever it says.
async fn post(http: &reqwest::Client, url: &str, mut body: Value) -> Result<Value> {
    if body.get("transaction").is_none() {
        body["transaction"] = json!(new_transaction());
    }
    let response = http
        .post(url)
        .timeout(REPLY_PATIENCE)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = response.status();
    let reply: Value = response
        .json()
        .await
        .with_context(|| format!("POST {url}: the answer (status {status}) is not JSON"))?;
    Ok(reply)
}

/// `Ok(reply)` unless Janus answered `error`.
fn expect_success(reply: &Value) -> Result<&Value> {
    if reply["janus"] == "error" {
        bail!(
            "Janus error {}: {}",
            reply["error"]["code"],
            reply["error"]["reason"].as_str().unwrap_or("(no reason)")
        );
    }
    Ok(reply)
}

fn new_transaction() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plugin_error_is_an_error() {
        let event = json!({
            "janus": "event",
            "sender": 1,
            "plugindata": { "plugin": VIDEOROOM, "data": {
                "videoroom": "event", "error_code": 426, "error": "No such room (7)"
            } }
        });
        let error = PluginReply::from_event(&event).expect_err("an error");
        assert!(error.to_string().contains("No such room"), "{error}");
    }

    #[test]
    fn a_core_error_is_an_error() {
        let reply =
            json!({ "janus": "error", "error": { "code": 458, "reason": "No such session" } });
        let error = expect_success(&reply).expect_err("an error");
        assert!(error.to_string().contains("458"), "{error}");
    }

    #[test]
    fn reads_the_description_of_a_reply() {
        let event = json!({
            "janus": "event",
            "plugindata": { "plugin": VIDEOROOM, "data": { "videoroom": "attached", "room": 3 } },
            "jsep": { "type": "offer", "sdp": "v=0\r\n" }
        });
        let reply = PluginReply::from_event(&event).expect("a reply");
        assert_eq!(reply.sdp("offer").expect("an offer"), "v=0\r\n");
        assert!(reply.sdp("answer").is_err());
    }

    #[test]
    fn events_go_to_their_transaction_then_to_their_handle() {
        let session = SessionInner {
            http: reqwest::Client::new(),
            base: "http://127.0.0.1:9/janus".to_owned(),
            id: 1,
            waiters: Mutex::new(HashMap::new()),
            handles: Mutex::new(HashMap::new()),
        };
        let (waiter, mut answered) = oneshot::channel();
        lock(&session.waiters).insert("t1".to_owned(), waiter);
        let (queue, mut queued) = mpsc::channel(4);
        lock(&session.handles).insert(7, queue);

        dispatch(
            &session,
            json!({ "janus": "event", "transaction": "t1", "sender": 7 }),
        );
        dispatch(&session, json!({ "janus": "webrtcup", "sender": 7 }));
        dispatch(&session, json!({ "janus": "keepalive" }));

        assert_eq!(answered.try_recv().expect("answered")["transaction"], "t1");
        assert_eq!(queued.try_recv().expect("queued")["janus"], "webrtcup");
        assert!(queued.try_recv().is_err());
    }
}
