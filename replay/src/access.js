// The access-log page for supervisors: who looked at which worker's data, and when. Filter by
// worker and day (the site's local day), dates in the page's language, CSV export of what is
// shown. The server refuses the log to anyone but a supervisor (403), and the page says so.

import { AuthRequired, api, signInForm, whoAmI } from './auth.js';
import { displayName, formatDateTime, translator } from './i18n.js';
import { localTimeOnDay } from './timeline.js';
import { decodeState, encodeState } from './url.js';

const $ = (id) => document.getElementById(id);
const search = globalThis.location?.search ?? '';
const S = { ...decodeState(search), rows: [], layout: null };
const q = new URLSearchParams(search);
S.filterWorker = /^[A-Za-z0-9_.-]{1,64}$/.test(q.get('worker') ?? '') ? q.get('worker') : '';
S.filterDay = /^\d{4}-\d{2}-\d{2}$/.test(q.get('day') ?? '') ? q.get('day') : null;
let t = translator(S.lang ?? 'ja');

// What a route shows, in words (the log keeps the route pattern).
const WHAT = {
  '/api/replay/{site}': 'accReplay', '/api/worker/{site}/{worker}': 'accWorker',
  '/api/worker/{site}/{worker}/replay': 'accMine', '/api/notes/{site}': 'accNotes',
  '/api/notes/{site}/{note_id}': 'accNotes', '/api/kpis/{site}': 'accKpis', '/api/audit': 'accAudit',
  '/api/audit.csv': 'accAudit', '/api/sites/{site}/shifts/{day}/analysis': 'accAnalysis',
  '/api/sites/{site}/shifts/{day}/replay': 'accReplay', '/api/sites/{site}/aligned': 'accAnalysis',
  '/api/sites/{site}/readings': 'accReadings', '/api/live': 'accLive', '/ws/live': 'accLive',
  '/api/commissioning/{site}': 'accCommissioning', '/ws/commissioning/{site}': 'accCommissioning',
};

/** Rows about a worker: their own page, or a view holding every worker's data (no worker named). */
export function aboutWorker(row, worker) {
  if (!worker) return true;
  return row.target_worker === worker || (row.target_worker == null && row.route in WHAT && row.route !== '/api/audit'
    && row.route !== '/api/audit.csv');
}

function applyI18n() {
  document.documentElement.lang = S.lang ?? 'ja';
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
}

function status(msg) { $('status-msg').textContent = msg ?? ''; }

function workerName(id) {
  if (id == null) return t('everyone');
  return displayName(S.layout?.workers.find((w) => w.id === id) ?? { id }, S.lang);
}

function dayBounds(day) {
  const tz = S.layout.timezone;
  const ref = Date.UTC(...day.split('-').map((v, i) => Number(v) - (i === 1 ? 1 : 0)), 12) / 1000;
  const start = localTimeOnDay(ref, '00:00', tz);
  return [start, localTimeOnDay(ref + 86400, '00:00', tz)];
}

function cells(r) {
  return [
    formatDateTime(r.t, S.layout.timezone, S.lang), r.user, t(`role_${r.role}`) ?? r.role,
    WHAT[r.route] ? t(WHAT[r.route]) : r.route, workerName(r.target_worker), String(r.status),
  ];
}

function render() {
  const shown = S.rows.filter((r) => aboutWorker(r, S.filterWorker));
  S.shown = shown;
  const table = $('access-table');
  table.replaceChildren();
  const head = document.createElement('tr');
  for (const k of ['when', 'user', 'role', 'what', 'worker', 'status']) {
    const th = document.createElement('th');
    th.textContent = t(k === 'when' ? 'accWhen' : k === 'what' ? 'accWhat' : k === 'status' ? 'accStatus'
      : k === 'role' ? 'accRole' : k === 'user' ? 'userName' : 'worker');
    head.append(th);
  }
  table.append(head);
  for (const r of [...shown].reverse()) {  // newest first
    const tr = document.createElement('tr');
    tr.dataset.id = String(r.id);
    tr.dataset.worker = r.target_worker ?? '';
    tr.dataset.user = r.user;
    if (r.status >= 400) tr.className = 'denied';
    for (const c of cells(r)) {
      const td = document.createElement('td');
      td.textContent = c;
      tr.append(td);
    }
    table.append(tr);
  }
  $('access-count').textContent = t('accCount', { n: shown.length });
}

async function load() {
  const params = new URLSearchParams({ site: S.site, limit: '100000' });
  if (S.filterDay) {
    const [since, until] = dayBounds(S.filterDay);
    params.set('since', String(since));
    params.set('until', String(until));
  }
  const doc = await api(`/api/audit?${params}`);
  S.rows = doc.entries;
  render();
  const url = new URL(location.href);
  url.search = encodeState({ site: S.site, lang: S.lang });
  if (S.filterWorker) url.searchParams.set('worker', S.filterWorker);
  if (S.filterDay) url.searchParams.set('day', S.filterDay);
  history.replaceState(null, '', url);
}

/** CSV of the rows shown (local time and epoch seconds), as the supervisor filtered them. */
export function toCsv(rows, localTime) {
  const cols = ['t_local', 't', 'user', 'role', 'action', 'method', 'route', 'path', 'target_worker', 'status', 'client'];
  const esc = (v) => {
    const s = v == null ? '' : String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  const lines = [cols.join(',')];
  for (const r of rows) lines.push(cols.map((c) => esc(c === 't_local' ? localTime(r.t) : r[c])).join(','));
  return `${lines.join('\n')}\n`;
}

function exportCsv() {
  const csv = toCsv(S.shown ?? [], (s) => formatDateTime(s, S.layout.timezone, 'en'));
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob(['\ufeff', csv], { type: 'text/csv;charset=utf-8' }));
  a.download = `access-${S.site}${S.filterDay ? `-${S.filterDay}` : ''}${S.filterWorker ? `-${S.filterWorker}` : ''}.csv`;
  document.body.append(a);
  a.click();
  a.remove();
}

async function boot() {
  applyI18n();
  $('lang-btn').onclick = () => { S.lang = (S.lang ?? 'ja') === 'ja' ? 'en' : 'ja'; t = translator(S.lang); start(); };
  $('signin-lang').onclick = () => $('lang-btn').click();
  let me;
  try {
    me = await whoAmI();
  } catch (err) {
    if (!(err instanceof AuthRequired)) throw err;
    await signInForm($('signin'), (k) => t(k));
    location.reload();
    return;
  }
  if (me === null) { status(t('accNoAuth')); window.__access = { ready: true, state: 'noauth' }; return; }
  const user = me.user;
  $('user-box').hidden = false;
  $('user-name').textContent = user.name;
  if (user.role !== 'supervisor' && user.role !== 'admin') {
    status(t('forbidden'));
    window.__access = { ready: true, state: 'forbidden' };
    return;
  }
  S.site ??= user.site !== '*' ? user.site : null;
  S.layout = await api(`/api/viewer/layout/${encodeURIComponent(S.site)}`);
  S.lang ??= S.layout.language === 'ja' ? 'ja' : 'en';
  t = translator(S.lang);
  applyI18n();
  $('title').textContent = `${t('accessLog')} · ${displayName(S.layout, S.lang)}`;
  $('back-link').href = `./${encodeState({ site: S.site, lang: S.lang })}`;
  const sel = $('f-worker');
  sel.replaceChildren(new Option(t('everyone'), ''));
  for (const w of S.layout.workers) sel.add(new Option(`${displayName(w, S.lang)} (${w.id})`, w.id));
  sel.value = S.filterWorker;
  sel.onchange = () => { S.filterWorker = sel.value; load(); };
  $('f-day').value = S.filterDay ?? '';
  $('f-day').onchange = () => { S.filterDay = $('f-day').value || null; load(); };
  $('f-all-days').onclick = () => { S.filterDay = null; $('f-day').value = ''; load(); };
  $('csv-btn').onclick = exportCsv;
  $('access-view').hidden = false;
  await load();
  window.__access = { ready: true, state: 'shown', rows: () => S.shown };
}

function start() {
  boot().catch((err) => {
    status(`${err.status === 403 ? t('forbidden') : t('loadFailed')}: ${err.message}`);
    window.__access = { ready: true, state: err.status === 403 ? 'forbidden' : 'error', error: String(err.message) };
  });
}

if (globalThis.document) start();
