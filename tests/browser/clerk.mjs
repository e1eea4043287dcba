// The segreteria's main path in Chromium, as a clerk does it: log in, enrol a mediator,
// register a case, add two parties and their lawyers (the registry warns of a duplicate as
// one types), appoint the mediator proposed by the engine, schedule an online meeting, see the
// invitations in the case's mail, and open the link handed over for the party without an
// address: it reaches the room's lobby. Prints the figures as one JSON line.
import { openPage, run } from './lib.mjs';

const [, , base, username, password, meetingDate, artefacts] = process.argv;

await run(async (browser, result) => {
  const page = await openPage(browser, `${base}/login`, { lobby: true, viewport: { width: 1200, height: 900 } });
  const shot = (name) => page.screenshot({ path: `${artefacts}/${name}.png`, fullPage: true });

  await page.fill('#username', username);
  await page.fill('#password', password);
  await page.click('button[type=submit]');
  await page.waitForURL(`${base}/`);

  // The mediators' register.
  await page.click('nav >> text=Mediatori');
  await page.fill('#m-name', 'Avv. Anna Neri');
  await page.fill('#m-email', 'anna.neri@example.invalid');
  await page.check('input[name=subjects][value=locazione]');
  await page.click('button:has-text("Iscrivi")');
  await page.waitForSelector('td:has-text("Avv. Anna Neri")');

  // A new case.
  await page.click('nav >> text=Pratiche');
  await page.fill('#title', 'Locazione immobile di via Roma 10');
  await page.selectOption('#kind', 'mandatory');
  await page.selectOption('#subject', 'locazione');
  await page.fill('#filed_on', meetingDate);
  await page.fill('#value', '12.500,00');
  await page.click('button:has-text("Registra la pratica")');
  await page.waitForSelector('h1:has-text("Pratica n.")');
  result.caseTitle = await page.textContent('h1');
  result.caseUrl = page.url();

  const addParticipant = async (fields) => {
    await page.selectOption('#p-role', fields.role);
    await page.selectOption('#p-side', fields.side || '');
    if (fields.represents) {
      await page.selectOption('#p-represents', { label: fields.represents });
    }
    await page.fill('#p-given', fields.given);
    await page.fill('#p-family', fields.family);
    await page.fill('#p-cf', fields.cf || '');
    await page.fill('#p-birth', fields.birth || '');
    await page.fill('#p-email', fields.email || '');
    await page.click('button:has-text("Aggiungi alla pratica")');
    await page.waitForSelector(`td:has-text("${fields.given} ${fields.family}")`);
  };
  await addParticipant({ role: 'party', side: 'istante', given: 'Mario', family: 'Rossi', cf: 'RSSMRA85T10A562S', birth: '1985-12-10', email: 'mario.rossi@example.invalid' });
  await addParticipant({ role: 'lawyer', represents: 'Mario Rossi', given: 'Carlo', family: 'Verdi', email: 'avv.verdi@example.invalid' });
  await addParticipant({ role: 'party', side: 'chiamata', given: 'Lucia', family: 'Bianchi' });

  // As one types the codice fiscale of someone already registered, the form says so.
  await page.fill('#p-cf', 'RSSMRA85T10A562S');
  await page.waitForSelector('.duplicates:not([hidden]) >> text=Rossi Mario', { timeout: 5000 });
  result.duplicateWarning = (await page.textContent('.duplicates')).trim();
  await page.fill('#p-cf', '');

  await addParticipant({ role: 'lawyer', represents: 'Lucia Bianchi', given: 'Sara', family: 'Gialli', email: 'avv.gialli@example.invalid' });
  result.participants = await page.$$eval('#partecipanti tbody tr', (rows) => rows.map((row) => row.cells[0].textContent.trim()));

  // The engine proposes the mediator; the clerk appoints.
  await page.click('button:has-text("Proponi e nomina")');
  await page.waitForSelector('#mediatore strong:has-text("Avv. Anna Neri")');
  result.appointment = (await page.textContent('#mediatore')).replace(/\s+/g, ' ').trim();

  // An online meeting.
  await page.fill('#m-date', meetingDate);
  await page.fill('#m-time', '10:00');
  await page.fill('#m-minutes', '90');
  await page.click('button:has-text("Fissa l\'incontro")');
  await page.waitForSelector('.notice');
  result.notice = (await page.textContent('.notice')).replace(/\s+/g, ' ').trim();
  const handedOver = await page.$$eval('.links code', (codes) => codes.map((code) => code.textContent.trim()));
  result.handedOver = handedOver;
  result.meetings = await page.$$eval('#incontri .meetings li strong', (items) => items.map((item) => item.textContent.trim()));
  await shot('clerk-case');

  // The invitations in the case's mail, as the worker sends them.
  await page.waitForTimeout(1000);
  await page.reload();
  result.mails = await page.$$eval('#posta tbody tr', (rows) => rows.map((row) => [...row.cells].map((cell) => cell.textContent.trim())));

  // The agenda shows the meeting in its week.
  await page.goto(`${base}/agenda?vista=settimana&data=${meetingDate}`);
  result.agenda = (await page.textContent('main')).replace(/\s+/g, ' ');
  await shot('clerk-agenda');

  // The party without an address opens the link the clerk handed over.
  // (The server's public URL is not the test's port: the path is what matters.)
  const lobby = await openPage(browser, `${base}${new URL(handedOver[0]).pathname}`, { lobby: true });
  await lobby.waitForSelector('#enter', { timeout: 10000 });
  result.lobby = (await lobby.textContent('main')).replace(/\s+/g, ' ');
  await lobby.screenshot({ path: `${artefacts}/clerk-link-lobby.png` });
  result.ok = true;
});
