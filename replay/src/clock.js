// The replay clock: replay time as a pure function of a wall clock reading, so it never drifts
// with frame rate and a slow frame on a loaded tablet does not slow the replay down.

// Up to 600x: an 8-hour shift in 48 s (the morning meeting's fast-forward).
export const SPEEDS = [1, 5, 10, 30, 60, 120, 300, 600];

export class ReplayClock {
  /**
   * @param {{start:number,end:number,t?:number,speed?:number}} opts replay window in epoch s
   */
  constructor({ start, end, t = start, speed = 1 }) {
    if (!(end >= start)) throw new RangeError(`clock window end ${end} is before start ${start}`);
    this.start = start;
    this.end = end;
    this.speed = SPEEDS.includes(speed) ? speed : 1;
    this.playing = false;
    this._anchorT = Math.min(Math.max(t, start), end);
    this._anchorWallMs = 0;
  }

  /** Replay time (epoch s) at wall time `nowMs` (performance.now() milliseconds). */
  time(nowMs) {
    if (!this.playing) return this._anchorT;
    const t = this._anchorT + ((nowMs - this._anchorWallMs) / 1000) * this.speed;
    return Math.min(t, this.end);
  }

  /** True once a playing clock has reached the end of the window (then it pauses itself). */
  tick(nowMs) {
    if (this.playing && this.time(nowMs) >= this.end) {
      this._anchorT = this.end;
      this.playing = false;
      return true;
    }
    return false;
  }

  play(nowMs) {
    if (this.playing) return;
    if (this._anchorT >= this.end) this._anchorT = this.start;  // replay again from the top
    this._anchorWallMs = nowMs;
    this.playing = true;
  }

  pause(nowMs) {
    this._anchorT = this.time(nowMs);
    this.playing = false;
  }

  toggle(nowMs) {
    if (this.playing) this.pause(nowMs);
    else this.play(nowMs);
  }

  seek(t, nowMs) {
    this._anchorT = Math.min(Math.max(t, this.start), this.end);
    this._anchorWallMs = nowMs;
  }

  setSpeed(speed, nowMs, { free = false } = {}) {
    // `free`: any positive rate (live mode follows the data's own pace, e.g. a demo at 60x).
    const ok = free ? Number.isFinite(speed) && speed > 0 : SPEEDS.includes(speed);
    if (!ok) throw new RangeError(`speed ${speed} is not one of ${SPEEDS.join(', ')}`);
    // Re-anchor so the change applies from now on and the replay time does not jump.
    this._anchorT = this.time(nowMs);
    this._anchorWallMs = nowMs;
    this.speed = speed;
  }

  /** Grow the window (live mode: the current shift keeps getting longer). */
  extendTo(end, nowMs) {
    if (end <= this.end) return;
    const t = this.time(nowMs);
    this.end = end;
    this._anchorT = t;
    this._anchorWallMs = nowMs;
  }
}
