// The dashboard page: renders the state pushed over the websocket; buttons ask the node.
'use strict';
const $ = (id) => document.getElementById(id);
let hello = null, socket = null, updates = 0, lastCount = 0, nextId = 1;
const barRows = {}, motorRows = {};

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
  $('robot-name').textContent = `· ${message.robot} (e-stop: ${message.estop_mode})`;
  $('bars').textContent = ''; $('motors').textContent = '';
  message.channel_names.slice(0, 52).forEach((n, i) => { barRows[i] = bar($('bars'), n, ['human', 'robot']); });
  message.motor_names.forEach((n, i) => { motorRows[i] = bar($('motors'), n, ['motor']); });
}

// Style writes only where a value changed: most blendshapes sit still most of the time, and
// each write costs the browser a layout and paint.
function setWidth(fill, fraction) {
  const width = `${(100 * fraction).toFixed(1)}%`;
  if (fill.dataset.width !== width) { fill.style.width = width; fill.dataset.width = width; }
}

function render(state) {
  updates += 1;
  drawFace($('human-face').getContext('2d'), hello.channel_names, state.human, 'human');
  drawFace($('robot-face').getContext('2d'), hello.channel_names, state.robot, 'robot');
  for (const [i, row] of Object.entries(barRows)) {
    setWidth(row.fills[0], state.human ? state.human[i] : 0);
    setWidth(row.fills[1], state.robot ? state.robot[i] : 0);
  }
  if (state.commands) {
    for (const [i, row] of Object.entries(motorRows)) {
      const x = state.commands[i] ?? 0, [lo, hi, unit] = hello.limits[i];
      setWidth(row.fills[0], x);
      row.fills[0].classList.toggle('edge', x < 0.02 || x > 0.98);
      row.name.title = `${(lo + x * (hi - lo)).toFixed(1)} ${unit} (limits ${lo}..${hi})`;
    }
  }
  $('rate-human').textContent = state.rates.human; $('rate-robot').textContent = state.rates.robot;
  if (state.health) {
    const actuation = state.health.find((h) => h.name === 'face_actuation: actuation');
    $('rate-commands').textContent = actuation ? actuation.values.command_rate_hz : '–';
    renderLatency(state.latency); renderHealth(state.health);
  }
  $('updates').textContent = updates;
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

function connect() {
  socket = new WebSocket(`ws://${location.host}/ws`);
  socket.onopen = () => { $('connection').textContent = 'live'; $('connection').className = 'badge ok'; };
  socket.onclose = () => { $('connection').textContent = 'disconnected'; $('connection').className = 'badge error'; setTimeout(connect, 1000); };
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === 'hello') setup(message);
    else if (message.type === 'state' && hello) render(message);
    else if (message.type === 'result') $('message').textContent = `${message.action || ''}: ${message.ok ? 'done' : 'FAILED'} — ${message.message}`;
  };
}

$('estop').onclick = () => ask('estop', 'Stop the robot face now?');
$('resume').onclick = () => ask('resume', 'Resume following the performer?');
$('capture-neutral').onclick = () => ask('capture_neutral', 'Capture the neutral face now? The performer should hold a relaxed, neutral expression.');
setInterval(() => { $('update-rate').textContent = updates - lastCount; lastCount = updates; }, 1000);
connect();
