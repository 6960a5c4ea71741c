// Where a worker figure stands and which way it faces at a replay time. Pure.
//
// Zone intervals are in true time (lag-corrected): entering a zone at `start` means the
// worker arrived then, so the walk from the previous spot happens just before `start`.

import { indexAt, intervalAt } from './timeline.js';

export const WALK_SPEED_M_S = 1.2;

function centroid(poly) {
  let x = 0;
  let y = 0;
  for (const p of poly) { x += p[0]; y += p[1]; }
  return [x / poly.length, y / poly.length];
}

/**
 * Standing spots per worker: in each machine zone (spread sideways so two workers at one
 * machine do not overlap) and an "elsewhere" spot for zone `none`, in the aisle.
 *
 * @param {{id:string,zone:number[][],position?:number[]}[]} machines site machines
 * @param {string[]} workerIds
 * @returns {Object<string,Object<string,number[]>>} spots[worker][zone] = [x, y]
 */
export function standingSpots(machines, workerIds) {
  const spots = {};
  const n = workerIds.length;
  let minY = Infinity;
  let sumX = 0;
  for (const m of machines) {
    for (const p of m.zone) minY = Math.min(minY, p[1]);
    sumX += centroid(m.zone)[0];
  }
  workerIds.forEach((w, k) => {
    const dx = (k - (n - 1) / 2) * 0.8;
    spots[w] = {};
    for (const m of machines) {
      const [cx, cy] = centroid(m.zone);
      spots[w][m.id] = [cx + dx, cy];
    }
    // Away spots far enough apart that the name tags of two absent workers do not overlap.
    spots[w].none = [sumX / Math.max(1, machines.length) + (k - (n - 1) / 2) * 2.5, minY - 1.0];
  });
  return spots;
}

function lerp(a, b, f) {
  return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f];
}

/**
 * Pose of one worker at `t`.
 *
 * @param {{zone:string,start:number,end:number}[]} zones the worker's zone lane (sorted)
 * @param {{task:string,machine:string,start:number,end:number}[]} tasks tasks of that worker
 * @param {Object<string,number[]>} spots the worker's spots by zone id
 * @param {Object<string,number[]>} machineCentres machine id -> [x, y]
 * @returns {{x:number,y:number,heading:number,walking:boolean,zone:string,task:string|null}}
 *   heading is the facing direction in floor coordinates, radians from +x towards +y.
 */
export function workerPose(zones, tasks, spots, machineCentres, t) {
  const i = indexAt(zones, t);
  const fallback = spots.none ?? [0, 0];
  if (i < 0) {
    // Before the first or after the last interval: stand at the nearest known spot.
    const iv = zones.length && t >= zones[zones.length - 1].end ? zones[zones.length - 1] : zones[0];
    const p = iv ? spots[iv.zone] ?? fallback : fallback;
    return { x: p[0], y: p[1], heading: Math.PI / 2, walking: false, zone: iv ? iv.zone : 'none', task: null };
  }
  const cur = zones[i];
  const here = spots[cur.zone] ?? fallback;
  const next = zones[i + 1];
  if (next && next.start === cur.end) {
    const there = spots[next.zone] ?? fallback;
    const dist = Math.hypot(there[0] - here[0], there[1] - here[1]);
    // The walk ends on arrival; never let it take more than half the stay it starts from.
    const walkS = Math.min(dist / WALK_SPEED_M_S, (cur.end - cur.start) / 2);
    if (walkS > 0 && t >= next.start - walkS) {
      const f = (t - (next.start - walkS)) / walkS;
      const [x, y] = lerp(here, there, f);
      return { x, y, heading: Math.atan2(there[1] - here[1], there[0] - here[0]), walking: true,
        zone: cur.zone, task: null };
    }
  }
  const task = intervalAt(tasks, t);
  const centre = machineCentres[cur.zone];
  let heading = -Math.PI / 2;  // idle: face the aisle (towards -y)
  if (task && task.machine === cur.zone && centre) {
    heading = Math.atan2(centre[1] - here[1], centre[0] - here[0]);  // face the machine
  }
  return { x: here[0], y: here[1], heading, walking: false, zone: cur.zone,
    task: task && task.machine === cur.zone ? task.task : null };
}
