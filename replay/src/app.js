// The replay page: loads a shift, drives the clock, the scene, the timeline, notes, the ideal
// day and live mode. State that matters for sharing lives in the URL.

import {
  AuthRequired, allowedView, api, signInForm, signOut, whoAmI,
} from './auth.js';
import { ReplayClock, SPEEDS } from './clock.js';
import { machineName, translator } from './i18n.js';
import { idealDay, idealWorkerLanes, moveTask, resizeTask } from './ideal.js';
import { parseLiveMessage } from './live.js';
import { standingSpots, workerPose } from './pose.js';
import { TimelineView } from './timeline-view.js';
import {
  buildLanes, formatClock, formatMinutes, machineStatusAt, nextChangeover, prevChangeover,
} from './timeline.js';
import { decodeState, encodeState } from './url.js';
import { renderWorkerView } from './worker-view.js';

const $ = (id) => document.getElementById(id);
const fromUrl = decodeState(location.search);
const S = {
  ...fromUrl,
  urlIdeal: fromUrl.ideal, notes: [], edits: {}, ideal: null, selectedTask: null, liveSocket: null,
};
let t = translator(S.lang ?? 'ja');
let clock = null;
let scene = null;
let timeline = null;
let layout = null;
let lanes = null;
let spots = null;
let centres = null;
const stats = { frames: 0, firstFrameMs: null, dataMs: null, lastFrame: null, glb: 'pending' };

function status(msg) {
  $('status-msg').textContent = msg ?? '';
}

// Every API call: with the CSRF header on changes; a 401 (sign-in needed or session over)
// shows the sign-in form and, once signed in, tries the call once more.
let signingIn = null;

async function signIn() {
  signingIn ??= signInForm($('signin'), (k) => t(k)).finally(() => { signingIn = null; });
  const answer = await signingIn;
  S.user = answer.user;
  showUser();
  return answer;
}

async function getJson(url, opts) {
  try {
    return await api(url, opts);
  } catch (err) {
    if (!(err instanceof AuthRequired) || !S.bootDone) throw err;
    await signIn();
    return api(url, opts);
  }
}

function showUser() {
  const u = S.user;
  $('user-box').hidden = !u;
  if (!u) return;
  $('user-name').textContent = u.worker ? `${u.name} (${u.worker})` : u.name;
  $('user-name').dataset.role = u.role;
  $('signout-btn').onclick = async () => {
    try { await signOut(); } catch { /* the session may be over already */ }
    location.reload();
  };
}

function canUseNotes() {
  return !S.user || S.user.role === 'supervisor' || S.user.role === 'admin';
}

function applyI18n() {
  document.documentElement.lang = S.lang ?? 'ja';
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  $('note-text').placeholder = t('notePlaceholder');
  if (clock) $('play-btn').textContent = clock.playing ? t('pause') : t('play');
}

function syncUrl() {
  const state = { site: S.site, day: S.day, view: S.view, worker: S.worker, lang: S.lang, live: S.live,
    ideal: S.ideal ? S.edits : undefined, split: S.split };
  if (S.view !== 'worker' && clock) {
    Object.assign(state, { t: clock.time(performance.now()), speed: clock.speed, cam: scene?.cameraName });
  }
  history.replaceState(null, '', encodeState(state));
}

// --- boot -----------------------------------------------------------------------------------
async function boot() {
  // three.js is on the path to the first frame: start fetching it while we ask who is signed in.
  const sceneModule = S.view === 'worker' ? null : import('./scene.js');
  // Sign-in first (when the server has it): it decides what this user may open.
  S.user = (await whoAmI())?.user ?? null;
  showUser();
  const allowed = allowedView(S, S.user);
  if (allowed.forced) {
    // A worker lands on their own page, whatever the address asked for.
    if (S.worker && S.worker !== allowed.worker) status(t('onlyOwnPage'));
    Object.assign(S, { view: allowed.view, worker: allowed.worker });
    history.replaceState(null, '', encodeState({ site: S.site, view: S.view, worker: S.worker, lang: S.lang }));
  }
  if (!S.site) {
    const { sites, names } = await getJson('/api/viewer/sites');
    if (sites.length !== 1) return showSites(sites, names ?? {});
    S.site = sites[0];  // one site: open it
    history.replaceState(null, '', encodeState({ ...decodeState(location.search), site: S.site }));
  }
  if (S.view === 'worker') return bootWorker();
  const q = new URLSearchParams();
  if (S.day) q.set('day', S.day);
  const t0 = performance.now();
  const payload = await getJson(`${replayRoute()}?${q}`);
  stats.dataMs = performance.now() - t0;
  layout = payload.site;
  S.lang ??= layout.language === 'ja' ? 'ja' : 'en';
  t = translator(S.lang);
  S.day = payload.shift.day;
  S.payload = payload;
  $('title').textContent = `${t('title')} · ${layout.name}`;
  fillShifts(payload.shifts);
  applyI18n();
  lanes = buildLanes(payload.result, layout.machines.map((m) => m.id), layout.workers.map((w) => w.id));
  spots = standingSpots(layout.machines, layout.workers.map((w) => w.id));
  centres = Object.fromEntries(layout.machines.map((m) => [m.id, m.centre]));
  clock = new ReplayClock({ start: lanes.start, end: lanes.end, t: S.t ?? lanes.start, speed: S.speed ?? 1 });

  const { FactoryScene } = await (sceneModule ?? import('./scene.js'));
  scene = new FactoryScene($('scene-host'), layout, { t: (k) => t(k), machineName: (m) => machineName(m, S.lang) });
  if (S.cam) scene.setCamera(S.cam);
  timeline = new TimelineView($('timeline'), {
    onSeek: (tt) => { clock.seek(tt, performance.now()); syncUrl(); },
    onSelectTask: (id) => { S.selectedTask = id; refreshIdeal(); },
  });
  buildControls();
  $('notes-panel').hidden = !canUseNotes();
  if (S.urlIdeal) {  // a shared ideal day
    S.edits = S.urlIdeal;
    S.ideal = {};
    $('ideal-btn').setAttribute('aria-pressed', 'true');
    refreshIdeal();
    if (S.split) setSplit(true);
  } else {
    S.split = false;
  }
  refreshTimeline();
  window.addEventListener('resize', () => { scene.resize(); timeline.resize(); });
  requestAnimationFrame(frame);
  loadNotes();
  if (S.live) startLive();
  // The models3d scene is optional: the boxes drawn from the layout are already on screen.
  setTimeout(loadGlb, 0);
}

/** The site replay, or (`view=mine`) one worker's own cut of it, which workers may read. */
function replayRoute() {
  const site = encodeURIComponent(S.site);
  return S.view === 'mine' ? `/api/worker/${site}/${encodeURIComponent(S.worker ?? '')}/replay` : `/api/replay/${site}`;
}

async function loadGlb() {
  try {
    const head = await fetch(`/api/scene/${encodeURIComponent(S.site)}.glb`, { method: 'GET' });
    if (!head.ok) { stats.glb = `none (${head.status})`; return; }
    const url = URL.createObjectURL(await head.blob());
    const n = await scene.loadGlb(url);
    stats.glb = `loaded (${n} machines)`;
  } catch (err) {
    stats.glb = `failed: ${err.message}`;
  }
}

function fillShifts(shifts) {
  const sel = $('shift-select');
  sel.innerHTML = '';
  for (const sh of shifts) {
    const o = document.createElement('option');
    o.value = sh.day;
    o.textContent = sh.day;
    o.selected = sh.day === S.day;
    sel.appendChild(o);
  }
  sel.onchange = () => {
    S.day = sel.value;
    const mine = S.view === 'mine' ? { view: 'mine', worker: S.worker } : {};
    location.search = encodeState({ site: S.site, day: S.day, lang: S.lang, ...mine });
  };
}

function button(text, onClick, attrs = {}) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = 'btn';
  b.textContent = text;
  Object.assign(b.dataset, attrs);
  b.addEventListener('click', onClick);
  return b;
}

function buildControls() {
  const now = () => performance.now();
  $('play-btn').onclick = () => { clock.toggle(now()); updatePlay(); syncUrl(); };
  $('next-btn').onclick = () => jump(nextChangeover(lanes.changeovers, clock.time(now())));
  $('prev-btn').onclick = () => jump(prevChangeover(lanes.changeovers, clock.time(now())));
  const sb = $('speed-bar');
  sb.innerHTML = '';
  for (const s of SPEEDS) {
    sb.appendChild(button(`${s}x`, () => { clock.setSpeed(s, now()); updateSpeed(); syncUrl(); }, { speed: String(s) }));
  }
  updateSpeed();
  const cb = $('camera-bar');
  cb.innerHTML = '';
  cb.appendChild(button(t('overview'), () => { scene.setCamera('overview'); syncUrl(); }, { cam: 'overview' }));
  for (const m of layout.machines) {
    cb.appendChild(button(m.id, () => { scene.setCamera(`machine:${m.id}`); syncUrl(); }, { cam: `machine:${m.id}` }));
  }
  $('lang-btn').onclick = () => setLang(S.lang === 'ja' ? 'en' : 'ja');
  // A worker's own page: each worker gets their own link (the page shows nobody else).
  const ws = $('worker-select');
  ws.innerHTML = '';
  ws.add(new Option(t('workerView'), ''));
  for (const w of layout.workers) ws.add(new Option(w.name, w.id));
  ws.onchange = () => {
    if (ws.value) location.search = encodeState({ site: S.site, view: 'worker', worker: ws.value, lang: S.lang });
  };
  ws.hidden = S.user?.role === 'worker' || S.view === 'mine';
  // One worker's replay: back to their timeline; no live view (it holds everyone's data).
  $('view-btn').hidden = S.view !== 'mine';
  $('view-btn').textContent = t('myTasks');
  $('view-btn').onclick = () => {
    location.search = encodeState({ site: S.site, view: 'worker', worker: S.worker, lang: S.lang });
  };
  $('live-btn').hidden = S.view === 'mine';
  const sel = $('note-target');
  sel.innerHTML = '';
  for (const m of layout.machines) sel.add(new Option(machineName(m, S.lang), m.id));
  for (const w of layout.workers) sel.add(new Option(`${t('worker')}: ${w.name}`, w.id));
  $('note-add').onclick = addNote;
  $('ideal-btn').onclick = () => {
    S.ideal = S.ideal ? null : {};
    $('ideal-btn').setAttribute('aria-pressed', String(!!S.ideal));
    if (!S.ideal && S.split) setSplit(false);
    refreshIdeal();
    syncUrl();
  };
  $('split-btn').onclick = () => { setSplit(!S.split); syncUrl(); };
  for (const b of document.querySelectorAll('#ideal-edit [data-move]')) {
    const m = Number(b.dataset.move) / 60;
    b.textContent = m < 0 ? `« ${-m} ${t('min')}` : `${m} ${t('min')} »`;
    b.title = m < 0 ? t('earlier') : t('later');
    b.onclick = () => editSelected('move', Number(b.dataset.move));
  }
  for (const b of document.querySelectorAll('#ideal-edit [data-resize]')) {
    const m = Number(b.dataset.resize) / 60;
    b.textContent = `${m < 0 ? t('shorter') : t('longer')} ${Math.abs(m)} ${t('min')}`;
    b.onclick = () => editSelected('resize', Number(b.dataset.resize));
  }
  $('ideal-reset').onclick = () => { S.edits = {}; refreshIdeal(); syncUrl(); };
  $('live-btn').onclick = () => (S.live ? stopLive() : startLive());
  // Keyboard for a supervisor at a laptop: space plays/pauses, arrows jump between changeovers.
  document.onkeydown = (e) => {
    if (e.target.closest('input, textarea, select') || e.altKey || e.ctrlKey || e.metaKey) return;
    if (e.key === ' ') { e.preventDefault(); $('play-btn').click(); }
    else if (e.key === 'ArrowRight') $('next-btn').click();
    else if (e.key === 'ArrowLeft') $('prev-btn').click();
  };
  updatePlay();
}

function setLang(lang) {
  S.lang = lang;
  t = translator(lang);
  applyI18n();
  $('title').textContent = `${t('title')} · ${layout.name}`;
  for (const [id, m] of Object.entries(scene.machines)) {
    m.el.querySelector('.name').textContent = machineName(m.layout, lang);
    m.key = '';
    void id;
  }
  for (const m of Object.values(scene.machines)) {
    m.idealEl?.querySelector('.name').replaceChildren(machineName(m.layout, lang));
    m.idealKey = '';
  }
  for (const w of Object.values(scene.workers)) { w.key = ''; w.idealKey = ''; }
  buildControls();
  renderNotes();
  refreshIdeal();
  syncUrl();
}

function updatePlay() {
  $('play-btn').textContent = clock.playing ? t('pause') : t('play');
  $('play-btn').setAttribute('aria-pressed', String(clock.playing));
}

function updateSpeed() {
  for (const b of $('speed-bar').children) b.setAttribute('aria-pressed', String(Number(b.dataset.speed) === clock.speed));
}

function jump(target) {
  if (target == null) return;
  clock.seek(target, performance.now());
  syncUrl();
}

// --- per frame ------------------------------------------------------------------------------
let lastClockText = '';
let lastUrlSync = 0;
const fpsWindow = { since: 0, frames: 0 };

function frame(nowMs) {
  const now = performance.now();
  if (clock.tick(now)) updatePlay();
  const tt = clock.time(now);
  const ideal = S.ideal ? S.idealDay : null;
  const split = S.split && ideal;
  lanes.machines.forEach((lane, k) => {
    const idealLane = ideal ? ideal.machines[k] : null;
    const idealStatus = idealLane ? machineStatusAt(idealLane, tt) : null;
    // Side by side, the ideal state has its own view; otherwise it is a line on the real label.
    scene.setMachineStatus(lane.id, machineStatusAt(lane, tt), split ? null : idealStatus);
    if (split) scene.setIdealMachineStatus(lane.id, idealStatus);
  });
  lanes.workers.forEach((w, k) => {
    scene.setWorkerPose(w.id, workerPose(w.zones, w.tasks, spots[w.id], centres, tt), tt);
    const iw = split ? S.idealWorkers[k] : null;
    if (iw) scene.setIdealWorkerPose(w.id, workerPose(iw.zones, iw.tasks, spots[w.id], centres, tt), tt);
  });
  timeline.draw(tt);
  const text = formatClock(tt, layout.timezone);
  if (text !== lastClockText) { $('clock').textContent = text; lastClockText = text; }
  scene.render();
  stats.frames += 1;
  stats.firstFrameMs ??= now;
  if (now - fpsWindow.since >= 1000) {
    stats.fps = ((stats.frames - fpsWindow.frames) * 1000) / (now - fpsWindow.since);
    fpsWindow.since = now;
    fpsWindow.frames = stats.frames;
  }
  stats.lastFrame = { t: tt, perf: now, raf: nowMs };
  if (clock.playing && now - lastUrlSync > 1000) { syncUrl(); lastUrlSync = now; }
  requestAnimationFrame(frame);
}

function refreshTimeline() {
  timeline.setData({
    lanes,
    breaks: S.payload.breaks,
    notes: S.notes,
    ideal: S.ideal ? S.idealDay : null,
    selectedTask: S.selectedTask,
    tz: layout.timezone,
    machineLabel: (id, ideal) => (ideal ? `${id} ${t('idealLane')}` : id),
    workerLabel: (id) => layout.workers.find((w) => w.id === id)?.name ?? id,
  });
}

// --- ideal day ------------------------------------------------------------------------------
function refreshIdeal() {
  $('ideal-body').hidden = !S.ideal;
  if (!S.ideal) { S.idealDay = null; S.idealWorkers = null; refreshTimeline(); return; }
  S.idealDay = idealDay(lanes, S.payload.breaks, S.edits);
  S.idealWorkers = idealWorkerLanes(lanes.workers, S.idealDay);
  const d = S.idealDay;
  $('ideal-gain').textContent = formatMinutes(d.totalGainedMin);
  $('split-gain').textContent = formatMinutes(d.totalGainedMin);
  const rows = [`<tr><th></th><th>${t('gained')}</th><th>${t('breakRun')}</th></tr>`];
  for (const m of d.machines) {
    rows.push(`<tr data-machine="${m.id}"><td>${m.id}</td><td class="gain-min">${formatMinutes(m.gainedMin)}</td>`
      + `<td>${formatMinutes(m.breakRunRealMin)} → ${formatMinutes(m.breakRunIdealMin)}</td></tr>`);
  }
  $('ideal-table').innerHTML = rows.join('');
  const sel = S.selectedTask && d.machines.flatMap((m) => m.tasks).find((x) => x.id === S.selectedTask);
  $('ideal-edit').hidden = !sel;
  $('ideal-selected').textContent = sel
    ? `${t('selected')}: ${sel.machine} ${t(sel.task)} ${formatClock(sel.start, layout.timezone).slice(0, 5)}`
      + ` (${formatMinutes((sel.end - sel.start) / 60)})`
    : t('selectTask');
  refreshTimeline();
}

/** The ideal day replayed beside the recording: right half of the scene, same clock. */
function setSplit(on) {
  S.split = !!on && !!S.ideal;
  $('split-btn').setAttribute('aria-pressed', String(S.split));
  $('split-captions').hidden = !S.split;
  scene.setSplit(S.split);
}

function editSelected(kind, deltaS) {
  const task = S.idealDay?.machines.flatMap((m) => m.tasks).find((x) => x.id === S.selectedTask);
  if (!task) return;
  S.edits = kind === 'move'
    ? moveTask(S.edits, task.id, task.start, deltaS)
    : resizeTask(S.edits, task.id, task.end - task.start, deltaS);
  refreshIdeal();
  syncUrl();
}

// --- notes ----------------------------------------------------------------------------------
async function loadNotes() {
  if (!canUseNotes()) return;
  try {
    S.notes = await getJson(`/api/notes/${encodeURIComponent(S.site)}`);
  } catch (err) {
    status(`${t('notes')}: ${err.message}`);
    S.notes = [];
  }
  renderNotes();
  refreshTimeline();
}

function targetName(id) {
  const m = layout.machines.find((mm) => mm.id === id);
  if (m) return machineName(m, S.lang);
  return layout.workers.find((w) => w.id === id)?.name ?? id;
}

function renderNotes() {
  const ul = $('notes-list');
  ul.innerHTML = '';
  const inShift = S.notes.filter((n) => n.t >= lanes.start && n.t <= lanes.end);
  if (!inShift.length) {
    const li = document.createElement('li');
    li.className = 'empty';
    li.textContent = t('noNotes');
    ul.appendChild(li);
  }
  for (const n of inShift) {
    const li = document.createElement('li');
    li.dataset.noteId = String(n.id);
    const jumpBtn = button('', () => {
      clock.pause(performance.now());
      clock.seek(n.t, performance.now());
      updatePlay();
      if (n.target_kind === 'machine') scene.setCamera(`machine:${n.target}`);
      syncUrl();
    });
    jumpBtn.classList.add('jump', 'note-jump');
    const small = document.createElement('small');
    small.textContent = `${formatClock(n.t, layout.timezone)} · ${targetName(n.target)}`;
    const text = document.createElement('span');
    text.className = 'note-text';
    text.textContent = n.text;
    jumpBtn.append(small, text);
    const del = button(t('delete'), async () => {
      try {
        await getJson(`/api/notes/${encodeURIComponent(S.site)}/${n.id}`, { method: 'DELETE' });
      } catch (err) {
        status(`${t('notes')}: ${err.message}`);
      }
      loadNotes();
    });
    del.classList.add('note-delete');
    li.append(jumpBtn, del);
    ul.appendChild(li);
  }
}

async function addNote() {
  const text = $('note-text').value.trim();
  if (!text) { $('note-text').focus(); return; }
  try {
    await getJson(`/api/notes/${encodeURIComponent(S.site)}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ t: clock.time(performance.now()), target: $('note-target').value, text }),
    });
    $('note-text').value = '';
    status('');
  } catch (err) {
    status(`${t('notes')}: ${err.message}`);
  }
  loadNotes();
}

// --- live -----------------------------------------------------------------------------------
function setLiveStatus(key, cls) {
  const el = $('live-status');
  el.textContent = key ? t(key) : '';
  el.dataset.state = key ?? '';
  el.className = `status ${cls ?? ''}`;
}

function startLive() {
  S.live = true;
  $('live-btn').setAttribute('aria-pressed', 'true');
  setLiveStatus('liveConnecting');
  let ws;
  try {
    const proto = location.protocol === 'https:' ? 'wss' : 'ws';
    ws = new WebSocket(`${proto}://${location.host}/ws/live?site=${encodeURIComponent(S.site)}`);
  } catch {
    setLiveStatus('liveUnavailable', 'bad');
    return;
  }
  S.liveSocket = ws;
  ws.onopen = () => setLiveStatus('liveOn', 'ok');
  ws.onmessage = (ev) => {
    try { onLive(JSON.parse(ev.data)); } catch { /* a frame we do not understand is ignored */ }
  };
  ws.onclose = () => {
    if (S.liveSocket !== ws) return;
    // Closed by the server or never opened: either way there is no live data now.
    setLiveStatus('liveUnavailable', 'bad');
  };
  syncUrl();
}

function stopLive() {
  S.live = false;
  $('live-btn').setAttribute('aria-pressed', 'false');
  const ws = S.liveSocket;
  S.liveSocket = null;
  ws?.close();
  setLiveStatus(null);
  syncUrl();
}

let liveRefetchAt = 0;
let liveRefetchDay = null;

/** Follow the live edge at 1x; refetch the shift's analysis when the server says it changed. */
function onLive(msg) {
  const { edge, day, result } = parseLiveMessage(msg);
  if (result) setResult(result);
  if (day) {
    liveRefetchDay = day;
    const now = performance.now();
    if (now - liveRefetchAt > 10000) {  // the analysis reruns often; the page needs it rarely
      liveRefetchAt = now;
      refetchShift(liveRefetchDay);
    }
  }
  if (edge !== null) {
    const now = performance.now();
    if (edge > lanes.end) { lanes.end = edge; clock.extendTo(edge, now); }
    if (Math.abs(clock.time(now) - edge) > 5) clock.seek(edge, now);
    if (clock.speed !== 1) { clock.setSpeed(1, now); updateSpeed(); }
    if (!clock.playing) { clock.play(now); updatePlay(); }
  }
}

function setResult(doc) {
  lanes = buildLanes(doc, layout.machines.map((m) => m.id), layout.workers.map((w) => w.id));
  clock.extendTo(lanes.end, performance.now());
  if (S.ideal) refreshIdeal(); else refreshTimeline();
}

async function refetchShift(day) {
  try {
    const payload = await getJson(`${replayRoute()}?day=${day}`);
    S.payload = payload;
    S.day = payload.shift.day;
    fillShifts(payload.shifts);
    setResult(payload.result);
  } catch (err) {
    status(`${t('live')}: ${err.message}`);
  }
}

// --- no ?site= and several sites (or none): the list -----------------------------------------
function showSites(sites, names) {
  $('replay-view').hidden = true;
  $('site-list').hidden = false;
  for (const id of ['shift-select', 'live-btn', 'clock', 'worker-select']) {
    const el = $(id);
    (id === 'shift-select' ? el.parentElement : el).hidden = true;
  }
  applyI18n();
  $('title').textContent = t('title');
  const ul = $('sites');
  ul.innerHTML = '';
  if (!sites.length) status(t('noSites'));
  for (const id of sites) {
    const li = document.createElement('li');
    const a = document.createElement('a');
    a.className = 'btn';
    a.dataset.site = id;
    a.href = encodeState({ site: id, lang: S.lang });
    const small = document.createElement('small');
    small.textContent = id;
    a.append(document.createTextNode(names[id] ?? id), small);
    li.append(a);
    ul.append(li);
  }
  S.view = 'sites';
}

// --- worker view ----------------------------------------------------------------------------
async function bootWorker() {
  $('replay-view').hidden = true;
  $('worker-view').hidden = false;
  $('shift-select').parentElement.hidden = true;
  $('live-btn').hidden = true;
  $('clock').hidden = true;
  const data = await getJson(`/api/worker/${encodeURIComponent(S.site)}/${encodeURIComponent(S.worker ?? '')}`);
  layout = data.site;
  S.lang ??= layout.language === 'ja' ? 'ja' : 'en';
  t = translator(S.lang);
  applyI18n();
  $('worker-select').hidden = true;
  // A worker goes on to their own replay; anyone else back to the site replay.
  const own = S.user?.role === 'worker';
  $('view-btn').hidden = false;
  $('view-btn').textContent = own ? t('myReplay') : t('backToReplay');
  $('view-btn').onclick = () => {
    location.search = encodeState(own ? { site: S.site, view: 'mine', worker: S.worker, lang: S.lang }
      : { site: S.site, lang: S.lang });
  };
  $('lang-btn').onclick = () => { S.lang = S.lang === 'ja' ? 'en' : 'ja'; syncUrl(); location.reload(); };
  $('title').textContent = `${t('workerView')} · ${layout.name}`;
  renderWorkerView($('worker-view'), data, { t, lang: S.lang, tz: layout.timezone });
  window.__replay = { ready: true, view: 'worker', worker: data.worker.id };
}

function bootLang() {
  // Before the site (and its language) is known: the address's language, else Japanese.
  $('lang-btn').onclick = () => {
    S.lang = (S.lang ?? 'ja') === 'ja' ? 'en' : 'ja';
    history.replaceState(null, '', encodeState({ ...decodeState(location.search), lang: S.lang }));
    t = translator(S.lang);
    applyI18n();
  };
  $('signin-lang').onclick = () => $('lang-btn').click();
  document.documentElement.lang = S.lang ?? 'ja';
  for (const el of document.querySelectorAll('#topbar [data-i18n], #signin [data-i18n]')) {
    el.textContent = t(el.dataset.i18n);
  }
}

function start() {
  bootLang();
  boot().then(started).catch(async (err) => {
    if (err instanceof AuthRequired) {
      // Not signed in: the form, then the page again from the address (it holds the moment).
      await signInForm($('signin'), (k) => t(k));
      location.reload();
      return;
    }
    const forbidden = err.status === 403 || err.status === 404;
    status(`${forbidden && S.user ? t('forbidden') : t('loadFailed')}: ${err.message}`);
    window.__replay = { ready: false, error: String(err.message) };
  });
}

function started() {
  S.bootDone = true;
  if (S.view === 'sites') {
    window.__replay = { ready: true, view: 'sites' };
  } else if (S.view !== 'worker') {
    window.__replay = {
      ready: true, view: 'replay', stats, get clock() { return clock; }, lanes: () => lanes,
      seek: (tt) => { clock.seek(tt, performance.now()); },
      setSpeed: (s) => { clock.setSpeed(s, performance.now()); updateSpeed(); },
      play: () => { clock.play(performance.now()); updatePlay(); },
      pause: () => { clock.pause(performance.now()); updatePlay(); },
      scene: () => scene,
      idealDay: () => S.idealDay,
      edits: () => S.edits,
      timelineX: (tt) => timeline.x(tt) + timeline.canvas.getBoundingClientRect().left,
    };
  }
}

start();
