// Pure time and state logic of the replay: interval look-up, lanes, changeovers, formatting.
// No DOM, no three.js: everything here runs under `node --test`.

export const TASKS = ['jig_change', 'tool_change', 'program_input', 'material_setting'];

// One colour per task, chosen to stay distinct for colour-blind viewers (Okabe-Ito palette).
export const TASK_COLORS = {
  jig_change: '#e69f00',
  tool_change: '#56b4e9',
  program_input: '#cc79a7',
  material_setting: '#009e73',
};
export const STATE_COLORS = { running: '#2ca02c', stopped: '#9aa0a6', unknown: '#e0e0e0' };

/**
 * Index of the interval of a sorted, non-overlapping list that contains `t` ([start, end)),
 * or -1. Binary search: an 8-hour shift has thousands of intervals and we look up per frame.
 */
export function indexAt(intervals, t) {
  let lo = 0;
  let hi = intervals.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const iv = intervals[mid];
    if (t < iv.start) hi = mid - 1;
    else if (t >= iv.end) lo = mid + 1;
    else return mid;
  }
  return -1;
}

/** The interval containing `t`, or null. */
export function intervalAt(intervals, t) {
  const i = indexAt(intervals, t);
  return i < 0 ? null : intervals[i];
}

function groupSorted(rows, key) {
  const out = {};
  for (const r of rows) (out[r[key]] ??= []).push(r);
  for (const k of Object.keys(out)) out[k].sort((a, b) => a.start - b.start);
  return out;
}

/**
 * Split a contract result into per-machine and per-worker lanes, each sorted by start.
 *
 * @param {object} result contract result (machine_states, worker_zones, tasks, beacon_lag)
 * @param {string[]} machineIds machines of the site, in display order
 * @param {string[]} workerIds workers of the site, in display order
 */
export function buildLanes(result, machineIds, workerIds) {
  const states = groupSorted(result.machine_states ?? [], 'machine');
  const tasks = groupSorted(result.tasks ?? [], 'machine');
  const zones = groupSorted(result.worker_zones ?? [], 'worker');
  const lag = groupSorted(result.beacon_lag ?? [], 'worker');
  const workerTasks = groupSorted((result.tasks ?? []).filter((t) => t.worker != null), 'worker');
  return {
    start: result.window.start,
    end: result.window.end,
    machines: machineIds.map((id) => ({ id, states: states[id] ?? [], tasks: tasks[id] ?? [] })),
    workers: workerIds.map((id) => ({
      id, zones: zones[id] ?? [], tasks: workerTasks[id] ?? [], lag: lag[id] ?? [],
    })),
    changeovers: changeoverStarts(result.tasks ?? []),
  };
}

/** State of one machine lane at `t`: running/stopped/unknown, the task under way and its worker. */
export function machineStatusAt(lane, t) {
  const st = intervalAt(lane.states, t);
  const task = intervalAt(lane.tasks, t);
  return {
    state: st ? st.state : 'unknown',
    task: task ? task.task : null,
    worker: task ? task.worker ?? null : null,
    taskStart: task ? task.start : null,
    taskEnd: task ? task.end : null,
  };
}

/**
 * Start times of changeovers: a changeover is a run of tasks on one machine with gaps shorter
 * than `mergeGapS` (a jig change followed by a tool change is one changeover, not two jumps).
 */
export function changeoverStarts(tasks, mergeGapS = 120) {
  const byMachine = groupSorted(tasks, 'machine');
  const starts = [];
  for (const list of Object.values(byMachine)) {
    let lastEnd = -Infinity;
    for (const t of list) {
      if (t.start - lastEnd > mergeGapS) starts.push(t.start);
      lastEnd = Math.max(lastEnd, t.end);
    }
  }
  starts.sort((a, b) => a - b);
  // Changeovers starting within 2 s of each other on different machines are one stop for the
  // jump buttons (next/prev use 0.5 s and 1.5 s margins, so closer starts would be skipped one
  // way and not the other).
  return starts.filter((s, i) => i === 0 || s - starts[i - 1] >= 2);
}

/** First changeover start strictly after `t` (+0.5 s so a jump from a start moves on), or null. */
export function nextChangeover(starts, t) {
  for (const s of starts) if (s > t + 0.5) return s;
  return null;
}

/** Last changeover start strictly before `t` (-1.5 s so repeated presses keep going back), or null. */
export function prevChangeover(starts, t) {
  let best = null;
  for (const s of starts) {
    if (s < t - 1.5) best = s;
    else break;
  }
  return best;
}

/**
 * Every moment something visibly changes: a machine state or task starts or ends, a worker
 * enters or leaves a zone. Sorted, unique. "Skip idle" jumps over the gaps between them.
 */
export function eventTimes(lanes) {
  const out = [];
  const add = (rows) => { for (const r of rows) out.push(r.start, r.end); };
  for (const m of lanes.machines) { add(m.states); add(m.tasks); }
  for (const w of lanes.workers) { add(w.zones); add(w.tasks); }
  out.sort((a, b) => a - b);
  return out.filter((t, i) => (i === 0 || t !== out[i - 1]) && t > lanes.start && t < lanes.end);
}

/**
 * Where "skip idle" jumps from `t`: to a little before the next event when the stretch ahead
 * has no event and is worth skipping, else null. Times in replay seconds; the lead (what is
 * still shown before the event) and the minimum skip are in seconds of wall time at `speed`,
 * so the viewer always sees the approach (a worker starting to walk) at any speed.
 *
 * @param {number[]} events sorted event times (eventTimes)
 * @param {number} t current replay time
 * @param {number} speed replay seconds per wall second
 * @param {number} end end of the replay window (jump there when nothing follows)
 */
export function skipIdleTarget(events, t, speed, end, { leadWallS = 1, minSkipWallS = 1, minLeadS = 12 } = {}) {
  let lo = 0;
  let hi = events.length;
  while (lo < hi) {  // first event > t
    const mid = (lo + hi) >> 1;
    if (events[mid] <= t) lo = mid + 1; else hi = mid;
  }
  const next = lo < events.length ? events[lo] : end;
  const target = next - Math.max(minLeadS, leadWallS * speed);
  return target - t > minSkipWallS * speed ? target : null;
}

/** Clamp `t` into [start, end]. */
export function clamp(t, start, end) {
  return Math.min(Math.max(t, start), end);
}

/** `HH:MM:SS` of epoch seconds in an IANA time zone (the site's wall clock). */
export function formatClock(tS, timeZone = 'UTC') {
  const f = new Intl.DateTimeFormat('en-GB', {
    timeZone, hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false,
  });
  return f.format(new Date(tS * 1000));
}

/** `YYYY-MM-DD` of epoch seconds in an IANA time zone. */
export function formatDay(tS, timeZone = 'UTC') {
  const f = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' });
  return f.format(new Date(tS * 1000));
}

/** Minutes as `1 h 05 min` / `12.5 min` for panels. */
export function formatMinutes(min) {
  const sign = min < 0 ? '-' : '';
  const m = Math.abs(min);
  if (m >= 60) return `${sign}${Math.floor(m / 60)} h ${String(Math.round(m % 60)).padStart(2, '0')} min`;
  return `${sign}${m.toFixed(1)} min`;
}

/** Wall time of a local `HH:MM` on the day that contains epoch `dayRefS`, as epoch seconds. */
export function localTimeOnDay(dayRefS, hhmm, timeZone = 'UTC') {
  const [h, m] = hhmm.split(':').map(Number);
  // Offset of the zone at that day: format the instant in the zone and read the difference.
  const ref = new Date(dayRefS * 1000);
  const parts = Object.fromEntries(new Intl.DateTimeFormat('en-US', {
    timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', second: '2-digit',
  }).formatToParts(ref).map((p) => [p.type, p.value]));
  const asUtc = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute, +parts.second);
  const offsetS = (asUtc - ref.getTime()) / 1000;
  const dayStartUtc = Date.UTC(+parts.year, +parts.month - 1, +parts.day) / 1000;
  return dayStartUtc + h * 3600 + m * 60 - offsetS;
}
