// The dashboard page: renders the state pushed over the websocket; buttons ask the node.
'use strict';
const $ = (id) => document.getElementById(id);
let hello = null, socket = null, updates = 0, lastCount = 0, nextId = 1;
const barRows = {}, motorRows = {};
// The run's token, from the URL printed in the terminal: without it the page only watches.
const token = new URLSearchParams(location.search).get('token') || '';
const BUTTONS = ['capture-neutral', 'estop', 'resume'];
const TITLES = Object.fromEntries(BUTTONS.map((id) => [id, $(id).title]));

// Buttons work only on a connection the server accepted with the token; otherwise they are
// disabled, and the banner says why.
function setAccess(readOnly) {
  const banner = $('read-only');
  banner.hidden = !readOnly; banner.textContent = readOnly ? `READ-ONLY: ${readOnly.replace(/^read-only: /, '')}` : '';
  for (const id of BUTTONS) { $(id).disabled = Boolean(readOnly); $(id).title = readOnly || TITLES[id]; }
}

function bar(container, label, classes) {
  const row = document.createElement('div'); row.className = 'bar';
  const name = document.createElement('span'); name.textContent = label;
  const track = document.createElement('div'); track.className = 'track';
  const fills = classes.map((c) => { const f = document.createElement('div'); f.className = `fill ${c}`; track.appendChild(f); return f; });
  row.append(name, track); container.appendChild(row);
  return { row, name, fills };
}

function setup(message) {
  hello = message;
  setAccess(message.read_only);
  $('robot-name').textContent = `· ${message.robot} (e-stop: ${message.estop_mode})`;
  $('bars').textContent = ''; $('motors').textContent = '';
  message.channel_names.slice(0, 52).forEach((n, i) => { barRows[i] = bar($('bars'), n, ['human', 'robot']); });
  message.motor_names.forEach((n, i) => {
    const row = motorRows[i] = bar($('motors'), n, ['motor']);
    // The native value only when asked (hover): a title write per motor per update costs
    // the page a style pass.
    row.row.onmouseenter = () => {
      const x = lastCommands ? lastCommands[i] ?? 0 : 0, [lo, hi, unit] = message.limits[i];
      row.name.title = `${(lo + x * (hi - lo)).toFixed(1)} ${unit} (limits ${lo}..${hi})`;
    };
  });
}

// Writes only where a value changed, and bars as transforms: most blendshapes sit still most
// of the time, and a width or text change costs the browser a layout and a paint of the page
// (a transform only a composite), which on a 2-core robot computer is time taken from the
// pipeline.
function setFraction(fill, fraction) {
  const scale = `scaleX(${Math.min(1, Math.max(0, fraction)).toFixed(3)})`;
  if (fill.style.transform !== scale) fill.style.transform = scale;
}

function setText(id, text) {
  const element = $(id), value = String(text);
  if (element.textContent !== value) element.textContent = value;
}

let lastLatency = '', lastHealth = '', lastCommands = null;

function render(state) {
  updates += 1;
  drawFace($('human-face').getContext('2d'), hello.channel_names, state.human, 'human');
  drawFace($('robot-face').getContext('2d'), hello.channel_names, state.robot, 'robot');
  for (const [i, row] of Object.entries(barRows)) {
    setFraction(row.fills[0], state.human ? state.human[i] : 0);
    setFraction(row.fills[1], state.robot ? state.robot[i] : 0);
  }
  if (state.commands) {
    lastCommands = state.commands;
    for (const [i, row] of Object.entries(motorRows)) {
      const x = state.commands[i] ?? 0;
      setFraction(row.fills[0], x);
      const edge = x < 0.02 || x > 0.98;
      if (row.fills[0].classList.contains('edge') !== edge) row.fills[0].classList.toggle('edge', edge);
    }
  }
  setText('rate-human', state.rates.human); setText('rate-robot', state.rates.robot);
  if (state.health) {
    const actuation = state.health.find((h) => h.name === 'face_actuation: actuation');
    setText('rate-commands', actuation ? actuation.values.command_rate_hz : '–');
    // Both change about once a second (as /diagnostics does): rebuilt only then.
    const latency = JSON.stringify(state.latency), health = JSON.stringify(state.health);
    if (latency !== lastLatency) { lastLatency = latency; renderLatency(state.latency); }
    if (health !== lastHealth) { lastHealth = health; renderHealth(state.health); }
  }
}

function renderLatency(latency) {
  if (!latency || !Object.keys(latency.stages).length) return;
  $('latency-frames').textContent = latency.frames;
  const body = $('latency-table').tBodies[0]; body.textContent = '';
  for (const [name, s] of Object.entries(latency.stages)) {
    const tr = body.insertRow();
    [name, s.mean, s.std, s.p95, s.p99, s.max].forEach((x, i) => { tr.insertCell().textContent = i ? x.toFixed(2) : x; });
  }
  const canvas = $('histogram'), ctx = canvas.getContext('2d'), { edges_ms, counts } = latency.histogram;
  const w = canvas.width, h = canvas.height - 18, peak = Math.max(1, ...counts), bw = w / counts.length;
  ctx.clearRect(0, 0, w, canvas.height); ctx.fillStyle = '#3b6fd8';
  counts.forEach((n, i) => { const bh = h * n / peak; ctx.fillRect(i * bw + 1, h - bh, bw - 2, bh); });
  ctx.fillStyle = '#556'; ctx.font = '10px sans-serif';
  for (let i = 0; i < edges_ms.length; i += 5) ctx.fillText(`${edges_ms[i]}`, i * bw, h + 12);
  ctx.fillText('end-to-end ms', w - 70, h + 12);
}

function renderHealth(health) {
  const body = $('health').tBodies[0]; body.textContent = '';
  for (const item of health) {
    const tr = body.insertRow();
    tr.insertCell().textContent = item.name;
    const level = tr.insertCell(); level.textContent = item.level; level.className = `level level-${item.level}`;
    tr.insertCell().textContent = item.message;
  }
}

function ask(action, question) {
  if (question && !window.confirm(question)) return;
  socket.send(JSON.stringify({ action, id: nextId++ }));
  $('message').textContent = `${action}: sent…`;
}

// The server asks back before an action it wants confirmed (resume): the answer carries the
// challenge it sent, so no page can resume the robot with a single message.
function confirmAction(message) {
  if (!window.confirm(message.question)) { $('message').textContent = `${message.action}: cancelled`; return; }
  socket.send(JSON.stringify({ action: message.action, id: message.id, confirm: message.challenge }));
  $('message').textContent = `${message.action}: confirmed, sent…`;
}

function connect() {
  socket = new WebSocket(`ws://${location.host}/ws${token ? `?token=${encodeURIComponent(token)}` : ''}`);
  socket.onopen = () => { $('connection').textContent = 'live'; $('connection').className = 'badge ok'; };
  socket.onclose = (event) => {
    // A refusal says why (e.g. too many pages open); retry less often then.
    $('connection').textContent = event.reason ? `refused: ${event.reason}` : 'disconnected';
    $('connection').className = 'badge error';
    setAccess('read-only: not connected');
    setTimeout(connect, event.reason ? 5000 : 1000);
  };
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === 'hello') setup(message);
    else if (message.type === 'state' && hello) render(message);
    else if (message.type === 'confirm') confirmAction(message);
    else if (message.type === 'result') $('message').textContent = `${message.action || ''}: ${message.ok ? 'done' : 'FAILED'} — ${message.message}`;
  };
}

$('estop').onclick = () => ask('estop', 'Stop the robot face now?');
$('resume').onclick = () => ask('resume');
$('capture-neutral').onclick = () => ask('capture_neutral', 'Capture the neutral face now? The performer should hold a relaxed, neutral expression.');
setInterval(() => { setText('update-rate', updates - lastCount); setText('updates', updates); lastCount = updates; }, 1000);
connect();
