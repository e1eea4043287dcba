// Opens one link in Chromium and prints, as one JSON line, the notice the room page shows
// after it has spoken to the server (or an error). Used by `tests/tests/app/browser.rs`.
import { openPage, run } from './lib.mjs';

const [, , link, artefact] = process.argv;
await run(async (browser, result) => {
  const page = await openPage(browser, link);
  await page.waitForSelector('#notice:not([hidden])', { timeout: 10000 });
  result.notice = await page.textContent('#notice');
  if (artefact) await page.screenshot({ path: artefact });
  result.ok = true;
});
