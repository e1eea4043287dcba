// The mediator's controls: where every member is (the `overview` of presence), and the
// commands of docs/protocol.md — admit, send to the waiting room, remove, caucus, move, timer,
// back to plenary. Rendered again from each presence; nothing is kept but the selection.

const WHERE = {
  waiting_to_enter: 'in attesa di entrare',
  sent_to_waiting_room: 'in sala d\u2019attesa',
  held_for_mediator: 'in attesa del mediatore',
};

/** The name of a session as people read it. */
export function sessionName(session) {
  return session === 0 ? 'Sessione plenaria' : `Sessione separata ${session}`;
}

function button(text, onClick, className = 'small') {
  const element = document.createElement('button');
  element.type = 'button';
  element.className = className;
  element.textContent = text;
  element.addEventListener('click', onClick);
  return element;
}

export class MediatorControls {
  /**
   * @param {HTMLElement} panel the `#controls` aside
   * @param {function(object): boolean} command sends a numbered command
   * @param {function(string): string} label "Name (Role)" of a member id
   */
  constructor(panel, command, label) {
    this.panel = panel;
    this.command = command;
    this.label = label;
    this.selected = new Set();
    this.roster = panel.querySelector('#roster');
    this.sessions = panel.querySelector('#sessions');
    this.startCaucus = panel.querySelector('#start-caucus');
    this.startCaucus.addEventListener('click', () => {
      if (this.command({ type: 'start_caucus', members: [...this.selected] })) this.selected.clear();
    });
    panel.querySelector('#back-to-plenary').addEventListener('click', () => this.command({ type: 'back_to_plenary' }));
    panel.querySelector('#end-meeting').addEventListener('click', () => {
      if (confirm('Terminare l\u2019incontro per tutti? Le sessioni separate si chiudono e alla prossima riunione i partecipanti attenderanno di essere fatti entrare.')) {
        this.command({ type: 'end_meeting' });
      }
    });
    const form = panel.querySelector('#broadcast-form');
    const text = panel.querySelector('#broadcast-text');
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      if (text.value.trim() && this.command({ type: 'broadcast', text: text.value.trim() })) text.value = '';
    });
  }

  /** Shows `overview` (members and sessions); `me` is the mediator's own member id. */
  render(overview, me) {
    this.panel.hidden = false;
    const open = overview.sessions.map((session) => session.session);
    const others = overview.members.filter((member) => member.id !== me);
    for (const id of [...this.selected]) {
      if (!others.some((member) => member.id === id)) this.selected.delete(id);
    }
    this.roster.replaceChildren(...others.map((member) => this.memberRow(member, open)));
    this.sessions.replaceChildren(...overview.sessions.map((session) => this.sessionRow(session, overview.members, me)));
    this.startCaucus.disabled = this.selected.size === 0;
  }

  memberRow(member, open) {
    const row = document.createElement('li');
    row.dataset.member = member.id;
    const pick = document.createElement('input');
    pick.type = 'checkbox';
    pick.id = `pick-${member.id}`;
    pick.checked = this.selected.has(member.id);
    pick.addEventListener('change', () => {
      if (pick.checked) this.selected.add(member.id); else this.selected.delete(member.id);
      this.startCaucus.disabled = this.selected.size === 0;
    });
    const name = document.createElement('label');
    name.htmlFor = pick.id;
    name.textContent = this.label(member.id);
    const where = document.createElement('span');
    where.className = 'where';
    const place = member.location === 'in_session' ? sessionName(member.session) : WHERE[member.location] || '';
    where.textContent = `${place}${member.connected ? '' : ' \u00b7 non collegato'}`;
    row.classList.toggle('offline', !member.connected);
    const actions = document.createElement('div');
    actions.className = 'actions';
    if (member.location === 'in_session') {
      actions.append(button('In sala d\u2019attesa', () => this.command({ type: 'send_to_waiting_room', member: member.id })));
    } else if (member.connected) {
      actions.append(button('Fai entrare', () => this.command({ type: 'admit', member: member.id }), 'small primary'));
    }
    const move = document.createElement('select');
    move.setAttribute('aria-label', `Sposta ${this.label(member.id)} in`);
    const first = new Option('Sposta in\u2026', '');
    move.append(first, ...open
      .filter((session) => !(member.location === 'in_session' && member.session === session))
      .map((session) => new Option(sessionName(session), String(session))));
    move.addEventListener('change', () => {
      if (move.value !== '') this.command({ type: 'move_to_session', member: member.id, session: Number(move.value) });
    });
    actions.append(move, button('Rimuovi', () => {
      if (confirm(`Rimuovere ${this.label(member.id)} dall\u2019incontro?`)) {
        this.command({ type: 'remove', member: member.id, revoke_invite: false });
      }
    }, 'small danger'));
    row.append(pick, name, where, actions);
    return row;
  }

  sessionRow(session, members, me) {
    const row = document.createElement('li');
    row.dataset.session = String(session.session);
    const title = document.createElement('strong');
    title.textContent = sessionName(session.session);
    const inside = members
      .filter((member) => member.location === 'in_session' && member.session === session.session)
      .map((member) => (member.id === me ? 'Lei' : this.label(member.id)));
    const who = document.createElement('span');
    who.className = 'where';
    who.textContent = inside.length ? inside.join(', ') : 'nessuno';
    const actions = document.createElement('div');
    actions.className = 'actions';
    const mediatorHere = members.some((member) => member.id === me && member.location === 'in_session' && member.session === session.session);
    if (!mediatorHere) actions.append(button('Raggiungi', () => this.command({ type: 'join_session', session: session.session })));
    if (session.session !== 0) {
      const minutes = document.createElement('input');
      minutes.type = 'number';
      minutes.min = '1';
      minutes.max = '240';
      minutes.value = '15';
      minutes.setAttribute('aria-label', `Minuti per la ${sessionName(session.session).toLowerCase()}`);
      actions.append(
        minutes,
        button('Imposta il tempo', () => this.command({
          type: 'set_caucus_timer', session: session.session, ends_at: Date.now() + Number(minutes.value) * 60000,
        })),
        button('Chiudi la sessione', () => this.command({ type: 'end_caucus', session: session.session }), 'small danger'),
      );
      if (session.timer_ends_at) {
        const ends = new Date(session.timer_ends_at);
        who.textContent += ` \u00b7 termina alle ${ends.toLocaleTimeString('it-IT', { hour: '2-digit', minute: '2-digit' })}`;
      }
    }
    row.append(title, who, actions);
    return row;
  }
}
