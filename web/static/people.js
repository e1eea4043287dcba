// The add-participant form of a case, improved where JavaScript runs: as the clerk types a
// name or a codice fiscale, the registry is asked who may be the same person, and their record
// can be chosen instead of registering a duplicate. Without JavaScript the server does the
// same check when the form is sent.

const REASONS = {
  same_fiscal_code: 'stesso codice fiscale',
  same_vat_number: 'stessa partita IVA',
  same_name_and_birth_date: 'stesso nome e data di nascita',
};

const form = document.querySelector('form[data-duplicates]');
if (form) {
  const box = form.querySelector('.duplicates');
  const fields = ['given_name', 'family_name', 'birth_date', 'fiscal_code'].map((name) => form.elements[name]);
  let timer = null;
  let asked = '';

  const show = (candidates) => {
    box.replaceChildren();
    box.hidden = candidates.length === 0;
    if (candidates.length === 0) return;
    const title = document.createElement('p');
    title.textContent = 'Già nell\'anagrafica: se è la stessa persona, scelga la sua scheda.';
    box.append(title);
    for (const { person, reason } of candidates) {
      const label = document.createElement('label');
      label.className = 'check';
      const radio = document.createElement('input');
      radio.type = 'radio';
      radio.name = 'person';
      radio.value = person.id;
      label.append(radio, ` ${person.display_name} (${REASONS[reason] ?? reason})`);
      box.append(label);
    }
  };

  const ask = async () => {
    const query = new URLSearchParams();
    for (const field of fields) {
      if (field && field.value.trim()) query.set(field.name, field.value.trim());
    }
    const text = query.toString();
    if (text === asked) return;
    asked = text;
    if (!query.has('family_name') && !query.has('fiscal_code')) {
      show([]);
      return;
    }
    try {
      const response = await fetch(`${form.dataset.duplicates}?${text}`, {
        credentials: 'same-origin',
        headers: { Accept: 'application/json' },
      });
      if (!response.ok || text !== asked) return;
      const body = await response.json();
      show(body.candidates ?? []);
    } catch {
      // Offline or refused: the server checks again when the form is sent.
    }
  };

  for (const field of fields) {
    field?.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(ask, 300);
    });
  }
}
