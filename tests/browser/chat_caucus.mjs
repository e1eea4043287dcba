// party_a and party_b open their links in Chromium; once both are in the plenary the script
// prints "ready" and waits for "go" on stdin (the test starts a caucus with party_a meanwhile);
// then party_a writes in the chat and shares a PDF, and opens it in the viewer. After a pause it
// prints, as one JSON line, the chat lines each page shows. Used by `tests/tests/app/browser.rs`.

const PDF = '%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n'
  + '3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 300 144]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n';
import { createInterface } from 'node:readline';
import { openPage, run } from './lib.mjs';

const [, , linkA, linkB, artefacts] = process.argv;
const lines = createInterface({ input: process.stdin });
const nextLine = () => new Promise((resolve) => lines.once('line', resolve));

await run(async (browser, result) => {
  const pages = [];
  for (const link of [linkA, linkB]) {
    const page = await openPage(browser, link);
    await page.waitForSelector('#chat:not([hidden])', { timeout: 10000 });
    pages.push(page);
  }
  console.log('ready');
  await nextLine();
  const [a, b] = pages;
  await a.fill('#chat-text', 'La nostra proposta riservata');
  await a.click('#chat-form button');
  await a.waitForFunction(() => document.querySelectorAll('#messages li').length >= 1, null, { timeout: 5000 });
  await a.setInputFiles('#file-input', { name: 'proposta.pdf', mimeType: 'application/pdf', buffer: Buffer.from(PDF) });
  await a.waitForSelector('#messages button.file-link', { timeout: 10000 });
  await a.click('#messages button.file-link');
  await a.waitForFunction(() => document.getElementById('viewer-info').textContent.includes('PDF'), null, { timeout: 10000 });
  result.viewer = {
    title: await a.textContent('#viewer-title'),
    info: await a.textContent('#viewer-info'),
    frame: await a.$eval('#viewer-body iframe', (frame) => frame.src.startsWith('blob:')),
  };
  if (artefacts) await a.screenshot({ path: `${artefacts}/pdf-viewer.png` });
  await a.click('#viewer-close');
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const read = (page) => page.$$eval('#messages li', (items) => items.map((item) => item.textContent));
  result.a = await read(a);
  result.b = await read(b);
  result.notice_b = await b.textContent('#notice');
  if (artefacts) {
    await a.screenshot({ path: `${artefacts}/chat-caucus-inside.png` });
    await b.screenshot({ path: `${artefacts}/chat-caucus-outside.png` });
  }
  result.ok = true;
});
lines.close();
