// The room client. The lobby (camera, microphone and speaker check, privacy notice) comes first
// when the link is good; then the room connection (room/connection.js, which reconnects and
// resumes by itself), the media link to the SFU (room/media.js, a fresh one per connection),
// one tile per member of the current session, the session's chat, and for the mediator the
// controls (room/controls.js). Plain ES modules, no build step, no third-party requests.

import { RoomConnection } from './room/connection.js';
import { fillSelect, levelMeter, listDevices, openDevices, speakerTest } from './room/devices.js';
import { MediaLink } from './room/media.js';
import { MediatorControls, sessionName } from './room/controls.js';

const $ = (id) => document.getElementById(id);
const token = decodeURIComponent(location.pathname.split('/').pop() || '');

const NOTICES = {
  waiting_for_admission: 'Il mediatore la farà entrare a breve.',
  private_session_in_progress: 'È in corso una sessione separata: attenda, per favore.',
  mediator_not_connected: 'Il mediatore non è ancora collegato: attenda, per favore.',
};
const ROLES = {
  mediator: 'Mediatore', party: 'Parte', lawyer: 'Avvocato', representative: 'Rappresentante',
  expert: 'CTU', segreteria_observer: 'Segreteria',
};
const CONNECTION = {
  connecting: 'Collegamento in corso…',
  reconnecting: 'Connessione persa: nuovo collegamento in corso…',
};
const QUALITY = { good: 'Connessione buona', fair: 'Connessione discreta', poor: 'Connessione debole' };
const BYES = {
  superseded: 'La stanza è stata aperta su un altro dispositivo o in un’altra scheda.',
  removed: 'Il mediatore l’ha fatta uscire dall’incontro.',
  invite_revoked: 'Il suo collegamento è stato revocato. Si rivolga alla segreteria dell’organismo.',
  room_expired: 'La stanza virtuale è chiusa: per un nuovo incontro si rivolga alla segreteria dell’organismo.',
  meeting_ended: 'L’incontro è terminato. Grazie per la partecipazione: per il prossimo incontro userà lo stesso collegamento.',
};

const state = {
  me: null,
  role: null,
  names: new Map(), // member id -> "Name (Role)"
  local: new MediaStream(),
  /** The opening of camera and microphone: a promise of the stream. */
  devices: null,
  choice: {},
  media: null,
  welcomed: false,
  /** The screen track this person shares, if any. */
  sharing: null,
  /** The screen share received: { publisher, track }. */
  screen: null,
  timerEndsAt: null,
};

const connection = new RoomConnection(token, { message: onMessage, state: onConnectionState });
const controls = new MediatorControls($('controls'), (message) => connection.command(message), label);

function label(member) {
  return state.names.get(member) || 'Partecipante';
}

function show(element, text) {
  element.hidden = !text;
  element.textContent = text || '';
}

// ------------------------------------------------------------------------------------ lobby

let stopMeter = () => {};

async function lobby() {
  $('enter').addEventListener('click', enter);
  state.devices = openDevices();
  try {
    state.local = await state.devices;
  } catch (error) {
    show($('device-problem'), 'Non è stato possibile usare microfono e videocamera: controlli i permessi del browser. Può comunque entrare.');
  }
  $('preview').srcObject = state.local;
  stopMeter = levelMeter(state.local, $('level'));
  await refreshDeviceLists();
  for (const [id, key] of [['camera', 'camera'], ['microphone', 'microphone']]) {
    $(id).addEventListener('change', async () => {
      state.choice[key] = $(id).value;
      stopMeter();
      for (const track of state.local.getTracks()) track.stop();
      state.devices = openDevices(state.choice);
      state.local = await state.devices;
      $('preview').srcObject = state.local;
      stopMeter = levelMeter(state.local, $('level'));
    });
  }
  $('speaker').addEventListener('change', () => { state.choice.speaker = $('speaker').value; });
  $('speaker-test').addEventListener('click', () => speakerTest(state.choice.speaker).catch(() => {}));
}

async function refreshDeviceLists() {
  const devices = await listDevices().catch(() => ({ cameras: [], microphones: [], speakers: [] }));
  const current = (kind) => state.local.getTracks().find((track) => track.kind === kind)?.getSettings().deviceId;
  fillSelect($('camera'), devices.cameras, current('video'), 'Videocamera');
  fillSelect($('microphone'), devices.microphones, current('audio'), 'Microfono');
  fillSelect($('speaker'), devices.speakers, state.choice.speaker, 'Altoparlante');
  $('speaker-choice').hidden = devices.speakers.length === 0 || !('setSinkId' in HTMLMediaElement.prototype);
}

function enter() {
  stopMeter();
  $('lobby').hidden = true;
  connection.open();
}

// ------------------------------------------------------------------------------------ room

function onConnectionState(connectionState) {
  show($('connection'), CONNECTION[connectionState]);
  if (connectionState === 'reconnecting' && state.media) {
    // The peer connection belongs to the room connection that ended: a fresh one follows.
    state.media.close();
    state.media = null;
  }
}

function tileFor(member) {
  let tile = $('tiles').querySelector(`[data-member="${CSS.escape(member)}"]`);
  if (!tile) {
    tile = document.createElement('figure');
    tile.className = 'tile';
    tile.dataset.member = member;
    const video = document.createElement('video');
    video.autoplay = true;
    video.playsInline = true;
    const caption = document.createElement('figcaption');
    tile.append(video, caption);
    $('tiles').append(tile);
    if (state.choice.speaker && video.setSinkId) video.setSinkId(state.choice.speaker).catch(() => {});
  }
  tile.querySelector('figcaption').textContent = label(member);
  return tile;
}

function attach(member, stream) {
  const video = tileFor(member).querySelector('video');
  if (video.srcObject !== stream) video.srcObject = stream;
}

function remember(members) {
  for (const member of members || []) {
    state.names.set(member.id, `${member.name} (${ROLES[member.role] || member.role})`);
  }
}

/** One tile per other member of the session; tiles of those who left it go. */
function showMembers(members) {
  const here = new Set(members.filter((member) => member.id !== state.me).map((member) => member.id));
  for (const tile of $('tiles').querySelectorAll('.tile:not(.me)')) {
    if (!here.has(tile.dataset.member)) tile.remove();
  }
  for (const member of here) {
    const tile = tileFor(member);
    const stream = state.media && state.media.streamOf(member);
    if (stream) attach(member, stream);
    tile.classList.toggle('offline', !members.find((m) => m.id === member).connected);
  }
  updateScreen();
}

function addPost(post) {
  const item = document.createElement('li');
  const from = document.createElement('span');
  from.className = 'from';
  from.textContent = post.from === state.me ? 'Lei' : label(post.from);
  if (post.post === 'chat') {
    const text = document.createElement('span');
    text.className = 'text';
    text.textContent = post.text;
    item.append(from, text);
  } else if (post.post === 'file') {
    const open = document.createElement('button');
    open.type = 'button';
    open.className = 'file-link secondary';
    open.textContent = `Documento: ${post.name}`;
    open.dataset.file = post.file;
    open.addEventListener('click', () => openFile(post.file, post.name));
    item.append(from, open);
  } else {
    return;
  }
  $('messages').append(item);
  $('messages').scrollTop = $('messages').scrollHeight;
}

// ------------------------------------------------------------------------------------ files

const FILE_TYPES = new Set(['application/pdf', 'image/png', 'image/jpeg', 'image/gif', 'image/webp']);

/** Asks the server with the link's token: the status (0 without network) and the JSON. */
async function api(path, method = 'GET', body = undefined) {
  const response = await fetch(path, { method, body, headers: { Authorization: `Bearer ${token}` } }).catch(() => null);
  if (!response) return { status: 0, body: {} };
  return { status: response.status, body: await response.json().catch(() => ({})) };
}

/** The mediator's list of shareable documents of the case file, each with a share button. */
async function loadCaseDocuments() {
  const { status, body } = await api('/api/v1/room-case-documents');
  const list = $('case-documents');
  if (status !== 200) return;
  list.replaceChildren(...body.documents.map((doc) => {
    const item = document.createElement('li');
    const name = document.createElement('span');
    name.textContent = doc.name;
    const share = document.createElement('button');
    share.type = 'button';
    share.className = 'small secondary';
    share.textContent = 'Mostra alla sessione';
    share.addEventListener('click', async () => {
      const copy = await api(`/api/v1/room-case-documents/${encodeURIComponent(doc.id)}/copy`, 'POST');
      if (copy.status === 201) connection.command({ type: 'share_file', file: copy.body.id, name: copy.body.name });
    });
    item.append(name, share);
    return item;
  }));
  if (body.documents.length === 0) {
    const empty = document.createElement('li');
    empty.className = 'hint';
    empty.textContent = 'Nessun documento condivisibile.';
    list.append(empty);
  }
}

async function uploadFile(file) {
  const status = $('file-status');
  if (!FILE_TYPES.has(file.type)) {
    status.textContent = 'Si possono condividere documenti PDF e immagini (PNG, JPEG, GIF, WebP).';
    return;
  }
  status.textContent = `Caricamento di ${file.name}…`;
  const { status: code, body } = await api(`/api/v1/room-files?name=${encodeURIComponent(file.name)}`, 'POST', file);
  if (code !== 201) {
    status.textContent = body.message || 'Caricamento non riuscito: controlli la connessione e riprovi.';
    return;
  }
  status.textContent = connection.command({ type: 'share_file', file: body.id, name: body.name })
    ? '' : 'Connessione assente: il documento sarà da condividere di nuovo.';
}

/** Opens a shared file in the viewer (PDF in the browser's own reader, images as they are). */
async function openFile(file, name) {
  const viewer = $('viewer');
  const body = $('viewer-body');
  $('viewer-title').textContent = name;
  $('viewer-info').textContent = 'Apertura…';
  body.replaceChildren();
  if (!viewer.open) viewer.showModal();
  const response = await fetch(`/api/v1/room-files/${encodeURIComponent(file)}`, {
    headers: { Authorization: `Bearer ${token}` },
  }).catch(() => null);
  if (!response || !response.ok) {
    $('viewer-info').textContent = 'Il documento non è disponibile.';
    return;
  }
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  viewer.dataset.url = url;
  const shown = blob.type === 'application/pdf' ? document.createElement('iframe') : document.createElement('img');
  shown.src = url;
  if (shown.tagName === 'IFRAME') shown.title = name; else shown.alt = name;
  body.append(shown);
  $('viewer-download').href = url;
  $('viewer-download').download = name;
  const kb = Math.max(1, Math.round(blob.size / 1024));
  $('viewer-info').textContent = `${blob.type === 'application/pdf' ? 'PDF' : 'Immagine'}, ${kb} KB`;
}

$('viewer-close').addEventListener('click', () => $('viewer').close());
$('viewer').addEventListener('close', () => {
  $('viewer-body').replaceChildren();
  if ($('viewer').dataset.url) URL.revokeObjectURL($('viewer').dataset.url);
  delete $('viewer').dataset.url;
});
$('file-input').addEventListener('change', () => {
  const [file] = $('file-input').files;
  $('file-input').value = '';
  if (file) uploadFile(file);
});

function place(presence) {
  const here = presence.place;
  if (presence.overview) {
    remember(presence.overview.members);
    controls.render(presence.overview, state.me);
  }
  $('chat').hidden = here.kind === 'waiting_room';
  if (here.kind === 'waiting_room') {
    show($('notice'), NOTICES[here.notice] || 'Attenda, per favore.');
    showMembers([]);
    state.timerEndsAt = null;
  } else {
    remember(here.members);
    const elsewhere = here.private_session_elsewhere && here.session_kind === 'plenary';
    show($('notice'), elsewhere ? 'È in corso una sessione separata con altri partecipanti.'
      : here.session_kind === 'caucus' ? `${sessionName(here.session)}: quanto si dice qui resta riservato.` : '');
    showMembers(here.members);
    state.timerEndsAt = here.timer_ends_at;
  }
  tickTimer();
}

function tickTimer() {
  if (!state.timerEndsAt) {
    show($('timer'), '');
    return;
  }
  const left = Math.max(0, Math.round((state.timerEndsAt - Date.now()) / 1000));
  const minutes = String(Math.floor(left / 60)).padStart(2, '0');
  const seconds = String(left % 60).padStart(2, '0');
  show($('timer'), `Tempo rimasto: ${minutes}:${seconds}`);
}

async function startMedia(iceServers) {
  // The lobby's devices (still opening if the person entered at once), or none.
  state.local = await (state.devices || openDevices(state.choice)).catch(() => state.local);
  state.devices = Promise.resolve(state.local);
  $('local').srcObject = state.local;
  applyToggles();
  state.media = new MediaLink(state.local, iceServers, (message) => connection.send(message), attach, showScreen);
  if (state.sharing) state.sharing.stop();
  setSharing(null);
  state.screen = null;
  updateScreen();
  await state.media.offer();
}

/** Shows a screen share large, above the tiles, while its track sends. */
function showScreen(publisher, track) {
  state.screen = { publisher, track };
  $('screen').querySelector('video').srcObject = new MediaStream([track]);
  for (const change of ['mute', 'unmute', 'ended']) track.addEventListener(change, updateScreen);
  updateScreen();
}

/** The screen share shows while it sends and its publisher is in this person's session. */
function updateScreen() {
  const figure = $('screen');
  const screen = state.screen;
  const here = screen && $('tiles').querySelector(`[data-member="${CSS.escape(screen.publisher)}"]`);
  figure.hidden = !here || screen.track.muted || screen.track.readyState === 'ended';
  if (screen) figure.querySelector('figcaption').textContent = `Schermo condiviso da ${label(screen.publisher)}`;
}

/** This person's own screen share: `track` while sharing, `null` when not. */
function setSharing(track) {
  state.sharing = track;
  const button = $('toggle-screen');
  button.hidden = !navigator.mediaDevices || !navigator.mediaDevices.getDisplayMedia;
  button.setAttribute('aria-pressed', String(Boolean(track)));
  button.textContent = track ? 'Interrompi la condivisione' : 'Condividi lo schermo';
}

async function toggleScreen() {
  if (!state.media) return;
  if (state.sharing) {
    state.sharing.stop();
    setSharing(null);
    await state.media.stopScreen();
    return;
  }
  let display;
  try {
    display = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
  } catch (error) {
    return; // The person chose not to share.
  }
  const [track] = display.getVideoTracks();
  track.addEventListener('ended', () => {
    // Stopped from the browser's own "stop sharing" bar.
    if (state.sharing === track) {
      setSharing(null);
      if (state.media) state.media.stopScreen();
    }
  });
  setSharing(track);
  await state.media.shareScreen(track, display);
}

function applyToggles() {
  for (const [button, kind, on, off] of [
    [$('toggle-microphone'), 'audio', 'Microfono attivo', 'Microfono spento'],
    [$('toggle-camera'), 'video', 'Videocamera attiva', 'Videocamera spenta'],
  ]) {
    const tracks = state.local.getTracks().filter((track) => track.kind === kind);
    const enabled = button.getAttribute('aria-pressed') === 'true';
    for (const track of tracks) track.enabled = enabled;
    button.textContent = enabled ? on : off;
    button.disabled = tracks.length === 0;
  }
}

async function onMessage(message) {
  switch (message.type) {
    case 'welcome':
      state.welcomed = true;
      state.me = message.member.id;
      state.role = message.member.role;
      if (state.role === 'mediator') loadCaseDocuments();
      $('who').textContent = `${message.member.name} (${ROLES[message.member.role] || message.member.role})`;
      $('stage').hidden = false;
      if (state.media) state.media.close();
      await startMedia(message.ice_servers || []);
      break;
    case 'event':
      onEvent(message.event);
      break;
    case 'sdp_answer':
    case 'sdp_offer':
      if (state.media) await state.media.handle(message);
      break;
    case 'active_speaker':
      for (const tile of $('tiles').querySelectorAll('.tile')) {
        tile.classList.toggle('speaking', tile.dataset.member === message.member);
      }
      break;
    case 'error':
      show($('notice'), message.message);
      if (!state.welcomed) {
        // Refused at the door (invalid, revoked or expired link, full room): nothing else to show.
        $('who').textContent = 'Non è stato possibile entrare nella stanza.';
        $('stage').hidden = true;
        if ($('lobby')) $('lobby').hidden = true;
      }
      break;
    case 'bye':
      if (BYES[message.reason]) {
        // Refused at the door, the preceding error already says why.
        if (state.welcomed) show($('notice'), BYES[message.reason]);
        $('stage').hidden = true;
        if (state.media) state.media.close();
        for (const track of state.local.getTracks()) track.stop();
      }
      break;
    default:
      break;
  }
}

function onEvent(event) {
  switch (event.kind) {
    case 'view':
      place(event.presence);
      // A view replaces what the person sees, history included.
      $('messages').replaceChildren();
      for (const post of event.history) addPost(post);
      break;
    case 'presence':
      place(event);
      break;
    case 'chat':
    case 'file_shared':
      addPost(event);
      break;
    case 'broadcast':
      show($('broadcast'), `Avviso del mediatore: ${event.text}`);
      break;
    case 'caucus_time_up':
      show($('broadcast'), 'Il tempo previsto per questa sessione separata è terminato.');
      break;
    default:
      break;
  }
}

$('chat-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const text = $('chat-text').value.trim();
  if (text && connection.command({ type: 'chat', text })) $('chat-text').value = '';
});

$('toggle-screen').addEventListener('click', toggleScreen);

for (const id of ['toggle-microphone', 'toggle-camera']) {
  $(id).addEventListener('click', () => {
    const pressed = $(id).getAttribute('aria-pressed') === 'true';
    $(id).setAttribute('aria-pressed', String(!pressed));
    applyToggles();
  });
}

setInterval(async () => {
  tickTimer();
  if (!state.media) {
    show($('quality'), '');
    return;
  }
  const quality = await state.media.quality().catch(() => null);
  show($('quality'), quality && QUALITY[quality]);
  if (quality) $('quality').dataset.quality = quality;
}, 2000);

navigator.mediaDevices?.addEventListener?.('devicechange', () => {
  if ($('lobby') && !$('lobby').hidden) refreshDeviceLists();
});

if (document.querySelector('main').dataset.lobby === '1') {
  lobby();
} else {
  // No lobby: the link or the room cannot be used; the connection says why.
  connection.open();
}
