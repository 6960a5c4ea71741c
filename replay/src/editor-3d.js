// The site editor's 3D preview: the document as the viewer will show it, beside the plan.
// Floor (x, y) is world (x, 0, -y), as in scene.js and models3d. A machine's prepared GLB
// (front +Z, origin at its footprint centre on the floor) is turned 180 degrees, then by its
// rotation_deg, exactly as `models3d scene` places it. Renders on demand, not in a loop.

import * as THREE from 'three';
import { OrbitControls } from 'three/addons/controls/OrbitControls.js';
import { GLTFLoader } from 'three/addons/loaders/GLTFLoader.js';

import { machineCentre } from './editor-geom.js';

function flat(points, color, opacity, h) {
  const shape = new THREE.Shape();
  points.forEach(([x, y], i) => (i ? shape.lineTo(x, y) : shape.moveTo(x, y)));
  shape.closePath();
  const mesh = new THREE.Mesh(new THREE.ShapeGeometry(shape), new THREE.MeshBasicMaterial({
    color, transparent: opacity < 1, opacity, depthWrite: false, side: THREE.DoubleSide }));
  mesh.rotation.x = -Math.PI / 2;
  mesh.position.y = h;
  return mesh;
}

function strip(points, width, color, h) {
  const g = new THREE.Group();
  const mat = new THREE.MeshBasicMaterial({ color });
  for (let i = 0; i + 1 < points.length; i += 1) {
    const [x0, y0] = points[i];
    const [x1, y1] = points[i + 1];
    const seg = new THREE.Mesh(new THREE.PlaneGeometry(Math.hypot(x1 - x0, y1 - y0), Math.max(width, 0.05)), mat);
    seg.rotation.x = -Math.PI / 2;
    seg.rotation.z = Math.atan2(y1 - y0, x1 - x0);
    seg.position.set((x0 + x1) / 2, h, -(y0 + y1) / 2);
    g.add(seg);
  }
  return g;
}

const finite = (v) => Array.isArray(v) && v.every((x) => Number.isFinite(x));

export class Preview {
  constructor(host) {
    this.host = host;
    this.renderer = new THREE.WebGLRenderer({ antialias: true, preserveDrawingBuffer: true });
    this.renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
    this.renderer.setClearColor('#dfe4ea');
    this.renderer.domElement.id = 'ed-3d-canvas';
    host.appendChild(this.renderer.domElement);
    this.scene = new THREE.Scene();
    this.scene.add(new THREE.HemisphereLight('#ffffff', '#8a8f99', 2.2));
    const sun = new THREE.DirectionalLight('#ffffff', 1.6);
    sun.position.set(5, 12, 4);
    this.scene.add(sun);
    this.camera = new THREE.PerspectiveCamera(45, 1, 0.1, 500);
    this.controls = new OrbitControls(this.camera, this.renderer.domElement);
    this.controls.maxPolarAngle = Math.PI / 2 - 0.05;
    this.controls.addEventListener('change', () => this.render());
    this.group = new THREE.Group();
    this.scene.add(this.group);
    this.loader = new GLTFLoader();
    this.models = new Map(); // url -> Promise<THREE.Object3D>
    this.stats = { updates: 0, frames: 0, machines: 0, modelsShown: 0, modelErrors: [] };
    this.key = '';
    this.framed = '';
    this.resize();
  }

  resize() {
    this.framed = '';
    this.key = '';
    const w = Math.max(1, this.host.clientWidth);
    const h = Math.max(1, this.host.clientHeight);
    this.renderer.setSize(w, h, false);
    this.camera.aspect = w / h;
    this.camera.updateProjectionMatrix();
    this.render();
  }

  model(url) {
    if (!this.models.has(url)) {
      this.models.set(url, new Promise((resolve, reject) => this.loader.load(url, (g) => resolve(g.scene), undefined, reject)));
    }
    return this.models.get(url);
  }

  /** Rebuild from the document (cheap; GLBs are loaded once per URL). */
  update(doc, modelUrl) {
    const key = JSON.stringify(doc);
    if (key === this.key) return;
    this.key = key;
    this.stats.updates += 1;
    this.group.clear();
    const d = doc || {};
    const xs = [0];
    const ys = [0];
    const note = (pts) => { for (const [x, y] of pts) { xs.push(x); ys.push(y); } };
    for (const m of d.machines || []) if (Array.isArray(m.zone) && m.zone.every(finite)) note(m.zone);
    if (finite(d.floor)) note([d.floor]);
    for (const mk of d.floor_markings || []) if (Array.isArray(mk.points) && mk.points.every(finite)) note(mk.points);
    const [x0, y0, x1, y1] = [Math.min(...xs) - 1, Math.min(...ys) - 1, Math.max(...xs, 4) + 1, Math.max(...ys, 4) + 1];
    const floor = finite(d.floor) ? [[0, 0], [d.floor[0], 0], [d.floor[0], d.floor[1]], [0, d.floor[1]]]
      : [[x0, y0], [x1, y0], [x1, y1], [x0, y1]];
    this.group.add(flat(floor, '#b9bec6', 1, 0));
    for (const poly of (d.survey || {}).blocked || []) {
      if (!Array.isArray(poly) || poly.length < 3 || !poly.every(finite)) continue;
      const g = new THREE.ExtrudeGeometry(new THREE.Shape(poly.map(([x, y]) => new THREE.Vector2(x, y))), { depth: 1.0, bevelEnabled: false });
      const wall = new THREE.Mesh(g, new THREE.MeshLambertMaterial({ color: '#6b7280' }));
      wall.rotation.x = -Math.PI / 2;
      this.group.add(wall);
    }
    for (const mk of d.floor_markings || []) {
      if (!Array.isArray(mk.points) || !mk.points.every(finite)) continue;
      if (mk.kind === 'area' && mk.points.length >= 3) this.group.add(flat(mk.points, mk.color || '#ffffff', 0.6, 0.004));
      else if (mk.points.length >= 2) this.group.add(strip(mk.points, mk.width_m || 0.05, mk.color || '#ffffff', 0.006));
    }
    let machines = 0;
    let shown = 0;
    const pending = [];
    for (const m of d.machines || []) {
      if (Array.isArray(m.zone) && m.zone.length >= 3 && m.zone.every(finite)) this.group.add(flat(m.zone, '#5b9bd5', 0.3, 0.003));
      const c = machineCentre(m);
      if (!finite(c)) continue;
      machines += 1;
      const fp = finite(m.footprint) ? m.footprint : [2, 1.2];
      const h = Number.isFinite(m.height_m) ? m.height_m : 1.8;
      const rot = Number.isFinite(m.rotation_deg) ? m.rotation_deg : 0;
      const holder = new THREE.Group();
      holder.position.set(c[0], 0, -c[1]);
      holder.rotation.y = ((rot + 180) * Math.PI) / 180;
      holder.name = `machine:${m.id}`;
      this.group.add(holder);
      if (m.model && modelUrl) {
        shown += 1;
        pending.push(this.model(modelUrl(m.model)).then((obj) => holder.add(obj.clone(true))).catch((err) => {
          this.stats.modelErrors.push(`${m.id}: ${err && err.message ? err.message : err}`);
          holder.add(this.box(fp, h));
        }));
      } else {
        holder.add(this.box(fp, h));
      }
      // The front: an orange bar along the front edge (site +y at rotation 0).
      const bar = new THREE.Mesh(new THREE.BoxGeometry(fp[0], 0.08, 0.08), new THREE.MeshBasicMaterial({ color: '#e37400' }));
      bar.position.set(0, 0.05, fp[1] / 2); // model frame: front +Z (turned 180 deg with the holder)
      holder.add(bar);
    }
    for (const r of d.receivers || []) {
      if (!Array.isArray(r.position) || !r.position.slice(0, 2).every(Number.isFinite)) continue;
      const s = new THREE.Mesh(new THREE.SphereGeometry(0.12, 16, 12), new THREE.MeshLambertMaterial({ color: '#1a73e8' }));
      s.position.set(r.position[0], Number.isFinite(r.position[2]) ? r.position[2] : 1.2, -r.position[1]);
      this.group.add(s);
    }
    this.stats.machines = machines;
    this.stats.modelsShown = shown;
    const frame = `${x0},${y0},${x1},${y1}`;
    if (frame !== this.framed) {
      this.framed = frame;
      const cx = (x0 + x1) / 2;
      const cy = (y0 + y1) / 2;
      const span = Math.max(x1 - x0, y1 - y0);
      const fit = (span / 2) / (Math.tan((this.camera.fov * Math.PI) / 360) * Math.min(1, this.camera.aspect));
      this.controls.target.set(cx, 0, -cy);
      this.camera.position.set(cx, fit * 0.62, -cy + fit * 0.6);
      this.controls.update();
    }
    this.render();
    Promise.all(pending).then(() => { this.stats.modelsLoaded = pending.length; this.render(); });
  }

  box(fp, h) {
    const body = new THREE.Mesh(new THREE.BoxGeometry(fp[0], h, fp[1]), new THREE.MeshLambertMaterial({ color: '#7d8a99' }));
    body.position.y = h / 2;
    return body;
  }

  render() {
    this.renderer.render(this.scene, this.camera);
    this.stats.frames += 1;
  }
}
