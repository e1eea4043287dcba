// Screen sharing in three Chromium windows (mediator, party_a, party_b): party_a shares its
// screen, the others see it large; in a separate session of the mediator with party_b, party_b
// no longer sees it; back in the plenary it does; when party_a stops, it goes away everywhere.
// Prints one JSON line for `tests/tests/app/browser.rs`.
//
// Arguments: a JSON array of { id, link } (mediator, party_a, party_b), and the artefacts folder.
import { framesByPublisher, openPage, run, until } from './lib.mjs';

const [, , castJson, artefacts] = process.argv;
const cast = JSON.parse(castJson);
const screenShown = (page) => page.evaluate(() => {
  const figure = document.getElementById('screen');
  const video = figure.querySelector('video');
  const frames = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality().totalVideoFrames : 0;
  return !figure.hidden && frames > 0;
});
const screenHidden = (page) => page.evaluate(() => document.getElementById('screen').hidden);

await run(async (browser, result) => {
  const pages = [];
  for (const person of cast) pages.push(await openPage(browser, person.link));
  const [mediator, sharer, other] = pages;
  result.connected = await until(async () => {
    const all = await Promise.all(pages.map(framesByPublisher));
    return all.every((seen, i) => cast.every((person, j) => i === j || (seen[person.id] || 0) > 5));
  }, 30000);

  await sharer.click('#toggle-screen');
  await sharer.waitForSelector('#toggle-screen[aria-pressed="true"]', { timeout: 10000 });
  result.sharing_button = await sharer.textContent('#toggle-screen');
  result.shown = await until(async () => (await screenShown(mediator)) && (await screenShown(other)), 30000);
  result.caption = await other.textContent('#screen figcaption');
  if (artefacts) await other.screenshot({ path: `${artefacts}/screen-share.png` });

  await mediator.check(`#pick-${cast[2].id}`);
  await mediator.click('#start-caucus');
  result.hidden_in_caucus = await until(() => screenHidden(other), 10000);
  await mediator.click('#back-to-plenary');
  result.back_in_plenary = await until(() => screenShown(other), 15000);

  await sharer.click('#toggle-screen');
  result.stopped_everywhere = await until(async () => (await screenHidden(mediator)) && (await screenHidden(other)), 15000);
  result.ok = true;
});
