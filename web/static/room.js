// The room client: joins from the personal link, negotiates audio and video with the SFU
// over the room WebSocket (docs/protocol.md), and shows one tile per person received.
// Plain ES module, no build step, no third-party requests.

const token = decodeURIComponent(location.pathname.split('/').pop() || '');
const who = document.getElementById('who');
const notice = document.getElementById('notice');
const tiles = document.getElementById('tiles');
const local = document.getElementById('local');

const NOTICES = {
  waiting_for_admission: 'Il mediatore la farà entrare a breve.',
  private_session_in_progress: 'È in corso una sessione separata: attenda, per favore.',
  mediator_not_connected: 'Il mediatore non è ancora collegato: attenda, per favore.',
};
const ROLES = {
  mediator: 'Mediatore', party: 'Parte', lawyer: 'Avvocato', representative: 'Rappresentante',
  expert: 'CTU', segreteria_observer: 'Segreteria',
};

const chat = document.getElementById('chat');
const messages = document.getElementById('messages');
const chatForm = document.getElementById('chat-form');
const chatText = document.getElementById('chat-text');

const names = new Map(); // member id -> "Name (Role)"
let pc = null;
let socket = null;
let welcomed = false;
let me = null;
let nextSeq = 1;

function send(message) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
}

function show(text) {
  notice.hidden = !text;
  notice.textContent = text || '';
}

function tileFor(member) {
  let tile = tiles.querySelector(`[data-member="${CSS.escape(member)}"]`);
  if (!tile) {
    tile = document.createElement('figure');
    tile.className = 'tile';
    tile.dataset.member = member;
    const video = document.createElement('video');
    video.autoplay = true;
    video.playsInline = true;
    const caption = document.createElement('figcaption');
    caption.textContent = names.get(member) || 'Partecipante';
    tile.append(video, caption);
    tiles.append(tile);
  }
  return tile;
}

function remember(members) {
  for (const member of members || []) {
    names.set(member.id, `${member.name} (${ROLES[member.role] || member.role})`);
    const caption = tiles.querySelector(`[data-member="${CSS.escape(member.id)}"] figcaption`);
    if (caption) caption.textContent = names.get(member.id);
  }
}

function addPost(post) {
  if (post.post !== 'chat') return;
  const item = document.createElement('li');
  const from = document.createElement('span');
  from.className = 'from';
  from.textContent = post.from === me ? 'Lei' : (names.get(post.from) || 'Partecipante');
  const text = document.createElement('span');
  text.className = 'text';
  text.textContent = post.text;
  item.append(from, text);
  messages.append(item);
  messages.scrollTop = messages.scrollHeight;
}

function place(presence) {
  const here = presence.place;
  chat.hidden = here.kind === 'waiting_room';
  if (here.kind === 'waiting_room') {
    show(NOTICES[here.notice] || 'Attenda, per favore.');
  } else {
    show(here.private_session_elsewhere && here.session_kind === 'plenary'
      ? 'È in corso una sessione separata con altri partecipanti.' : '');
    remember(here.members);
  }
}

async function startMedia(iceServers) {
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
  } catch (error) {
    show('Non è stato possibile usare microfono e videocamera: controlli i permessi del browser.');
    stream = new MediaStream();
  }
  local.srcObject = stream;
  pc = new RTCPeerConnection({ iceServers });
  for (const track of stream.getTracks()) pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
  if (stream.getTracks().length === 0) pc.addTransceiver('audio', { direction: 'recvonly' });
  pc.onicecandidate = (event) => {
    if (event.candidate) send({ type: 'ice_candidate', candidate: event.candidate.candidate, mid: event.candidate.sdpMid });
  };
  pc.ontrack = (event) => {
    const member = event.streams[0] ? event.streams[0].id : 'sconosciuto';
    const video = tileFor(member).querySelector('video');
    const stream = video.srcObject || new MediaStream();
    stream.addTrack(event.track);
    video.srcObject = stream;
  };
  await pc.setLocalDescription(await pc.createOffer());
  send({ type: 'sdp_offer', sdp: pc.localDescription.sdp });
}

async function onMessage(message) {
  switch (message.type) {
    case 'welcome':
      welcomed = true;
      me = message.member.id;
      nextSeq = message.last_command_seq + 1;
      who.textContent = `${message.member.name} (${ROLES[message.member.role] || message.member.role})`;
      await startMedia(message.ice_servers || []);
      break;
    case 'event':
      if (message.event.kind === 'view') {
        place(message.event.presence);
        // A new view replaces what the person sees, history included.
        messages.replaceChildren();
        for (const post of message.event.history) addPost(post);
      } else if (message.event.kind === 'presence') {
        place(message.event);
      } else if (message.event.kind === 'chat') {
        addPost(message.event);
      }
      break;
    case 'sdp_answer':
      await pc.setRemoteDescription({ type: 'answer', sdp: message.sdp });
      break;
    case 'sdp_offer':
      await pc.setRemoteDescription({ type: 'offer', sdp: message.sdp });
      await pc.setLocalDescription(await pc.createAnswer());
      send({ type: 'sdp_answer', sdp: pc.localDescription.sdp });
      break;
    case 'active_speaker':
      for (const tile of tiles.querySelectorAll('.tile')) {
        tile.classList.toggle('speaking', tile.dataset.member === message.member);
      }
      break;
    case 'error':
      show(message.message);
      if (!welcomed) {
        // Refused at the door (invalid, revoked or expired link, full room): nothing else to show.
        who.textContent = 'Non è stato possibile entrare nella stanza.';
        tiles.hidden = true;
      }
      break;
    case 'bye':
      if (message.reason === 'superseded') show('La stanza è stata aperta su un altro dispositivo.');
      break;
    default:
      break;
  }
}

chatForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = chatText.value.trim();
  if (!text) return;
  send({ type: 'chat', seq: nextSeq++, text });
  chatText.value = '';
});

function connect() {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  socket = new WebSocket(`${scheme}://${location.host}/ws/v1`);
  socket.onopen = () => send({ type: 'hello', v: 1, token });
  socket.onmessage = (event) => onMessage(JSON.parse(event.data));
}

connect();
