// The site editor page: the site file as a document drawn on its floor plan.
// Data: GET/PUT /api/editor/{site} (document + version), POST .../check after every edit (the
// site validator's problems, shown next to their shapes), PUT .../plan (floor plan upload),
// GET .../devices (Pis seen on the broker), survey walks under .../survey/walks.
// Everything is drawn in screen coordinates from the document on each frame (a few dozen shapes).

import { withCsrf } from './auth.js';
import {
  GRID_M, KIT, PALETTE, RECEIVER_HEIGHT_M, clampZoom, detectLines, duplicateTarget, footprintCorners,
  frontEdge, frontRotation, machineCentre, mm, nextId, planTransform, pointInPolygon, polygonCentroid,
  problemTarget, rectPoints, scaleFromClicks, sensorsFromDevice, seriesName, sig, snapPlanPoint, toGrid,
} from './editor-geom.js';
import { editorText } from './editor-strings.js';

const q = new URLSearchParams(location.search);
const VIRTUAL_MPP = 0.05; // without a plan: 20 px per metre
const TAP_PX = 6;
const SNAP_PX = 10;
const TOOLS = ['select', 'plan', 'scale', 'floor', 'machine', 'zone', 'wall', 'line', 'area', 'receiver', 'survey',
  'site', 'import'];
const DRAW_TOOLS = new Set(['machine', 'zone', 'wall', 'line', 'area']);

const S = {
  site: q.get('site'), version: null, runningVersion: null, file: '', newSite: false, writable: true,
  doc: null, planInfo: null, planImg: null, lines: null, view: { k: 1, tx: 0, ty: 0 }, fitted: false,
  tool: 'select', sel: null, undo: [], redo: [], problems: [], warnings: [], checks: 0, checkSeq: 0,
  devices: [], models: [], dirty: false, lang: ['ja', 'en'].includes(q.get('lang')) ? q.get('lang') : null,
  scalePts: [], drag: null, pointers: new Map(), walk: null, snap: true, recentLabels: [], ready: false,
  error: null, confirmWarnings: false, saving: false, lastSave: null, preview: null, panelKey: '',
};
window.__editor = S;
let t = editorText(S.lang || 'en');
const auto = new WeakMap(); // machine/worker object -> {id: auto id, name: suggested name}
const $ = (id) => document.getElementById(id);

// --- helpers ----------------------------------------------------------------------------------
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on')) node[k] = v;
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c != null) node.append(c);
  return node;
}

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));

async function call(url, opts = {}) {
  const r = await fetch(url, withCsrf({ credentials: 'same-origin', ...opts }, document.cookie));
  let body = null;
  const type = r.headers.get('content-type') || '';
  if (type.includes('json')) body = await r.json();
  if (r.status === 401) {
    $('ed-login').hidden = false;
    const e = new Error(t('signIn'));
    e.status = 401;
    throw e;
  }
  return { ok: r.ok, status: r.status, body };
}

function detailText(body) {
  const d = body && body.detail;
  if (!d) return '';
  if (typeof d === 'string') return d;
  if (d.message) return d.message;
  if (Array.isArray(d)) return d.map((x) => x.msg || JSON.stringify(x)).join('; ');
  return JSON.stringify(d);
}

function say(text, kind = '', ...extra) {
  const box = $('ed-msg');
  box.className = kind;
  box.replaceChildren(...(text ? [el('span', { text })] : []), ...extra);
}

const api = (path = '') => `/api/editor/${encodeURIComponent(S.site)}${path}`;

// --- coordinates ----------------------------------------------------------------------------
function hasScale() {
  const p = S.doc && S.doc.plan;
  return !!(p && Number(p.m_per_px) > 0 && Array.isArray(p.origin_px));
}

function contentExtent() {
  const xs = [0];
  const ys = [0];
  const add = (pts) => { for (const [x, y] of pts) { xs.push(x); ys.push(y); } };
  const d = S.doc || {};
  if (Array.isArray(d.floor)) add([[d.floor[0], d.floor[1]]]);
  for (const m of d.machines || []) {
    if (Array.isArray(m.zone)) add(m.zone);
    const c = machineCentre(m);
    if (c) add(footprintCorners(c, m.footprint || [2, 1.2], m.rotation_deg || 0));
  }
  for (const r of d.receivers || []) if (Array.isArray(r.position)) add([r.position]);
  for (const mk of d.floor_markings || []) if (Array.isArray(mk.points)) add(mk.points);
  return [Math.min(...xs), Math.min(...ys), Math.max(...xs, 16), Math.max(...ys, 10)];
}

/** plan px <-> floor m: the plan's scale, or a virtual 20 px/m frame without a plan. */
function planT() {
  if (hasScale()) return planTransform(S.doc.plan);
  const [x0, , , y1] = contentExtent();
  return planTransform({ m_per_px: VIRTUAL_MPP, origin_px: [40 - x0 / VIRTUAL_MPP, 40 + y1 / VIRTUAL_MPP] });
}

function frameSize() {
  if (S.planImg) return [S.planInfo.w, S.planInfo.h];
  const [x0, y0, x1, y1] = contentExtent();
  return [(x1 - x0) / VIRTUAL_MPP + 80, (y1 - y0) / VIRTUAL_MPP + 80];
}

const toScreen = ([px, py]) => [S.view.tx + S.view.k * px, S.view.ty + S.view.k * py];
const fromScreen = ([sx, sy]) => [(sx - S.view.tx) / S.view.k, (sy - S.view.ty) / S.view.k];
const floorToScreen = (x, y) => toScreen(planT().toPx(x, y));

function fit() {
  const box = $('ed-planbox').getBoundingClientRect();
  const [w, h] = frameSize();
  if (!box.width || !w) return;
  const k = clampZoom(Math.min((box.width - 20) / w, (box.height - 20) / h));
  S.view = { k, tx: (box.width - w * k) / 2, ty: (box.height - h * k) / 2 };
  S.fitted = true;
}

// --- the document -------------------------------------------------------------------------------
const snapshot = () => JSON.stringify(S.doc);
let coalesceKey = null;

/** Change the document: one undo step (typing in one field is one step), redraw, check. */
function edit(fn, { key = null, panel = false } = {}) {
  if (!key || key !== coalesceKey) {
    S.undo.push(snapshot());
    if (S.undo.length > 200) S.undo.shift();
    S.redo = [];
  }
  coalesceKey = key;
  fn(S.doc);
  S.dirty = true;
  S.confirmWarnings = false;
  if (panel) renderPanel(true);
  scheduleCheck();
  render();
}

function undoEdit() {
  if (!S.undo.length) return;
  S.redo.push(snapshot());
  S.doc = JSON.parse(S.undo.pop());
  coalesceKey = null;
  afterDocReplaced();
}

function redoEdit() {
  if (!S.redo.length) return;
  S.undo.push(snapshot());
  S.doc = JSON.parse(S.redo.pop());
  coalesceKey = null;
  afterDocReplaced();
}

function afterDocReplaced() {
  S.dirty = true;
  if (S.sel && !shapeOf(S.sel)) S.sel = null;
  loadPlanImage();
  renderPanel(true);
  scheduleCheck();
  render();
}

function shapeOf(sel) {
  if (!sel || !S.doc) return null;
  const d = S.doc;
  switch (sel.kind) {
    case 'machine': case 'zone': return (d.machines || [])[sel.index] || null;
    case 'receiver': return (d.receivers || [])[sel.index] || null;
    case 'marking': return (d.floor_markings || [])[sel.index] || null;
    case 'wall': return ((d.survey || {}).blocked || [])[sel.index] || null;
    default: return null;
  }
}

function textOf(name, lang) {
  if (name && typeof name === 'object') return name[lang] || name.en || name.ja || '';
  return name || '';
}

function machineLabel(m) {
  const lang = S.lang || 'en';
  if (typeof m.name === 'object' && m.name) return textOf(m.name, lang) || m.id;
  return (lang === 'ja' && m.name_ja) || m.name || m.id;
}

// --- live check ------------------------------------------------------------------------------------
let checkTimer = null;
function scheduleCheck() {
  clearTimeout(checkTimer);
  checkTimer = setTimeout(runCheck, 200);
}

async function runCheck() {
  const seq = ++S.checkSeq;
  try {
    const r = await call(api('/check'), { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ document: S.doc }) });
    if (seq !== S.checkSeq || !r.ok) return;
    S.problems = r.body.problems;
    S.warnings = r.body.warnings;
    S.checks += 1;
    render();
    renderSiteProblems();
  } catch (err) {
    if (err.status !== 401) say(`${t('loadFailed')}: ${err.message}`, 'bad');
  }
}

// --- drawing -----------------------------------------------------------------------------------------
let frameRequested = false;
function render() {
  if (frameRequested) return;
  frameRequested = true;
  requestAnimationFrame(() => {
    frameRequested = false;
    draw();
  });
}

function pts(list) {
  return list.map((p) => toScreen(planT().toPx(p[0], p[1])).map((v) => v.toFixed(1)).join(',')).join(' ');
}

function flagged(kind, index) {
  const hit = (f) => {
    const tg = problemTarget(f.path) || duplicateTarget(f.path, f.message, S.doc);
    return tg && tg.kind === kind && tg.index === index;
  };
  if (S.problems.some(hit)) return ' bad';
  if (S.warnings.some(hit)) return ' warnshape';
  return '';
}

function draw() {
  if (!S.doc) return;
  if (!S.fitted) fit();
  const out = [];
  const T = planT();
  const isSel = (kind, i) => (S.sel && S.sel.kind === kind && S.sel.index === i ? ' sel' : '');
  // Plan image, or a 1 m grid without one.
  if (S.planImg) {
    const [x, y] = toScreen([0, 0]);
    out.push(`<image class="plan-img" href="${esc(S.planInfo.url)}" x="${x}" y="${y}" width="${S.planInfo.w * S.view.k}"`
      + ` height="${S.planInfo.h * S.view.k}" preserveAspectRatio="none"/>`);
  } else {
    const [x0, y0, x1, y1] = contentExtent();
    for (let x = Math.floor(x0); x <= Math.ceil(x1); x += 1) {
      const [a, b] = [floorToScreen(x, Math.floor(y0)), floorToScreen(x, Math.ceil(y1))];
      out.push(`<line class="grid" x1="${a[0]}" y1="${a[1]}" x2="${b[0]}" y2="${b[1]}"/>`);
    }
    for (let y = Math.floor(y0); y <= Math.ceil(y1); y += 1) {
      const [a, b] = [floorToScreen(Math.floor(x0), y), floorToScreen(Math.ceil(x1), y)];
      out.push(`<line class="grid" x1="${a[0]}" y1="${a[1]}" x2="${b[0]}" y2="${b[1]}"/>`);
    }
  }
  const d = S.doc;
  if (Array.isArray(d.floor) && (hasScale() || !S.planImg)) {
    out.push(`<polygon class="draft" style="fill:none;stroke:#555;stroke-dasharray:none" points="${pts(rectPoints([0, 0], d.floor))}"/>`);
  }
  if (hasScale() || !S.planImg) {
    ((d.survey || {}).blocked || []).forEach((poly, i) => {
      if (Array.isArray(poly) && poly.length >= 2) {
        out.push(`<polygon class="wall${isSel('wall', i)}${flagged('wall', i)}" data-kind="wall" data-index="${i}" points="${pts(poly)}"/>`);
      }
    });
    (d.floor_markings || []).forEach((mk, i) => {
      if (!Array.isArray(mk.points) || mk.points.length < 2) return;
      const color = mk.color || '#ffffff';
      const cls = `${isSel('marking', i)}${flagged('marking', i)}`;
      if (mk.kind === 'area') {
        out.push(`<polygon class="mk-area${cls}" data-kind="marking" data-index="${i}" points="${pts(mk.points)}" style="fill:${esc(color)};stroke:#333"/>`);
      } else {
        // A white line on a light plan: drawn with a dark edge so it stays visible.
        out.push(`<polyline class="mk-line" data-kind="marking" data-index="${i}" points="${pts(mk.points)}" style="stroke:#333;stroke-width:7"/>`);
        out.push(`<polyline class="mk-line${cls}" data-kind="marking" data-index="${i}" points="${pts(mk.points)}" style="stroke:${esc(color)}"/>`);
      }
    });
    (d.machines || []).forEach((m, i) => {
      if (Array.isArray(m.zone) && m.zone.length >= 2) {
        out.push(`<polygon class="zone${isSel('zone', i)}${flagged('zone', i)}" data-kind="zone" data-index="${i}" points="${pts(m.zone)}"/>`);
      }
    });
    (d.machines || []).forEach((m, i) => {
      const c = machineCentre(m);
      if (!c) return;
      const fp = Array.isArray(m.footprint) ? m.footprint : [2, 1.2];
      const implicit = Array.isArray(m.position) ? '' : ' implicit';
      out.push(`<polygon class="machine${implicit}${isSel('machine', i)}${flagged('machine', i)}" data-kind="machine" data-index="${i}" data-id="${esc(m.id ?? '')}"`
        + ` points="${pts(footprintCorners(c, fp, m.rotation_deg || 0))}"/>`);
      out.push(`<polyline class="front" points="${pts(frontEdge(c, fp, m.rotation_deg || 0))}"/>`);
    });
    (d.receivers || []).forEach((r, i) => {
      if (!Array.isArray(r.position)) return;
      const [sx, sy] = floorToScreen(r.position[0], r.position[1]);
      out.push(`<circle class="receiver${isSel('receiver', i)}${flagged('receiver', i)}" data-kind="receiver" data-index="${i}" data-id="${esc(r.id ?? '')}" cx="${sx}" cy="${sy}" r="11"/>`);
    });
  }
  // Labels (screen size, never scaled).
  if (hasScale() || !S.planImg) {
    (d.machines || []).forEach((m) => {
      const c = machineCentre(m);
      if (!c) return;
      const [sx, sy] = floorToScreen(c[0], c[1]);
      out.push(`<text class="lbl" x="${sx}" y="${sy + 4}" text-anchor="middle">${esc(m.id ?? '')}</text>`);
    });
    (d.receivers || []).forEach((r) => {
      if (!Array.isArray(r.position)) return;
      const [sx, sy] = floorToScreen(r.position[0], r.position[1]);
      out.push(`<text class="lbl" x="${sx + 14}" y="${sy - 8}">${esc(r.id ?? '')}</text>`);
    });
    (d.floor_markings || []).forEach((mk) => {
      if (!mk.label || !Array.isArray(mk.points) || !mk.points.length) return;
      const c = mk.kind === 'area' && mk.points.length >= 3 ? polygonCentroid(mk.points) : mk.points[0];
      const [sx, sy] = floorToScreen(c[0], c[1]);
      out.push(`<text class="lbl" x="${sx + 4}" y="${sy - 6}">${esc(mk.label)}</text>`);
    });
  }
  // Handles of the selected polygon.
  const handlePts = selectedVertices();
  handlePts.forEach((p, i) => {
    const [sx, sy] = floorToScreen(p[0], p[1]);
    out.push(`<rect class="handle" data-handle="${i}" x="${sx - 12}" y="${sy - 12}" width="24" height="24" rx="4"/>`);
  });
  // Survey track.
  if (S.walk && S.walk.points.length) {
    const tr = S.walk.points.map((p) => [p[1], p[2]]);
    out.push(`<polyline class="track" points="${pts(tr)}"/>`);
    for (const p of tr) {
      const [sx, sy] = floorToScreen(p[0], p[1]);
      out.push(`<circle class="track-pt" cx="${sx}" cy="${sy}" r="6"/>`);
    }
  }
  // What is being drawn now.
  const dr = S.drag;
  if (dr && dr.mode === 'draw' && dr.moved) {
    if (dr.tool === 'floor') {
      const a = toScreen(dr.startPx);
      const b = toScreen(dr.curPx);
      out.push(`<rect class="draft" x="${Math.min(a[0], b[0])}" y="${Math.min(a[1], b[1])}" width="${Math.abs(b[0] - a[0])}" height="${Math.abs(b[1] - a[1])}"/>`);
    } else if (dr.tool === 'line') {
      out.push(`<polyline class="draft" points="${pts([dr.start, dr.cur])}"/>`);
    } else {
      out.push(`<polygon class="draft" points="${pts(rectPoints(dr.start, dr.cur))}"/>`);
    }
  }
  if (S.tool === 'scale') {
    const sp = S.scalePts.map((p) => toScreen(p));
    if (sp.length === 2) out.push(`<line class="scale-line" x1="${sp[0][0]}" y1="${sp[0][1]}" x2="${sp[1][0]}" y2="${sp[1][1]}"/>`);
    for (const p of sp) out.push(`<circle class="scale-pt" cx="${p[0]}" cy="${p[1]}" r="7"/>`);
  }
  if (S.snapMark) {
    const [sx, sy] = S.snapMark;
    out.push(`<circle class="snap" cx="${sx}" cy="${sy}" r="10"/>`);
  }
  $('ed-svg').innerHTML = out.join('');
  drawNotes();
  drawStatus();
  if (S.preview) S.preview.update(S.doc, modelUrl);
}

function selectedVertices() {
  const s = shapeOf(S.sel);
  if (!s) return [];
  if (S.sel.kind === 'zone') return Array.isArray(s.zone) ? s.zone : [];
  if (S.sel.kind === 'marking') return Array.isArray(s.points) ? s.points : [];
  if (S.sel.kind === 'wall') return Array.isArray(s) ? s : [];
  return [];
}

function anchorOf(target) {
  const item = shapeOf(target);
  if (!item) return null;
  try {
    if (target.kind === 'machine') {
      const c = machineCentre(item);
      if (!c) return Array.isArray(item.zone) && item.zone.length ? item.zone[0] : null;
      const fp = item.footprint || [2, 1.2];
      return [c[0], c[1] - Math.abs(fp[1]) / 2];
    }
    if (target.kind === 'zone') return Array.isArray(item.zone) && item.zone.length ? polygonCentroid(item.zone) : machineCentre(item);
    if (target.kind === 'receiver') return item.position;
    if (target.kind === 'marking') return item.points && item.points[0];
    if (target.kind === 'wall') return polygonCentroid(item);
  } catch {
    return null;
  }
  return null;
}

function drawNotes() {
  const host = $('ed-notes');
  const notes = [];
  const place = (f, cls) => {
    const tg = problemTarget(f.path) || duplicateTarget(f.path, f.message, S.doc);
    if (!tg || tg.kind === 'plan') return;
    const a = anchorOf(tg);
    if (!a || !(hasScale() || !S.planImg)) return;
    const [sx, sy] = floorToScreen(a[0], a[1]);
    if (!Number.isFinite(sx) || !Number.isFinite(sy)) return;
    const note = el('div', { class: `ed-note ${cls}`, 'data-path': f.path, 'data-kind': tg.kind, 'data-index': tg.index,
      text: `${f.path ? `${f.path}: ` : ''}${f.message}` });
    note.style.left = `${sx}px`;
    note.style.top = `${sy}px`;
    notes.push(note);
  };
  for (const f of S.problems) place(f, 'bad');
  for (const f of S.warnings) place(f, 'warn');
  host.replaceChildren(...notes);
}

function drawStatus() {
  const st = $('ed-status');
  const parts = [S.dirty ? t('unsaved') : (S.newSite ? t('newSite') : t('saved'))];
  if (S.problems.length) parts.push(`${S.problems.length} ${t('problems')}`);
  if (S.warnings.length) parts.push(`${S.warnings.length} ${t('warnings')}`);
  st.textContent = parts.join(' · ');
  st.dataset.state = S.problems.length ? 'bad' : S.warnings.length ? 'warn' : 'ok';
  $('ed-undo').disabled = !S.undo.length;
  $('ed-redo').disabled = !S.redo.length;
  const name = S.doc && (textOf(S.doc.name, S.lang || 'en') || S.doc.site);
  $('ed-title').textContent = `${t('title')}: ${name || S.site || ''}`;
}

// --- plan image --------------------------------------------------------------------------------
async function loadPlanImage() {
  const p = S.doc && S.doc.plan;
  const url = p && p.image ? api(`/files/${p.image.split('/').map(encodeURIComponent).join('/')}`) : null;
  if (!url) {
    S.planImg = null;
    S.planInfo = null;
    S.lines = null;
    return;
  }
  if (S.planInfo && S.planInfo.url === url && S.planImg) return;
  const img = new Image();
  img.decoding = 'async';
  const loaded = new Promise((resolve, reject) => {
    img.onload = resolve;
    img.onerror = () => reject(new Error(`cannot load ${p.image}`));
  });
  img.src = url;
  try {
    await loaded;
  } catch (err) {
    say(`${t('planBad')}: ${err.message}`, 'bad');
    return;
  }
  const w = img.naturalWidth || (S.planInfo && S.planInfo.w) || 1000;
  const h = img.naturalHeight || (S.planInfo && S.planInfo.h) || 700;
  S.planImg = img;
  S.planInfo = { url, w, h };
  S.lines = null;
  try {
    // Straight lines of the plan for snapping (on a copy no bigger than 2500 px).
    const k = Math.min(1, 2500 / Math.max(w, h));
    const cw = Math.max(1, Math.round(w * k));
    const ch = Math.max(1, Math.round(h * k));
    const canvas = document.createElement('canvas');
    canvas.width = cw;
    canvas.height = ch;
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, cw, ch);
    ctx.drawImage(img, 0, 0, cw, ch);
    const found = detectLines(ctx.getImageData(0, 0, cw, ch).data, cw, ch);
    const back = (v) => v / k;
    S.lines = {
      h: found.h.map((l) => ({ y: back(l.y + 0.5), x0: back(l.x0), x1: back(l.x1 + 1) })),
      v: found.v.map((l) => ({ x: back(l.x + 0.5), y0: back(l.y0), y1: back(l.y1 + 1) })),
    };
  } catch {
    S.lines = null; // a tainted or odd image: no snapping to it
  }
  S.fitted = false;
  render();
}

async function uploadPlan(file) {
  say(t('saving'));
  let r;
  try {
    r = await call(api('/plan'), { method: 'PUT', headers: { 'Content-Type': file.type || 'application/octet-stream' },
      body: file });
  } catch (err) {
    say(`${t('planBad')}: ${err.message}`, 'bad');
    return;
  }
  if (!r.ok) {
    say(`${t('planBad')}: ${detailText(r.body) || r.status}`, 'bad');
    return;
  }
  const info = r.body;
  edit((d) => {
    const old = d.plan || {};
    // A new plan keeps the old scale only if it is the same size; else it needs a new one.
    const sameSize = S.planInfo && S.planInfo.w === info.width_px && S.planInfo.h === info.height_px;
    d.plan = { image: info.image };
    if (sameSize && old.m_per_px) d.plan.m_per_px = old.m_per_px;
    d.plan.origin_px = sameSize && old.origin_px ? old.origin_px : [0, mm(info.height_px)];
  });
  S.planInfo = { url: info.url, w: info.width_px, h: info.height_px };
  S.planImg = null;
  await loadPlanImage();
  say(info.note ? `${t('plan')}: ${info.note}` : '', 'ok');
  S.fitted = false;
  setTool(hasScale() ? 'select' : 'scale');
}

// --- pointer input ------------------------------------------------------------------------------
function eventPx(ev) {
  const box = $('ed-svg').getBoundingClientRect();
  return fromScreen([ev.clientX - box.left, ev.clientY - box.top]);
}

function zoneVerticesPx() {
  const T = planT();
  return (S.doc.machines || []).flatMap((m) => (Array.isArray(m.zone) ? m.zone : [])).map((p) => T.toPx(p[0], p[1]));
}

function allVerticesPx() {
  const T = planT();
  const out = [];
  const d = S.doc;
  const add = (list) => { for (const p of list || []) if (Array.isArray(p)) out.push(T.toPx(p[0], p[1])); };
  for (const m of d.machines || []) {
    add(m.zone);
    const c = machineCentre(m);
    if (c && Array.isArray(m.position)) add(footprintCorners(c, m.footprint || [2, 1.2], m.rotation_deg || 0));
  }
  for (const mk of d.floor_markings || []) add(mk.points);
  for (const poly of (d.survey || {}).blocked || []) add(poly);
  if (Array.isArray(d.floor)) add(rectPoints([0, 0], d.floor));
  return out;
}

/**
 * A floor point from a pointer event, snapped (vertex, plan line, else 10 cm grid). Zones,
 * receivers and survey taps are not on a plan: they snap to the grid and to other zones only
 * (a zone corner 20 cm from a machine's outline must not jump onto it).
 */
function snappedFloor(ev, { skip = null, tool = S.tool } = {}) {
  const px = eventPx(ev);
  const T = planT();
  if (!S.snap) {
    S.snapMark = null;
    const [x, y] = T.toFloor(px[0], px[1]);
    return [mm(x), mm(y)];
  }
  const offPlan = tool === 'zone' || tool === 'receiver' || tool === 'survey';
  const verts = skip || tool === 'receiver' ? [] : tool === 'zone' ? zoneVerticesPx() : allVerticesPx();
  const got = snapPlanPoint(px, { lines: S.planImg && !offPlan ? S.lines : null, vertices: verts, tolPx: SNAP_PX / S.view.k });
  const [fx, fy] = T.toFloor(got.p[0], got.p[1]);
  S.snapMark = got.x || got.y ? toScreen(got.p) : null;
  return [got.x ? mm(fx) : toGrid(fx), got.y ? mm(fy) : toGrid(fy)];
}

function snappedPlanPx(ev) {
  const px = eventPx(ev);
  if (!S.snap || !S.lines) return px;
  const got = snapPlanPoint(px, { lines: S.lines, tolPx: SNAP_PX / S.view.k });
  S.snapMark = got.x || got.y ? toScreen(got.p) : null;
  return got.p;
}

function onDown(ev) {
  if (!S.doc) return;
  $('ed-svg').setPointerCapture(ev.pointerId);
  S.pointers.set(ev.pointerId, [ev.clientX, ev.clientY]);
  if (S.pointers.size === 2) {
    const [a, b] = [...S.pointers.values()];
    S.drag = { mode: 'pinch', dist: Math.hypot(a[0] - b[0], a[1] - b[1]), mid: [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2],
      view: { ...S.view } };
    return;
  }
  const screen = [ev.clientX, ev.clientY];
  const tool = S.tool;
  const needsScale = DRAW_TOOLS.has(tool) || tool === 'receiver' || tool === 'survey';
  if (needsScale && S.planImg && !hasScale()) {
    say(t('needScale'), 'bad');
    S.drag = { mode: 'pan', screen, view: { ...S.view }, moved: false };
    return;
  }
  if (tool === 'floor') {
    if (!hasScale()) {
      say(t('needScale'), 'bad');
      return;
    }
    const p = snappedPlanPx(ev);
    S.drag = { mode: 'draw', tool, screen, startPx: p, curPx: p, moved: false };
    return;
  }
  if (DRAW_TOOLS.has(tool)) {
    const p = snappedFloor(ev);
    S.drag = { mode: 'draw', tool, screen, start: p, cur: p, moved: false };
    render();
    return;
  }
  if (tool === 'select') {
    const handle = ev.target.closest && ev.target.closest('[data-handle]');
    if (handle) {
      S.drag = { mode: 'vertex', i: Number(handle.dataset.handle), screen, moved: false };
      return;
    }
    const hit = ev.target.closest && ev.target.closest('[data-kind]');
    if (hit) {
      select({ kind: hit.dataset.kind, index: Number(hit.dataset.index) });
      const p = snappedFloor(ev, { skip: true, tool: 'receiver' }); // a move steps on the grid
      S.drag = { mode: 'move', screen, start: p, last: p, moved: false };
      return;
    }
  }
  S.drag = { mode: 'pan', screen, view: { ...S.view }, moved: false, tapTool: tool, ev };
}

function onMove(ev) {
  if (!S.pointers.has(ev.pointerId)) {
    return;
  }
  S.pointers.set(ev.pointerId, [ev.clientX, ev.clientY]);
  const dr = S.drag;
  if (!dr) return;
  if (dr.mode === 'pinch' && S.pointers.size === 2) {
    const [a, b] = [...S.pointers.values()];
    const dist = Math.hypot(a[0] - b[0], a[1] - b[1]);
    const mid = [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2];
    const k = clampZoom(dr.view.k * (dist / Math.max(1, dr.dist)));
    const box = $('ed-svg').getBoundingClientRect();
    const m0 = [dr.mid[0] - box.left, dr.mid[1] - box.top];
    const anchor = [(m0[0] - dr.view.tx) / dr.view.k, (m0[1] - dr.view.ty) / dr.view.k];
    S.view = { k, tx: mid[0] - box.left - anchor[0] * k, ty: mid[1] - box.top - anchor[1] * k };
    render();
    return;
  }
  const moved = Math.hypot(ev.clientX - dr.screen[0], ev.clientY - dr.screen[1]) > TAP_PX;
  dr.moved = dr.moved || moved;
  if (dr.mode === 'pan') {
    if (dr.moved) {
      S.view = { ...dr.view, tx: dr.view.tx + ev.clientX - dr.screen[0], ty: dr.view.ty + ev.clientY - dr.screen[1] };
      render();
    }
  } else if (dr.mode === 'draw') {
    if (dr.tool === 'floor') dr.curPx = snappedPlanPx(ev);
    else dr.cur = snappedFloor(ev);
    render();
  } else if (dr.mode === 'move' && dr.moved) {
    const p = snappedFloor(ev, { skip: true, tool: 'receiver' });
    const dx = mm(p[0] - dr.last[0]);
    const dy = mm(p[1] - dr.last[1]);
    if (dx || dy) {
      edit((d) => moveShape(d, S.sel, dx, dy), { key: `move:${dr.screen}` });
      dr.last = p;
    }
  } else if (dr.mode === 'vertex' && dr.moved) {
    const p = snappedFloor(ev, { skip: S.sel.kind !== 'zone', tool: S.sel.kind === 'zone' ? 'zone' : 'select' });
    edit(() => {
      const v = selectedVertices();
      if (v[dr.i]) { v[dr.i][0] = p[0]; v[dr.i][1] = p[1]; }
    }, { key: `vertex:${dr.screen}` });
  }
}

function onUp(ev) {
  S.pointers.delete(ev.pointerId);
  const dr = S.drag;
  S.drag = null;
  S.snapMark = null;
  if (!dr) return;
  if (dr.mode === 'pinch') return;
  if (dr.mode === 'draw') {
    if (!dr.moved) {
      render();
      return;
    }
    finishDraw(dr);
    return;
  }
  if (dr.mode === 'pan' && !dr.moved) {
    tap(ev, dr.tapTool);
    return;
  }
  if (dr.mode === 'move' || dr.mode === 'vertex') {
    coalesceKey = null;
    if (dr.mode === 'move' && dr.moved) renderPanel(true);
  }
  render();
}

function onWheel(ev) {
  ev.preventDefault();
  const box = $('ed-svg').getBoundingClientRect();
  const m = [ev.clientX - box.left, ev.clientY - box.top];
  const anchor = fromScreen(m);
  const k = clampZoom(S.view.k * Math.exp(-ev.deltaY * 0.0015));
  S.view = { k, tx: m[0] - anchor[0] * k, ty: m[1] - anchor[1] * k };
  render();
}

function tap(ev, tool) {
  if (tool === 'scale') {
    const p = snappedPlanPx(ev);
    S.scalePts = S.scalePts.length >= 2 ? [p] : [...S.scalePts, p];
    S.snapMark = null;
    render();
    renderPanel(true);
    if (S.scalePts.length === 2) setTimeout(() => $('ed-distance') && $('ed-distance').focus(), 0);
    return;
  }
  if (tool === 'receiver') {
    addReceiver(snappedFloor(ev));
    S.snapMark = null;
    return;
  }
  if (tool === 'survey' && S.walk) {
    const [x, y] = planT().toFloor(...eventPx(ev));
    surveyTap(mm(x), mm(y));
    return;
  }
  if (tool === 'select') select(null);
  render();
}

function moveShape(d, sel, dx, dy) {
  const shift = (list) => { for (const p of list || []) { p[0] = mm(p[0] + dx); p[1] = mm(p[1] + dy); } };
  const s = shapeOf(sel);
  if (!s) return;
  if (sel.kind === 'machine') {
    const c = machineCentre(s);
    if (c) s.position = [mm(c[0] + dx), mm(c[1] + dy)];
    shift(s.zone);
    // Its receivers hang on it: they move with it.
    for (const r of d.receivers || []) {
      if (r.machine === s.id && Array.isArray(r.position)) { r.position[0] = mm(r.position[0] + dx); r.position[1] = mm(r.position[1] + dy); }
    }
  } else if (sel.kind === 'zone') shift(s.zone);
  else if (sel.kind === 'receiver') { s.position[0] = mm(s.position[0] + dx); s.position[1] = mm(s.position[1] + dy); }
  else if (sel.kind === 'marking') shift(s.points);
  else if (sel.kind === 'wall') shift(s);
}

// --- creating shapes ---------------------------------------------------------------------------
function orderMachine(m) {
  const keys = ['id', 'name', 'name_ja', 'position', 'rotation_deg', 'footprint', 'height_m', 'zone', 'model', 'device', 'sensors'];
  const out = {};
  for (const k of keys) if (m[k] !== undefined) out[k] = m[k];
  for (const k of Object.keys(m)) if (!(k in out)) out[k] = m[k];
  return out;
}

function finishDraw(dr) {
  if (dr.tool === 'floor') {
    const [a, b] = [dr.startPx, dr.curPx];
    const mpp = S.doc.plan.m_per_px;
    const origin = [mm(Math.min(a[0], b[0])), mm(Math.max(a[1], b[1]))];
    const size = [mm(Math.abs(b[0] - a[0]) * mpp), mm(Math.abs(b[1] - a[1]) * mpp)];
    if (size[0] < 0.5 || size[1] < 0.5) return;
    // Shapes keep their floor coordinates (an imported site's are right): the plan moves under them.
    edit((d) => {
      d.plan.origin_px = origin;
      d.floor = size;
    });
    setTool('machine');
    return;
  }
  const [a, b] = [dr.start, dr.cur];
  if (Math.hypot(b[0] - a[0], b[1] - a[1]) < 0.1) return;
  if (dr.tool === 'machine') {
    const r = rectPoints(a, b);
    const w = mm(r[1][0] - r[0][0]);
    const dd = mm(r[2][1] - r[1][1]);
    if (w < 0.2 || dd < 0.2) return;
    let idx = 0;
    edit((d) => {
      d.machines = d.machines || [];
      const m = orderMachine({ id: nextId('M', d.machines.map((x) => x.id)), position: [mm((r[0][0] + r[1][0]) / 2), mm((r[1][1] + r[2][1]) / 2)],
        footprint: [w, dd] });
      auto.set(m, { id: true, name: true });
      d.machines.push(m);
      idx = d.machines.length - 1;
      suggestMachineName(d, idx);
    });
    S.sel = { kind: 'machine', index: idx };
    renderPanel(true);
    return;
  }
  if (dr.tool === 'zone') {
    const zone = rectPoints(a, b);
    let idx = -1;
    edit((d) => {
      idx = zoneOwner(d, zone);
      if (idx < 0) return;
      d.machines[idx].zone = zone;
    });
    if (idx < 0) {
      say(t('hintMachine'), 'bad');
      return;
    }
    S.sel = { kind: 'zone', index: idx };
    renderPanel(true);
    return;
  }
  if (dr.tool === 'wall') {
    edit((d) => {
      d.survey = d.survey || {};
      d.survey.blocked = [...(d.survey.blocked || []), rectPoints(a, b)];
      S.sel = { kind: 'wall', index: d.survey.blocked.length - 1 };
    });
    renderPanel(true);
    return;
  }
  if (dr.tool === 'line' || dr.tool === 'area') {
    edit((d) => {
      d.floor_markings = d.floor_markings || [];
      const mk = dr.tool === 'line' ? { kind: 'line', points: [[a[0], a[1]], [b[0], b[1]]] } : { kind: 'area', points: rectPoints(a, b) };
      d.floor_markings.push(mk);
      S.sel = { kind: 'marking', index: d.floor_markings.length - 1 };
    });
    renderPanel(true);
    focusLater('ed-f-label');
  }
}

/** The machine a new zone belongs to: the selected one without a zone, else the nearest without one. */
function zoneOwner(d, zone) {
  const ms = d.machines || [];
  if (!ms.length) return -1;
  const zc = polygonCentroid(zone);
  if (S.sel && S.sel.kind === 'machine' && ms[S.sel.index] && !ms[S.sel.index].zone) return S.sel.index;
  const dist = (m) => {
    const c = machineCentre(m);
    return c ? Math.hypot(c[0] - zc[0], c[1] - zc[1]) : 1e9;
  };
  const order = ms.map((m, i) => [i, dist(m), !m.zone]).sort((a, b) => (b[2] - a[2]) || (a[1] - b[1]));
  return order[0][0];
}

function suggestMachineName(d, i) {
  const m = d.machines[i];
  const flags = auto.get(m) || {};
  const prev = [...d.machines.slice(0, i)].reverse().find((x) => x.name);
  if (!prev || !flags.name) return;
  if (typeof prev.name === 'object') {
    const ja = seriesName(prev.name.ja, prev.id, m.id);
    const en = seriesName(prev.name.en, prev.id, m.id);
    if (ja || en) m.name = { ...(ja ? { ja } : {}), ...(en ? { en } : {}) };
  } else {
    const en = seriesName(prev.name, prev.id, m.id);
    if (en) m.name = en;
    const ja = seriesName(prev.name_ja, prev.id, m.id);
    if (ja) m.name_ja = ja;
  }
  d.machines[i] = orderMachine(m);
  auto.set(d.machines[i], flags);
}

function deviceById(id) {
  return S.devices.find((x) => x.device === id) || null;
}

function bindMachine(i, deviceId) {
  edit((d) => {
    const m = d.machines[i];
    const flags = auto.get(m) || {};
    const dev = deviceById(deviceId);
    const others = d.machines.filter((x, j) => j !== i);
    // The same Pi cannot be on two machines: it moves here.
    for (const o of others) if (o.device === deviceId) delete o.device;
    m.device = deviceId;
    const oldId = m.id;
    if (flags.id && dev && dev.machine && !others.some((o) => o.id === dev.machine)) {
      m.id = dev.machine;
      for (const r of d.receivers || []) if (r.machine === oldId) r.machine = m.id;
      flags.id = false;
    }
    if (!Array.isArray(m.sensors) || !m.sensors.length) m.sensors = sensorsFromDevice(dev);
    d.machines[i] = orderMachine(m);
    auto.set(d.machines[i], flags);
    suggestMachineName(d, i);
  }, { panel: true });
  const m = S.doc.machines[i];
  focusLater(m.name ? null : 'ed-f-name');
}

function addReceiver(p) {
  let idx = 0;
  edit((d) => {
    d.receivers = d.receivers || [];
    const ms = d.machines || [];
    let at = ms.findIndex((m) => Array.isArray(m.zone) && m.zone.length >= 3 && pointInPolygon(p[0], p[1], m.zone));
    if (at < 0) {
      let best = 3.0;
      ms.forEach((m, i) => {
        const c = machineCentre(m);
        if (c && Math.hypot(c[0] - p[0], c[1] - p[1]) < best) { best = Math.hypot(c[0] - p[0], c[1] - p[1]); at = i; }
      });
    }
    const used = d.receivers.map((r) => r.id);
    let id = null;
    const machine = at >= 0 ? ms[at] : null;
    if (machine) {
      const dev = deviceById(machine.device);
      id = (dev ? dev.receivers : []).find((r) => !used.includes(r)) || null;
      const num = /(\d+)$/.exec(machine.id || '');
      if (!id && num && !used.includes(`R${num[1]}`)) id = `R${num[1]}`;
    }
    const r = { id: id || nextId('R', used), position: [p[0], p[1], RECEIVER_HEIGHT_M] };
    if (machine) r.machine = machine.id;
    d.receivers.push(r);
    idx = d.receivers.length - 1;
  });
  S.sel = { kind: 'receiver', index: idx };
  renderPanel(true);
}

function deleteSelected() {
  const sel = S.sel;
  if (!sel || !shapeOf(sel)) return;
  edit((d) => {
    if (sel.kind === 'machine') {
      const [m] = d.machines.splice(sel.index, 1);
      for (const r of d.receivers || []) if (r.machine === m.id) delete r.machine;
    } else if (sel.kind === 'zone') delete d.machines[sel.index].zone;
    else if (sel.kind === 'receiver') d.receivers.splice(sel.index, 1);
    else if (sel.kind === 'marking') d.floor_markings.splice(sel.index, 1);
    else if (sel.kind === 'wall') {
      d.survey.blocked.splice(sel.index, 1);
      if (!d.survey.blocked.length) delete d.survey.blocked;
      if (!Object.keys(d.survey).length) delete d.survey;
    }
  });
  S.sel = null;
  renderPanel(true);
}

// --- the side panel ---------------------------------------------------------------------------
function focusLater(id) {
  if (!id) return;
  setTimeout(() => {
    const f = $(id);
    if (f) f.focus();
  }, 0);
}

function field(label, input) {
  return el('label', { class: 'ed-field' }, el('span', { text: label }), input);
}

function input(id, value, onInput, attrs = {}) {
  return el('input', { id, value: value ?? '', oninput: (e) => onInput(e.target.value, e), ...attrs });
}

function num(v) {
  const n = Number(String(v).replace(',', '.'));
  return Number.isFinite(n) ? n : v;
}

function select(sel) {
  S.sel = sel;
  coalesceKey = null;
  renderPanel(true);
  render();
}

function renderPanel(force = false) {
  const key = `${S.tool}|${S.sel ? `${S.sel.kind}:${S.sel.index}` : ''}|${S.lang}`;
  if (!force && key === S.panelKey) return;
  S.panelKey = key;
  const host = $('ed-panel');
  const parts = [];
  if (S.tool === 'scale') parts.push(...scalePanel());
  else if (S.tool === 'site') {
    parts.push(...sitePanel());
    if (!textOf(S.doc.name, 'en') && !textOf(S.doc.name, 'ja')) focusLater('ed-s-name');
  }
  else if (S.tool === 'survey') parts.push(...surveyPanel());
  else if (S.tool === 'history') parts.push(...historyPanel());
  else if (S.sel && shapeOf(S.sel)) parts.push(...selectionPanel());
  else parts.push(el('h2', { text: t(S.tool) }), el('p', { class: 'ed-small', text: hintFor(S.tool) }), ...devicesPanel());
  parts.push(el('div', { id: 'ed-siteproblems' }));
  host.replaceChildren(...parts);
  renderSiteProblems();
  $('ed-hint').textContent = hintFor(S.tool);
}

function hintFor(tool) {
  if (tool === 'scale') return S.scalePts.length === 2 ? t('hintScaleDistance') : t('hintScale');
  const k = `hint${tool[0].toUpperCase()}${tool.slice(1)}`;
  const h = t(k);
  return h === k ? '' : h;
}

function renderSiteProblems() {
  const host = $('ed-siteproblems');
  if (!host) return;
  const general = [...S.problems.map((f) => [f, 'ed-problem']), ...S.warnings.map((f) => [f, 'ed-warning'])]
    .filter(([f]) => {
      const tg = problemTarget(f.path) || duplicateTarget(f.path, f.message, S.doc);
      return !tg || tg.kind === 'plan' || (S.planImg && !hasScale());
    });
  host.replaceChildren(...(general.length ? [el('h3', { text: t('problemsSite') }),
    el('ul', { class: 'ed-list' }, ...general.map(([f, cls]) => el('li', { class: cls, 'data-path': f.path,
      text: `${f.path ? `${f.path}: ` : ''}${f.message}` })))] : []));
}

function scalePanel() {
  const out = [el('h2', { text: t('scale') }), el('p', { class: 'ed-small', text: hintFor('scale') })];
  if (S.scalePts.length === 2) {
    const inp = input('ed-distance', '', () => {}, { inputmode: 'decimal', class: 'ed-panel-input', autocomplete: 'off' });
    const apply = () => {
      let mpp;
      try {
        mpp = scaleFromClicks(S.scalePts[0], S.scalePts[1], inp.value);
      } catch (err) {
        say(`${t('scale')}: ${err.message}`, 'bad');
        inp.focus();
        return;
      }
      edit((d) => {
        d.plan = d.plan || {};
        d.plan.m_per_px = mpp;
        if (!Array.isArray(d.plan.origin_px)) d.plan.origin_px = [0, S.planInfo ? S.planInfo.h : 0];
      });
      say(`${t('scaleSet')}: ${(1 / mpp).toFixed(2)} ${t('pxPerM')}`, 'ok');
      S.scalePts = [];
      setTool(Array.isArray(S.doc.floor) ? 'machine' : 'floor');
    };
    inp.onkeydown = (e) => { if (e.key === 'Enter') { e.preventDefault(); apply(); } };
    out.push(field(t('distance'), inp), el('button', { class: 'ed-btn primary', type: 'button', id: 'ed-setscale', text: t('setScale'), onclick: apply }));
  }
  if (hasScale()) out.push(el('p', { class: 'ed-small', text: `${t('scaleSet')}: ${(1 / S.doc.plan.m_per_px).toFixed(2)} ${t('pxPerM')}` }));
  return out;
}

function nameFields(obj, prefix, onChange, { ja = true } = {}) {
  const out = [];
  if (obj.name && typeof obj.name === 'object') {
    out.push(field(t('nameEn'), input(`${prefix}-name`, obj.name.en, (v) => onChange((o) => { o.name = { ...o.name, en: v }; if (!v) delete o.name.en; }))));
    out.push(field(t('nameJa'), input(`${prefix}-name-ja`, obj.name.ja, (v) => onChange((o) => { o.name = { ...o.name, ja: v }; if (!v) delete o.name.ja; }))));
  } else {
    out.push(field(t('name'), input(`${prefix}-name`, obj.name, (v) => onChange((o) => { if (v) o.name = v; else delete o.name; }))));
    if (ja) out.push(field(t('nameJa'), input(`${prefix}-name-ja`, obj.name_ja, (v) => onChange((o) => { if (v) o.name_ja = v; else delete o.name_ja; }))));
  }
  return out;
}

function selectionPanel() {
  const sel = S.sel;
  const s = shapeOf(sel);
  const i = sel.index;
  const del = el('button', { class: 'ed-btn', type: 'button', id: 'ed-delete', text: t('delete'), onclick: deleteSelected });
  if (sel.kind === 'machine') {
    const m = s;
    const upd = (fn, k) => edit((d) => {
      const flags = auto.get(d.machines[i]) || {};
      fn(d.machines[i]);
      d.machines[i] = orderMachine(d.machines[i]);
      auto.set(d.machines[i], flags);
    }, { key: `m${i}:${k}` });
    const idInput = input('ed-f-id', m.id, (v) => upd((o) => {
      const old = o.id;
      o.id = v;
      for (const r of S.doc.receivers || []) if (r.machine === old) r.machine = v;
      const flags = auto.get(o) || {};
      flags.id = false;
      auto.set(o, flags);
    }, 'id'), { autocomplete: 'off' });
    const c = machineCentre(m) || [0, 0];
    const fp = m.footprint || [2, 1.2];
    const out = [el('h2', { text: `${t('machine')} ${m.id || ''}` }), field(t('id'), idInput)];
    out.push(...nameFields(m, 'ed-f', (fn) => upd((o) => { fn(o); const f = auto.get(o) || {}; f.name = false; auto.set(o, f); }, 'name')));
    out.push(el('h3', { text: t('bindPi') }), deviceChips((dev) => bindMachine(i, dev.device), (dev) => dev.device === m.device,
      (dev) => !dev.locator || dev.machine));
    out.push(el('div', { class: 'ed-row' },
      field(`${t('position')} x`, input('ed-f-x', c[0], (v) => upd((o) => { o.position = [num(v), c[1]]; }, 'x'), { inputmode: 'decimal' })),
      field('y', input('ed-f-y', c[1], (v) => upd((o) => { o.position = [c[0], num(v)]; }, 'y'), { inputmode: 'decimal' }))));
    out.push(el('div', { class: 'ed-row' },
      field(`${t('footprint')}`, input('ed-f-w', fp[0], (v) => upd((o) => { o.footprint = [num(v), (o.footprint || fp)[1]]; }, 'w'), { inputmode: 'decimal' })),
      field('×', input('ed-f-d', fp[1], (v) => upd((o) => { o.footprint = [(o.footprint || fp)[0], num(v)]; }, 'd'), { inputmode: 'decimal' }))));
    const rot = input('ed-f-rot', m.rotation_deg ?? 0, (v) => upd((o) => { o.rotation_deg = num(v); }, 'rot'), { inputmode: 'decimal' });
    out.push(field(t('rotation'), rot));
    out.push(el('div', { class: 'ed-chips', 'aria-label': t('front') }, el('span', { class: 'ed-small', text: t('front') }),
      ...[['up', '↑'], ['left', '←'], ['down', '↓'], ['right', '→']].map(([side, arrow]) => el('button', {
        class: `ed-chip${(m.rotation_deg || 0) % 360 === frontRotation(side) ? ' on' : ''}`, type: 'button', 'data-front': side, text: arrow,
        onclick: () => edit((d) => { d.machines[i].rotation_deg = frontRotation(side); }, { panel: true }),
      }))));
    out.push(field(t('height'), input('ed-f-h', m.height_m ?? 1.8, (v) => upd((o) => { o.height_m = num(v); }, 'h'), { inputmode: 'decimal' })));
    const modelSel = el('select', { id: 'ed-f-model', onchange: (e) => edit((d) => {
      if (e.target.value) d.machines[i].model = e.target.value; else delete d.machines[i].model;
      d.machines[i] = orderMachine(d.machines[i]);
    }) }, el('option', { value: '', text: t('none') }), ...S.models.map((f) => el('option', { value: f.path, text: f.path, selected: f.path === m.model })));
    if (m.model && !S.models.some((f) => f.path === m.model)) modelSel.append(el('option', { value: m.model, text: m.model, selected: true }));
    out.push(field(t('model'), modelSel), el('button', { class: 'ed-btn', type: 'button', id: 'ed-upload-model', text: t('uploadModel'),
      onclick: () => { S.modelFor = i; $('ed-model-file').click(); } }));
    const sensors = Array.isArray(m.sensors) ? m.sensors : [];
    out.push(el('h3', { text: `${t('sensors')} (${sensors.length})` }),
      el('p', { class: 'ed-small', id: 'ed-f-sensors', text: sensors.map((x) => x.id).join(', ') || t('none') }),
      el('div', { class: 'ed-chips' },
        el('button', { class: 'ed-chip', type: 'button', text: t('kit'), onclick: () => edit((d) => { d.machines[i].sensors = KIT.map((x) => ({ ...x })); }, { panel: true }) }),
        m.device ? el('button', { class: 'ed-chip', type: 'button', text: t('fromPi'), onclick: () => edit((d) => { d.machines[i].sensors = sensorsFromDevice(deviceById(m.device)); }, { panel: true }) }) : null));
    out.push(del);
    return out;
  }
  if (sel.kind === 'zone') {
    const opts = (S.doc.machines || []).map((m, j) => el('option', { value: j, text: m.id, selected: j === i }));
    const mv = el('select', { id: 'ed-f-zone-owner', onchange: (e) => {
      const j = Number(e.target.value);
      edit((d) => { const z = d.machines[i].zone; delete d.machines[i].zone; d.machines[j].zone = z; });
      select({ kind: 'zone', index: j });
    } }, ...opts);
    return [el('h2', { text: `${t('zone')} ${s.id || ''}` }), field(t('zoneOf'), mv), del];
  }
  if (sel.kind === 'receiver') {
    const r = s;
    const upd = (fn, k) => edit((d) => fn(d.receivers[i]), { key: `r${i}:${k}` });
    const ms = el('select', { id: 'ed-f-rmachine', onchange: (e) => edit((d) => { if (e.target.value) d.receivers[i].machine = e.target.value; else delete d.receivers[i].machine; }, { panel: true }) },
      el('option', { value: '', text: t('none') }), ...(S.doc.machines || []).map((m) => el('option', { value: m.id, text: m.id, selected: m.id === r.machine })));
    const p = r.position || [0, 0, RECEIVER_HEIGHT_M];
    return [el('h2', { text: `${t('receiver')} ${r.id || ''}` }),
      field(t('id'), input('ed-f-id', r.id, (v) => upd((o) => { o.id = v; }, 'id'), { autocomplete: 'off' })),
      field(t('receiverMachine'), ms),
      el('h3', { text: t('bindPi') }),
      deviceChips((dev) => bindReceiver(i, dev), (dev) => {
        const m = (S.doc.machines || []).find((x) => x.id === r.machine);
        return m && m.device === dev.device;
      }, (dev) => dev.receivers.length > 0),
      el('div', { class: 'ed-row' },
        field('x', input('ed-f-x', p[0], (v) => upd((o) => { o.position = [num(v), o.position[1], o.position[2]]; }, 'x'), { inputmode: 'decimal' })),
        field('y', input('ed-f-y', p[1], (v) => upd((o) => { o.position = [o.position[0], num(v), o.position[2]]; }, 'y'), { inputmode: 'decimal' })),
        field(t('z'), input('ed-f-z', p[2], (v) => upd((o) => { o.position = [o.position[0], o.position[1], num(v)]; }, 'z'), { inputmode: 'decimal' }))),
      del];
  }
  if (sel.kind === 'marking') {
    const mk = s;
    const upd = (fn, k) => edit((d) => fn(d.floor_markings[i]), { key: `k${i}:${k}` });
    const label = input('ed-f-label', mk.label, (v) => upd((o) => { if (v) o.label = v; else delete o.label; }, 'label'), { autocomplete: 'off' });
    label.onchange = () => rememberLabel(label.value);
    const recent = [...new Set([...S.recentLabels, ...(S.doc.floor_markings || []).map((x) => x.label).filter(Boolean)])]
      .filter((x) => x !== mk.label).slice(0, 6);
    return [el('h2', { text: `${mk.kind === 'area' ? t('area') : t('line')}` }), field(t('label'), label),
      recent.length ? el('div', { class: 'ed-chips', id: 'ed-recent-labels' }, ...recent.map((x) => el('button', { class: 'ed-chip', type: 'button', text: x,
        onclick: () => edit((d) => { d.floor_markings[i].label = x; }, { panel: true }) }))) : null,
      el('h3', { text: t('color') }),
      el('div', { class: 'ed-chips' }, ...PALETTE.map((c) => el('button', {
        class: `ed-swatch${(mk.color || '#ffffff').toLowerCase() === c ? ' on' : ''}`, type: 'button', 'data-color': c, style: `background:${c}`,
        'aria-label': c, onclick: () => edit((d) => { if (c === '#ffffff') delete d.floor_markings[i].color; else d.floor_markings[i].color = c; }, { panel: true }),
      }))),
      mk.kind === 'line' ? field(t('width'), input('ed-f-width', mk.width_m ?? 0.05, (v) => upd((o) => { o.width_m = num(v); }, 'w'), { inputmode: 'decimal' })) : null,
      del].filter(Boolean);
  }
  if (sel.kind === 'wall') return [el('h2', { text: t('wall') }), del];
  return [];
}

function rememberLabel(v) {
  if (v && !S.recentLabels.includes(v)) S.recentLabels.unshift(v);
}

function bindReceiver(i, dev) {
  const ms = S.doc.machines || [];
  const m = ms.find((x) => x.device === dev.device);
  const standalone = /^rx-(.+)$/.exec(dev.device);
  if (!m && !standalone) {
    say(`${dev.device}: ${t('bindPi')} → ${t('machine')}`, 'bad');
    return;
  }
  edit((d) => {
    const r = d.receivers[i];
    const used = d.receivers.filter((_, j) => j !== i).map((x) => x.id);
    if (m) {
      r.machine = m.id;
      const id = dev.receivers.find((x) => !used.includes(x));
      if (id) r.id = id;
    } else {
      delete r.machine;
      r.id = standalone[1];
    }
  }, { panel: true });
}

function deviceChips(onPick, isOn, filter = () => true) {
  const wrap = el('div', { class: 'ed-chips', 'data-devchips': '1' });
  const fill = () => {
    const list = S.devices.filter(filter);
    wrap.replaceChildren(...(list.length ? list.map((dev) => el('button', {
      class: `ed-chip${isOn(dev) ? ' on' : ''}`, type: 'button', 'data-device': dev.device, onclick: () => onPick(dev),
    }, el('span', { class: `dot${dev.online ? ' online' : ''}` }), `${dev.device}${dev.machine ? ` (${dev.machine})` : ''}`))
      : [el('span', { class: 'ed-small', text: t('noDevices') })]));
  };
  wrap.refill = fill;
  fill();
  return wrap;
}

function devicesPanel() {
  if (!S.devices.length) return [el('h3', { text: t('devices') }), el('p', { class: 'ed-small', text: t('noDevices') })];
  return [el('h3', { text: t('devices') }), el('ul', { class: 'ed-list' }, ...S.devices.map((dev) => el('li', { 'data-device': dev.device },
    el('span', { class: `dot${dev.online ? ' online' : ''}` }), el('b', { text: dev.device }),
    el('span', { class: 'ed-small', text: [dev.machine, ...dev.receivers].filter(Boolean).join(', ') }),
    el('span', { class: 'ed-small', text: dev.in_site ? t('inSite') : t('notInSite') }))))];
}

function sitePanel() {
  const d = S.doc;
  const upd = (fn, k) => edit(fn, { key: `site:${k}` });
  const out = [el('h2', { text: t('site') })];
  out.push(...nameFields(d, 'ed-s', (fn) => upd((doc) => fn(doc), 'name')));
  let zones = [];
  try { zones = Intl.supportedValuesOf('timeZone'); } catch { zones = ['UTC', 'Asia/Tokyo']; }
  if (!zones.includes('UTC')) zones.unshift('UTC');
  if (d.timezone && !zones.includes(d.timezone)) zones.unshift(d.timezone);
  out.push(field(t('timezone'), el('select', { id: 'ed-s-tz', onchange: (e) => upd((doc) => { doc.timezone = e.target.value; }, 'tz') },
    ...zones.map((z) => el('option', { value: z, text: z, selected: z === (d.timezone || 'UTC') })))));
  out.push(el('div', { class: 'ed-chips' }, el('span', { class: 'ed-small', text: t('siteLanguage') }),
    ...['ja', 'en'].map((l) => el('button', { class: `ed-chip${(d.language || 'en') === l ? ' on' : ''}`, type: 'button', 'data-lang': l,
      text: l === 'ja' ? '日本語' : 'English', onclick: () => edit((doc) => { doc.language = l; }, { panel: true }) }))));
  const shift = d.shift || {};
  const setShift = (k, v) => upd((doc) => {
    doc.shift = doc.shift || {};
    doc.shift[k] = v;
    if (!doc.shift.breaks) doc.shift.breaks = defaultBreaks();
    doc.shift = { start: doc.shift.start ?? '08:00', end: doc.shift.end ?? '17:00', breaks: doc.shift.breaks,
      ...Object.fromEntries(Object.entries(doc.shift).filter(([x]) => !['start', 'end', 'breaks'].includes(x))) };
  }, `shift:${k}`);
  // Plain text with a number pad: "0830", "8:30" and "08:30" all mean 08:30 (a browser's time
  // picker follows its own locale, 12 h in some, and is slow to use on a tablet).
  const timeInput = (id, k, dflt) => {
    const inp = input(id, shift[k] ?? dflt, (v) => setShift(k, hhmm(v)), { inputmode: 'numeric', autocomplete: 'off',
      placeholder: 'HH:MM' });
    inp.onfocus = () => inp.select();
    inp.onchange = () => { inp.value = hhmm(inp.value); };
    return inp;
  };
  out.push(el('div', { class: 'ed-row' },
    field(t('shiftStart'), timeInput('ed-s-start', 'start', '08:00')),
    field(t('shiftEnd'), timeInput('ed-s-end', 'end', '17:00'))));
  const breaks = shift.breaks || defaultBreaks();
  out.push(el('h3', { text: t('breaks') }), el('ul', { class: 'ed-list' }, ...breaks.map((b) => el('li', {},
    `${b.start}–${b.end} ${textOf(b.name, S.lang || 'en') || ''}`))));
  // Workers, from the beacons the receivers hear.
  const workers = d.workers || [];
  // Each worker: the name in English and Japanese (either form of the file: name + name_ja, or
  // name: {ja, en}, is kept as it is).
  out.push(el('h3', { text: t('workers') }), el('ul', { class: 'ed-list', id: 'ed-workers' }, ...workers.map((w, i) => {
    const setName = (lang) => (v) => upd((doc) => {
      const o = doc.workers[i];
      if (o.name && typeof o.name === 'object') {
        o.name = { ...o.name, [lang]: v };
        if (!v) delete o.name[lang];
      } else if (lang === 'en') {
        if (v) o.name = v; else delete o.name;
      } else if (v) o.name_ja = v; else delete o.name_ja;
      doc.workers[i] = orderWorker(o);
    }, `w${i}:${lang}`);
    const en = typeof w.name === 'object' && w.name ? w.name.en : w.name;
    const ja = typeof w.name === 'object' && w.name ? w.name.ja : w.name_ja;
    return el('li', { 'data-worker': w.id },
      el('b', { text: w.id }), el('span', { class: 'ed-small', text: w.beacon }),
      input(`ed-w-name-${i}`, en, setName('en'), { class: 'ed-panel-input', autocomplete: 'off', placeholder: t('nameEn') }),
      input(`ed-w-name-ja-${i}`, ja, setName('ja'), { class: 'ed-panel-input', autocomplete: 'off', placeholder: t('nameJa') }),
      el('button', { class: 'ed-btn', type: 'button', text: '✕', 'aria-label': t('delete'), onclick: () => edit((doc) => { doc.workers.splice(i, 1); }, { panel: true }) }));
  })));
  const heard = [...new Set(S.devices.flatMap((dev) => dev.beacons))].filter((b) => !workers.some((w) => w.beacon === b)).sort();
  out.push(el('div', { class: 'ed-chips', id: 'ed-beacons' }, el('span', { class: 'ed-small', text: t('beaconsHeard') }),
    ...heard.map((b) => el('button', { class: 'ed-chip', type: 'button', 'data-beacon': b, text: `+ ${b}`, onclick: () => addWorker(b) }))));
  const locs = S.devices.filter((dev) => dev.locator).map((dev) => dev.device);
  const current = d.locators || [];
  out.push(el('h3', { text: t('locators') }), el('div', { class: 'ed-chips', id: 'ed-locators' },
    ...[...new Set([...current, ...locs])].map((id) => el('button', { class: `ed-chip${current.includes(id) ? ' on' : ''}`, type: 'button',
      'data-locator': id, text: id, onclick: () => edit((doc) => {
        const cur = doc.locators || [];
        doc.locators = cur.includes(id) ? cur.filter((x) => x !== id) : [...cur, id];
        if (!doc.locators.length) delete doc.locators;
      }, { panel: true }) }))));
  return out;
}

/** "0830", "830", "8:30" -> "08:30"; anything else is left for the validator to name. */
function hhmm(v) {
  const text = String(v).trim();
  let m = /^(\d{1,2})[:.]?(\d{2})$/.exec(text);
  if (!m) return text;
  const h = Number(m[1]);
  const mi = Number(m[2]);
  if (h > 23 || mi > 59) return text;
  return `${String(h).padStart(2, '0')}:${m[2]}`;
}

/** The site validator's default breaks, named in both languages (shown and written as such). */
function defaultBreaks() {
  return [{ start: '10:00', end: '10:10', name: { ja: '午前の休憩', en: 'morning break' } },
    { start: '12:00', end: '13:00', name: { ja: '昼休み', en: 'lunch' } },
    { start: '15:00', end: '15:10', name: { ja: '午後の休憩', en: 'afternoon break' } }];
}

function orderWorker(w) {
  const out = {};
  for (const k of ['id', 'name', 'name_ja', 'beacon']) if (w[k] !== undefined) out[k] = w[k];
  for (const k of Object.keys(w)) if (!(k in out)) out[k] = w[k];
  return out;
}

function addWorker(beacon) {
  let i = 0;
  edit((d) => {
    d.workers = d.workers || [];
    const id = nextId('W', d.workers.map((w) => w.id));
    const prev = d.workers[d.workers.length - 1];
    const w = { id };
    if (prev && prev.name && typeof prev.name === 'object') {
      const en = seriesName(prev.name.en, prev.id, id);
      const ja = seriesName(prev.name.ja, prev.id, id);
      if (en || ja) w.name = { ...(ja ? { ja } : {}), ...(en ? { en } : {}) };
    } else if (prev) {
      const en = seriesName(prev.name, prev.id, id);
      const ja = seriesName(prev.name_ja, prev.id, id);
      if (en) w.name = en;
      if (ja) w.name_ja = ja;
    }
    w.beacon = beacon;
    d.workers.push(orderWorker(w));
    i = d.workers.length - 1;
  }, { panel: true });
  if (!S.doc.workers[i].name) focusLater(`ed-w-name-${i}`);
}

// --- survey by tapping ---------------------------------------------------------------------------
function surveyPanel() {
  const out = [el('h2', { text: t('survey') }), el('p', { class: 'ed-small', text: t('hintSurvey') })];
  const beacons = [...new Set([...(S.doc.workers || []).map((w) => w.beacon), ...S.devices.flatMap((dev) => dev.beacons)])].filter(Boolean);
  if (!S.walk) {
    const sel = el('select', { id: 'ed-walk-beacon' }, ...beacons.map((b) => el('option', { value: b, text: b })));
    out.push(field(t('walkBeacon'), sel), el('button', { class: 'ed-btn primary', type: 'button', id: 'ed-walk-start', text: t('startWalk'),
      onclick: () => startWalk(sel.value) }));
    if (!(S.doc.receivers || []).length || S.newSite) out.push(el('p', { class: 'ed-problem', text: t('walkNeedsReceivers') }));
  } else {
    const heard = Object.entries(S.walk.heard || {}).map(([r, n]) => `${r} ${n}`).join(', ');
    out.push(el('p', { id: 'ed-walk-status', text: `${S.walk.beacon}: ${S.walk.points.length} ${t('taps')} · ${t('heard')}: ${heard || '0'}` }),
      el('div', { class: 'ed-chips' },
        el('button', { class: 'ed-btn', type: 'button', id: 'ed-walk-still', text: t('stillHere'), onclick: () => surveyTap(0, 0, true) }),
        el('button', { class: 'ed-btn primary', type: 'button', id: 'ed-walk-finish', text: t('finishWalk'), onclick: finishWalk }),
        el('button', { class: 'ed-btn', type: 'button', id: 'ed-walk-cancel', text: t('cancelWalk'), onclick: cancelWalk })));
  }
  return out;
}

let walkTimer = null;
async function startWalk(beacon) {
  if (!beacon) return;
  const r = await call(api('/survey/walks'), { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ beacon }) });
  if (!r.ok) { say(detailText(r.body), 'bad'); return; }
  S.walk = r.body;
  renderPanel(true);
  clearInterval(walkTimer);
  walkTimer = setInterval(refreshWalk, 2000);
}

async function refreshWalk() {
  if (!S.walk) return;
  const r = await call(api(`/survey/walks/${S.walk.walk_id}`));
  if (r.ok && S.walk) {
    S.walk = r.body;
    const st = $('ed-walk-status');
    if (st) renderPanel(true);
    render();
  }
}

async function surveyTap(x, y, repeat = false) {
  if (!S.walk) return;
  const r = await call(api(`/survey/walks/${S.walk.walk_id}/taps`), { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ x_m: x, y_m: y, repeat }) });
  if (!r.ok) { say(detailText(r.body), 'bad'); return; }
  S.walk = r.body;
  renderPanel(true);
  render();
}

async function finishWalk() {
  if (!S.walk) return;
  const r = await call(api(`/survey/walks/${S.walk.walk_id}/finish`), { method: 'POST' });
  if (!r.ok) { say(detailText(r.body), 'bad'); return; }
  clearInterval(walkTimer);
  S.walk = null;
  edit((d) => {
    d.survey = d.survey || {};
    d.survey.walks = [...(d.survey.walks || []), r.body.walk];
  });
  say(`${t('walkDone')} (${r.body.message})`, 'ok');
  renderPanel(true);
}

async function cancelWalk() {
  if (!S.walk) return;
  await call(api(`/survey/walks/${S.walk.walk_id}`), { method: 'DELETE' });
  clearInterval(walkTimer);
  S.walk = null;
  renderPanel(true);
  render();
}

// --- history, save, import --------------------------------------------------------------------------
let historyCache = null;
function historyPanel() {
  const out = [el('h2', { text: t('history') })];
  out.push(el('button', { class: 'ed-btn', type: 'button', id: 'ed-undo-save', text: t('undoSave'), disabled: !S.undoTarget, onclick: undoSave }));
  const list = el('ul', { class: 'ed-list', id: 'ed-history-list' });
  out.push(list);
  (async () => {
    const r = await call(api('/history'));
    if (!r.ok) return;
    historyCache = r.body;
    const label = { save: 'actionSave', undo: 'actionUndo', restore: 'actionRestore', external: 'actionExternal', conflict: 'actionConflict' };
    list.replaceChildren(...r.body.entries.map((e) => el('li', { 'data-action': e.action, 'data-version': e.version },
      el('span', { text: new Date(e.t * 1000).toLocaleString(S.lang === 'ja' ? 'ja-JP' : 'en-GB') }),
      el('b', { text: t(label[e.action] || e.action) }), el('span', { class: 'ed-small', text: `${e.user} · ${e.draft || e.version}${e.version === r.body.current && !e.draft ? ` (${t('current')})` : ''}` }),
      e.draft ? el('button', { class: 'ed-btn', type: 'button', 'data-open-draft': e.draft, text: t('open'), onclick: () => openStored(`/drafts/${e.draft}`) })
        : el('button', { class: 'ed-btn', type: 'button', text: t('open'), onclick: () => openStored(`/versions/${e.version}`) }),
      !e.draft && e.version !== r.body.current ? el('button', { class: 'ed-btn', type: 'button', text: t('restore'), onclick: () => restoreVersion(e.version) }) : null)));
  })();
  return out;
}

async function openStored(path) {
  const r = await call(api(path));
  if (!r.ok) { say(detailText(r.body), 'bad'); return; }
  S.undo.push(snapshot());
  S.doc = r.body.document;
  afterDocReplaced();
  say(t('importDone'), 'ok');
}

function applySaved(body) {
  S.version = body.version;
  S.runningVersion = body.version;
  S.undoTarget = body.undo;
  S.doc = body.document;
  S.dirty = false;
  S.newSite = false;
  S.confirmWarnings = false;
  S.lastSave = body;
  if (S.sel && !shapeOf(S.sel)) S.sel = null;
  loadPlanImage();
  scheduleCheck();
  renderPanel(true);
  render();
}

async function save(accept = false) {
  if (S.saving) return;
  // Judge the document as it is now, not by a check still on its way.
  clearTimeout(checkTimer);
  await runCheck();
  if (S.problems.length) {
    say(`${t('fixFirst')}: ${S.problems[0].path ? `${S.problems[0].path}: ` : ''}${S.problems[0].message}`, 'bad');
    return;
  }
  if (S.warnings.length && !accept) {
    say(`${t('confirmWarnings')} ${S.warnings.map((w) => w.message).join('; ')}`, '',
      el('button', { class: 'ed-btn primary', type: 'button', id: 'ed-save-anyway', text: t('saveAnyway'), onclick: () => save(true) }),
      el('button', { class: 'ed-btn', type: 'button', text: t('cancel'), onclick: () => say('') }));
    return;
  }
  S.saving = true;
  say(t('saving'));
  try {
    const r = await call(api(), { method: 'PUT', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ document: S.doc, base_version: S.version, accept_warnings: accept }) });
    if (r.ok) {
      applySaved(r.body);
      say(t('savedRunning'), 'ok');
      return;
    }
    const detail = r.body && r.body.detail;
    if (r.status === 409 && detail && detail.reason === 'stale') {
      S.staleDraft = detail.draft;
      say(`${t('staleTitle')}${detail.saved_by ? ` (${detail.saved_by})` : ''}: ${t('draftKept')} (${detail.draft}).`, 'bad',
        el('button', { class: 'ed-btn primary', type: 'button', id: 'ed-reload', text: t('reload'), onclick: reload }));
      return;
    }
    if (r.status === 409 && detail && detail.reason === 'warnings') {
      S.warnings = detail.warnings;
      render();
      save(false);
      return;
    }
    if (r.status === 422 && detail && detail.problems) {
      S.problems = detail.problems;
      render();
    }
    say(detailText(r.body) || String(r.status), 'bad');
  } catch (err) {
    say(err.message, 'bad');
  } finally {
    S.saving = false;
  }
}

async function undoSave() {
  const r = await call(api('/undo'), { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ base_version: S.version }) });
  if (!r.ok) { say(detailText(r.body), 'bad'); return; }
  S.undo.push(snapshot());
  applySaved(r.body);
  say(r.body.message, 'ok');
}

async function restoreVersion(version) {
  const r = await call(api('/restore'), { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ base_version: S.version, version }) });
  if (!r.ok) { say(detailText(r.body), 'bad'); return; }
  S.undo.push(snapshot());
  applySaved(r.body);
  say(r.body.message, 'ok');
}

/** Load the file as it is now; the page's own edits stay one Undo away (nothing lost). */
async function reload() {
  const r = await call(api());
  if (!r.ok) { say(detailText(r.body), 'bad'); return; }
  if (S.doc) S.undo.push(snapshot());
  acceptState(r.body);
  say(S.staleDraft ? `${t('reload')}: ${t('draftKept')} (${S.staleDraft}) → ${t('history')}` : '', 'ok');
}

function acceptState(st) {
  S.site = st.site;
  S.version = st.version;
  S.runningVersion = st.running_version;
  S.file = st.file;
  S.newSite = st.new_site;
  S.writable = st.writable;
  S.undoTarget = st.undo;
  S.doc = st.document;
  S.problems = st.problems;
  S.warnings = st.warnings;
  S.dirty = false;
  if (S.newSite) {
    // A new site starts in this tablet's time zone and language.
    try { S.doc.timezone = S.doc.timezone || Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC'; } catch { S.doc.timezone = 'UTC'; }
    S.doc.language = S.doc.language || ((navigator.language || 'en').toLowerCase().startsWith('ja') ? 'ja' : 'en');
  }
  if (st.plan) S.planInfo = { url: st.plan.url, w: st.plan.width_px, h: st.plan.height_px };
  S.planImg = null;
  S.fitted = false;
  if (S.sel && !shapeOf(S.sel)) S.sel = null;
  applyLanguage();
  loadPlanImage();
  renderPanel(true);
  scheduleCheck();
  render();
  if (st.version !== st.running_version && !st.new_site) {
    say(t('fileOnDisk'), '', el('button', { class: 'ed-btn', type: 'button', id: 'ed-run-file', text: t('runFile'), onclick: runFile }));
  }
}

async function runFile() {
  const r = await call(api('/reload'), { method: 'POST' });
  if (!r.ok) { say(detailText(r.body), 'bad'); return; }
  applySaved(r.body);
  say(r.body.message, 'ok');
}

async function importFile(file) {
  const text = await file.text();
  const r = await call(api('/import'), { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ text, name: file.name }) });
  if (!r.ok) { say(detailText(r.body), 'bad'); return; }
  S.undo.push(snapshot());
  S.doc = r.body.document;
  S.sel = null;
  afterDocReplaced();
  S.fitted = false;
  say([t('importDone'), ...r.body.notes].join(' · '), 'ok');
}

async function uploadModel(file) {
  const i = S.modelFor;
  const m = S.doc.machines[i];
  const name = (m && m.id ? m.id : file.name.replace(/\.glb$/i, '')).replace(/[^A-Za-z0-9_.-]/g, '_');
  const r = await call(api(`/models/${encodeURIComponent(name)}`), { method: 'PUT', headers: { 'Content-Type': 'model/gltf-binary' }, body: file });
  if (!r.ok) { say(detailText(r.body), 'bad'); return; }
  await loadModels();
  edit((d) => { d.machines[i].model = r.body.path; d.machines[i] = orderMachine(d.machines[i]); }, { panel: true });
}

async function loadModels() {
  const r = await call(api('/models'));
  if (r.ok) S.models = r.body;
}

function modelUrl(path) {
  return api(`/files/${path.split('/').map(encodeURIComponent).join('/')}`);
}

async function loadDevices() {
  try {
    const r = await call(api('/devices'));
    if (!r.ok) return;
    const before = JSON.stringify(S.devices);
    S.devices = r.body;
    if (JSON.stringify(S.devices) !== before) {
      for (const w of document.querySelectorAll('[data-devchips]')) if (w.refill) w.refill();
      const focused = document.activeElement && $('ed-panel').contains(document.activeElement) && document.activeElement.tagName === 'INPUT';
      // Only panels that list devices are rebuilt; rebuilding the scale panel would empty its distance field.
      const listsDevices = S.tool === 'site' || S.tool === 'survey' || (!S.sel && S.tool !== 'scale' && S.tool !== 'history');
      if (!focused && listsDevices) renderPanel(true);
    }
  } catch { /* the next poll tries again */ }
}

// --- tools and language ----------------------------------------------------------------------------
function setTool(tool) {
  if (tool === 'plan') { $('ed-plan-file').click(); return; }
  if (tool === 'import') { $('ed-import-file').click(); return; }
  S.tool = tool;
  S.scalePts = [];
  if (tool !== 'select' && tool !== 'history') S.sel = null;
  renderTools();
  renderPanel(true);
  render();
}

function renderTools() {
  const nav = $('ed-tools');
  nav.replaceChildren(...TOOLS.map((tool) => el('button', { class: 'ed-tool', type: 'button', 'data-tool': tool, 'aria-pressed': String(S.tool === tool),
    text: t(tool), onclick: () => setTool(tool) })),
  el('button', { class: 'ed-tool', type: 'button', id: 'ed-snap', 'aria-pressed': String(S.snap), text: t('snap'),
    onclick: () => { S.snap = !S.snap; renderTools(); } }));
}

function applyLanguage() {
  const lang = S.lang || (S.doc && S.doc.language === 'ja' ? 'ja' : 'en');
  document.documentElement.lang = lang;
  t = editorText(lang);
  document.title = t('title');
  $('ed-lang').textContent = t('language');
  for (const node of document.querySelectorAll('[data-i18n]')) node.textContent = t(node.dataset.i18n);
  renderTools();
}

async function toggle3d() {
  const box = $('ed-3dbox');
  const on = box.hidden;
  box.hidden = !on;
  $('ed-3d').setAttribute('aria-pressed', String(on));
  if (on && !S.preview) {
    try {
      const { Preview } = await import('./editor-3d.js');
      S.preview = new Preview(box);
    } catch (err) {
      say(`3D: ${err.message}`, 'bad');
      box.hidden = true;
      return;
    }
  }
  S.fitted = false;
  if (S.preview) { S.preview.resize(); S.preview.update(S.doc, modelUrl); }
  render();
}

// --- start -------------------------------------------------------------------------------------------
async function begin() {
  try {
    if (!S.site) {
      const r = await call('/api/sites');
      if (!r.ok || !r.body.length) throw new Error(detailText(r.body) || 'no site');
      S.site = r.body[0].id;
    }
    const r = await call(api());
    if (r.status === 403) { say(t('forbidden'), 'bad'); return; }
    if (!r.ok) throw new Error(detailText(r.body) || String(r.status));
    acceptState(r.body);
    await Promise.all([loadDevices(), loadModels()]);
    renderPanel(true);
    setInterval(loadDevices, 5000);
    S.ready = true;
  } catch (err) {
    S.error = err.message;
    if (err.status !== 401) say(`${t('loadFailed')}: ${err.message}`, 'bad');
  }
}

function main() {
  const svg = $('ed-svg');
  svg.addEventListener('pointerdown', onDown);
  svg.addEventListener('pointermove', onMove);
  svg.addEventListener('pointerup', onUp);
  svg.addEventListener('pointercancel', onUp);
  svg.addEventListener('wheel', onWheel, { passive: false });
  window.addEventListener('resize', () => { S.fitted = false; if (S.preview) S.preview.resize(); render(); });
  $('ed-undo').onclick = undoEdit;
  $('ed-redo').onclick = redoEdit;
  $('ed-save').onclick = () => save(false);
  $('ed-history').onclick = () => setTool('history');
  $('ed-3d').onclick = toggle3d;
  $('ed-lang').onclick = () => {
    S.lang = document.documentElement.lang === 'ja' ? 'en' : 'ja';
    const u = new URL(location.href);
    u.searchParams.set('lang', S.lang);
    history.replaceState(null, '', u);
    applyLanguage();
    renderPanel(true);
    render();
  };
  $('ed-plan-file').onchange = (e) => { const f = e.target.files[0]; e.target.value = ''; if (f) uploadPlan(f); };
  $('ed-import-file').onchange = (e) => { const f = e.target.files[0]; e.target.value = ''; if (f) importFile(f); };
  $('ed-model-file').onchange = (e) => { const f = e.target.files[0]; e.target.value = ''; if (f) uploadModel(f); };
  $('ed-login').onsubmit = async (ev) => {
    ev.preventDefault();
    const r = await call('/api/auth/login', { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: $('ed-name').value, password: $('ed-password').value }) }).catch((e) => ({ ok: false, body: { detail: e.message } }));
    if (!r.ok) { say(detailText(r.body) || t('signIn'), 'bad'); return; }
    $('ed-login').hidden = true;
    $('ed-password').value = '';
    say('');
    begin();
  };
  document.addEventListener('keydown', (e) => {
    const typing = e.target && ['INPUT', 'SELECT', 'TEXTAREA'].includes(e.target.tagName);
    if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === 'z' && !typing) { e.preventDefault(); (e.shiftKey ? redoEdit : undoEdit)(); }
    else if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === 'y' && !typing) { e.preventDefault(); redoEdit(); }
    else if ((e.key === 'Delete' || e.key === 'Backspace') && !typing && S.sel) { e.preventDefault(); deleteSelected(); }
    else if (e.key === 'Escape') { S.drag = null; S.scalePts = []; render(); }
  });
  window.addEventListener('beforeunload', (e) => { if (S.dirty) { e.preventDefault(); e.returnValue = ''; } });
  applyLanguage();
  renderPanel(true);
  begin();
}

// For tests and for curious engineers.
Object.assign(S, { floorToScreen, planT, toScreen, save, setTool, GRID_M });
main();
