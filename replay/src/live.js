// Understanding the server's /ws/live frames (twin_server/api/routes.py). Pure.
//
// Frames: {type:"snapshot", analysis:{day, window:[s,e], ...}}, {type:"readings",
// readings:[{t,...}]}, {type:"analysis", day, window:[s,e], machine_states, worker_zones}.
// A frame holding a whole contract result (window {start,end}) is taken as the new shift data.

/**
 * @returns {{edge:number|null, day:string|null, result:object|null}} the live edge (latest
 *   epoch s seen), the shift day whose analysis changed, and a full result if one came along.
 */
export function parseLiveMessage(msg) {
  const out = { edge: null, day: null, result: null };
  if (!msg || typeof msg !== 'object') return out;
  const bump = (v) => {
    const n = Number(v);
    if (Number.isFinite(n) && (out.edge === null || n > out.edge)) out.edge = n;
  };
  if (Array.isArray(msg.readings)) for (const r of msg.readings) bump(r?.t);
  const doc = msg.result ?? msg;
  if (doc.window && typeof doc.window === 'object' && !Array.isArray(doc.window)
      && Array.isArray(doc.machine_states)) {
    out.result = doc;
    bump(doc.window.end);
  }
  const an = msg.type === 'analysis' ? msg : msg.analysis;
  if (an && typeof an === 'object') {
    if (Array.isArray(an.window)) bump(an.window[1]);
    if (typeof an.day === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(an.day)) out.day = an.day;
  }
  bump(msg.t);
  return out;
}

/**
 * The pace of the live data: replay seconds per wall second over the recent edge samples
 * (a demo replays a shift at 60x; a real shift comes at 1x). 1 until there is enough to tell.
 *
 * @param {{wallMs:number, edge:number}[]} samples oldest first
 */
export function liveRate(samples, minSpanMs = 1500) {
  if (samples.length < 2) return 1;
  const a = samples[0];
  const b = samples[samples.length - 1];
  const wallS = (b.wallMs - a.wallMs) / 1000;
  if (wallS * 1000 < minSpanMs || !(b.edge > a.edge)) return 1;
  return Math.min(Math.max((b.edge - a.edge) / wallS, 0.5), 3600);
}

/**
 * Whether the live shift is over: the server no longer records it, or no new data came for
 * `stallMs` (a stopped demo, a site gone home). Live then stays at the end and says so.
 */
export function liveEnded({ recording, lastEdgeWallMs, nowMs, stallMs = 30000 }) {
  if (recording === false) return true;
  return lastEdgeWallMs != null && nowMs - lastEdgeWallMs > stallMs;
}
