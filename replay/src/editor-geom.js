// Pure helpers of the site editor (no DOM): plan <-> floor coordinates, snapping, shapes,
// suggestions, and where a validator message belongs. Tested with `node --test`.
//
// Floor: metres, x right, y away from the door (up on the plan). Plan: image pixels, y down.
// Floor point (x, y) is at plan pixel (ox + x / mpp, oy - y / mpp).

/** The hardware guide's wiring of the standard kit (hardware/README.md, "Site-config entries"). */
export const KIT = [
  { id: 'light', kind: 'light', adc: 'mcp3008', adc_channel: 0 },
  { id: 'pressure', kind: 'pressure', adc: 'mcp3008', adc_channel: 1 },
  { id: 'sw-tool', kind: 'switch', channel: 'tool_change', gpio: 17 },
  { id: 'sw-program', kind: 'switch', channel: 'program_input', gpio: 27 },
  { id: 'sw-material', kind: 'switch', channel: 'material_setting', gpio: 22 },
];
export const TASK_ORDER = ['tool_change', 'program_input', 'material_setting'];
/** Marking colours offered (white paint, safety yellow, green, red, blue). */
export const PALETTE = ['#ffffff', '#f5d300', '#2e9d4a', '#d93025', '#1a73e8'];
export const GRID_M = 0.1;
export const RECEIVER_HEIGHT_M = 1.2;

/** Round to millimetres (no float noise such as 3.0000000004 in the file). */
export function mm(v) {
  return Math.round(v * 1000) / 1000;
}

/** Significant-digit rounding for a scale (metres per pixel). */
export function sig(v, digits = 9) {
  return Number(v.toPrecision(digits));
}

/** Plan-pixel <-> floor-metre mapping of a `plan:` entry ({m_per_px, origin_px}). */
export function planTransform(plan) {
  const mpp = plan.m_per_px;
  const [ox, oy] = plan.origin_px;
  return {
    mpp,
    toPx: (x, y) => [ox + x / mpp, oy - y / mpp],
    toFloor: (px, py) => [(px - ox) * mpp, (oy - py) * mpp],
  };
}

/**
 * Metres per pixel from two clicked plan points and the typed distance between them.
 * @throws {Error} with `code` 'distance' (not a number > 0) or 'points' (the same point twice)
 */
export function scaleFromClicks(a, b, distanceM) {
  const d = Number(String(distanceM).trim().replace(',', '.'));
  if (!Number.isFinite(d) || d <= 0) {
    const e = new Error('the distance must be a number greater than 0 m');
    e.code = 'distance';
    throw e;
  }
  const px = Math.hypot(b[0] - a[0], b[1] - a[1]);
  if (!(px >= 2)) {
    const e = new Error('tap two different points');
    e.code = 'points';
    throw e;
  }
  return sig(d / px);
}

/** Axis-aligned rectangle through two corners, counter-clockwise from the lower left. */
export function rectPoints(a, b) {
  const x0 = mm(Math.min(a[0], b[0]));
  const x1 = mm(Math.max(a[0], b[0]));
  const y0 = mm(Math.min(a[1], b[1]));
  const y1 = mm(Math.max(a[1], b[1]));
  return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]];
}

export function polygonArea(pts) {
  let s = 0;
  for (let i = 0; i < pts.length; i += 1) {
    const [x0, y0] = pts[i];
    const [x1, y1] = pts[(i + 1) % pts.length];
    s += x0 * y1 - x1 * y0;
  }
  return s / 2;
}

export function polygonCentroid(pts) {
  const a = polygonArea(pts);
  if (Math.abs(a) < 1e-9) {
    const n = pts.length || 1;
    return [pts.reduce((s, p) => s + p[0], 0) / n, pts.reduce((s, p) => s + p[1], 0) / n];
  }
  let cx = 0;
  let cy = 0;
  for (let i = 0; i < pts.length; i += 1) {
    const [x0, y0] = pts[i];
    const [x1, y1] = pts[(i + 1) % pts.length];
    const c = x0 * y1 - x1 * y0;
    cx += (x0 + x1) * c;
    cy += (y0 + y1) * c;
  }
  return [cx / (6 * a), cy / (6 * a)];
}

export function pointInPolygon(x, y, pts) {
  let inside = false;
  for (let i = 0, j = pts.length - 1; i < pts.length; j = i, i += 1) {
    const [xi, yi] = pts[i];
    const [xj, yj] = pts[j];
    if ((yi > y) !== (yj > y) && x < xj + ((y - yj) * (xi - xj)) / (yi - yj)) inside = !inside;
  }
  return inside;
}

/** The four floor corners of a machine body (counter-clockwise), as the server computes them. */
export function footprintCorners(centre, footprint, rotationDeg = 0) {
  const [w, d] = [footprint[0] / 2, footprint[1] / 2];
  const r = (rotationDeg * Math.PI) / 180;
  const c = Math.cos(r);
  const s = Math.sin(r);
  return [[-w, -d], [w, -d], [w, d], [-w, d]].map(([x, y]) => [centre[0] + x * c - y * s, centre[1] + x * s + y * c]);
}

/** The machine's front edge (two floor points): rotation 0 faces +y (the site file's rule). */
export function frontEdge(centre, footprint, rotationDeg = 0) {
  const c = footprintCorners(centre, footprint, rotationDeg);
  return [c[2], c[3]];
}

/** Rotation for a front side: up (+y) 0, left 90, down 180, right 270. */
export function frontRotation(side) {
  return { up: 0, left: 90, down: 180, right: 270 }[side] ?? 0;
}

/** Where a machine stands: its position, else the centroid of its zone (as the server does). */
export function machineCentre(m) {
  if (Array.isArray(m.position)) return m.position;
  if (Array.isArray(m.zone) && m.zone.length >= 3) return polygonCentroid(m.zone);
  return null;
}

/**
 * Straight horizontal and vertical dark lines of a plan image (walls, machine outlines, painted
 * lines drawn on it), for snapping. `data` is RGBA (ImageData.data) of a w x h image.
 * @returns {{h: Array<{y:number,x0:number,x1:number}>, v: Array<{x:number,y0:number,y1:number}>}}
 */
export function detectLines(data, w, h, { dark = 110, minRun = 0 } = {}) {
  const run = minRun || Math.max(12, Math.round(Math.min(w, h) * 0.03));
  const isDark = (x, y) => {
    const i = (y * w + x) * 4;
    if (data[i + 3] < 128) return false;
    return 0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2] < dark;
  };
  const rows = [];
  for (let y = 0; y < h; y += 1) {
    let start = -1;
    for (let x = 0; x <= w; x += 1) {
      const d = x < w && isDark(x, y);
      if (d && start < 0) start = x;
      if (!d && start >= 0) {
        if (x - start >= run) rows.push({ y, x0: start, x1: x - 1 });
        start = -1;
      }
    }
  }
  const cols = [];
  for (let x = 0; x < w; x += 1) {
    let start = -1;
    for (let y = 0; y <= h; y += 1) {
      const d = y < h && isDark(x, y);
      if (d && start < 0) start = y;
      if (!d && start >= 0) {
        if (y - start >= run) cols.push({ x, y0: start, y1: y - 1 });
        start = -1;
      }
    }
  }
  // A line a few pixels thick is one line at its centre.
  const merge = (segs, pos, lo, hi) => {
    const out = [];
    segs.sort((a, b) => a[pos] - b[pos] || a[lo] - b[lo]);
    for (const s of segs) {
      const prev = out.find((o) => s[pos] - o.last <= 1 && s[lo] <= o[hi] && s[hi] >= o[lo]);
      if (prev) {
        prev.sum += s[pos];
        prev.n += 1;
        prev.last = s[pos];
        prev[lo] = Math.min(prev[lo], s[lo]);
        prev[hi] = Math.max(prev[hi], s[hi]);
      } else {
        out.push({ ...s, sum: s[pos], n: 1, last: s[pos] });
      }
    }
    return out.map((o) => ({ [pos]: o.sum / o.n, [lo]: o[lo], [hi]: o[hi] }));
  };
  return { h: merge(rows, 'y', 'x0', 'x1'), v: merge(cols, 'x', 'y0', 'y1') };
}

/**
 * Snap a plan point: to a shape vertex within `tolPx`, else each axis to a plan line within
 * `tolPx` (a corner where two meet), else nothing (the caller rounds to the grid).
 * @returns {{p:number[], x:boolean, y:boolean, vertex:boolean}}
 */
export function snapPlanPoint(p, { lines = null, vertices = [], tolPx = 8, margin = 4 } = {}) {
  let best = null;
  for (const v of vertices) {
    const d = Math.hypot(v[0] - p[0], v[1] - p[1]);
    if (d <= tolPx && (!best || d < best.d)) best = { d, v };
  }
  if (best) return { p: [best.v[0], best.v[1]], x: true, y: true, vertex: true };
  let [x, y] = p;
  let sx = false;
  let sy = false;
  if (lines) {
    let dx = tolPx + 1;
    for (const l of lines.v) {
      if (p[1] >= l.y0 - margin - tolPx && p[1] <= l.y1 + margin + tolPx && Math.abs(l.x - p[0]) < dx) {
        dx = Math.abs(l.x - p[0]);
        x = l.x;
        sx = true;
      }
    }
    let dy = tolPx + 1;
    for (const l of lines.h) {
      if (p[0] >= l.x0 - margin - tolPx && p[0] <= l.x1 + margin + tolPx && Math.abs(l.y - p[1]) < dy) {
        dy = Math.abs(l.y - p[1]);
        y = l.y;
        sy = true;
      }
    }
  }
  return { p: [x, y], x: sx, y: sy, vertex: false };
}

/** Round a floor coordinate to the grid (and to millimetres). */
export function toGrid(v, step = GRID_M) {
  return mm(Math.round(v / step) * step);
}

/** The first free id `PREFIX1`, `PREFIX2`, ... */
export function nextId(prefix, used) {
  const taken = new Set(used);
  for (let n = 1; ; n += 1) if (!taken.has(`${prefix}${n}`)) return `${prefix}${n}`;
}

function digits(id) {
  const m = /(\d+)(?!.*\d)/.exec(id ?? '');
  return m ? m[1] : null;
}

/**
 * A name for a new item in a series, from the previous item's: its number swapped for the new
 * id's ("NC lathe No. 3" of M3 -> "NC lathe No. 7" for M7), or its last letter moved on
 * ("Operator A" of W1 -> "Operator B" for W2). '' when no rule fits.
 */
export function seriesName(prevName, prevId, newId) {
  if (!prevName) return '';
  const a = digits(prevId);
  const b = digits(newId);
  if (a && b) {
    const re = new RegExp(`(?<!\\d)${a}(?!\\d)`);
    if (re.test(prevName)) return prevName.replace(re, b);
    const m = /^(.*[^A-Za-z])([A-Z])$/.exec(prevName);
    const step = Number(b) - Number(a);
    if (m && step > 0 && m[2].charCodeAt(0) + step <= 90) return m[1] + String.fromCharCode(m[2].charCodeAt(0) + step);
  }
  return '';
}

/**
 * The shape a validator path is about: `machines[2].zone` -> {kind:'zone', index:2}.
 * @returns {{kind:string, index:number}|null}
 */
export function problemTarget(path, doc = null) {
  let m = /^machines\[(\d+)\](?:\.(\w+))?/.exec(path);
  if (m) return { kind: m[2] === 'zone' ? 'zone' : 'machine', index: Number(m[1]) };
  m = /^receivers\[(\d+)\]/.exec(path);
  if (m) return { kind: 'receiver', index: Number(m[1]) };
  m = /^floor_markings\[(\d+)\]/.exec(path);
  if (m) return { kind: 'marking', index: Number(m[1]) };
  m = /^survey\.blocked\[(\d+)\]/.exec(path);
  if (m) return { kind: 'wall', index: Number(m[1]) };
  if (path === 'plan' || path.startsWith('plan.')) return { kind: 'plan', index: 0 };
  return null;
}

/** For "machines: duplicate id 'M3'": the later item holding that id. */
export function duplicateTarget(path, message, doc) {
  const m = /duplicate id '([^']+)'/.exec(message);
  const list = { machines: 'machine', receivers: 'receiver' }[path];
  if (!m || !list || !doc) return null;
  const items = doc[path] ?? [];
  const idx = items.map((it) => it.id).lastIndexOf(m[1]);
  return idx > 0 ? { kind: list, index: idx } : null;
}

/**
 * Sensors for a machine from what its Pi sent (ids, kinds, switch tasks), wired as the
 * hardware guide's kit where the ids match; the kit itself when the Pi sent nothing.
 */
export function sensorsFromDevice(device) {
  const seen = device?.sensors ?? [];
  if (!seen.length) return KIT.map((s) => ({ ...s }));
  const kit = new Map(KIT.map((s) => [s.id, s]));
  const rank = (s) => (s.kind === 'light' ? 0 : s.kind === 'pressure' ? 1 : 2 + Math.max(0, TASK_ORDER.indexOf(s.channel)));
  return [...seen].sort((a, b) => rank(a) - rank(b) || a.id.localeCompare(b.id)).map((s) => {
    const k = kit.get(s.id);
    if (k && k.kind === s.kind && (s.kind !== 'switch' || k.channel === s.channel)) return { ...k };
    return s.kind === 'switch' ? { id: s.id, kind: 'switch', channel: s.channel } : { id: s.id, kind: s.kind };
  });
}

/** Clamp a view zoom. */
export function clampZoom(k) {
  return Math.min(40, Math.max(0.02, k));
}
