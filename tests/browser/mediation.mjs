// A mediation in four Chromium windows: the mediator and three others open their personal
// links. The mediator checks devices in the lobby, enters, and admits the others from the
// controls; everyone sees everyone. The mediator takes the first party into a separate session
// (the others' video from inside stops; they see the notice), then brings everyone back (video
// resumes). Finally one window loses its network and gets it back: it rejoins by itself and its
// chat is intact. Last, the mediator ends the meeting for everyone. Prints one JSON line of observations for `tests/tests/app/browser.rs`.
//
// Arguments: a JSON array of { name, id, link } (the mediator first), and the artefacts folder.
import { framesByPublisher, openPage, run, until } from './lib.mjs';

const [, , castJson, artefacts] = process.argv;
const cast = JSON.parse(castJson);
const [mediator, inside, ...outside] = cast;
const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const shot = (page, name) => page.screenshot({ path: `${artefacts}/${name}.png`, fullPage: true });
const chatLines = (page) => page.$$eval('#messages li', (items) => items.map((item) => item.textContent));

/** Whether every page decodes video from every other person (more than `frames` frames). */
async function everyoneSeesEveryone(pages, frames) {
  const all = await Promise.all(pages.map(framesByPublisher));
  return all.every((seen, i) => cast.every((person, j) => i === j || (seen[person.id] || 0) > frames));
}

await run(async (browser, result) => {
  result.steps = [];
  const step = (name) => result.steps.push(name);
  const pages = [];
  // The mediator's lobby: preview, devices, privacy notice.
  const lobby = await openPage(browser, mediator.link, { lobby: true, viewport: { width: 1280, height: 900 } });
  await lobby.waitForFunction(() => document.getElementById('preview').srcObject?.getVideoTracks().length > 0, null, { timeout: 10000 });
  await lobby.waitForFunction(() => document.getElementById('camera').options.length > 0, null, { timeout: 10000 });
  result.lobby = {
    joining: await lobby.textContent('#lobby p'),
    cameras: await lobby.$$eval('#camera option', (options) => options.length),
    microphones: await lobby.$$eval('#microphone option', (options) => options.length),
    privacy: await lobby.textContent('.privacy-notice'),
  };
  await shot(lobby, 'join-page');
  await lobby.click('#enter');
  pages.push(lobby);
  step('lobby');

  // The others arrive and wait.
  for (const person of [inside, ...outside]) pages.push(await openPage(browser, person.link));
  const waiting = pages[1];
  await waiting.waitForSelector('#notice:not([hidden])', { timeout: 10000 });
  result.waiting_notice = await waiting.textContent('#notice');
  await shot(waiting, 'waiting-room');
  step('waiting');

  // The mediator admits each one from the controls.
  for (const person of [inside, ...outside]) {
    const admit = `#roster li[data-member="${person.id}"] button:has-text("Fai entrare")`;
    await lobby.waitForSelector(admit, { timeout: 10000 });
    await lobby.click(admit);
  }
  result.everyone_sees_everyone = await until(() => everyoneSeesEveryone(pages, 10), 40000);
  result.captions = await Promise.all(pages.map((page) => page.$$eval('.tile:not(.me) figcaption', (nodes) => nodes.map((n) => n.textContent).sort())));
  await shot(lobby, 'mediator-controls');
  await shot(pages[1], 'room');
  await pages[2].setViewportSize({ width: 390, height: 844 });
  await shot(pages[2], 'room-phone');
  await pages[2].setViewportSize({ width: 1000, height: 700 });
  step('plenary');

  // A separate session with the first party.
  await lobby.check(`#pick-${inside.id}`);
  await lobby.click('#start-caucus');
  await lobby.waitForSelector('#sessions li[data-session="1"]', { timeout: 10000 });
  const outsidePages = pages.slice(2);
  await Promise.all(outsidePages.map((page) => page.waitForFunction(() => document.getElementById('notice').textContent.includes('sessione separata'), null, { timeout: 10000 })));
  await pause(1000);
  const before = await Promise.all(outsidePages.map(framesByPublisher));
  await pause(2500);
  const after = await Promise.all(outsidePages.map(framesByPublisher));
  result.caucus = {
    frames_from_inside_while_outside: after.map((seen, i) => [mediator.id, inside.id]
      .map((id) => (seen[id] || 0) - (before[i][id] || 0))),
    frames_between_outsiders: (after[0][outside[1].id] || 0) - (before[0][outside[1].id] || 0),
    notices: await Promise.all(outsidePages.map((page) => page.textContent('#notice'))),
    inside_notice: await pages[1].textContent('#notice'),
  };
  // The caucus gets ten minutes; a notice reaches every session.
  await lobby.fill('#sessions li[data-session="1"] input[type="number"]', '10');
  await lobby.click('#sessions li[data-session="1"] button:has-text("Imposta il tempo")');
  await pages[1].waitForSelector('#timer:not([hidden])', { timeout: 10000 });
  result.timer_inside = await pages[1].textContent('#timer');
  result.timer_outside_hidden = await pages[2].$eval('#timer', (timer) => timer.hidden);
  await lobby.fill('#broadcast-text', 'Riprendiamo tutti insieme alle 11');
  await lobby.click('#broadcast-form button');
  await Promise.all(pages.map((page) => page.waitForSelector('#broadcast:not([hidden])', { timeout: 10000 })));
  result.broadcast = await Promise.all(pages.map((page) => page.textContent('#broadcast')));
  await shot(pages[2], 'caucus-outside');
  await shot(lobby, 'caucus-mediator');
  step('caucus');

  // Everyone back together: the video from inside comes back.
  const paused = await Promise.all(outsidePages.map(framesByPublisher));
  await lobby.click('#back-to-plenary');
  result.plenary_restores_video = await until(async () => {
    const now = await Promise.all(outsidePages.map(framesByPublisher));
    return now.every((seen, i) => (seen[inside.id] || 0) > (paused[i][inside.id] || 0) + 3);
  }, 20000);
  step('back to plenary');

  // A document of the case file, shown by the mediator to the whole plenary.
  await lobby.click('#case-documents button:has-text("Mostra alla sessione")');
  result.case_document_seen = await Promise.all(pages.map((page) => page
    .waitForSelector('#messages button.file-link:has-text("perizia.pdf")', { timeout: 10000 })
    .then(() => true, () => false)));
  step('case document');

  // The network of the last window drops and comes back.
  const [away] = pages.slice(-1);
  await away.fill('#chat-text', 'Prima del distacco');
  await away.click('#chat-form button');
  await lobby.waitForFunction(() => [...document.querySelectorAll('#messages li')].some((li) => li.textContent.includes('Prima del distacco')), null, { timeout: 5000 });
  await away.context().setOffline(true);
  await away.waitForSelector('#connection:not([hidden])', { timeout: 10000 });
  result.offline_notice = await away.textContent('#connection');
  await shot(away, 'network-lost');
  await lobby.fill('#chat-text', 'Mentre era scollegato');
  await lobby.click('#chat-form button');
  await pause(1000);
  await away.context().setOffline(false);
  await away.waitForSelector('#connection', { state: 'hidden', timeout: 20000 });
  result.rejoined_sees_video = await until(async () => ((await framesByPublisher(away))[mediator.id] || 0) > 10, 20000);
  result.chat_after_rejoin = await chatLines(away);
  step('network restored');

  // The mediator ends the meeting: every window says so, and nobody reconnects.
  lobby.once('dialog', (dialog) => dialog.accept());
  await lobby.click('#end-meeting');
  await Promise.all(pages.map((page) => page.waitForFunction(() => document.getElementById('notice').textContent.includes('incontro è terminato'), null, { timeout: 10000 })));
  await pause(1000);
  result.after_end = await Promise.all(pages.map((page) => page.evaluate(() => ({
    stage_hidden: document.getElementById('stage').hidden,
    reconnecting: !document.getElementById('connection').hidden,
  }))));
  await shot(pages[1], 'meeting-ended');
  step('meeting ended');
  result.ok = true;
});

