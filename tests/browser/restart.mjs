// The mediator and party_a talk in two Chromium windows; party_a writes in the chat. The script
// prints "ready" and waits for "go" on stdin while the test restarts the server; then both
// windows must come back by themselves (no reload), see each other again and still show the
// chat. Prints one JSON line for `tests/tests/app/browser.rs`.
import { createInterface } from 'node:readline';
import { framesByPublisher, openPage, run, until } from './lib.mjs';

const [, , castJson, artefacts] = process.argv;
const cast = JSON.parse(castJson);
const lines = createInterface({ input: process.stdin });
const nextLine = () => new Promise((resolve) => lines.once('line', resolve));
const seesAll = async (pages) => {
  const all = await Promise.all(pages.map(framesByPublisher));
  return all.every((seen, i) => cast.every((person, j) => i === j || (seen[person.id] || 0) > 10));
};

await run(async (browser, result) => {
  const pages = [];
  for (const person of cast) pages.push(await openPage(browser, person.link));
  result.before = await until(() => seesAll(pages), 20000);
  await pages[1].fill('#chat-text', 'Prima del riavvio');
  await pages[1].click('#chat-form button');
  await pages[0].waitForFunction(() => document.querySelectorAll('#messages li').length > 0, null, { timeout: 5000 });
  const loads = await Promise.all(pages.map((page) => page.evaluate(() => performance.timeOrigin)));
  console.log('ready');
  await nextLine();
  await Promise.all(pages.map((page) => page.waitForSelector('#connection', { state: 'hidden', timeout: 30000 })));
  result.after = await until(() => seesAll(pages), 30000);
  result.reloaded = (await Promise.all(pages.map((page) => page.evaluate(() => performance.timeOrigin))))
    .some((origin, i) => origin !== loads[i]);
  result.chat = await Promise.all(pages.map((page) => page.$$eval('#messages li', (items) => items.map((item) => item.textContent))));
  if (artefacts) await pages[0].screenshot({ path: `${artefacts}/after-restart.png` });
  result.ok = true;
});
lines.close();
