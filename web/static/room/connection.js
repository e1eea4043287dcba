// The room WebSocket (docs/protocol.md): `hello` with the link's token, numbered commands, and
// after a drop a reconnection with `resume`, so that no event is lost or shown twice.

/** `bye` reasons after which reconnecting is pointless. */
const FINAL = new Set(['superseded', 'removed', 'invite_revoked', 'room_expired', 'meeting_ended', 'refused']);
/** Error codes that close the connection for good. */
const REFUSALS = new Set([
  'invalid_token', 'invite_revoked', 'room_not_found', 'room_not_yet_open', 'room_expired',
  'room_full', 'not_logged_in', 'unsupported_version', 'invalid_resume',
]);
/** Reconnection delays, in milliseconds; the last one repeats. */
const BACKOFF = [300, 1000, 2000, 4000, 8000];
/** A ping every PING_EVERY ms; no answer within PONG_PATIENCE ms means the network is gone. */
const PING_EVERY = 10000;
const PONG_PATIENCE = 5000;

export class RoomConnection {
  /**
   * @param {string} token the personal link's token
   * @param {{message: function(object): void, state: function(string): void}} on
   *   `message` gets every server message; `state` gets `connecting`, `open`,
   *   `reconnecting` or `closed` (for good).
   */
  constructor(token, on) {
    this.token = token;
    this.on = on;
    // The page's own (public) address; a redirect names another node for one connection.
    this.home = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws/v1`;
    this.url = this.home;
    this.stream = null;
    this.lastSeq = 0;
    this.nextSeq = 1;
    this.attempt = 0;
    this.final = false;
    this.socket = null;
    this.pingTimer = null;
    this.pongTimer = null;
    addEventListener('offline', () => this.drop());
    addEventListener('online', () => {
      if (!this.socket && !this.final) this.open();
    });
  }

  open() {
    clearTimeout(this.retryTimer);
    this.on.state(this.attempt === 0 ? 'connecting' : 'reconnecting');
    const socket = new WebSocket(this.url);
    // Unless redirected again, the next attempt goes through the public address, which
    // redirects to whichever node serves the room then (the one named may have died).
    this.url = this.home;
    this.socket = socket;
    socket.onopen = () => {
      const hello = { type: 'hello', v: 1, token: this.token };
      if (this.stream) hello.resume = { stream: this.stream, last_seq: this.lastSeq };
      socket.send(JSON.stringify(hello));
      this.keepAlive();
    };
    socket.onmessage = (event) => this.receive(JSON.parse(event.data));
    socket.onclose = () => {
      if (this.socket === socket) this.closed();
    };
  }

  receive(message) {
    this.awaitPong(false);
    switch (message.type) {
      case 'welcome':
        this.attempt = 0;
        if (!message.resumed) this.lastSeq = message.seq;
        this.stream = message.stream;
        this.nextSeq = Math.max(this.nextSeq, message.last_command_seq + 1);
        this.on.state('open');
        break;
      case 'event':
        this.lastSeq = message.seq;
        break;
      case 'error':
        if (REFUSALS.has(message.code)) this.final = true;
        break;
      case 'bye':
        if (FINAL.has(message.reason)) this.final = true;
        if (message.reason === 'redirect' && message.url) this.url = message.url;
        if (message.reason === 'redirect') this.attempt = 0;
        break;
      default:
        break;
    }
    this.on.message(message);
  }

  /** Sends a message as is (media messages, which are not numbered). */
  send(message) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(message));
      return true;
    }
    return false;
  }

  /** Sends a command with the next number; false when offline (nothing was sent). */
  command(message) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return false;
    this.socket.send(JSON.stringify({ ...message, seq: this.nextSeq++ }));
    return true;
  }

  /** Closes the socket now (network gone); reconnection follows. */
  drop() {
    if (this.socket) this.socket.close();
    if (this.socket) this.closed();
  }

  keepAlive() {
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => {
      if (this.send({ type: 'ping' })) this.awaitPong(true);
    }, PING_EVERY);
  }

  awaitPong(waiting) {
    clearTimeout(this.pongTimer);
    if (waiting) this.pongTimer = setTimeout(() => this.drop(), PONG_PATIENCE);
  }

  closed() {
    clearInterval(this.pingTimer);
    this.awaitPong(false);
    this.socket = null;
    if (this.final) {
      this.on.state('closed');
      return;
    }
    const delay = BACKOFF[Math.min(this.attempt, BACKOFF.length - 1)];
    this.attempt += 1;
    this.on.state('reconnecting');
    this.retryTimer = setTimeout(() => {
      if (navigator.onLine !== false) this.open();
    }, delay);
  }
}
