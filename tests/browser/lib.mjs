// What every browser script shares: Chromium launched as the tests need it, a page per person
// with camera and microphone granted, and the figures read back from a room page.
import { chromium } from 'playwright-core';
import { basename } from 'node:path';

/** Every page opened, for the screenshots a failure leaves in `tests/artifacts/`. */
const opened = [];
const ARTEFACTS = new URL('../artifacts/', import.meta.url).pathname;

/** Debian's Chromium, headless, with a fake camera and microphone. */
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
    ],
  });
}

/**
 * Keeps each peer connection in `window.peerConnections` and the publisher (stream id) of each
 * received track in `window.trackOwners`, for the test to read statistics per person.
 */
function watchPeerConnections() {
  window.peerConnections = [];
  window.trackOwners = {};
  const Original = window.RTCPeerConnection;
  window.RTCPeerConnection = function (...args) {
    const connection = new Original(...args);
    window.peerConnections.push(connection);
    connection.addEventListener('track', (event) => {
      if (event.streams[0]) window.trackOwners[event.track.id] = event.streams[0].id;
    });
    return connection;
  };
  window.RTCPeerConnection.prototype = Original.prototype;
}

/**
 * Drops the server's UDP candidates from every remote description, as a firewall that blocks
 * UDP would leave the browser nothing but ICE-TCP.
 */
function udpBlocked() {
  const original = RTCPeerConnection.prototype.setRemoteDescription;
  RTCPeerConnection.prototype.setRemoteDescription = function (description) {
    const sdp = description.sdp
      .split('\r\n')
      .filter((line) => !(line.startsWith('a=candidate:') && / udp /i.test(line)))
      .join('\r\n');
    return original.call(this, { type: description.type, sdp });
  };
}

/**
 * A new browser context and page at `link`, past the lobby (its "Entra" button) when there is
 * one. Options: `udpBlocked` leaves only ICE-TCP to the page; `lobby` stays in the lobby;
 * `viewport` sets the window size.
 */
export async function openPage(browser, link, options = {}) {
  const context = await browser.newContext({ viewport: options.viewport || { width: 1000, height: 700 } });
  await context.grantPermissions(['camera', 'microphone']);
  await context.addInitScript(watchPeerConnections);
  if (options.udpBlocked) await context.addInitScript(udpBlocked);
  const page = await context.newPage();
  opened.push(page);
  page.on('pageerror', (error) => console.error(`page error: ${error.message}`));
  await page.goto(link);
  if (!options.lobby && await page.$('#enter')) await page.click('#enter');
  return page;
}

/** The transport of the page's selected ICE candidate pair (`udp` or `tcp`), if any. */
export async function selectedProtocol(page) {
  return page.evaluate(async () => {
    for (const connection of window.peerConnections || []) {
      const stats = await connection.getStats();
      for (const report of stats.values()) {
        if (report.type === 'transport' && report.selectedCandidatePairId) {
          const pair = stats.get(report.selectedCandidatePairId);
          return stats.get(pair.localCandidateId)?.protocol;
        }
      }
    }
    return undefined;
  });
}

/** Video frames decoded per publisher (member id), over every peer connection of the page. */
export async function framesByPublisher(page) {
  return page.evaluate(async () => {
    const frames = {};
    for (const connection of window.peerConnections || []) {
      if (connection.connectionState === 'closed') continue;
      const stats = await connection.getStats();
      for (const report of stats.values()) {
        if (report.type !== 'inbound-rtp' || report.kind !== 'video') continue;
        const owner = window.trackOwners[report.trackIdentifier];
        if (owner) frames[owner] = (frames[owner] || 0) + (report.framesDecoded || 0);
      }
    }
    return frames;
  });
}

/** Video frames the page has decoded from the first other person's tile. */
export async function framesDecoded(page) {
  return page.evaluate(async () => {
    const video = document.querySelector('.tile:not(.me) video');
    if (!video || !video.srcObject) return 0;
    // The page keeps its peer connection private: read the decoded frames from the element.
    const quality = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : null;
    return quality ? quality.totalVideoFrames : 0;
  });
}

/** Waits (up to `ms`) until `check()` is true; returns its last value. */
export async function until(check, ms) {
  const deadline = Date.now() + ms;
  let value = await check();
  while (!value && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    value = await check();
  }
  return value;
}

/** Runs `body(browser, result)`, records an error in `result`, prints it as one JSON line. */
export async function run(body) {
  const browser = await launch();
  const result = { ok: false };
  try {
    await body(browser, result);
  } catch (error) {
    result.error = String(error);
    const script = basename(process.argv[1], '.mjs');
    for (const [i, page] of opened.entries()) {
      await page.screenshot({ path: `${ARTEFACTS}failure-${script}-${i}.png`, fullPage: true }).catch(() => {});
    }
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(result));
}
