//! A room client over a real WebSocket, speaking the protocol of `docs/protocol.md` as a
//! browser would, for story tests with named actors.

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for a message it expects.
const PATIENCE: Duration = Duration::from_secs(5);

/// One person in a room.
pub struct RoomClient {
    pub name: &'static str,
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The `welcome` this connection received.
    pub welcome: Value,
    /// Every server message received so far, in order (for "nothing leaked" checks).
    pub received: Vec<Value>,
    unread: VecDeque<Value>,
    next_command_seq: u64,
    /// The seq of the last `event` received.
    pub last_event_seq: u64,
}

/// What a refused `hello` answered: the `error` and the `bye`.
#[derive(Debug)]
pub struct Refused {
    pub error: Value,
    pub bye: Value,
}

impl Refused {
    pub fn code(&self) -> &str {
        self.error["code"].as_str().unwrap_or("")
    }
}

/// How a logged-in staff member opens the room socket.
pub struct StaffJoin<'a> {
    /// The `Cookie` header of their browser (empty: none).
    pub cookie: &'a str,
    /// The `Origin` of the page that opens the socket (`None`: no header, as a non-browser
    /// client).
    pub origin: Option<&'a str>,
    /// Ask to take over a connection of the same member that is still open.
    pub take_over: bool,
}

/// The token in a personal link `…/r/TOKEN`.
pub fn token_of(link: &str) -> &str {
    link.rsplit('/').next().unwrap_or(link)
}

impl RoomClient {
    /// Opens `/ws/v1` on `address` (`http://host:port`) and says hello with the link's token.
    pub async fn join(name: &'static str, address: &str, link: &str) -> Result<Self, Refused> {
        Self::join_with(name, address, link, None, 1).await
    }

    /// Like [`RoomClient::join`], resuming `stream` after `last_seq`, and numbering commands
    /// from `next_command_seq` (or after the welcome's `last_command_seq`, when higher).
    pub async fn join_with(
        name: &'static str,
        address: &str,
        link: &str,
        resume: Option<(String, u64)>,
        next_command_seq: u64,
    ) -> Result<Self, Refused> {
        let url = format!("{}/ws/v1", address.replacen("http", "ws", 1));
        Self::join_url(name, &url, link, resume, next_command_seq).await
    }

    /// Says hello at a WebSocket URL (`ws://host:port/ws/v1`).
    pub async fn join_url(
        name: &'static str,
        url: &str,
        link: &str,
        resume: Option<(String, u64)>,
        next_command_seq: u64,
    ) -> Result<Self, Refused> {
        let Ok((ws, _)) = tokio_tungstenite::connect_async(url).await else {
            return Err(Refused {
                error: json!({ "code": "unreachable" }),
                bye: Value::Null,
            });
        };
        Self::hello(name, ws, link, resume, next_command_seq).await
    }

    /// Joins as a browser behind a load balancer would: tries `entry` (an `http://` address),
    /// follows `redirect`s, and retries after a short pause when a node is unreachable or
    /// refuses, until it is welcomed or `within` runs out.
    pub async fn join_anywhere(
        name: &'static str,
        entry: &str,
        link: &str,
        within: Duration,
    ) -> Result<Self, Refused> {
        let deadline = tokio::time::Instant::now() + within;
        let entry_url = format!("{}/ws/v1", entry.replacen("http", "ws", 1));
        let mut url = entry_url.clone();
        loop {
            match Self::join_url(name, &url, link, None, 1).await {
                Ok(client) => return Ok(client),
                Err(refused) if tokio::time::Instant::now() >= deadline => return Err(refused),
                Err(refused) => {
                    url = match refused.bye["url"].as_str() {
                        Some(redirect) if refused.bye["reason"] == "redirect" => {
                            redirect.to_owned()
                        }
                        _ => {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            entry_url.clone()
                        }
                    };
                }
            }
        }
    }

    /// Joins `room` as logged-in back-office staff: no link, the browser's session cookie, from
    /// a page of the server itself.
    pub async fn join_as_staff(
        name: &'static str,
        address: &str,
        room: &str,
        cookie: &str,
    ) -> Result<Self, Refused> {
        let join = StaffJoin {
            cookie,
            origin: Some(address),
            take_over: false,
        };
        Self::join_as_staff_with(name, address, room, join).await
    }

    /// [`RoomClient::join_as_staff`] as `join` says. An upgrade the server refuses is a
    /// [`Refused`] whose `error` is the JSON body of the answer plus its `status`.
    pub async fn join_as_staff_with(
        name: &'static str,
        address: &str,
        room: &str,
        join: StaffJoin<'_>,
    ) -> Result<Self, Refused> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let url = format!("{}/ws/v1", address.replacen("http", "ws", 1));
        let mut request = url.into_client_request().expect("WebSocket request");
        for (name, value) in [
            ("cookie", join.cookie),
            ("origin", join.origin.unwrap_or("")),
        ] {
            if !value.is_empty() {
                request
                    .headers_mut()
                    .insert(name, value.parse().expect("header value"));
            }
        }
        let ws = match tokio_tungstenite::connect_async(request).await {
            Ok((ws, _)) => ws,
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                let body = response.body().as_deref().unwrap_or_default();
                let mut error: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
                error["status"] = json!(response.status().as_u16());
                return Err(Refused {
                    error,
                    bye: Value::Null,
                });
            }
            Err(error) => panic!("the WebSocket does not connect: {error}"),
        };
        let mut hello = json!({ "type": "hello", "v": 1, "room": room });
        if join.take_over {
            hello["take_over"] = json!(true);
        }
        Self::greet(name, ws, hello).await
    }

    /// Like [`RoomClient::join`] over a socket with a tiny receive buffer, so that a client
    /// that stops reading pushes back on the server at once (as a congested phone does).
    pub async fn join_with_small_buffer(
        name: &'static str,
        address: &str,
        link: &str,
    ) -> Result<Self, Refused> {
        let host = address.trim_start_matches("http://");
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("receive buffer");
        let stream = socket
            .connect(host.parse().expect("address"))
            .await
            .expect("connects");
        let url = format!("ws://{host}/ws/v1");
        let (ws, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream))
            .await
            .expect("WebSocket handshake");
        Self::hello(name, ws, link, None, 1).await
    }

    async fn hello(
        name: &'static str,
        ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
        link: &str,
        resume: Option<(String, u64)>,
        next_command_seq: u64,
    ) -> Result<Self, Refused> {
        let mut client = Self {
            name,
            ws,
            welcome: Value::Null,
            received: Vec::new(),
            unread: VecDeque::new(),
            next_command_seq,
            last_event_seq: 0,
        };
        let mut hello = json!({ "type": "hello", "v": 1, "token": token_of(link) });
        if let Some((stream, last_seq)) = resume {
            hello["resume"] = json!({ "stream": stream, "last_seq": last_seq });
            client.last_event_seq = last_seq;
        }
        client.finish_hello(hello).await
    }

    /// Says `hello` and, once welcomed, numbers commands after the last one the server
    /// processed for this member, as a browser window that knows nothing of the others does.
    async fn greet(
        name: &'static str,
        ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
        hello: Value,
    ) -> Result<Self, Refused> {
        let client = Self {
            name,
            ws,
            welcome: Value::Null,
            received: Vec::new(),
            unread: VecDeque::new(),
            next_command_seq: 1,
            last_event_seq: 0,
        };
        let mut client = client.finish_hello(hello).await?;
        client.next_command_seq = client.welcome["last_command_seq"].as_u64().unwrap_or(0) + 1;
        Ok(client)
    }

    async fn finish_hello(mut self, hello: Value) -> Result<Self, Refused> {
        self.send_raw(&hello.to_string()).await;
        let client = self;
        let mut client = client;
        let first = client.next().await;
        if first["type"] == "bye" {
            return Err(Refused {
                error: Value::Null,
                bye: first,
            });
        }
        if first["type"] == "welcome" {
            if first["resumed"] != true {
                // A fresh start: events continue the member's stream after `seq`.
                client.last_event_seq = first["seq"].as_u64().unwrap_or(0);
            }
            // As the protocol asks, commands are numbered after the last one the server
            // processed for this member (kept across restarts and failovers).
            let processed = first["last_command_seq"].as_u64().unwrap_or(0);
            client.next_command_seq = client.next_command_seq.max(processed + 1);
            client.welcome = first;
            return Ok(client);
        }
        let bye = client.next().await;
        Err(Refused { error: first, bye })
    }

    /// Sends a text frame as is.
    pub async fn send_raw(&mut self, text: &str) {
        self.ws
            .send(Message::Text(text.into()))
            .await
            .expect("send a frame");
    }

    /// Sends a command, numbering it; returns its seq.
    pub async fn send(&mut self, mut command: Value) -> u64 {
        let seq = self.next_command_seq;
        self.next_command_seq += 1;
        command["seq"] = json!(seq);
        self.send_raw(&command.to_string()).await;
        seq
    }

    /// Sends a command with an explicit seq (to replay an old one).
    pub async fn send_numbered(&mut self, mut command: Value, seq: u64) {
        command["seq"] = json!(seq);
        self.send_raw(&command.to_string()).await;
    }

    /// Sends a command and returns the server's answer to it (`ack` or `error`).
    async fn answer_to(&mut self, command: Value) -> (u64, Value) {
        let seq = self.send(command).await;
        let answer = self
            .wait_for(|message| {
                (message["type"] == "ack" || message["type"] == "error") && message["seq"] == seq
            })
            .await;
        (seq, answer)
    }

    /// Sends a command and returns its `ack`; panics on an `error` for it.
    pub async fn command(&mut self, command: Value) -> Value {
        let (seq, answer) = self.answer_to(command).await;
        assert_eq!(
            answer["type"], "ack",
            "{}: command {seq} refused: {answer}",
            self.name
        );
        answer
    }

    /// Sends a command and returns the `error` that refuses it.
    pub async fn refused(&mut self, command: Value) -> Value {
        let (seq, answer) = self.answer_to(command).await;
        assert_eq!(
            answer["type"], "error",
            "{}: command {seq} was accepted",
            self.name
        );
        answer
    }

    /// The next server message (text frames only), waiting at most a few seconds.
    pub async fn next(&mut self) -> Value {
        if let Some(message) = self.unread.pop_front() {
            return message;
        }
        self.read(PATIENCE)
            .await
            .unwrap_or_else(|| panic!("{}: no message within {PATIENCE:?}", self.name))
    }

    /// Reads one message from the socket, or `None` after `within`.
    async fn read(&mut self, within: Duration) -> Option<Value> {
        loop {
            let frame = tokio::time::timeout(within, self.ws.next()).await.ok()??;
            let Ok(Message::Text(text)) = frame else {
                match frame {
                    Ok(Message::Close(_)) | Err(_) => return None,
                    _ => continue,
                }
            };
            let message: Value = serde_json::from_str(&text).expect("the server sends JSON");
            if message["type"] == "event" {
                let seq = message["seq"].as_u64().expect("events are numbered");
                assert_eq!(
                    seq,
                    self.last_event_seq + 1,
                    "{}: events arrive in order, once",
                    self.name
                );
                self.last_event_seq = seq;
            }
            self.received.push(message.clone());
            return Some(message);
        }
    }

    /// Reads until a message matches, keeping the others for later `next` calls.
    pub async fn wait_for(&mut self, matches: impl Fn(&Value) -> bool) -> Value {
        if let Some(index) = self.unread.iter().position(&matches) {
            return self.unread.remove(index).expect("index is valid");
        }
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let message = self
                .read(left)
                .await
                .unwrap_or_else(|| panic!("{}: the expected message did not arrive", self.name));
            if matches(&message) {
                return message;
            }
            self.unread.push_back(message);
        }
    }

    /// Waits for the next event of `kind` (`view`, `presence`, `chat`, …) and returns it.
    pub async fn event(&mut self, kind: &str) -> Value {
        self.event_where(kind, |_| true).await
    }

    /// Waits for the next event of `kind` for which `matches` holds, and returns it.
    pub async fn event_where(&mut self, kind: &str, matches: impl Fn(&Value) -> bool) -> Value {
        let message = self
            .wait_for(|message| {
                message["type"] == "event"
                    && message["event"]["kind"] == kind
                    && matches(&message["event"])
            })
            .await;
        message["event"].clone()
    }

    /// The messages matching `matches` among those unread and those arriving within
    /// `window`; the others stay unread.
    pub async fn take_where(
        &mut self,
        matches: impl Fn(&Value) -> bool,
        window: Duration,
    ) -> Vec<Value> {
        let mut taken = Vec::new();
        let mut kept = VecDeque::new();
        for message in self.unread.drain(..) {
            if matches(&message) {
                taken.push(message);
            } else {
                kept.push_back(message);
            }
        }
        self.unread = kept;
        while let Some(message) = self.read(window).await {
            if matches(&message) {
                taken.push(message);
            } else {
                self.unread.push_back(message);
            }
        }
        taken
    }

    /// Everything that arrives within `window`.
    pub async fn drain(&mut self, window: Duration) -> Vec<Value> {
        let mut messages: Vec<Value> = self.unread.drain(..).collect();
        while let Some(message) = self.read(window).await {
            messages.push(message);
        }
        messages
    }

    /// Whether any message this client ever received contains `needle`.
    pub fn ever_saw(&self, needle: &str) -> bool {
        self.received
            .iter()
            .any(|message| message.to_string().contains(needle))
    }

    /// The `stream` of the welcome, for resuming.
    pub fn stream(&self) -> String {
        self.welcome["stream"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The next command seq this client would use.
    pub fn next_command_seq(&self) -> u64 {
        self.next_command_seq
    }

    /// Drops the TCP connection without a WebSocket close, as a lost network does.
    pub fn cut(self) {
        drop(self);
    }

    /// Closes the WebSocket politely.
    pub async fn leave(mut self) {
        let _ = self.ws.close(None).await;
    }

    /// Waits until the server closes this connection; returns the `bye` if one came.
    pub async fn closed(&mut self) -> Option<Value> {
        let mut bye = None;
        while let Some(message) = self.read(PATIENCE).await {
            if message["type"] == "bye" {
                bye = Some(message);
            }
        }
        bye
    }
}
