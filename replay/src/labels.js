// Placing the scene's name tags so that none covers another (or the camera buttons): each tag
// keeps its anchor's x and moves up or down by whole tag heights until it is free, and stays
// inside the view. Pure; the scene measures the tags and applies the offsets.

const overlap = (a, b) => a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;

/**
 * @param {{x:number,y:number,w:number,h:number}[]} items tag centres and sizes (px), most
 *   important first (machines before workers)
 * @param {{x0:number,y0:number,x1:number,y1:number}} bounds the view
 * @param {{x0:number,y0:number,x1:number,y1:number}[]} obstacles areas to keep clear
 * @param {number} gap px between tags
 * @returns {{dx:number,dy:number,box:object,clear:boolean}[]} offset of each tag from its anchor
 */
export function placeLabels(items, bounds, obstacles = [], gap = 3) {
  const placed = [...obstacles];
  return items.map((it) => {
    const boxAt = (dy, dx = 0) => {
      let x0 = it.x - it.w / 2 + dx;
      x0 = Math.min(Math.max(x0, bounds.x0 + 2), bounds.x1 - 2 - it.w);
      const y0 = it.y - it.h / 2 + dy;
      return { x0, y0, x1: x0 + it.w, y1: y0 + it.h, dx: x0 - (it.x - it.w / 2), dy };
    };
    let choice = null;
    // Nearest free place first: up or down by whole tag heights, then also sideways.
    const shifts = [0, -0.6, 0.6, -1.2, 1.2].map((f) => f * (it.w + gap));
    for (let k = 0; k <= 12 && !choice; k += 1) {
      for (const dx of shifts) {
        for (const sign of k === 0 ? [0] : [-1, 1]) {
          const box = boxAt(sign * k * (it.h + gap), dx);
          if (box.y0 < bounds.y0 + 1 || box.y1 > bounds.y1 - 1) continue;
          if (!placed.some((p) => overlap(p, box))) { choice = box; break; }
        }
        if (choice) break;
      }
    }
    const clear = !!choice;
    choice ??= boxAt(0);
    placed.push(choice);
    return { dx: choice.dx, dy: choice.dy, box: choice, clear };
  });
}
