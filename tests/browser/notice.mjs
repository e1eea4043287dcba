// Opens one link in Chromium and prints, as one JSON line, the notice the room page shows
// after it has spoken to the server (or an error). Used by `tests/tests/app/browser.rs`.
import { chromium } from 'playwright-core';

const [, , link, artefact] = process.argv;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
  ],
});
const result = {};
try {
  const page = await (await browser.newContext()).newPage();
  await page.goto(link);
  await page.waitForSelector('#notice:not([hidden])', { timeout: 10000 });
  result.notice = await page.textContent('#notice');
  if (artefact) await page.screenshot({ path: artefact });
} catch (error) {
  result.error = String(error);
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
