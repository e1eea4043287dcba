// Two people open their personal links in two Chromium windows with fake cameras: each must
// see the other's video (inbound frames decoded rising). With a fifth argument `udp-blocked`,
// the browsers can reach the server only over ICE-TCP. Called by the Rust test
// `tests/tests/app/browser.rs`; prints one JSON line.
import { framesDecoded, openPage, run, selectedProtocol, until } from './lib.mjs';

const [, , first, second, artefacts, mode] = process.argv;
const udpBlocked = mode === 'udp-blocked';

await run(async (browser, result) => {
  const pages = [];
  for (const link of [first, second]) pages.push(await openPage(browser, link, { udpBlocked }));
  let frames = [0, 0];
  await until(async () => {
    frames = await Promise.all(pages.map(framesDecoded));
    return frames.every((count) => count > 10);
  }, 20000);
  result.frames = frames;
  result.names = await Promise.all(pages.map((page) => page.textContent('#who')));
  result.captions = await Promise.all(pages.map((page) => page.$$eval('.tile:not(.me) figcaption', (nodes) => nodes.map((n) => n.textContent))));
  if (udpBlocked) result.protocols = await Promise.all(pages.map(selectedProtocol));
  if (artefacts && !udpBlocked) {
    await pages[0].screenshot({ path: `${artefacts}/room-first.png` });
    await pages[1].screenshot({ path: `${artefacts}/room-second.png` });
  }
  result.ok = frames.every((count) => count > 10);
});
