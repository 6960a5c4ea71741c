// The forecast in the viewer: per machine "ends ~10:42 (10:35–10:55)", the operator's next
// hour, the shift end, and a lane of the next hour under each machine on the timeline.
//
// Data: GET /api/sites/{site}/forecast?at=EPOCH_S (any moment of a replay: only what was known
// then) and, live, the {type:"forecast"} frames of /ws/live. Pure helpers first (tested in
// node), then the panel and the fetcher (browser).

import { formatClock } from './timeline.js';

export const FORECAST_STRINGS = {
  ja: {
    forecast: '予測', at: '{t} 時点の予測', learnt: '過去 {n} 日から学習',
    ends: '終了', runsAgain: '再開', endsAt: '終了 ~{t} ({a}–{b})', runsAt: '再開 ~{t} ({a}–{b})',
    afterShift: 'シフト後 (今日は再開しない見込み)', unknownState: '状態不明: 予測なし',
    queue: '作業者の次の1時間', queueNone: '1時間以内に作業者を待つ機械はない見込み',
    queueWait: '{m} は {t} に作業者を約{n}分待つ見込み (最大 {x} 分)', queueAtOnce: '{m} は {t} に作業者が必要 (すぐ対応できる見込み)',
    shiftEnd: 'シフト終了 {t} まで', runningMin: '稼働 {p50} 分 ({p10}–{p90})', changeovers: '段取り {p50} 回 ({p10}–{p90})',
    cold_first_day: '履歴なし (最初の日): 仮の値からの幅広い予測',
    cold_machine_never_seen_running: 'この機械の稼働履歴なし: 他の機械と仮の値から',
    cold_few_runs: '似た稼働の履歴が少ない: 幅広い予測', cold_few_stops: '停止の履歴が少ない: 幅広い予測',
    cold_worker_no_history: '{w} の作業履歴なし: 全員の値から', cold_worker_unknown: '作業者が不明',
    wide: '幅広い', lane_running: '稼働 (予測)', lane_waiting: '作業者待ち (予測)', lane_changeover: '段取り (予測)',
    lane_fix: '小停止の対応 (予測)', lane_off: '次のシフトまで停止 (予測)', lane_unknown: '不明',
    laneLabel: '{m} 予測', probability: '確率', from: 'から', to: 'まで', unavailable: '予測を読み込めません',
    forecastLegend: '予測 (次の1時間)', legendHead: '予測:', legendRange: '◆├┤ 中央値・80%',
    legendTitle: '各機械の下の段: 次の1時間で最も可能性の高い状態 (薄いほど不確か)。◆ は次の終了/再開の中央値、├┤ は 80% の範囲',
    legend_waiting: '作業者待ち', legend_changeover: '段取り', legend_fix: '小停止',
  },
  en: {
    forecast: 'Forecast', at: 'forecast at {t}', learnt: 'learnt from {n} earlier days',
    ends: 'ends', runsAgain: 'runs again', endsAt: 'ends ~{t} ({a}–{b})', runsAt: 'runs again ~{t} ({a}–{b})',
    afterShift: 'after the shift (not again today)', unknownState: 'state unknown: no forecast',
    queue: "Operator's next hour", queueNone: 'no machine is likely to wait for the operator within the hour',
    queueWait: '{m} will wait ~{n} min for the operator at {t} (up to {x})', queueAtOnce: '{m} needs the operator at {t} (served at once)',
    shiftEnd: 'By the shift end {t}', runningMin: 'running {p50} min ({p10}–{p90})', changeovers: '{p50} changeovers ({p10}–{p90})',
    cold_first_day: 'no history yet (first day): a rough range from priors',
    cold_machine_never_seen_running: 'this machine never seen running: from the other machines and priors',
    cold_few_runs: 'few similar runs yet: a wide range', cold_few_stops: 'few stops seen yet: a wide range',
    cold_worker_no_history: '{w} has no history yet: from everyone\'s', cold_worker_unknown: 'worker unknown',
    wide: 'wide', lane_running: 'running (forecast)', lane_waiting: 'waiting for the operator (forecast)',
    lane_changeover: 'changeover (forecast)', lane_fix: 'minor fix (forecast)', lane_off: 'stopped until the next shift (forecast)',
    lane_unknown: 'unknown', laneLabel: '{m} forecast', probability: 'probability', from: 'from', to: 'to',
    unavailable: 'forecast unavailable', forecastLegend: 'Forecast (next hour)', legendHead: 'Forecast:', legendRange: '◆├┤ median, 80 %',
    legendTitle: "The row under each machine: the next hour's most likely state (fainter: less sure); "
      + '◆ the median of its next end or restart, ├┤ its 80 % range',
    legend_waiting: 'waiting', legend_changeover: 'changeover', legend_fix: 'minor fix',
  },
};

/** Colours of the forecast lane's states (drawn lighter the less likely they are). */
export const LANE_COLORS = {
  running: '#2ca02c', waiting: '#e8820c', changeover: '#7b5ea7', fix: '#b0b7bf', off: '#5f6670', unknown: '#e0e0e0',
};

export function ft(lang) {
  const table = FORECAST_STRINGS[lang] ?? FORECAST_STRINGS.en;
  return (key, vars = {}) => (table[key] ?? FORECAST_STRINGS.en[key] ?? key)
    .replace(/\{(\w+)\}/g, (_, k) => (vars[k] ?? `{${k}}`));
}

export const hm = (tS, tz) => formatClock(tS, tz).slice(0, 5);

/** "ends ~10:42 (10:35–10:55)" / "再開 ~10:51 (10:46–11:02)" for one machine's forecast. */
export function eventText(m, tz, lang) {
  const tr = ft(lang);
  if (!m || m.event == null) return tr('unknownState');
  if (m.p50 == null) return `${tr(m.event === 'run_end' ? 'ends' : 'runsAgain')}: ${tr('afterShift')}`;
  const vars = { t: hm(m.p50, tz), a: hm(m.p10 ?? m.p50, tz), b: m.p90 == null ? '?' : hm(m.p90, tz) };
  return tr(m.event === 'run_end' ? 'endsAt' : 'runsAt', vars);
}

/**
 * Append the forecast lane's key to `el` (items `.fc-legend-item`, replaced on each call): what
 * the lane's colours and its bracket mean. It sits in the forecast panel: the timeline's legend
 * row has no room left at 1280 px.
 */
export function renderForecastLegend(el, lang) {
  const tr = ft(lang);
  for (const old of el.querySelectorAll('.fc-legend-item')) old.remove();
  const head = document.createElement('span');
  head.className = 'legend-item fc-legend-item fc-legend-head';
  head.textContent = tr('legendHead');
  head.title = tr('legendTitle');
  el.append(head);
  // running is the green of the legend's "Running": not repeated
  for (const state of ['waiting', 'changeover', 'fix']) {
    const item = document.createElement('span');
    item.className = 'legend-item fc-legend-item';
    item.dataset.key = `forecast-${state}`;
    item.title = tr('legendTitle');
    const sw = document.createElement('span');
    sw.className = 'swatch';
    sw.style.background = LANE_COLORS[state];
    item.append(sw, document.createTextNode(tr(`legend_${state}`)));
    el.append(item);
  }
  const range = document.createElement('span');
  range.className = 'legend-item fc-legend-item';
  range.dataset.key = 'forecast-range';
  range.textContent = tr('legendRange');
  range.title = tr('legendTitle');
  el.append(range);
}

/** Why a machine's range leans on priors, in words (empty when it does not). */
export function coldText(codes, lang, workerName = (w) => w) {
  const tr = ft(lang);
  return (codes ?? []).map((c) => {
    if (c.startsWith('worker_no_history:')) return tr('cold_worker_no_history', { w: workerName(c.split(':')[1]) });
    return tr(`cold_${c}`);
  });
}

/** One line of the operator's next hour. */
export function queueText(q, tz, lang, machineName = (m) => m) {
  const tr = ft(lang);
  const vars = { m: machineName(q.machine), t: hm(q.need_at, tz), n: Math.round(q.wait_p50_min),
    x: Math.round(q.wait_p90_min) };
  return q.wait_p50_min >= 1 ? tr('queueWait', vars) : tr('queueAtOnce', vars);
}

/** The shift end's two lines. */
export function shiftEndText(doc, tz, lang) {
  const tr = ft(lang);
  const r = (v) => (v == null ? '?' : Math.round(v));
  const [a, b, c] = doc.running_min;
  const [d, e, f] = doc.changeovers;
  return [tr('shiftEnd', { t: hm(doc.shift_end, tz) }), tr('runningMin', { p10: r(a), p50: r(b), p90: r(c) }),
    tr('changeovers', { p10: r(d), p50: r(e), p90: r(f) })];
}

/** The replay time a forecast is asked for: whole minutes, so scrubbing reuses the server's answers. */
export function forecastMoment(t) {
  return Math.floor(t / 60) * 60;
}

/**
 * Whether to ask again: the replay moved at least a minute from the last forecast (or before
 * it), nothing is in flight, and not more often than every `minWallMs`.
 */
export function wantFetch({ t, lastAt, inFlight, lastWallMs, nowMs, minWallMs = 400 }) {
  if (inFlight || nowMs - lastWallMs < minWallMs) return false;
  if (lastAt == null) return true;
  return forecastMoment(t) !== lastAt;
}

// --- the timeline lane (drawn by timeline-view.js into its canvas) ---------------------------
/**
 * Draw one machine's forecast row: the next hour's most likely state per minute (fainter when
 * less sure), the range of its next event as a bracket, and the text.
 */
export function drawForecastRow(g, tv, row) {
  const m = row.lane;
  const y = row.y;
  const h = row.h;
  // bands: the text on top, the lane in the middle, the event's range at the bottom
  const laneY = y + 15;
  const laneH = h - 24;
  const yb = y + h - 4;
  g.fillStyle = '#fbf8f2';
  g.fillRect(tv.labelW, y + 1, tv.cssW - tv.labelW, h - 2);
  if (!m) return;
  for (const seg of m.lane ?? []) {
    const s = tv._seg(seg.start, seg.end);
    if (!s) continue;
    g.globalAlpha = 0.3 + 0.7 * Math.min(Math.max(seg.p, 0), 1);
    g.fillStyle = LANE_COLORS[seg.state] ?? LANE_COLORS.unknown;
    g.fillRect(s[0], laneY, Math.max(1, s[1]), laneH);
  }
  g.globalAlpha = 1;
  // the moment of the forecast
  const at = row.at;
  if (at >= tv.view.start && at <= tv.view.end) {
    const x = tv.x(at);
    g.save(); g.setLineDash([3, 3]); g.strokeStyle = '#333';
    g.beginPath(); g.moveTo(x, y + 1); g.lineTo(x, y + h - 1); g.stroke(); g.restore();
  }
  if (m.p50 != null) {
    const lo = tv._seg(m.p10 ?? m.p50, m.p90 ?? m.p50);
    g.strokeStyle = '#111';
    g.lineWidth = 2;
    if (lo) {
      g.beginPath(); g.moveTo(lo[0], yb - 4); g.lineTo(lo[0], yb); g.lineTo(lo[0] + lo[1], yb); g.lineTo(lo[0] + lo[1], yb - 4);
      g.stroke();
    }
    g.lineWidth = 1;
    if (m.p50 >= tv.view.start && m.p50 <= tv.view.end) {
      const x = tv.x(m.p50);
      g.fillStyle = '#111';
      g.beginPath(); g.moveTo(x, yb - 5); g.lineTo(x + 4, yb); g.lineTo(x, yb + 3); g.lineTo(x - 4, yb); g.closePath(); g.fill();
    }
  }
  if (row.text && at <= tv.view.end) {
    g.font = '12px system-ui, sans-serif';
    g.textBaseline = 'middle';
    const x0 = Math.max(tv.labelW + 4, tv.x(Math.max(at, tv.view.start)) + 6);
    const maxW = tv.cssW - x0 - 8;
    if (maxW > 40) {
      g.fillStyle = row.cold ? '#8a4b00' : '#222';
      tv._text(g, row.text, x0, y + 8, maxW);
    }
  }
}

/** Tooltip lines for a point of a forecast row (the state there and how sure). */
export function describeForecast(row, t, lang, tz) {
  const tr = ft(lang);
  const seg = (row.lane?.lane ?? []).find((s) => t >= s.start && t < s.end);
  const lines = [[tr('forecast'), row.text ?? '']];
  if (seg) {
    lines.push([tr(`lane_${seg.state}`), `${hm(seg.start, tz)}–${hm(seg.end, tz)}`]);
    lines.push([tr('probability'), `${Math.round(seg.p * 100)}%`]);
  }
  for (const c of coldText(row.lane?.cold, lang)) lines.push(['!', c]);
  return lines;
}

// --- the panel and the fetcher (browser) -------------------------------------------------------
/**
 * Keeps the page's forecast: fetches it for the replay's moment (or takes the live pushes),
 * renders the side panel and hands the timeline its rows.
 */
export class ForecastUi {
  /**
   * @param {{el:HTMLElement, site:string, getJson:(url:string)=>Promise<object>, tz:string, lang:string,
   *   machineName:(id:string)=>string, workerName:(id:string)=>string, onChange:()=>void}} opts
   */
  constructor(opts) {
    Object.assign(this, opts);
    this.doc = null;
    this.lastAt = null;
    this.inFlight = false;
    this.lastWallMs = -Infinity;
    this.live = false;
    this.fetches = 0;
    this.error = null;
    this.disabled = false;
    this.liveAsked = false;
  }

  setLang(lang) {
    this.lang = lang;
    this.render();
    this.onChange();
  }

  /** Each frame: ask for the forecast of the replay's moment when it moved on (not live). */
  tick(t, live) {
    if (live !== this.live) this.liveAsked = false;
    this.live = live;
    if (this.disabled) return;
    if (live) {
      // The server pushes a forecast after each analysis; until the first push, ask once for
      // the newest (a page opened between two analyses).
      if (!this.liveAsked) {
        this.liveAsked = true;
        this.fetches += 1;
        this.getJson(`/api/sites/${encodeURIComponent(this.site)}/forecast`)
          .then((doc) => { if (this.live && (!this.doc || doc.at >= this.doc.at)) this.set(doc); })
          .catch(() => { /* live: the next push brings it */ });
      }
      return;
    }
    const nowMs = performance.now();
    if (!wantFetch({ t, lastAt: this.lastAt, inFlight: this.inFlight, lastWallMs: this.lastWallMs, nowMs })) return;
    const at = forecastMoment(t);
    this.lastAt = at;
    this.inFlight = true;
    this.lastWallMs = nowMs;
    this.fetches += 1;
    this.getJson(`/api/sites/${encodeURIComponent(this.site)}/forecast?at=${at}`)
      .then((doc) => { if (this.lastAt === at && !this.live) this.set(doc); })
      .catch((err) => {
        if (err?.status === 404 && err.detail === 'Not Found') {
          // A server without forecasts (the viewer over result files): no panel, no lanes.
          this.disabled = true;
          this.el.hidden = true;
          this.onChange();
          return;
        }
        this.error = String(err.message ?? err);
        this.set(null);
      })
      .finally(() => { this.inFlight = false; });
  }

  /** A forecast pushed by the live server. */
  push(doc) {
    if (this.live) this.set(doc);
  }

  set(doc) {
    this.doc = doc;
    if (doc) this.error = null;
    this.render();
    this.onChange();
  }

  /** Timeline rows: one per machine, with its lane, the moment and its text. */
  rowFor(machineId) {
    if (this.disabled) return null;
    const m = this.doc?.machines.find((x) => x.machine === machineId);
    if (!m) return { lane: null, at: null, text: '', cold: false };  // keep the row while loading
    return { lane: m, at: this.doc.at, text: eventText(m, this.tz, this.lang), cold: (m.cold ?? []).length > 0 };
  }

  render() {
    const el = this.el;
    if (this.disabled) return;
    const tr = ft(this.lang);
    el.replaceChildren();
    el.hidden = false;
    const h = document.createElement('h2');
    h.textContent = tr('forecast');
    el.append(h);
    const d = this.doc;
    if (!d) {
      const p = document.createElement('p');
      p.className = 'fc-none';
      p.textContent = this.error ? `${tr('unavailable')}: ${this.error}` : '…';
      el.append(p);
      el.dataset.ready = '';
      return;
    }
    const meta = document.createElement('p');
    meta.className = 'fc-meta';
    meta.textContent = `${tr('at', { t: hm(d.at, this.tz) })} · ${tr('learnt', { n: d.history_days })}`;
    el.append(meta);
    const key = document.createElement('p');
    key.className = 'fc-key';
    renderForecastLegend(key, this.lang);
    el.append(key);
    if (d.cold) {
      const c = document.createElement('p');
      c.className = 'fc-cold';
      c.textContent = tr('cold_first_day');
      el.append(c);
    }
    const ul = document.createElement('ul');
    ul.className = 'fc-machines';
    for (const m of d.machines) {
      const li = document.createElement('li');
      li.dataset.machine = m.machine;
      li.dataset.event = m.event ?? '';
      const name = document.createElement('strong');
      name.textContent = this.machineName(m.machine);
      const text = document.createElement('span');
      text.className = 'fc-end';
      text.textContent = eventText(m, this.tz, this.lang);
      li.append(name, text);
      const notes = coldText(m.cold, this.lang, this.workerName).filter((x) => !(d.cold && x === tr('cold_first_day')));
      if (m.cold?.length) {
        li.classList.add('cold');
        const badge = document.createElement('span');
        badge.className = 'fc-wide';
        badge.textContent = tr('wide');
        li.append(badge);
      }
      for (const n of notes) {
        const small = document.createElement('small');
        small.className = 'fc-why';
        small.textContent = n;
        li.append(small);
      }
      ul.append(li);
    }
    el.append(ul);
    const qh = document.createElement('h3');
    qh.textContent = tr('queue');
    const ql = document.createElement('ul');
    ql.className = 'fc-queue';
    for (const q of d.queue) {
      const li = document.createElement('li');
      li.dataset.machine = q.machine;
      li.textContent = queueText(q, this.tz, this.lang, this.machineName);
      ql.append(li);
    }
    if (!d.queue.length) {
      const li = document.createElement('li');
      li.className = 'empty';
      li.textContent = tr('queueNone');
      ql.append(li);
    }
    const se = document.createElement('div');
    se.className = 'fc-shift';
    for (const line of shiftEndText(d, this.tz, this.lang)) {
      const div = document.createElement('div');
      div.textContent = line;
      se.append(div);
    }
    el.append(qh, ql, se);
    el.dataset.ready = '1';
    el.dataset.at = String(d.at);
  }
}
