// The replay page: loads a shift, drives the clock, the scene, the timeline, notes, the ideal
// day and live mode. State that matters for sharing lives in the URL.

import {
  AuthRequired, allowedView, api, signInForm, signOut, whoAmI,
} from './auth.js';
import { ReplayClock, SPEEDS } from './clock.js';
import {
  displayName, formatDate, formatMinutesIn, formatMinutesShort, machineName, speedLabel, translator,
} from './i18n.js';
import { idealDay, idealWorkerLanes, moveTask, resizeTask } from './ideal.js';
import { ForecastUi, ft } from './forecast.js';
import { renderStrip, renderStripSkeleton, renderSummary } from './kpi.js';
import { liveEnded, liveRate, parseLiveMessage } from './live.js';
import { standingSpots, workerPose } from './pose.js';
import { TimelineView, renderLegend } from './timeline-view.js';
import {
  buildLanes, changeoverStarts, eventTimes, formatClock, machineStatusAt, nextChangeover, prevChangeover,
  skipIdleTarget,
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
let forecastUi = null;
const stats = { frames: 0, firstFrameMs: null, dataMs: null, lastFrame: null, glb: 'pending', kpiMs: null, skips: 0 };
const fmtMin = (m) => formatMinutesIn(m, S.lang);
const nameOf = (thing) => displayName(thing, S.lang);

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
  for (const el of document.querySelectorAll('[data-i18n-title]')) {
    el.title = t(el.dataset.i18nTitle);
    el.setAttribute('aria-label', t(el.dataset.i18nTitle));
  }
  if (clock) $('play-btn').textContent = clock.playing ? t('pause') : t('play');
}

function syncUrl() {
  const state = { site: S.site, day: S.day, view: S.view, worker: S.worker, lang: S.lang, live: S.live,
    ideal: S.ideal ? S.edits : undefined, split: S.split, skip: S.skip };
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
    const { sites, names, names_ja: namesJa } = await getJson('/api/viewer/sites');
    if (sites.length !== 1) return showSites(sites, ((S.lang ?? 'ja') === 'ja' ? namesJa : names) ?? names ?? {});
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
  $('title').textContent = `${t('title')} · ${nameOf(layout)}`;
  fillShifts(payload.shifts);
  applyI18n();
  lanes = buildLanes(payload.result, layout.machines.map((m) => m.id), layout.workers.map((w) => w.id));
  S.events = eventTimes(lanes);
  showBanner();
  spots = standingSpots(layout.machines, layout.workers.map((w) => w.id));
  centres = Object.fromEntries(layout.machines.map((m) => [m.id, m.centre]));
  clock = new ReplayClock({ start: lanes.start, end: lanes.end, t: S.t ?? lanes.start, speed: S.speed ?? 1 });

  const { FactoryScene } = await (sceneModule ?? import('./scene.js'));
  scene = new FactoryScene($('scene-host'), layout, {
    t: (k) => t(k), machineName: (m) => machineName(m, S.lang), workerName: (w) => nameOf(w),
    obstacles: () => hostRects($('scene-host'), ['#camera-bar .btn', '#split-captions .cap']),
  });
  if (S.cam) scene.setCamera(S.cam);
  timeline = new TimelineView($('timeline'), {
    onSeek: (tt) => { clock.seek(tt, performance.now()); syncUrl(); },
    onSelectTask: (id) => { S.selectedTask = id; refreshIdeal(); },
    tooltip: $('timeline-tip'),
  });
  if (kpiWanted()) {
    renderStripSkeleton($('kpi-strip'), layout.machines, { name: (m) => machineName(m, S.lang) });
  } else {
    $('kpi-strip').hidden = true;
  }
  if (kpiWanted()) {  // staff only, like the KPI strip (the forecast names workers)
    forecastUi = new ForecastUi({
      el: $('forecast-panel'), site: S.site, getJson, tz: layout.timezone, lang: S.lang,
      machineName: (id) => machineName(layout.machines.find((m) => m.id === id) ?? { id }, S.lang),
      workerName: (id) => nameOf(layout.workers.find((w) => w.id === id) ?? { id }),
      onChange: () => refreshTimeline(),
    });
    forecastUi.render();
  }
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
  // The stage changes size with the window, the KPI strip's rows and the side panel.
  let sized = '';
  new ResizeObserver(() => {
    const key = `${$('scene-host').clientWidth}x${$('scene-host').clientHeight}|${$('timeline-scroll').clientWidth}`;
    if (key === sized) return;
    sized = key;
    scene.resize();
    $('stage').classList.toggle('stacked', scene.stacked);
    timeline.resize();
  }).observe(document.body);
  requestAnimationFrame(frame);
  loadNotes();
  if (S.live) startLive();
  // After the first frame: the KPI strip and the models3d scene (the boxes drawn from the
  // layout are already on screen).
  requestAnimationFrame(() => setTimeout(() => { loadKpis(); loadGlb(); }, 0));
}

/** Rectangles of the elements matching `selectors`, in `host`'s pixels (for the name tags). */
function hostRects(host, selectors) {
  const h = host.getBoundingClientRect();
  const out = [];
  for (const el of document.querySelectorAll(selectors.join(','))) {
    if (!el.offsetParent) continue;
    const r = el.getBoundingClientRect();
    out.push({ x0: r.left - h.left - 4, y0: r.top - h.top - 4, x1: r.right - h.left + 4, y1: r.bottom - h.top + 4 });
  }
  return out;
}

// --- KPI strip and shift summary --------------------------------------------------------------
function kpiWanted() {
  // Not for a worker's own replay (the figures hold colleagues' minutes); `kpi=0` for benchmarks.
  return S.view !== 'mine' && S.user?.role !== 'worker' && new URLSearchParams(location.search).get('kpi') !== '0';
}

const coIndex = {};

function kpiJump(tt, machine, key) {
  let target = tt;
  if (key === 'changeovers' && machine) {
    // Each tap on a machine's changeovers goes to its next one (from the first).
    const lane = lanes.machines.find((m) => m.id === machine);
    const starts = changeoverStarts(lane.tasks);
    coIndex[machine] = coIndex[machine] == null ? 0 : (coIndex[machine] + 1) % starts.length;
    target = starts[coIndex[machine]] ?? tt;
  }
  clock.pause(performance.now());
  clock.seek(target, performance.now());
  updatePlay();
  if (machine) scene.setCamera(`machine:${machine}`);
  $('summary').hidden = true;
  syncUrl();
}

function kpiUi() {
  return {
    t: (k) => t(k), min: fmtMin, short: (m) => formatMinutesShort(m, S.lang),
    name: (m) => machineName(m, S.lang), workerName: (w) => nameOf(w),
    day: (d) => formatDate(d, S.lang), onJump: kpiJump,
    dayHref: (d) => encodeState({ site: S.site, day: d, lang: S.lang }),
  };
}

async function loadKpis() {
  if (!kpiWanted()) return;
  const t0 = performance.now();
  try {
    S.kpis = await getJson(`/api/kpis/${encodeURIComponent(S.site)}?day=${S.day}&days=10`);
  } catch (err) {
    S.kpis = null;
    $('kpi-strip').dataset.error = String(err.message);
    status(`${t('kpiUnavailable')}: ${err.message}`);
    return;
  }
  renderKpis();
  stats.kpiMs = performance.now() - t0;
}

function renderKpis() {
  if (!S.kpis) return;
  renderStrip($('kpi-strip'), S.kpis, layout.machines, kpiUi());
  $('kpi-strip').dataset.ready = '1';
  renderSummary($('summary-body'), S.kpis, layout, kpiUi());
}

// --- banner: a shift still being recorded ---------------------------------------------------
function showBanner() {
  const sh = S.payload.shift;
  const b = $('banner');
  b.hidden = !sh.recording;
  b.dataset.kind = sh.recording ? 'filling' : '';
  if (sh.recording) b.textContent = t('fillingIn', { t: formatClock(S.payload.result.window.end, layout.timezone).slice(0, 5) });
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
    o.textContent = formatDate(sh.day, S.lang ?? 'ja');
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
    sb.appendChild(button(speedLabel(s, S.lang), () => setSpeed(s), { speed: String(s) }));
  }
  updateSpeed();
  $('skip-btn').setAttribute('aria-pressed', String(!!S.skip));
  $('skip-btn').onclick = () => setSkip(!S.skip);
  $('summary-btn').hidden = !kpiWanted();
  $('summary-btn').onclick = () => { $('summary').hidden = false; $('summary-close').focus(); };
  $('summary-close').onclick = () => { $('summary').hidden = true; };
  $('summary').onclick = (e) => { if (e.target === $('summary')) $('summary').hidden = true; };
  $('zoom-in').onclick = () => timeline.zoomBy(2, clock.time(now()));
  $('zoom-out').onclick = () => timeline.zoomBy(0.5, clock.time(now()));
  $('zoom-fit').onclick = () => timeline.fit();
  $('pan-left').onclick = () => timeline.panBy(-0.5);
  $('pan-right').onclick = () => timeline.panBy(0.5);
  renderLegend($('legend'), (k) => t(k));
  const admin = S.user && (S.user.role === 'supervisor' || S.user.role === 'admin');
  $('access-link').hidden = !admin;
  $('access-link').href = `./access.html${encodeState({ site: S.site, lang: S.lang })}`;
  $('help-btn').onclick = () => { $('shortcuts').hidden = !$('shortcuts').hidden; };
  const cb = $('camera-bar');
  cb.innerHTML = '';
  cb.appendChild(button(t('overview'), () => { scene.setCamera('overview'); syncUrl(); }, { cam: 'overview' }));
  for (const m of layout.machines) {
    cb.appendChild(button(m.id, () => { scene.setCamera(`machine:${m.id}`); syncUrl(); }, { cam: `machine:${m.id}` }));
  }
  scene.invalidateObstacles();
  $('lang-btn').onclick = () => setLang(S.lang === 'ja' ? 'en' : 'ja');
  // A worker's own page: each worker gets their own link (the page shows nobody else).
  const ws = $('worker-select');
  ws.innerHTML = '';
  ws.add(new Option(t('workerView'), ''));
  for (const w of layout.workers) ws.add(new Option(nameOf(w), w.id));
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
  for (const w of layout.workers) sel.add(new Option(`${t('worker')}: ${nameOf(w)}`, w.id));
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
  // Keyboard for a supervisor at a laptop (the list is under the ? button).
  document.onkeydown = (e) => {
    if (e.target.closest('input, textarea, select') || e.altKey || e.ctrlKey || e.metaKey) return;
    const step = e.shiftKey ? 60 : 10;
    const k = e.key.length === 1 ? e.key.toLowerCase() : e.key;
    if (k === ' ') { e.preventDefault(); $('play-btn').click(); }
    else if (k === 'ArrowRight') { e.preventDefault(); jump(clock.time(now()) + step); }
    else if (k === 'ArrowLeft') { e.preventDefault(); jump(clock.time(now()) - step); }
    else if (k === 'k') $('next-btn').click();
    else if (k === 'j') $('prev-btn').click();
    else if (k === 's') setSkip(!S.skip);
    else if (k === ']' || k === '[') {
      const i = SPEEDS.indexOf(clock.speed);
      const j = Math.min(Math.max((i < 0 ? 0 : i) + (k === ']' ? 1 : -1), 0), SPEEDS.length - 1);
      setSpeed(SPEEDS[j]);
    } else if (k === 'Escape') { $('summary').hidden = true; $('shortcuts').hidden = true; }
  };
  updatePlay();
}

function setSpeed(s) {
  clock.setSpeed(s, performance.now());
  updateSpeed();
  syncUrl();
}

/** "Skip idle": jump over stretches where no machine changes state and nobody moves. */
function setSkip(on) {
  S.skip = !!on;
  $('skip-btn').setAttribute('aria-pressed', String(S.skip));
  syncUrl();
}

function setLang(lang) {
  S.lang = lang;
  t = translator(lang);
  applyI18n();
  $('title').textContent = `${t('title')} · ${nameOf(layout)}`;
  fillShifts(S.payload.shifts);
  showBanner();
  for (const w of layout.workers) scene.workers[w.id].el.querySelector('.name').textContent = nameOf(w);
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
  forecastUi?.setLang(lang);
  refreshIdeal();
  if (S.kpis) renderKpis();
  else if (kpiWanted()) renderStripSkeleton($('kpi-strip'), layout.machines, { name: (m) => machineName(m, S.lang) });
  if (S.live) setLiveStatus(S.liveState ?? 'liveOn', S.liveState === 'liveEnded' ? 'ok' : 'ok');
  syncUrl();
}

function updatePlay() {
  $('play-btn').textContent = clock.playing ? t('pause') : t('play');
  $('play-btn').setAttribute('aria-pressed', String(clock.playing));
}

function updateSpeed() {
  // Following a live shift at its own pace (e.g. a demo at 60x) presses no button.
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
  if (S.skip && clock.playing && !S.live) {
    const to = skipIdleTarget(S.events, clock.time(now), clock.speed, lanes.end);
    if (to !== null) { clock.seek(to, now); stats.skips += 1; }
  }
  if (S.live && S.liveState !== 'liveEnded' && liveEnded({ recording: S.payload.shift.recording,
    lastEdgeWallMs: S.liveEdges?.at(-1)?.wallMs ?? null, nowMs: now })) endLive();
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
  timeline.draw(tt, clock.playing);
  forecastUi?.tick(tt, !!S.live);
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
  // Live, the forecast's hour lies past the data: the timeline reaches it (in 15-min steps).
  const fc = forecastUi?.doc;
  const fcEnd = fc ? fc.at + fc.horizon_s : null;
  timeline.setData({
    lanes: fcEnd && fcEnd > lanes.end ? { ...lanes, end: Math.ceil(fcEnd / 900) * 900 } : lanes,
    breaks: S.payload.breaks,
    notes: S.notes,
    ideal: S.ideal ? S.idealDay : null,
    selectedTask: S.selectedTask,
    tz: layout.timezone,
    t: (k) => t(k),
    machineLabel: (id, ideal) => (ideal ? `${id} ${t('idealLane')}` : id),
    workerLabel: (id, narrow) => (narrow ? id : nameOf(layout.workers.find((w) => w.id === id) ?? { id })),
    workerName: (id) => nameOf(layout.workers.find((w) => w.id === id) ?? { id }),
    zoneLabel: (id) => id,
    machineName: (id) => machineName(layout.machines.find((m) => m.id === id) ?? { id }, S.lang),
    taskLabel: (task) => t(task),
    fmtDuration: (s) => fmtMin(s / 60),
    lang: S.lang,
    forecastRow: forecastUi ? (id) => forecastUi.rowFor(id) : null,
    forecastLabel: (id) => ft(S.lang)('laneLabel', { m: id }),
  });
}

// --- ideal day ------------------------------------------------------------------------------
function refreshIdeal() {
  $('ideal-body').hidden = !S.ideal;
  if (!S.ideal) { S.idealDay = null; S.idealWorkers = null; refreshTimeline(); return; }
  S.idealDay = idealDay(lanes, S.payload.breaks, S.edits);
  S.idealWorkers = idealWorkerLanes(lanes.workers, S.idealDay);
  const d = S.idealDay;
  $('ideal-gain').textContent = fmtMin(d.totalGainedMin);
  $('split-gain').textContent = fmtMin(d.totalGainedMin);
  const rows = [`<tr><th></th><th>${t('gained')}</th><th>${t('breakRun')}</th></tr>`];
  for (const m of d.machines) {
    rows.push(`<tr data-machine="${m.id}"><td>${m.id}</td><td class="gain-min">${fmtMin(m.gainedMin)}</td>`
      + `<td>${fmtMin(m.breakRunRealMin)} → ${fmtMin(m.breakRunIdealMin)}</td></tr>`);
  }
  $('ideal-table').innerHTML = rows.join('');
  // Why each machine gains what it gains: the edits, the waits they caused, lunch running.
  const why = $('ideal-reasons');
  why.replaceChildren();
  for (const m of d.machines) {
    if (!m.reasons.length) continue;
    const block = document.createElement('div');
    block.className = 'reason-block';
    block.dataset.machine = m.id;
    const head = document.createElement('strong');
    head.textContent = `${machineName(layout.machines.find((x) => x.id === m.id) ?? { id: m.id }, S.lang)}: ${fmtMin(m.gainedMin)}`;
    const ul = document.createElement('ul');
    for (const r of m.reasons) {
      const li = document.createElement('li');
      li.dataset.kind = r.kind;
      li.textContent = reasonText(r);
      ul.append(li);
    }
    block.append(head, ul);
    why.append(block);
  }
  const sel = S.selectedTask && d.machines.flatMap((m) => m.tasks).find((x) => x.id === S.selectedTask);
  $('ideal-edit').hidden = !sel;
  $('ideal-selected').textContent = sel
    ? `${t('selected')}: ${sel.machine} ${t(sel.task)} ${formatClock(sel.start, layout.timezone).slice(0, 5)}`
      + ` (${fmtMin((sel.end - sel.start) / 60)})`
    : t('selectTask');
  refreshTimeline();
}

/** One reason of the ideal day's gain, in the page's language, with its minutes. */
function reasonText(r) {
  const hm = (s) => formatClock(s, layout.timezone).slice(0, 5);
  const signed = (min) => `${min > 0 ? '+' : ''}${fmtMin(min)}`;
  const task = t(r.task);
  switch (r.kind) {
    case 'shorter':
    case 'longer':
      return t(r.kind === 'shorter' ? 'reasonShorter' : 'reasonLonger', { task, t: hm(r.recordedStart), n: fmtMin(Math.abs(r.deltaS) / 60) });
    case 'moved':
      return t('reasonMoved', { task, from: hm(r.from), to: hm(r.to) });
    case 'break':
      return t('reasonBreak', { task, brk: S.lang === 'ja' ? r.breakNameJa : r.breakName, from: hm(r.from), to: hm(r.to),
        n: signed(-r.waitS / 60) });
    case 'worker':
      return t('reasonWorker', { task, to: hm(r.to), worker: nameOf(layout.workers.find((w) => w.id === r.worker) ?? { id: r.worker }),
        machine: machineName(layout.machines.find((m) => m.id === r.busyMachine) ?? { id: r.busyMachine }, S.lang),
        n: signed(-r.waitS / 60) });
    case 'breakRun':
      return t('reasonBreakRun', { from: fmtMin(r.fromMin), to: fmtMin(r.toMin), n: signed(r.deltaMin) });
    default:
      return r.kind;
  }
}

/** The ideal day replayed beside the recording: right half of the scene, same clock. */
function setSplit(on) {
  S.split = !!on && !!S.ideal;
  $('split-btn').setAttribute('aria-pressed', String(S.split));
  $('split-captions').hidden = !S.split;
  scene.setSplit(S.split);
  $('stage').classList.toggle('stacked', scene.stacked);
  scene.invalidateObstacles();
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
  return nameOf(layout.workers.find((w) => w.id === id) ?? { id });
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
  S.liveState = key;
  el.textContent = key === 'liveEnded' ? t(key, { t: formatClock(lanes.end, layout.timezone).slice(0, 5) })
    : key ? t(key) : '';
  el.dataset.state = key ?? '';
  el.className = `status ${cls ?? ''}`;
}

function startLive() {
  S.live = true;
  S.liveEdges = [];
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
  ws.onopen = () => { if (S.liveState !== 'liveEnded') setLiveStatus('liveOn', 'ok'); };
  ws.onmessage = (ev) => {
    try { onLive(JSON.parse(ev.data)); } catch { /* a frame we do not understand is ignored */ }
  };
  ws.onclose = () => {
    if (S.liveSocket !== ws || S.liveState === 'liveEnded') return;
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
  if (!SPEEDS.includes(clock.speed)) { clock.setSpeed(1, performance.now()); updateSpeed(); }
  syncUrl();
}

/** The live shift is over: stay at its end and say so (never jump back to the start). */
function endLive() {
  const now = performance.now();
  clock.pause(now);
  if (!SPEEDS.includes(clock.speed)) clock.setSpeed(1, now);
  updatePlay();
  updateSpeed();
  setLiveStatus('liveEnded', 'ok');
  S.payload.shift.recording = false;
  showBanner();
}

let liveRefetchAt = 0;
let liveRefetchDay = null;

/**
 * Follow the live edge at the data's own pace (1x on a shop floor, 60x in the demo); refetch
 * the shift's analysis when the server says it changed.
 */
function onLive(msg) {
  if (msg?.type === 'forecast') { forecastUi?.push(msg.forecast); return; }
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
  if (edge !== null && S.liveState !== 'liveEnded') {
    const now = performance.now();
    const last = S.liveEdges.at(-1);
    if (!last || edge > last.edge) {
      S.liveEdges.push({ wallMs: now, edge });
      while (S.liveEdges.length > 2 && now - S.liveEdges[0].wallMs > 10000) S.liveEdges.shift();
    }
    const rate = liveRate(S.liveEdges);
    if (edge > lanes.end) { lanes.end = edge; clock.extendTo(edge, now); }
    // One wall second behind the edge, so the replay moves smoothly between two frames.
    const behind = rate > 1 ? rate : 0;
    if (Math.abs(clock.time(now) - (edge - behind)) > Math.max(5, 2 * rate)) clock.seek(edge - behind, now);
    if (Math.abs(clock.speed - rate) > 0.05 * rate) { clock.setSpeed(rate, now, { free: true }); updateSpeed(); }
    if (!clock.playing && clock.time(now) < clock.end) { clock.play(now); updatePlay(); }
  }
}

function setResult(doc) {
  const end = lanes.end;
  lanes = buildLanes(doc, layout.machines.map((m) => m.id), layout.workers.map((w) => w.id));
  lanes.end = Math.max(lanes.end, end);  // the live edge may be ahead of the analysis
  S.events = eventTimes(lanes);
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
    showBanner();
    loadKpis();  // the figures grow with the shift
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
      timeline: () => timeline,
      kpis: () => S.kpis,
      forecast: () => forecastUi?.doc ?? null,
      forecastFetches: () => forecastUi?.fetches ?? 0,
      liveMessage: (msg) => onLive(msg),  // as if it came over /ws/live (tests)
      setSkip,
    };
  }
}

start();
