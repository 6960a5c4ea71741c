// The KPI strip over the scene and the shift summary: per machine utilisation, changeovers,
// attended-idle minutes and the longest stop, with sparklines over earlier shifts; per worker
// changeover minutes by task against their own median. Every figure is a button that jumps the
// replay to the moment behind it. The figures come from GET /api/kpis/{site} (computed on the
// server from the same document as the replay). The pure helpers run under `node --test`.

import { TASKS } from './timeline.js';

/** SVG polyline points of a sparkline (nulls leave gaps: a day without data). */
export function sparkPoints(values, w = 44, h = 14, pad = 1.5) {
  const known = values.filter((v) => v != null && Number.isFinite(v));
  if (!known.length) return [];
  const lo = Math.min(...known);
  const hi = Math.max(...known);
  const span = hi - lo || 1;
  const n = values.length;
  const out = [];
  values.forEach((v, i) => {
    if (v == null || !Number.isFinite(v)) return;
    const x = n === 1 ? w / 2 : pad + (i / (n - 1)) * (w - 2 * pad);
    const y = h - pad - ((v - lo) / span) * (h - 2 * pad);
    out.push([Math.round(x * 10) / 10, Math.round(y * 10) / 10]);
  });
  return out;
}

/**
 * The four figures of one machine in the strip, each with its value, its trend and where a
 * tap jumps to.
 *
 * @param {object} k the machine's KPIs (GET /api/kpis machines[id])
 * @param {object[]} trend the document's trend (oldest first)
 * @param {string} id machine id
 * @param {{t:Function, min:(m:number)=>string}} fmt
 * @returns {{key:string,label:string,value:string,jump:number|null,spark:(number|null)[]}[]}
 */
export function machineFigures(k, trend, id, { t, min: long, short }) {
  const min = short ?? long;  // the strip is narrow: minutes without hours
  const series = (key) => trend.map((d) => d.machines?.[id]?.[key] ?? null);
  const pct = k.utilisation == null ? '—' : `${Math.round(k.utilisation * 100)}%`;
  return [
    { key: 'util', label: t('kpiUtil'), value: pct, jump: k.longest_stop?.start ?? null, spark: series('utilisation') },
    { key: 'changeovers', label: t('kpiChangeovers'), value: `${k.changeover_count}${t('times')} · ${min(k.changeover_min)}`,
      jump: k.first_changeover ?? null, spark: series('changeover_min') },
    { key: 'idle', label: t('kpiAttendedIdle'), value: min(k.attended_idle_min),
      jump: k.longest_attended_idle?.start ?? null, spark: series('attended_idle_min') },
    { key: 'stop', label: t('kpiLongestStop'), value: k.longest_stop ? min(k.longest_stop.min) : t('kpiNone'),
      jump: k.longest_stop?.start ?? null, spark: series('longest_stop_min') },
  ];
}

const SVG = 'http://www.w3.org/2000/svg';

function spark(values, w = 44, h = 14) {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('class', 'spark');
  svg.setAttribute('width', String(w));
  svg.setAttribute('height', String(h));
  svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
  svg.setAttribute('aria-hidden', 'true');
  const pts = sparkPoints(values, w, h);
  if (pts.length > 1) {
    const line = document.createElementNS(SVG, 'polyline');
    line.setAttribute('points', pts.map((p) => p.join(',')).join(' '));
    svg.append(line);
  }
  if (pts.length) {
    const [x, y] = pts[pts.length - 1];
    const dot = document.createElementNS(SVG, 'circle');
    dot.setAttribute('cx', String(x));
    dot.setAttribute('cy', String(y));
    dot.setAttribute('r', '2');
    svg.append(dot);
  }
  return svg;
}

function figButton(fig, onJump, extra = {}) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = 'btn kpi-fig';
  b.dataset.kpi = fig.key;
  Object.assign(b.dataset, extra);
  if (fig.jump != null) b.dataset.t = String(fig.jump);
  else b.disabled = true;
  const label = document.createElement('span');
  label.className = 'kpi-label';
  label.textContent = fig.label;
  const value = document.createElement('span');
  value.className = 'kpi-value';
  value.textContent = fig.value;
  const row = document.createElement('span');
  row.className = 'kpi-row';
  row.append(value);
  if (fig.spark && fig.spark.length > 1) row.append(spark(fig.spark));
  b.append(label, row);
  b.addEventListener('click', () => { if (fig.jump != null) onJump(fig.jump, b); });
  return b;
}

/** Placeholder cards (names only) so the strip has its height before the figures arrive. */
export function renderStripSkeleton(el, machines, { name }) {
  el.replaceChildren();
  for (const m of machines) {
    const card = document.createElement('div');
    card.className = 'kpi-card';
    card.dataset.machine = m.id;
    const h = document.createElement('div');
    h.className = 'kpi-name';
    h.textContent = name(m);
    const figs = document.createElement('div');
    figs.className = 'kpi-figs';
    card.append(h, figs);
    el.append(card);
  }
}

/**
 * Fill the strip.
 * @param {HTMLElement} el #kpi-strip
 * @param {object} doc GET /api/kpis
 * @param {object[]} machines layout machines
 * @param {{t, min, name, onJump:(t:number, machineId:string)=>void}} ui
 */
export function renderStrip(el, doc, machines, ui) {
  renderStripSkeleton(el, machines, ui);
  for (const card of el.querySelectorAll('.kpi-card')) {
    const id = card.dataset.machine;
    const k = doc.machines[id];
    if (!k) continue;
    const figs = card.querySelector('.kpi-figs');
    for (const fig of machineFigures(k, doc.trend ?? [], id, ui)) {
      figs.append(figButton(fig, (tt) => ui.onJump(tt, id, fig.key), { machine: id }));
    }
  }
}

/**
 * The shift summary: per machine (every figure and each task's minutes), per worker (each
 * task against their own median), and the trend per day. Each figure jumps like the strip's.
 */
export function renderSummary(el, doc, layout, ui) {
  const { t, min, name, workerName, day } = ui;
  el.replaceChildren();
  const h3 = (text) => { const h = document.createElement('h3'); h.textContent = text; return h; };
  el.append(h3(`${t('kpiPerMachine')} · ${day(doc.day)}`));
  for (const m of layout.machines) {
    const k = doc.machines[m.id];
    if (!k) continue;
    const sec = document.createElement('section');
    sec.className = 'sum-block';
    sec.dataset.machine = m.id;
    const head = document.createElement('h4');
    head.textContent = name(m);
    const figs = document.createElement('div');
    figs.className = 'kpi-figs wrap';
    for (const fig of machineFigures(k, doc.trend ?? [], m.id, ui)) {
      figs.append(figButton(fig, (tt) => ui.onJump(tt, m.id, fig.key), { machine: m.id }));
    }
    figs.append(figButton({ key: 'running', label: t('kpiRunning'), value: min(k.running_min), jump: null }, () => {}));
    for (const task of TASKS) {
      const b = k.by_task[task];
      if (!b || !b.count) continue;
      figs.append(figButton({ key: `task:${task}`, label: t(task), value: `${b.count}${t('times')} · ${min(b.min)}`,
        jump: b.longest?.start ?? null }, (tt) => ui.onJump(tt, m.id, task), { machine: m.id, task }));
    }
    sec.append(head, figs);
    el.append(sec);
  }
  el.append(h3(t('kpiPerWorker')));
  for (const w of layout.workers) {
    const k = doc.workers?.[w.id];
    if (!k) continue;
    const sec = document.createElement('section');
    sec.className = 'sum-block';
    sec.dataset.worker = w.id;
    const head = document.createElement('h4');
    head.textContent = `${workerName(w)} · ${t('total')} ${min(k.changeover_min)}`;
    const figs = document.createElement('div');
    figs.className = 'kpi-figs wrap';
    for (const task of TASKS) {
      const b = k.by_task[task];
      if (!b || !b.count) continue;
      const own = b.own_median_min == null ? t('noEarlier') : min(b.own_median_min);
      const fig = { key: `task:${task}`, label: t(task),
        value: `${b.count}${t('times')} · ${min(b.min)} · ${t('perTaskMedian')} ${min(b.median_min)} / ${t('ownMedian')} ${own}`,
        jump: b.longest?.start ?? null };
      const btn = figButton(fig, (tt) => ui.onJump(tt, null, task), { worker: w.id, task });
      if (b.own_median_min != null) btn.classList.add(b.median_min <= b.own_median_min ? 'better' : 'worse');
      figs.append(btn);
    }
    sec.append(head, figs);
    el.append(sec);
  }
  if ((doc.trend ?? []).length > 1) {
    el.append(h3(t('kpiTrend')));
    const sec = document.createElement('section');
    sec.className = 'sum-block trend';
    for (const d of doc.trend) {
      const a = document.createElement('a');
      a.className = 'btn trend-day';
      a.dataset.day = d.day;
      a.href = ui.dayHref(d.day);
      const util = layout.machines.map((m) => {
        const u = d.machines?.[m.id]?.utilisation;
        return u == null ? '—' : `${Math.round(u * 100)}%`;
      }).join(' · ');
      a.textContent = `${day(d.day)}: ${util}`;
      if (d.day === doc.day) a.setAttribute('aria-current', 'date');
      sec.append(a);
    }
    el.append(sec);
  }
}
