// A worker's own numbers: each task against their own median and best, and minutes saved
// against their earlier days. Pure; the server only ever sends one worker's tasks.

/** Median of a non-empty numeric array. */
export function median(values) {
  const v = [...values].sort((a, b) => a - b);
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/**
 * @param {{day:string,tasks:{task:string,start:number,end:number,machine:string}[]}[]} days
 *   the worker's days, any order
 * @returns {{byTask:Object<string,{medianS:number,bestS:number,count:number}>, days:object[]}}
 *   `byTask` over all days; per day each task's duration against that median/best, and
 *   `savedMin`: sum over the day's tasks of (median of that task on earlier days - duration);
 *   null on a day with no earlier day to compare with.
 */
export function workerStats(days) {
  const ordered = [...days].sort((a, b) => (a.day < b.day ? -1 : a.day > b.day ? 1 : 0));
  const all = {};
  for (const d of ordered) for (const t of d.tasks) (all[t.task] ??= []).push(t.end - t.start);
  const byTask = {};
  for (const [task, durs] of Object.entries(all)) {
    byTask[task] = { medianS: median(durs), bestS: Math.min(...durs), count: durs.length };
  }
  const earlier = {};
  const outDays = ordered.map((d) => {
    let savedS = 0;
    let compared = 0;
    const tasks = [...d.tasks].sort((a, b) => a.start - b.start).map((t) => {
      const durationS = t.end - t.start;
      const s = byTask[t.task];
      const prev = earlier[t.task];
      if (prev && prev.length) {
        savedS += median(prev) - durationS;
        compared += 1;
      }
      return { ...t, durationS, medianS: s.medianS, bestS: s.bestS, vsMedianS: durationS - s.medianS,
        isBest: durationS === s.bestS };
    });
    for (const t of d.tasks) (earlier[t.task] ??= []).push(t.end - t.start);
    return {
      day: d.day,
      tasks,
      totalMin: tasks.reduce((a, t) => a + t.durationS, 0) / 60,
      savedMin: compared ? savedS / 60 : null,
    };
  });
  return { byTask, days: outDays };
}
