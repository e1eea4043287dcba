// One peer connection to the SFU per room connection (docs/protocol.md, "Media"): the client
// offers what it sends, then answers the server's offers for what it receives. Remote tracks
// are gathered per publisher (the stream id is the publisher's member id); a screen share (its
// track id in the server's SDP starts with `screen-`) is handed over on its own.

/** Round-trip time (s) and loss (fraction) below which the connection counts as good / fair. */
const GOOD = { rtt: 0.15, loss: 0.02 };
const FAIR = { rtt: 0.4, loss: 0.08 };

export class MediaLink {
  /**
   * @param {MediaStream} local what this person sends
   * @param {RTCIceServer[]} iceServers from `welcome`
   * @param {function(object): void} send sends a media message on the room connection
   * @param {function(string, MediaStream): void} onStream a publisher's stream got a track
   * @param {function(string, MediaStreamTrack): void} onScreen a publisher's screen share
   */
  constructor(local, iceServers, send, onStream, onScreen) {
    this.send = send;
    this.onStream = onStream;
    this.streams = new Map();
    this.screen = null; // the transceiver of this person's own screen share
    this.previous = { lost: 0, received: 0 };
    const pc = new RTCPeerConnection({ iceServers });
    this.pc = pc;
    for (const track of local.getTracks()) pc.addTransceiver(track, { direction: 'sendonly', streams: [local] });
    if (local.getAudioTracks().length === 0) pc.addTransceiver('audio', { direction: 'recvonly' });
    pc.onicecandidate = (event) => {
      if (event.candidate) send({ type: 'ice_candidate', candidate: event.candidate.candidate, mid: event.candidate.sdpMid });
    };
    pc.ontrack = (event) => {
      const publisher = event.streams[0] ? event.streams[0].id : '';
      if (this.isScreen(event.transceiver.mid)) {
        onScreen(publisher, event.track);
        return;
      }
      let stream = this.streams.get(publisher);
      if (!stream) {
        stream = new MediaStream();
        this.streams.set(publisher, stream);
      }
      stream.addTrack(event.track);
      onStream(publisher, stream);
    };
  }

  async offer() {
    await this.pc.setLocalDescription(await this.pc.createOffer());
    const message = { type: 'sdp_offer', sdp: this.pc.localDescription.sdp };
    if (this.screen && this.screen.mid) message.screen_mids = [this.screen.mid];
    this.send(message);
  }

  /** Whether the server's m-line `mid` carries a screen share (`a=msid:<member> screen-<id>`). */
  isScreen(mid) {
    const sdp = this.pc.remoteDescription ? this.pc.remoteDescription.sdp : '';
    const section = sdp.split(/\r\nm=/).find((part) => part.includes(`\r\na=mid:${mid}\r\n`));
    return Boolean(section && /\r\na=msid:\S+ screen-/.test(section));
  }

  /** Starts sending `track` as a screen share (the same m-line again after a stop). */
  async shareScreen(track, stream) {
    if (this.screen) {
      await this.screen.sender.replaceTrack(track);
      this.screen.direction = 'sendonly';
    } else {
      this.screen = this.pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
    }
    await this.offer();
  }

  /** Stops the screen share: its m-line goes inactive, the server tells the room. */
  async stopScreen() {
    if (!this.screen) return;
    await this.screen.sender.replaceTrack(null);
    this.screen.direction = 'inactive';
    await this.offer();
  }

  /** Handles `sdp_answer` and `sdp_offer` from the server. */
  async handle(message) {
    if (message.type === 'sdp_answer') {
      await this.pc.setRemoteDescription({ type: 'answer', sdp: message.sdp });
    } else if (message.type === 'sdp_offer') {
      await this.pc.setRemoteDescription({ type: 'offer', sdp: message.sdp });
      await this.pc.setLocalDescription(await this.pc.createAnswer());
      this.send({ type: 'sdp_answer', sdp: this.pc.localDescription.sdp });
    }
  }

  /** The stream received from `publisher`, if any. */
  streamOf(publisher) {
    return this.streams.get(publisher);
  }

  /** `good`, `fair` or `poor`, from round-trip time and the loss since the last call. */
  async quality() {
    const stats = await this.pc.getStats();
    let rtt = 0;
    let lost = 0;
    let received = 0;
    for (const report of stats.values()) {
      if (report.type === 'candidate-pair' && report.nominated && report.currentRoundTripTime !== undefined) {
        rtt = Math.max(rtt, report.currentRoundTripTime);
      }
      if (report.type === 'inbound-rtp') {
        lost += report.packetsLost || 0;
        received += report.packetsReceived || 0;
      }
    }
    const newLost = lost - this.previous.lost;
    const newReceived = received - this.previous.received;
    this.previous = { lost, received };
    const loss = newLost + newReceived > 0 ? Math.max(0, newLost) / (newLost + newReceived) : 0;
    if (this.pc.connectionState === 'failed' || this.pc.connectionState === 'disconnected') return 'poor';
    if (rtt <= GOOD.rtt && loss <= GOOD.loss) return 'good';
    if (rtt <= FAIR.rtt && loss <= FAIR.loss) return 'fair';
    return 'poor';
  }

  close() {
    this.pc.close();
  }
}
