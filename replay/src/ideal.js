// The "ideal day": start from a recorded shift, move or shorten changeover tasks, and see how
// many machine minutes that gains. Pure functions; the editor UI only collects `edits`.
//
// Model (documented in docs/viewer.md):
// - Each machine's day is a fixed "lead" (running before its first task) followed by blocks:
//   one task plus the running that follows it until the next task (the job it set up).
// - A block keeps its running pattern relative to the task end: shorten a task and the run
//   after it starts that much earlier.
// - Later blocks ripple: the idle gap in front of each block is kept, so the rest of the day
//   happens the same way, earlier or later. A block never starts before the previous one ends.
// - A moved task (its start differs from the recording) never lies inside a break: people do
//   the changeover, the machine may run through the break.
// - Minutes gained per machine = recorded end of its last job - ideal end of its last job: the
//   same work done that much earlier, i.e. machine time freed for more work in the shift.
// - One worker is never at two machines at once: machines are laid out together, earliest
//   block first, and a task waits until its worker's previous task ends.
// - Every machine says why: the edits, each wait they caused (a break, a busy worker) and the
//   change of running during breaks, each with its minutes (`reasons`).

const MIN_TASK_S = 10;

/** Stable id of a machine's i-th task (tasks sorted by start). */
export function taskId(machine, index) {
  return `${machine}#${index}`;
}

function clipRuns(states, from, to) {
  const out = [];
  for (const s of states) {
    if (s.state !== 'running' || s.end <= from || s.start >= to) continue;
    out.push({ start: Math.max(s.start, from), end: Math.min(s.end, to) });
  }
  return out;
}

/** Push `start` past any break that the interval [start, start+dur) would overlap. */
export function avoidBreaks(start, durS, breaks) {
  let s = start;
  for (let guard = 0; guard < 100; guard += 1) {
    const hit = breaks.find((b) => s < b.end && s + durS > b.start);
    if (!hit) return s;
    s = hit.end;
  }
  return s;
}

function overlapS(intervals, breaks) {
  let total = 0;
  for (const iv of intervals) {
    for (const b of breaks) total += Math.max(0, Math.min(iv.end, b.end) - Math.max(iv.start, b.start));
  }
  return total;
}

/** One machine's recorded day as a lead (running before its first task) and blocks. */
function planMachine(lane, window) {
  const tasks = lane.tasks;
  const states = lane.states;
  const firstTaskStart = tasks.length ? tasks[0].start : window.end;
  const lead = clipRuns(states, window.start, firstTaskStart);
  let realCursor = lead.length ? lead[lead.length - 1].end : window.start;
  const blocks = tasks.map((task, i) => {
    const next = i + 1 < tasks.length ? tasks[i + 1].start : window.end;
    const runs = clipRuns(states, task.end, next).map((r) => ({ from: r.start - task.end, to: r.end - task.end }));
    const realEnd = runs.length ? task.end + runs[runs.length - 1].to : task.end;
    const gapBeforeS = Math.max(0, task.start - realCursor);
    realCursor = realEnd;
    return { task, runs, realEnd, gapBeforeS };
  });
  const realEndS = blocks.length ? blocks[blocks.length - 1].realEnd : realCursor;
  return { lane, lead, blocks, realEndS, leadEnd: lead.length ? lead[lead.length - 1].end : window.start };
}

const overlaps = (a0, a1, b0, b1) => a0 < b1 && b0 < a1;

/**
 * Lay out the ideal day of several machines together, so that one worker is never at two
 * machines at once: machines' next blocks are placed earliest first, and a task whose worker
 * is busy with an already placed task waits until that one ends. (Two tasks that already
 * overlapped in the recording, i.e. an analysis that put one worker on both, are left as
 * recorded.) Each wait and each edit is kept as a reason.
 */
function schedule(plans, breaks, edits) {
  const out = plans.map((p) => ({ plan: p, cursor: p.leadEnd, next: 0, tasks: [], runs: [...p.lead], reasons: [] }));
  const placedBy = {};  // worker -> placed tasks {start, end, recStart, recEnd, machine}
  const wantedOf = (o) => {
    const b = o.plan.blocks[o.next];
    const edit = edits[taskId(o.plan.lane.id, o.next)] ?? {};
    const wanted = Number.isFinite(edit.start) ? edit.start : o.cursor + b.gapBeforeS;
    return Math.max(wanted, o.cursor, o.notBefore ?? -Infinity);
  };
  // A task away from its recorded time yields to another machine's task its worker still has
  // to do at the recorded time (that one has not moved): it waits rather than delay the other.
  const yieldTo = (o, b, start, durS) => {
    const w = b.task.worker;
    for (const other of out) {
      if (other === o) continue;
      for (let j = other.next; j < other.plan.blocks.length; j += 1) {
        const q = other.plan.blocks[j].task;
        if (q.worker !== w || q.end <= start) continue;
        if (overlaps(start, start + durS, q.start, q.end) && !overlaps(b.task.start, b.task.end, q.start, q.end)) {
          return { q, machine: other.plan.lane.id };
        }
      }
    }
    return null;
  };
  for (;;) {
    let pick = null;
    let pickStart = Infinity;
    for (const o of out) {
      if (o.next >= o.plan.blocks.length) continue;
      const s = wantedOf(o);
      if (s < pickStart) { pick = o; pickStart = s; }
    }
    if (!pick) break;
    const i = pick.next;
    const b = pick.plan.blocks[i];
    const id = taskId(pick.plan.lane.id, i);
    const edit = edits[id] ?? {};
    const recordedDur = b.task.end - b.task.start;
    const durS = Math.max(MIN_TASK_S, Number.isFinite(edit.durationS) ? edit.durationS : recordedDur);
    const base = { id, task: b.task.task, machine: b.task.machine ?? pick.plan.lane.id, recordedStart: b.task.start };
    // This block's reasons: its edits, then each wait (kept across a deferral below).
    const reasons = pick.waits ?? [];
    if (!pick.waits) {
      if (Number.isFinite(edit.durationS) && Math.abs(durS - recordedDur) > 1e-6) {
        reasons.push({ ...base, kind: durS < recordedDur ? 'shorter' : 'longer', deltaS: durS - recordedDur });
      }
      if (Number.isFinite(edit.start) && Math.abs(edit.start - b.task.start) > 1e-6) {
        reasons.push({ ...base, kind: 'moved', from: b.task.start, to: edit.start });
      }
    }
    let start = pickStart;
    const worker = b.task.worker ?? null;
    const mine = worker == null ? [] : (placedBy[worker] ??= []);
    if (worker != null && Math.abs(start - b.task.start) > 1e-6) {
      const y = yieldTo(pick, b, start, durS);
      if (y) {
        reasons.push({ ...base, kind: 'worker', waitS: y.q.end - start, to: y.q.end, worker,
          busyMachine: y.machine, busyTask: y.q.task });
        pick.waits = reasons;
        pick.notBefore = y.q.end;
        continue;  // the other machine's task goes first
      }
    }
    for (let guard = 0; guard < 200; guard += 1) {
      let moved = false;
      if (Math.abs(start - b.task.start) > 1e-6) {
        // (A break the recorded task already lay in does not count: it was done then.)
        const hit = breaks.find((br) => start < br.end && start + durS > br.start
          && !(b.task.start < br.end && b.task.end > br.start));
        if (hit) {
          reasons.push({ ...base, kind: 'break', waitS: hit.end - start, from: hit.start, to: hit.end,
            breakName: hit.name ?? 'break', breakNameJa: hit.name_ja ?? hit.name ?? 'break' });
          start = hit.end;
          moved = true;
        }
      }
      const busy = mine.find((p) => overlaps(start, start + durS, p.start, p.end)
        && !overlaps(b.task.start, b.task.end, p.recStart, p.recEnd));
      if (busy) {
        reasons.push({ ...base, kind: 'worker', waitS: busy.end - start, to: busy.end, worker,
          busyMachine: busy.machine, busyTask: busy.task });
        start = busy.end;
        moved = true;
      }
      if (!moved) break;
    }
    const end = start + durS;
    pick.tasks.push({ ...b.task, start, end, id, shiftS: start - b.task.start, recordedDurationS: recordedDur });
    if (worker != null) {
      mine.push({ start, end, recStart: b.task.start, recEnd: b.task.end, machine: base.machine, task: b.task.task });
    }
    for (const r of b.runs) pick.runs.push({ start: end + r.from, end: end + r.to });
    pick.cursor = b.runs.length ? end + b.runs[b.runs.length - 1].to : end;
    pick.next += 1;
    pick.notBefore = null;
    pick.waits = null;
    pick.reasons.push(...reasons);
  }
  return out;
}

function finish(o, window, breaks) {
  const { lane, blocks, realEndS } = o.plan;
  const idealEndS = blocks.length ? o.cursor : realEndS;
  const horizon = Math.max(window.end, idealEndS);
  const breakRunRealMin = overlapS(clipRuns(lane.states, window.start, window.end), breaks) / 60;
  const breakRunIdealMin = overlapS(o.runs, breaks) / 60;
  const reasons = [...o.reasons];
  if (Math.abs(breakRunIdealMin - breakRunRealMin) > 0.05) {
    reasons.push({ kind: 'breakRun', fromMin: breakRunRealMin, toMin: breakRunIdealMin,
      deltaMin: breakRunIdealMin - breakRunRealMin });
  }
  return {
    id: lane.id,
    tasks: o.tasks,
    states: runsToStates(lane.id, o.runs, window.start, horizon),
    realEndS,
    idealEndS,
    gainedMin: (realEndS - idealEndS) / 60,
    breakRunRealMin,
    breakRunIdealMin,
    reasons,
  };
}

/**
 * Lay out one machine's ideal day (alone: no other machine competes for its workers).
 *
 * @param {{id:string,states:object[],tasks:object[]}} lane recorded lane (sorted by start)
 * @param {{start:number,end:number}} window recorded window, epoch s
 * @param {{start:number,end:number}[]} breaks breaks as epoch intervals
 * @param {Object<string,{start?:number,durationS?:number}>} edits by taskId
 */
export function idealMachineDay(lane, window, breaks, edits = {}) {
  const [o] = schedule([planMachine(lane, window)], breaks, edits);
  return finish(o, window, breaks);
}

/** Running intervals -> a machine_states list covering [from, to) with stopped in between. */
export function runsToStates(machine, runs, from, to) {
  const sorted = runs.filter((r) => r.end > r.start).sort((a, b) => a.start - b.start);
  const out = [];
  let t = from;
  for (const r of sorted) {
    const s = Math.max(r.start, t);
    if (r.end <= s) continue;
    if (s > t) out.push({ machine, state: 'stopped', start: t, end: s });
    const last = out[out.length - 1];
    if (last && last.state === 'running' && last.end >= s) last.end = r.end;
    else out.push({ machine, state: 'running', start: s, end: r.end });
    t = r.end;
  }
  if (t < to) out.push({ machine, state: 'stopped', start: t, end: to });
  return out;
}

/**
 * Ideal day of every machine lane plus the total minutes gained. Machines are laid out
 * together so that no worker is at two machines at once; each machine carries `reasons`:
 * the edits (`shorter`, `longer`, `moved`), the waits they caused (`break`: a moved task
 * would lie in a break; `worker`: its worker is busy at another task) and the change of
 * running during breaks (`breakRun`), each with its minutes.
 */
export function idealDay(lanes, breaks, edits = {}) {
  const window = { start: lanes.start, end: lanes.end };
  const plans = lanes.machines.map((lane) => planMachine(lane, window));
  const machines = schedule(plans, breaks, edits).map((o) => finish(o, window, breaks));
  return { machines, totalGainedMin: machines.reduce((a, m) => a + m.gainedMin, 0) };
}

/** New edits with task `id` moved by `deltaS` (relative to its current ideal start). */
export function moveTask(edits, id, currentStartS, deltaS) {
  return { ...edits, [id]: { ...(edits[id] ?? {}), start: currentStartS + deltaS } };
}

/** New edits with task `id` lengthened (+) or shortened (-) by `deltaS`. */
export function resizeTask(edits, id, currentDurationS, deltaS) {
  return { ...edits, [id]: { ...(edits[id] ?? {}), durationS: Math.max(MIN_TASK_S, currentDurationS + deltaS) } };
}

/**
 * `base` intervals (sorted, non-overlapping) with `overlays` laid on top: where an overlay lies,
 * it replaces the base. Overlapping overlays are clipped so the result never overlaps.
 */
export function overlayIntervals(base, overlays) {
  const ov = [];
  let last = -Infinity;
  for (const o of [...overlays].sort((a, b) => a.start - b.start)) {
    const start = Math.max(o.start, last);
    if (o.end <= start) continue;
    ov.push({ ...o, start });
    last = o.end;
  }
  const out = [];
  for (const b of base) {
    let cur = b.start;
    for (const o of ov) {
      if (o.end <= cur || o.start >= b.end) continue;
      if (o.start > cur) out.push({ ...b, start: cur, end: o.start });
      cur = Math.max(cur, o.end);
    }
    if (cur < b.end) out.push({ ...b, start: cur, end: b.end });
  }
  return [...out, ...ov].sort((a, b) => a.start - b.start);
}

/**
 * Worker lanes of the ideal day: each ideal task is done by its recorded worker at its ideal
 * time, in the machine's zone; the rest of the time the worker is where they were recorded.
 *
 * @param {{id:string,zones:object[],tasks:object[],lag?:object[]}[]} workers recorded lanes
 * @param {{machines:{tasks:object[]}[]}} day result of `idealDay`
 */
export function idealWorkerLanes(workers, day) {
  const byWorker = {};
  for (const m of day.machines) {
    for (const task of m.tasks) if (task.worker != null) (byWorker[task.worker] ??= []).push(task);
  }
  return workers.map((w) => {
    const tasks = (byWorker[w.id] ?? []).sort((a, b) => a.start - b.start);
    const atMachine = tasks.map((x) => ({ worker: w.id, zone: x.machine, start: x.start, end: x.end }));
    const zones = overlayIntervals(w.zones, atMachine);
    // idealDay never gives one worker two tasks at once; tasks that already overlapped in the
    // recording are clipped like the zones so a time has one task.
    return { id: w.id, zones, tasks: overlayIntervals([], tasks), lag: w.lag ?? [] };
  });
}
