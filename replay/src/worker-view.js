// The worker's own page: their task timeline per day (Gantt), each task against their own
// median and best, and minutes saved against their earlier days. Only their data is loaded.

import { TASK_COLORS, formatClock, formatMinutes } from './timeline.js';
import { workerStats } from './worker-stats.js';

function el(tag, attrs = {}, text = '') {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'style') Object.assign(e.style, v);
    else if (k in e && k !== 'dataset') e[k] = v;
    else e.setAttribute(k, v);
  }
  if (text) e.textContent = text;
  return e;
}

const mins = (s) => (s / 60).toFixed(1);

/**
 * @param {HTMLElement} root the #worker-view element
 * @param {{worker:{id:string,name:string}, days:object[], site:object}} data /api/worker payload
 * @param {{t:(k:string)=>string, tz:string}} ui
 */
export function renderWorkerView(root, data, ui) {
  const { t, tz } = ui;
  const stats = workerStats(data.days.map((d) => ({ day: d.day, tasks: d.tasks })));
  root.querySelector('#worker-title').textContent = `${t('myTimeline')}: ${data.worker.name}`;
  root.dataset.worker = data.worker.id;

  // Summary: the latest day's saving against the earlier ones.
  const last = stats.days[stats.days.length - 1];
  const summary = root.querySelector('#worker-summary');
  summary.innerHTML = '';
  if (last) {
    const saved = last.savedMin == null ? t('noEarlier') : formatMinutes(last.savedMin);
    const p = el('p', { className: 'summary' }, `${last.day} · ${t('total')}: ${formatMinutes(last.totalMin)} · ${t('saved')}: `);
    // Saved minutes green, lost minutes red: the number the morning talk is about.
    p.append(el('strong', { className: last.savedMin == null ? '' : last.savedMin >= 0 ? 'better' : 'worse' }, saved));
    summary.append(p);
  }

  // Gantt: one row per day, the day's shift window as the track.
  const gantt = root.querySelector('#worker-gantt');
  gantt.innerHTML = '';
  // One time axis for all days, from each day's shift start, so short days stay short.
  const span = Math.max(1, ...data.days.map((d) => d.end - d.start));
  for (const d of data.days) {
    const row = el('div', { className: 'gantt-row' });
    row.dataset.day = d.day;
    row.append(el('span', { className: 'day' }, d.day));
    const track = el('div', { className: 'gantt-track' });
    for (const task of d.tasks) {
      const bar = el('div', { className: 'gantt-task', title: `${t(task.task)} ${task.machine} ${formatClock(task.start, tz)}` });
      bar.dataset.task = task.task;
      bar.dataset.machine = task.machine;
      bar.style.left = `${((task.start - d.start) / span) * 100}%`;
      bar.style.width = `${Math.max(0.3, ((task.end - task.start) / span) * 100)}%`;
      bar.style.background = TASK_COLORS[task.task] ?? '#888';
      track.append(bar);
    }
    row.append(track);
    gantt.append(row);
  }
  const legend = el('div', { className: 'legend bar wrap' });
  for (const [task, color] of Object.entries(TASK_COLORS)) {
    const item = el('span', { className: 'legend-item' });
    item.append(el('span', { style: { display: 'inline-block', width: '18px', height: '18px', background: color,
      verticalAlign: 'middle', marginRight: '4px' } }), document.createTextNode(t(task)));
    legend.append(item);
  }
  gantt.append(legend);

  // Per task: count, median, best.
  const per = root.querySelector('#worker-pertask');
  per.innerHTML = '';
  per.append(headRow([t('task'), t('count'), `${t('median')} (${t('min')})`, `${t('best')} (${t('min')})`]));
  for (const [task, s] of Object.entries(stats.byTask)) {
    const tr = el('tr');
    tr.dataset.task = task;
    tr.append(el('td', {}, t(task)), el('td', {}, String(s.count)), el('td', {}, mins(s.medianS)), el('td', {}, mins(s.bestS)));
    per.append(tr);
  }

  // Per day: each task against the median and best.
  const days = root.querySelector('#worker-days');
  days.innerHTML = '';
  for (const d of [...stats.days].reverse()) {
    const sec = el('section', { className: 'worker-day' });
    sec.dataset.day = d.day;
    const saved = d.savedMin == null ? t('noEarlier') : formatMinutes(d.savedMin);
    const h = el('h3', {}, `${d.day} · ${t('total')} ${formatMinutes(d.totalMin)} · ${t('saved')}: `);
    h.append(el('span', { className: d.savedMin == null ? '' : d.savedMin >= 0 ? 'better' : 'worse' }, saved));
    sec.append(h);
    const table = el('table');
    table.append(headRow([t('start'), t('machine'), t('task'), `${t('duration')} (${t('min')})`,
      `${t('median')}`, `${t('best')}`, t('vsMedian')]));
    for (const task of d.tasks) {
      const tr = el('tr', { className: 'task-row' });
      tr.dataset.machine = task.machine;
      const diff = task.vsMedianS / 60;
      tr.append(
        el('td', {}, formatClock(task.start, tz).slice(0, 5)), el('td', {}, task.machine), el('td', {}, t(task.task)),
        el('td', {}, mins(task.durationS) + (task.isBest ? ' ★' : '')), el('td', {}, mins(task.medianS)),
        el('td', {}, mins(task.bestS)),
        el('td', { className: diff <= 0 ? 'better' : 'worse' }, `${diff > 0 ? '+' : ''}${diff.toFixed(1)}`),
      );
      table.append(tr);
    }
    sec.append(table);
    days.append(sec);
  }
}

function headRow(cells) {
  const tr = document.createElement('tr');
  for (const c of cells) {
    const th = document.createElement('th');
    th.textContent = c;
    tr.append(th);
  }
  return tr;
}
