// The timeline under the scene: one lane per machine (and its ideal day) and per worker.
// Lanes are drawn once into an offscreen canvas; each frame only blits it and draws the cursor,
// which keeps 60x replay smooth on a tablet with software rendering.

import { STATE_COLORS, TASK_COLORS, formatClock } from './timeline.js';

const AXIS_H = 26;
const LABEL_W = 120;
const ROW_H = { machine: 40, ideal: 48, worker: 40 };
const ZONE_COLORS = ['#cfe3f7', '#f7e3cf', '#dff2d8', '#eadcf5', '#f5dce4', '#e0e0e0'];

export class TimelineView {
  constructor(canvas, { onSeek, onSelectTask }) {
    this.canvas = canvas;
    this.onSeek = onSeek;
    this.onSelectTask = onSelectTask;
    this.off = document.createElement('canvas');
    this.cursor = document.createElement('div');
    this.cursor.className = 'timeline-cursor';
    canvas.parentElement.style.position = 'relative';
    canvas.parentElement.appendChild(this.cursor);
    this._dirty = true;
    this.data = null;
    this.rows = [];
    this._dragging = false;
    canvas.addEventListener('pointerdown', (e) => this._down(e));
    canvas.addEventListener('pointermove', (e) => this._move(e));
    window.addEventListener('pointerup', () => { this._dragging = false; });
  }

  /** @param {object} data {lanes, breaks, notes, ideal, selectedTask, t, tz, machineLabel, workerLabel} */
  setData(data) {
    this.data = data;
    this.rows = [];
    for (const m of data.lanes.machines) {
      this.rows.push({ kind: 'machine', id: m.id, lane: m });
      if (data.ideal) this.rows.push({ kind: 'ideal', id: m.id, lane: data.ideal.machines.find((x) => x.id === m.id) });
    }
    for (const w of data.lanes.workers) this.rows.push({ kind: 'worker', id: w.id, lane: w });
    let y = AXIS_H;
    for (const r of this.rows) { r.y = y; r.h = ROW_H[r.kind]; y += r.h; }
    this.height = y + 4;
    this.resize();
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
    this._drawStatic();
    this._dirty = true;
    this._cursorX = null;
  }

  x(t) {
    const { start, end } = this.data.lanes;
    return LABEL_W + ((t - start) / (end - start)) * (this.cssW - LABEL_W - 8);
  }

  tAt(x) {
    const { start, end } = this.data.lanes;
    const f = (x - LABEL_W) / (this.cssW - LABEL_W - 8);
    return start + Math.min(Math.max(f, 0), 1) * (end - start);
  }

  _drawStatic() {
    const d = this.data;
    const g = this.off.getContext('2d');
    g.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    g.clearRect(0, 0, this.cssW, this.height);
    g.fillStyle = '#ffffff';
    g.fillRect(0, 0, this.cssW, this.height);
    const { start, end } = d.lanes;
    // Hour ticks in the site's local time.
    g.font = '13px system-ui, sans-serif';
    g.textBaseline = 'middle';
    const firstHour = Math.ceil(start / 1800) * 1800;
    for (let t = firstHour; t <= end; t += 1800) {
      const x = this.x(t);
      const hour = (t % 3600) === 0;
      g.strokeStyle = hour ? '#c3c8cf' : '#e6e8eb';
      g.beginPath(); g.moveTo(x, AXIS_H - (hour ? 8 : 4)); g.lineTo(x, this.height); g.stroke();
      if (hour) {
        g.fillStyle = '#333';
        g.fillText(formatClock(t, d.tz).slice(0, 5), x + 3, AXIS_H / 2);
      }
    }
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
  }

  _drawRow(g, r) {
    const d = this.data;
    g.fillStyle = r.kind === 'ideal' ? '#f3f8ee' : '#f7f8fa';
    g.fillRect(LABEL_W, r.y + 1, this.cssW - LABEL_W, r.h - 2);
    g.fillStyle = '#222';
    g.font = r.kind === 'ideal' ? 'italic 13px system-ui, sans-serif' : 'bold 14px system-ui, sans-serif';
    const label = r.kind === 'worker' ? d.workerLabel(r.id) : d.machineLabel(r.id, r.kind === 'ideal');
    g.fillText(label, 6, r.y + r.h / 2, LABEL_W - 10);
    if (!r.lane) return;
    if (r.kind === 'machine' || r.kind === 'ideal') {
      for (const s of r.lane.states) {
        g.fillStyle = STATE_COLORS[s.state] ?? STATE_COLORS.unknown;
        g.fillRect(this.x(s.start), r.y + r.h - 8, Math.max(1, this.x(s.end) - this.x(s.start)), 6);
      }
      for (const task of r.lane.tasks) {
        const x0 = this.x(task.start);
        const w = Math.max(2, this.x(task.end) - x0);
        g.fillStyle = TASK_COLORS[task.task] ?? '#888';
        g.fillRect(x0, r.y + 4, w, r.h - 14);
        if (r.kind === 'ideal' && d.selectedTask === task.id) {
          g.strokeStyle = '#000'; g.lineWidth = 3; g.strokeRect(x0 - 1, r.y + 3, w + 2, r.h - 12); g.lineWidth = 1;
        }
      }
    } else {
      r.lane.zones.forEach((z) => {
        if (z.zone === 'none') return;
        const k = d.lanes.machines.findIndex((m) => m.id === z.zone);
        g.fillStyle = ZONE_COLORS[k % ZONE_COLORS.length] ?? '#ddd';
        g.fillRect(this.x(z.start), r.y + 4, Math.max(1, this.x(z.end) - this.x(z.start)), r.h - 8);
        const w = this.x(z.end) - this.x(z.start);
        if (w > 28) { g.fillStyle = '#555'; g.font = '11px system-ui, sans-serif'; g.fillText(z.zone, this.x(z.start) + 2, r.y + 12); }
      });
      for (const task of r.lane.tasks) {
        g.fillStyle = TASK_COLORS[task.task] ?? '#888';
        g.fillRect(this.x(task.start), r.y + r.h / 2 - 2, Math.max(2, this.x(task.end) - this.x(task.start)), r.h / 2 - 4);
      }
    }
  }

  /**
   * Move the cursor to replay time `t`. The lanes are a static canvas (repainted only when the
   * data changes) and the cursor a separate element moved by a transform, so a playing replay
   * costs the compositor almost nothing (this matters with software rendering).
   */
  draw(t) {
    if (!this.data) return;
    if (this._dirty) {
      const g = this.canvas.getContext('2d');
      g.setTransform(1, 0, 0, 1, 0, 0);
      g.drawImage(this.off, 0, 0);
      this._dirty = false;
    }
    const x = Math.round(this.x(t) * 2) / 2;
    if (x !== this._cursorX) {
      this._cursorX = x;
      this.cursor.style.transform = `translateX(${x - 1}px)`;
    }
  }

  _pos(e) {
    const rect = this.canvas.getBoundingClientRect();
    return [e.clientX - rect.left, e.clientY - rect.top];
  }

  _down(e) {
    if (!this.data) return;
    const [x, y] = this._pos(e);
    const row = this.rows.find((r) => y >= r.y && y < r.y + r.h);
    if (row && row.kind === 'ideal' && row.lane && x >= LABEL_W) {
      const t = this.tAt(x);
      const slack = (6 / (this.cssW - LABEL_W)) * (this.data.lanes.end - this.data.lanes.start);
      const hit = row.lane.tasks.find((task) => t >= task.start - slack && t <= task.end + slack);
      if (hit) { this.onSelectTask(hit.id); return; }
    }
    if (x < LABEL_W) return;
    this._dragging = true;
    this.canvas.setPointerCapture?.(e.pointerId);
    this.onSeek(this.tAt(x));
  }

  _move(e) {
    if (!this._dragging) return;
    this.onSeek(this.tAt(this._pos(e)[0]));
  }
}
