// The commissioning page: one card per machine with its live checklist.
// Data: WS /ws/commissioning/{site} (pushed every second), falling back to polling
// GET /api/commissioning/{site} every second; "Start commissioning" is
// POST /api/commissioning/{site}/start?machine=ID (with the CSRF cookie echoed).

import { machineName } from './i18n.js';
import { commissioningText, itemLabel, itemReason } from './commissioning-strings.js';

const POLL_MS = 1000;
const RECONNECT_MS = 2000;
const q = new URLSearchParams(location.search);
const S = {
  site: q.get('site'),
  lang: ['ja', 'en'].includes(q.get('lang')) ? q.get('lang') : null,
  transport: q.get('transport') === 'poll' ? 'poll' : 'ws',
  doc: null,
  updates: 0,
  error: null,
};
let t = commissioningText(S.lang || 'ja');
let pollTimer = null;
let ws = null;

// For tests and for curious engineers: the last document and how it arrived.
window.__commissioning = S;

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c != null) node.append(c);
  return node;
}

function cookie(name) {
  for (const part of document.cookie.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return decodeURIComponent(v.join('='));
  }
  return '';
}

function say(text) {
  $('cm-msg').textContent = text || '';
}

function setConn(key) {
  $('cm-conn').textContent = key ? t(key) : '';
  $('cm-conn').dataset.state = key || '';
}

async function api(path, options = {}) {
  const headers = { Accept: 'application/json', ...(options.headers || {}) };
  const csrf = cookie('twin_csrf');
  if (options.method && options.method !== 'GET' && csrf) headers['X-CSRF-Token'] = csrf;
  const r = await fetch(path, { credentials: 'same-origin', ...options, headers });
  if (!r.ok) {
    const err = new Error(`${r.status} ${path}`);
    err.status = r.status;
    throw err;
  }
  return r.json();
}

function applyLanguage() {
  const lang = S.lang || (S.doc && S.doc.language === 'ja' ? 'ja' : 'en');
  document.documentElement.lang = lang;
  t = commissioningText(lang);
  $('cm-title').textContent = S.doc && S.doc.name ? `${t('title')}: ${S.doc.name}` : t('title');
  document.title = t('title');
  $('cm-lang').textContent = t('language');
  for (const node of document.querySelectorAll('[data-i18n]')) node.textContent = t(node.dataset.i18n);
  return lang;
}

function clockText(ns, tz) {
  if (!ns) return t('none');
  try {
    return new Intl.DateTimeFormat('en-GB', { timeZone: tz || undefined, hour: '2-digit', minute: '2-digit',
      second: '2-digit', hour12: false }).format(new Date(ns / 1e6));
  } catch {
    return new Date(ns / 1e6).toISOString().slice(11, 19);
  }
}

function ageText(s) {
  return s == null ? t('never') : `${s < 10 ? s.toFixed(1) : Math.round(s)} ${t('secondsAgo')}`;
}

function num(v) {
  return v == null ? t('none') : Number(v).toPrecision(3).replace(/\.?0+$/, '');
}

function checklist(m, lang) {
  const list = el('ul', { class: 'cm-list' });
  for (const item of m.checklist) {
    const icon = { pass: '✓', fail: '✗', waiting: '…' }[item.status] || '?';
    list.append(el('li', { class: `cm-item ${item.status}`, 'data-key': item.key, 'data-status': item.status },
      el('span', { class: 'cm-icon', 'aria-hidden': 'true', text: icon }),
      el('span', { class: 'cm-label', text: itemLabel(item, lang) }),
      el('span', { class: 'cm-state', text: t(item.status) }),
      el('span', { class: 'cm-reason', text: itemReason(item, lang) })));
  }
  return list;
}

function sensorTable(m) {
  const rows = m.sensors.filter((s) => s.kind !== 'switch');
  if (!rows.length) return null;
  const body = el('tbody');
  for (const s of rows) {
    const range = s.min == null ? t('none') : `${num(s.min)} .. ${num(s.max)}`;
    body.append(el('tr', { 'data-sensor': s.id },
      el('td', { text: s.id }), el('td', { class: 'num', text: s.value == null ? t('none') : `${num(s.value)} ${s.unit || ''}` }),
      el('td', { class: 'num', text: range }), el('td', { class: 'num', text: ageText(s.age_s) })));
  }
  return el('table', { class: 'cm-table' },
    el('thead', {}, el('tr', {}, ...['sensor', 'value', 'range', 'age'].map((k) => el('th', { text: t(k) })))), body);
}

function beaconTable(m) {
  if (!m.beacons.length) return null;
  const body = el('tbody');
  for (const b of m.beacons) {
    body.append(el('tr', { 'data-receiver': b.receiver, 'data-beacon': b.beacon },
      el('td', { text: b.receiver }), el('td', { text: b.worker ? `${b.worker} (${b.beacon})` : b.beacon }),
      el('td', { class: 'num', text: `${Math.round(b.rssi_dbm)} dBm` }),
      el('td', { class: 'num', text: `${Math.round(b.rssi_max_dbm)} dBm` }),
      el('td', { class: 'num', text: ageText(b.age_s) })));
  }
  return el('table', { class: 'cm-table' },
    el('thead', {}, el('tr', {}, ...['receiver', 'beacon', 'rssi', 'max', 'age'].map((k) => el('th', { text: t(k) })))),
    body);
}

// Cards persist across updates (the button under a finger must not be replaced mid-tap);
// only their content is rebuilt.
const cards = new Map();

function ensureCard(id) {
  let c = cards.get(id);
  if (c) return c;
  const start = el('button', { class: 'cm-btn primary cm-start', type: 'button', 'data-machine': id });
  start.onclick = () => startMachine(id, start);
  const title = el('h2');
  const badge = el('span', { class: 'cm-badge' });
  const body = el('div', { class: 'cm-body' });
  const section = el('section', { class: 'cm-card', id: `machine-${id}`, 'data-machine': id },
    el('header', { class: 'cm-head' }, title, badge, start), body);
  c = { section, title, badge, start, body };
  cards.set(id, c);
  return c;
}

function fillCard(c, m, lang, tz) {
  c.section.className = `cm-card ${m.status}`;
  c.section.dataset.status = m.status;
  c.title.textContent = machineName(m, lang);
  c.badge.className = `cm-badge ${m.status}`;
  c.badge.textContent = t(m.status);
  c.start.textContent = t('start');
  c.start.title = t('startHint');
  const dev = m.device_status;
  const meta = el('p', { class: 'cm-meta' },
    `${m.device || t('none')} · ${t('started')} ${clockText(m.started_ns, tz)} · ${t('lastSeen')} ${ageText(m.last_seen_age_s)}`
    + (dev && dev.agent_version ? ` · ${t('agent')} ${dev.agent_version}` : ''));
  const rejected = Object.entries(m.rejected || {});
  const sensors = sensorTable(m);
  const beacons = beaconTable(m);
  c.body.replaceChildren(...[
    meta,
    checklist(m, lang),
    rejected.length ? el('p', { class: 'cm-rejected', text: `${t('rejected')}: ${rejected.map(([r, n]) => `${r} ×${n}`).join(', ')}` }) : null,
    sensors ? el('h3', { text: t('sensors') }) : null, sensors,
    beacons ? el('h3', { text: t('beacons') }) : null, beacons,
  ].filter((x) => x != null));
}

function render() {
  const lang = applyLanguage();
  if (!S.doc) return;
  const host = $('cm-cards');
  const wanted = S.doc.machines.map((m) => {
    const c = ensureCard(m.id);
    fillCard(c, m, lang, S.doc.timezone);
    return c.section;
  });
  const same = wanted.length === host.children.length && wanted.every((n, i) => host.children[i] === n);
  if (!same) host.replaceChildren(...wanted);
}

function accept(doc) {
  S.doc = doc;
  S.updates += 1;
  S.error = null;
  say('');
  render();
}

async function startMachine(id, button) {
  button.disabled = true;
  try {
    const view = await api(`/api/commissioning/${encodeURIComponent(S.site)}/start?machine=${encodeURIComponent(id)}`,
      { method: 'POST' });
    if (S.doc) {
      S.doc = { ...S.doc, machines: S.doc.machines.map((m) => (m.id === id ? view : m)) };
      render();
    }
  } catch (err) {
    failed(err);
  } finally {
    button.disabled = false;
  }
}

function failed(err) {
  S.error = String(err && err.message ? err.message : err);
  if (err && err.status === 401) {
    $('cm-login').hidden = false;
    say(t('signIn'));
  } else if (err && err.status === 403) {
    say(t('forbidden'));
  } else {
    say(t('loadFailed'));
  }
}

async function poll() {
  clearTimeout(pollTimer);
  try {
    accept(await api(`/api/commissioning/${encodeURIComponent(S.site)}`));
    setConn('polling');
  } catch (err) {
    failed(err);
    if (err.status === 401 || err.status === 403 || err.status === 404) return;
    setConn('offline');
  }
  pollTimer = setTimeout(poll, POLL_MS);
}

function openSocket() {
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws/commissioning/${encodeURIComponent(S.site)}`;
  let got = false;
  setConn('connecting');
  try {
    ws = new WebSocket(url);
  } catch {
    S.transport = 'poll';
    poll();
    return;
  }
  ws.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.type !== 'commissioning') return;
    if (!got) setConn('live');
    got = true;
    accept(msg);
  };
  ws.onclose = () => {
    ws = null;
    if (!got) {
      S.transport = 'poll'; // refused or not available here: poll instead
      poll();
      return;
    }
    setConn('offline');
    setTimeout(openSocket, RECONNECT_MS);
  };
}

async function signIn(ev) {
  ev.preventDefault();
  try {
    await api('/api/auth/login', { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: $('cm-name').value, password: $('cm-password').value }) });
    $('cm-login').hidden = true;
    $('cm-password').value = '';
    await begin();
  } catch {
    say(t('signInFailed'));
  }
}

async function begin() {
  try {
    if (!S.site) {
      const sites = await api('/api/sites');
      S.site = sites.length ? sites[0].id : null;
      if (!S.site) throw new Error('no site');
    }
    accept(await api(`/api/commissioning/${encodeURIComponent(S.site)}`));
  } catch (err) {
    failed(err);
    return;
  }
  if (S.transport === 'ws' && 'WebSocket' in window) openSocket();
  else poll();
}

function main() {
  $('cm-lang').onclick = () => {
    S.lang = (S.lang || document.documentElement.lang) === 'ja' ? 'en' : 'ja';
    const u = new URL(location.href);
    u.searchParams.set('lang', S.lang);
    history.replaceState(null, '', u);
    render();
  };
  $('cm-login').onsubmit = signIn;
  applyLanguage();
  begin();
}

main();
