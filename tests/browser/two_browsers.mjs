// Two people open their personal links in two Chromium windows with fake cameras: each must
// see the other's video (inbound frames decoded rising, from getStats). Called by the Rust test
// `tests/tests/app/browser.rs` with the server address and two links; prints one JSON line.
import { chromium } from 'playwright-core';

const [, , first, second, artefacts] = process.argv;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
  ],
});

async function framesDecoded(page) {
  return page.evaluate(async () => {
    const video = document.querySelector('.tile:not(.me) video');
    if (!video || !video.srcObject) return 0;
    // The page keeps its peer connection private: read the decoded frames from the element.
    const quality = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : null;
    return quality ? quality.totalVideoFrames : 0;
  });
}

const result = { ok: false };
try {
  const pages = [];
  for (const link of [first, second]) {
    const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
    await context.grantPermissions(['camera', 'microphone']);
    const page = await context.newPage();
    page.on('pageerror', (error) => console.error(`page error: ${error.message}`));
    await page.goto(link);
    pages.push(page);
  }
  const deadline = Date.now() + 20000;
  let frames = [0, 0];
  while (Date.now() < deadline) {
    frames = await Promise.all(pages.map(framesDecoded));
    if (frames.every((count) => count > 10)) break;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  const names = await Promise.all(pages.map((page) => page.textContent('#who')));
  const captions = await Promise.all(pages.map((page) => page.$$eval('.tile:not(.me) figcaption', (nodes) => nodes.map((n) => n.textContent))));
  if (artefacts) {
    await pages[0].screenshot({ path: `${artefacts}/room-first.png` });
    await pages[1].screenshot({ path: `${artefacts}/room-second.png` });
  }
  result.frames = frames;
  result.names = names;
  result.captions = captions;
  result.ok = frames.every((count) => count > 10);
} catch (error) {
  result.error = String(error);
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
