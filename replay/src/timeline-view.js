// The timeline under the scene: one lane per machine (and its ideal day) and per worker.
// Lanes are drawn once into an offscreen canvas; each frame only blits it and moves the cursor,
// which keeps 600x replay smooth on a tablet with software rendering. The visible window can be
// zoomed and panned (wheel, pinch, drag on the hour axis, buttons); hovering or tapping a lane
// shows what is there (task, worker, start, duration, confidence).

import { describeForecast, drawForecastRow } from './forecast.js';
import { STATE_COLORS, TASK_COLORS, formatClock, indexAt, localTimeOnDay } from './timeline.js';

const AXIS_H = 26;
const ROW_H = { machine: 40, ideal: 48, worker: 40, forecast: 36 };
const ZONE_COLORS = ['#cfe3f7', '#f7e3cf', '#dff2d8', '#eadcf5', '#f5dce4', '#e0e0e0'];
/** Zone intervals whose location confidence is below this are drawn hatched. */
export const LOW_CONFIDENCE = 0.6;
const MIN_SPAN_S = 300;
const LABEL_GAP_PX = 12;
const TICK_STEPS_S = [300, 600, 900, 1800, 3600, 7200, 10800, 14400, 21600];

/** Lowest zone confidence of a worker over [start, end), or null when the data has none. */
export function minConfidence(zones, start, end) {
  let i = Math.max(0, indexAt(zones, start));
  let lo = null;
  for (; i < zones.length && zones[i].start < end; i += 1) {
    const z = zones[i];
    if (z.end <= start || z.confidence == null) continue;
    lo = lo == null ? z.confidence : Math.min(lo, z.confidence);
  }
  return lo;
}

/**
 * The hour axis: the smallest step (s) whose labels are at least `minPx` apart, and the
 * tick times (aligned to the site's local midnight) inside [start, end].
 */
export function axisTicks(start, end, widthPx, tz, minPx = 56) {
  const pxPerS = widthPx / Math.max(1, end - start);
  const step = TICK_STEPS_S.find((s) => s * pxPerS >= minPx) ?? TICK_STEPS_S[TICK_STEPS_S.length - 1];
  const midnight = localTimeOnDay(start, '00:00', tz);
  const ticks = [];
  for (let t = midnight + Math.ceil((start - midnight) / step) * step; t <= end; t += step) ticks.push(t);
  return { step, ticks };
}

function hatch(ctx, color) {
  const c = document.createElement('canvas');
  c.width = 8;
  c.height = 8;
  const g = c.getContext('2d');
  g.strokeStyle = color;
  g.lineWidth = 2;
  g.beginPath(); g.moveTo(0, 8); g.lineTo(8, 0); g.moveTo(-2, 2); g.lineTo(2, -2); g.moveTo(6, 10); g.lineTo(10, 6);
  g.stroke();
  return ctx.createPattern(c, 'repeat');
}

export class TimelineView {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {{onSeek:(t:number)=>void, onSelectTask:(id:string)=>void, onViewChange?:()=>void,
   *   tooltip?:HTMLElement}} opts
   */
  constructor(canvas, { onSeek, onSelectTask, onViewChange, tooltip }) {
    this.canvas = canvas;
    this.onSeek = onSeek;
    this.onSelectTask = onSelectTask;
    this.onViewChange = onViewChange ?? (() => {});
    this.tip = tooltip ?? null;
    this.off = document.createElement('canvas');
    this.cursor = document.createElement('div');
    this.cursor.className = 'timeline-cursor';
    canvas.parentElement.style.position = 'relative';
    canvas.parentElement.appendChild(this.cursor);
    this._dirty = true;
    this.data = null;
    this.rows = [];
    this.view = null;
    this._labels = [];
    this._pointers = new Map();
    this._mode = null;
    canvas.addEventListener('pointerdown', (e) => this._down(e));
    canvas.addEventListener('pointermove', (e) => this._move(e));
    canvas.addEventListener('pointerleave', (e) => { if (e.pointerType === 'mouse') this.hideTip(); });
    window.addEventListener('pointerup', (e) => this._up(e));
    window.addEventListener('pointercancel', (e) => this._up(e));
    canvas.addEventListener('wheel', (e) => this._wheel(e), { passive: false });
  }

  /**
   * @param {object} data {lanes, breaks, notes, ideal, selectedTask, tz, machineLabel(id, ideal, narrow),
   *   workerLabel(id, narrow), zoneLabel(id), taskLabel(task), workerName(id), breakLabel(b), fmtDuration(s),
   *   t(key)}
   */
  setData(data) {
    const sameWindow = this.data && this.data.lanes.start === data.lanes.start && this.data.lanes.end === data.lanes.end;
    this.data = data;
    if (!sameWindow || !this.view) this.view = { start: data.lanes.start, end: data.lanes.end };
    this.view.end = Math.min(this.view.end, data.lanes.end);
    this.rows = [];
    const zonesOf = Object.fromEntries(data.lanes.workers.map((w) => [w.id, w.zones]));
    const lowConf = (task) => {
      const c = task.worker != null && zonesOf[task.worker] ? minConfidence(zonesOf[task.worker], task.start, task.end) : null;
      return c;
    };
    for (const m of data.lanes.machines) {
      this.rows.push({ kind: 'machine', id: m.id, lane: m, conf: m.tasks.map(lowConf) });
      if (data.ideal) {
        const il = data.ideal.machines.find((x) => x.id === m.id);
        this.rows.push({ kind: 'ideal', id: m.id, lane: il, conf: il ? il.tasks.map(() => null) : [] });
      }
      // The forecast of the next hour (forecast.js), under its machine, once the page has one.
      const fr = data.forecastRow?.(m.id);
      if (fr) this.rows.push({ kind: 'forecast', id: m.id, ...fr });
    }
    for (const w of data.lanes.workers) this.rows.push({ kind: 'worker', id: w.id, lane: w, conf: w.tasks.map(lowConf) });
    let y = AXIS_H;
    for (const r of this.rows) { r.y = y; r.h = ROW_H[r.kind]; y += r.h; }
    this.height = y + 4;
    this.resize();
  }

  get labelW() {
    return this.cssW < 600 ? 56 : 120;
  }

  get narrow() {
    return this.cssW < 600;
  }

  resize() {
    if (!this.data) return;
    const dpr = Math.min(window.devicePixelRatio || 1, 2);
    const w = this.canvas.parentElement.clientWidth || 800;
    this.cssW = w;
    this.canvas.style.width = `${w}px`;
    this.canvas.style.height = `${this.height}px`;
    for (const c of [this.canvas, this.off]) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(this.height * dpr);
    }
    this.dpr = dpr;
    this.cursor.style.height = `${this.height}px`;
    this._redraw();
  }

  _redraw() {
    this._drawStatic();
    this._dirty = true;
    this._cursorX = null;
  }

  x(t) {
    const { start, end } = this.view;
    return this.labelW + ((t - start) / (end - start)) * (this.cssW - this.labelW - 8);
  }

  tAt(x) {
    const { start, end } = this.view;
    const f = (x - this.labelW) / (this.cssW - this.labelW - 8);
    return start + Math.min(Math.max(f, 0), 1) * (end - start);
  }

  // --- zoom and pan -----------------------------------------------------------------------
  /** Show [start, end) (clamped to the shift, at least 5 min). */
  setView(start, end) {
    const { start: s0, end: e0 } = this.data.lanes;
    let span = Math.min(Math.max(end - start, MIN_SPAN_S), e0 - s0);
    let s = Math.min(Math.max(start, s0), e0 - span);
    if (!Number.isFinite(s)) { s = s0; span = e0 - s0; }
    if (this.view && Math.abs(this.view.start - s) < 1e-6 && Math.abs(this.view.end - (s + span)) < 1e-6) return;
    this.view = { start: s, end: s + span };
    this._redraw();
    this.onViewChange(this.view);
  }

  /** Zoom by `factor` (> 1 closer) keeping `aroundT` where it is on screen. */
  zoomBy(factor, aroundT = null) {
    const { start, end } = this.view;
    const at = aroundT ?? (start + end) / 2;
    const f = (at - start) / (end - start);
    const span = (end - start) / factor;
    this.setView(at - f * span, at - f * span + span);
  }

  /** Pan by a fraction of the visible span (negative: earlier). */
  panBy(fraction) {
    const span = this.view.end - this.view.start;
    this.setView(this.view.start + fraction * span, this.view.end + fraction * span);
  }

  fit() {
    this.setView(this.data.lanes.start, this.data.lanes.end);
  }

  get zoomed() {
    return this.view.end - this.view.start < this.data.lanes.end - this.data.lanes.start - 1;
  }

  /** Rectangles (page coordinates) of the texts drawn on the canvas, for layout tests. */
  labelRects() {
    const r = this.canvas.getBoundingClientRect();
    return this._labels.map((l) => ({ ...l, x: l.x + r.left, y: l.y + r.top }));
  }

  _text(g, text, x, y, maxW = Infinity) {
    const w = Math.min(g.measureText(text).width, maxW);
    g.fillText(text, x, y, maxW === Infinity ? undefined : maxW);
    const h = parseInt(g.font.match(/(\d+)px/)?.[1] ?? '13', 10);
    this._labels.push({ text, x, y: y - h / 2, w, h });
  }

  _drawStatic() {
    const d = this.data;
    const g = this.off.getContext('2d');
    this._labels = [];
    g.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    g.clearRect(0, 0, this.cssW, this.height);
    g.fillStyle = '#ffffff';
    g.fillRect(0, 0, this.cssW, this.height);
    this._hatch ??= hatch(g, 'rgba(40, 40, 40, 0.55)');
    const { start, end } = this.view;
    const L = this.labelW;
    // Hour ticks in the site's local time, labelled only as densely as they stay readable.
    g.font = '13px system-ui, sans-serif';
    g.textBaseline = 'middle';
    const { ticks } = axisTicks(start, end, this.cssW - L - 8, d.tz);
    let lastRight = -Infinity;
    for (const t of ticks) {
      const x = this.x(t);
      g.strokeStyle = '#c3c8cf';
      g.beginPath(); g.moveTo(x, AXIS_H - 8); g.lineTo(x, this.height); g.stroke();
      const label = formatClock(t, d.tz).slice(0, 5);
      const w = g.measureText(label).width;
      if (x + 3 >= lastRight + LABEL_GAP_PX && x + 3 + w <= this.cssW - 2) {
        g.fillStyle = '#333';
        this._text(g, label, x + 3, AXIS_H / 2);
        lastRight = x + 3 + w;
      }
    }
    g.save();
    g.beginPath(); g.rect(L, 0, this.cssW - L, this.height); g.clip();
    for (const r of this.rows) this._drawRow(g, r);
    // Breaks over all lanes (drawn on top so they stay visible across busy lanes).
    for (const b of d.breaks) {
      if (b.end <= start || b.start >= end) continue;
      const bx = this.x(Math.max(b.start, start));
      const bw = this.x(Math.min(b.end, end)) - bx;
      g.fillStyle = 'rgba(255, 196, 0, 0.22)';
      g.fillRect(bx, AXIS_H, bw, this.height - AXIS_H);
      g.fillStyle = 'rgba(255, 196, 0, 0.9)';
      g.fillRect(bx, AXIS_H - 5, bw, 5);
    }
    // Notes: a marker on their lane at their moment.
    for (const n of d.notes) {
      const row = this.rows.find((r) => r.id === n.target && r.kind !== 'ideal');
      if (!row || n.t < start || n.t > end) continue;
      const x = this.x(n.t);
      g.fillStyle = '#d62728';
      g.beginPath(); g.moveTo(x - 6, row.y); g.lineTo(x + 6, row.y); g.lineTo(x, row.y + 9); g.closePath(); g.fill();
    }
    g.restore();
    // Lane labels last, over a white column.
    g.fillStyle = '#ffffff';
    g.fillRect(0, AXIS_H, L, this.height - AXIS_H);
    for (const r of this.rows) {
      g.fillStyle = '#222';
      g.font = r.kind === 'ideal' || r.kind === 'forecast' ? 'italic 13px system-ui, sans-serif' : 'bold 14px system-ui, sans-serif';
      const label = r.kind === 'worker' ? d.workerLabel(r.id, this.narrow)
        : r.kind === 'forecast' ? d.forecastLabel(r.id, this.narrow) : d.machineLabel(r.id, r.kind === 'ideal', this.narrow);
      this._text(g, label, 6, r.y + r.h / 2, L - 10);
    }
  }

  _seg(t0, t1) {
    const a = Math.max(t0, this.view.start);
    const b = Math.min(t1, this.view.end);
    return b > a ? [this.x(a), this.x(b) - this.x(a)] : null;
  }

  _drawRow(g, r) {
    if (r.kind === 'forecast') { drawForecastRow(g, this, r); return; }
    g.fillStyle = r.kind === 'ideal' ? '#f3f8ee' : '#f7f8fa';
    g.fillRect(this.labelW, r.y + 1, this.cssW - this.labelW, r.h - 2);
    if (!r.lane) return;
    if (r.kind === 'machine' || r.kind === 'ideal') {
      for (const s of r.lane.states) {
        const seg = this._seg(s.start, s.end);
        if (!seg) continue;
        g.fillStyle = STATE_COLORS[s.state] ?? STATE_COLORS.unknown;
        g.fillRect(seg[0], r.y + r.h - 8, Math.max(1, seg[1]), 6);
      }
      r.lane.tasks.forEach((task, i) => {
        const seg = this._seg(task.start, task.end);
        if (!seg) return;
        const [x0, w0] = seg;
        const w = Math.max(2, w0);
        g.fillStyle = TASK_COLORS[task.task] ?? '#888';
        g.fillRect(x0, r.y + 4, w, r.h - 14);
        if (r.conf[i] != null && r.conf[i] < LOW_CONFIDENCE) {
          g.fillStyle = this._hatch;
          g.fillRect(x0, r.y + 4, w, r.h - 14);
        }
        if (r.kind === 'ideal' && this.data.selectedTask === task.id) {
          g.strokeStyle = '#000'; g.lineWidth = 3; g.strokeRect(x0 - 1, r.y + 3, w + 2, r.h - 12); g.lineWidth = 1;
        }
      });
    } else {
      g.font = '11px system-ui, sans-serif';
      r.lane.zones.forEach((z) => {
        if (z.zone === 'none') return;
        const seg = this._seg(z.start, z.end);
        if (!seg) return;
        const k = this.data.lanes.machines.findIndex((m) => m.id === z.zone);
        g.fillStyle = ZONE_COLORS[k % ZONE_COLORS.length] ?? '#ddd';
        g.fillRect(seg[0], r.y + 4, Math.max(1, seg[1]), r.h - 8);
        if (z.confidence != null && z.confidence < LOW_CONFIDENCE) {
          // Where the location is uncertain: hatched, with a dashed outline.
          g.fillStyle = this._hatch;
          g.fillRect(seg[0], r.y + 4, Math.max(1, seg[1]), r.h - 8);
          g.save(); g.setLineDash([4, 3]); g.strokeStyle = '#333';
          g.strokeRect(seg[0] + 0.5, r.y + 4.5, Math.max(1, seg[1]) - 1, r.h - 9); g.restore();
        }
        const label = this.data.zoneLabel ? this.data.zoneLabel(z.zone, this.narrow) : z.zone;
        if (seg[1] > g.measureText(label).width + 6) {
          g.fillStyle = '#555';
          this._text(g, label, seg[0] + 2, r.y + 12);
        }
      });
      r.lane.tasks.forEach((task, i) => {
        const seg = this._seg(task.start, task.end);
        if (!seg) return;
        g.fillStyle = TASK_COLORS[task.task] ?? '#888';
        g.fillRect(seg[0], r.y + r.h / 2 - 2, Math.max(2, seg[1]), r.h / 2 - 4);
        if (r.conf[i] != null && r.conf[i] < LOW_CONFIDENCE) {
          g.fillStyle = this._hatch;
          g.fillRect(seg[0], r.y + r.h / 2 - 2, Math.max(2, seg[1]), r.h / 2 - 4);
        }
      });
    }
  }

  /**
   * Move the cursor to replay time `t`. The lanes are a static canvas (repainted only when the
   * data or the view changes) and the cursor a separate element moved by a transform, so a
   * playing replay costs the compositor almost nothing. Zoomed in, the view pages along with
   * a playing replay.
   */
  draw(t, playing = false) {
    if (!this.data) return;
    if (playing && this.zoomed && (t > this.view.end || t < this.view.start)) {
      const span = this.view.end - this.view.start;
      this.setView(t - 0.1 * span, t + 0.9 * span);
    }
    if (this._dirty) {
      const g = this.canvas.getContext('2d');
      g.setTransform(1, 0, 0, 1, 0, 0);
      g.drawImage(this.off, 0, 0);
      this._dirty = false;
    }
    const inside = t >= this.view.start && t <= this.view.end;
    const x = inside ? Math.round(this.x(t) * 2) / 2 : -10;
    if (x !== this._cursorX) {
      this._cursorX = x;
      this.cursor.style.transform = `translateX(${x - 1}px)`;
      this.cursor.hidden = !inside;
    }
  }

  // --- what is under a point ------------------------------------------------------------
  /** What lies at canvas point (x, y): `{row, item, kind}` or null. */
  hit(x, y) {
    const row = this.rows.find((r) => y >= r.y && y < r.y + r.h);
    if (row?.kind === 'forecast') return row.lane && x >= this.labelW ? { row, kind: 'forecast', t: this.tAt(x) } : null;
    if (!row || !row.lane || x < this.labelW) return null;
    const t = this.tAt(x);
    const slack = (6 / (this.cssW - this.labelW)) * (this.view.end - this.view.start);
    const near = (list) => {
      const i = indexAt(list, t);
      if (i >= 0) return i;
      return list.findIndex((it) => t >= it.start - slack && t <= it.end + slack);
    };
    const ti = near(row.lane.tasks);
    if (ti >= 0) return { row, item: row.lane.tasks[ti], kind: 'task', conf: row.conf[ti] };
    if (row.kind === 'worker') {
      const zi = indexAt(row.lane.zones, t);
      return zi >= 0 ? { row, item: row.lane.zones[zi], kind: 'zone', conf: row.lane.zones[zi].confidence ?? null } : null;
    }
    const si = indexAt(row.lane.states, t);
    return si >= 0 ? { row, item: row.lane.states[si], kind: 'state', conf: null } : null;
  }

  /** The tooltip's lines for a hit: task, worker, start, duration, confidence. */
  describe(h) {
    const d = this.data;
    if (h.kind === 'forecast') return describeForecast(h.row, h.t, d.lang, d.tz);
    const t = d.t;
    const it = h.item;
    const conf = h.conf == null ? '—' : `${Math.round(h.conf * 100)}%${h.conf < LOW_CONFIDENCE ? ` (${t('lowConfidence')})` : ''}`;
    const lines = [];
    const mname = d.machineName ?? d.zoneLabel;
    if (h.kind === 'task') {
      lines.push([t('task'), d.taskLabel(it.task)]);
      lines.push([t('machine'), mname(it.machine ?? h.row.id)]);
      lines.push([t('worker'), it.worker ? d.workerName(it.worker) : '—']);
    } else if (h.kind === 'zone') {
      lines.push([t('worker'), d.workerName(h.row.id)]);
      lines.push([t('zone'), it.zone === 'none' ? t('away') : mname(it.zone)]);
    } else {
      lines.push([t('machine'), mname(h.row.id)]);
      lines.push([t('state'), t(it.state)]);
    }
    lines.push([t('start'), formatClock(it.start, d.tz)]);
    lines.push([t('duration'), d.fmtDuration(it.end - it.start)]);
    lines.push([t('confidence'), conf]);
    return lines;
  }

  showTip(clientX, clientY, h) {
    if (!this.tip) return;
    if (!h) { this.hideTip(); return; }
    const tip = this.tip;
    tip.replaceChildren();
    for (const [k, v] of this.describe(h)) {
      const row = document.createElement('div');
      const a = document.createElement('span');
      a.className = 'k';
      a.textContent = k;
      const b = document.createElement('span');
      b.className = 'v';
      b.textContent = v;
      row.append(a, b);
      tip.append(row);
    }
    tip.dataset.kind = h.kind;
    tip.hidden = false;
    const host = tip.offsetParent?.getBoundingClientRect() ?? { left: 0, top: 0, width: window.innerWidth };
    const w = tip.offsetWidth;
    const h2 = tip.offsetHeight;
    let left = clientX - host.left + 14;
    if (left + w > host.width - 4) left = Math.max(4, clientX - host.left - w - 14);
    let top = clientY - host.top - h2 - 10;
    if (top < 4) top = clientY - host.top + 18;
    tip.style.left = `${left}px`;
    tip.style.top = `${top}px`;
  }

  hideTip() {
    if (this.tip) this.tip.hidden = true;
  }

  // --- pointer handling -------------------------------------------------------------------
  _pos(e) {
    const rect = this.canvas.getBoundingClientRect();
    return [e.clientX - rect.left, e.clientY - rect.top];
  }

  _down(e) {
    if (!this.data) return;
    const [x, y] = this._pos(e);
    this._pointers.set(e.pointerId, { x, y });
    try { this.canvas.setPointerCapture?.(e.pointerId); } catch { /* a synthetic or ended pointer */ }
    if (this._pointers.size === 2) {  // pinch: zoom around the fingers' midpoint
      const [a, b] = [...this._pointers.values()];
      this._mode = { kind: 'pinch', dist: Math.max(10, Math.abs(a.x - b.x)), view: { ...this.view },
        at: this.tAt((a.x + b.x) / 2) };
      this.hideTip();
      return;
    }
    if (y < AXIS_H && x >= this.labelW) {  // drag the hour axis: pan
      this._mode = { kind: 'pan', x, view: { ...this.view } };
      return;
    }
    const h = this.hit(x, y);
    if (e.pointerType !== 'mouse') this.showTip(e.clientX, e.clientY, h);
    if (h && h.row.kind === 'ideal' && h.kind === 'task') { this.onSelectTask(h.item.id); this._mode = null; return; }
    if (x < this.labelW) return;
    this._mode = { kind: 'scrub' };
    this.onSeek(this.tAt(x));
  }

  _move(e) {
    if (!this.data) return;
    const [x, y] = this._pos(e);
    if (this._pointers.has(e.pointerId)) this._pointers.set(e.pointerId, { x, y });
    const m = this._mode;
    if (m?.kind === 'pinch' && this._pointers.size >= 2) {
      const [a, b] = [...this._pointers.values()];
      const dist = Math.max(10, Math.abs(a.x - b.x));
      const span = (m.view.end - m.view.start) * (m.dist / dist);
      const f = (m.at - m.view.start) / (m.view.end - m.view.start);
      this.setView(m.at - f * span, m.at - f * span + span);
    } else if (m?.kind === 'pan') {
      const dt = ((x - m.x) / (this.cssW - this.labelW - 8)) * (m.view.end - m.view.start);
      this.setView(m.view.start - dt, m.view.end - dt);
    } else if (m?.kind === 'scrub') {
      this.onSeek(this.tAt(x));
    } else if (e.pointerType === 'mouse') {
      this.showTip(e.clientX, e.clientY, this.hit(x, y));
    }
  }

  _up(e) {
    this._pointers.delete(e.pointerId);
    if (this._pointers.size === 0) this._mode = null;
    else if (this._mode?.kind === 'pinch') this._mode = null;
  }

  _wheel(e) {
    if (!this.data) return;
    const [x] = this._pos(e);
    if (x < this.labelW) return;  // over the lane names: the page scrolls as usual
    e.preventDefault();
    const span = this.view.end - this.view.start;
    if (e.shiftKey || Math.abs(e.deltaX) > Math.abs(e.deltaY)) {
      const dx = e.shiftKey ? e.deltaY : e.deltaX;
      this.setView(this.view.start + (dx / (this.cssW - this.labelW)) * span,
        this.view.end + (dx / (this.cssW - this.labelW)) * span);
    } else {
      this.zoomBy(Math.exp(-e.deltaY * 0.002), this.tAt(x));
    }
  }
}

/** The timeline's colour legend: tasks, running/stopped, breaks, uncertain location, notes. */
export function renderLegend(el, t) {
  el.replaceChildren();
  const items = [
    ...Object.entries(TASK_COLORS).map(([k, c]) => [k, t(k), `background:${c}`]),
    ['running', t('running'), `background:${STATE_COLORS.running}`],
    ['stopped', t('stopped'), `background:${STATE_COLORS.stopped}`],
    ['break', t('break'), 'background:rgba(255,196,0,0.55)'],
    ['low', t('lowConfidence'),
      'background:repeating-linear-gradient(135deg,#cfe3f7 0 3px,#555 3px 5px);outline:1px dashed #333'],
    ['note', t('note'), 'background:#d62728;clip-path:polygon(0 0,100% 0,50% 100%)'],
  ];
  for (const [key, text, style] of items) {
    const item = document.createElement('span');
    item.className = 'legend-item';
    item.dataset.key = key;
    const sw = document.createElement('span');
    sw.className = 'swatch';
    sw.style.cssText = style;
    item.append(sw, document.createTextNode(text));
    el.append(item);
  }
}
