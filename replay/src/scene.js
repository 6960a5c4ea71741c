// The 3D factory: floor, markings, zones, machines with state labels, walking workers.
// Floor coordinates (x right, y away from the door, metres) map to three.js world as
// (x, 0, -y): a proper rotation with +Y up, so the plan is never mirrored.

import * as THREE from 'three';
import { OrbitControls } from 'three/addons/controls/OrbitControls.js';
import { GLTFLoader } from 'three/addons/loaders/GLTFLoader.js';
import { CSS2DObject, CSS2DRenderer } from 'three/addons/renderers/CSS2DRenderer.js';

import { placeLabels } from './labels.js';
import { STATE_COLORS, TASK_COLORS } from './timeline.js';

export function floorToWorld(x, y, h = 0) {
  return new THREE.Vector3(x, h, -y);
}

const WORKER_COLORS = ['#ff7f0e', '#1f77b4', '#d62728', '#9467bd', '#8c564b', '#17becf'];

function polygonShape(points) {
  // Shape lives in the XY plane; rotated -90 deg about X it lies on the floor with y -> -Z.
  const shape = new THREE.Shape();
  points.forEach(([x, y], i) => (i ? shape.lineTo(x, y) : shape.moveTo(x, y)));
  shape.closePath();
  return shape;
}

function flatPolygon(points, color, opacity, h) {
  const geo = new THREE.ShapeGeometry(polygonShape(points));
  const mat = new THREE.MeshBasicMaterial({ color, transparent: opacity < 1, opacity, depthWrite: false,
    side: THREE.DoubleSide });
  const mesh = new THREE.Mesh(geo, mat);
  mesh.rotation.x = -Math.PI / 2;
  mesh.position.y = h;
  return mesh;
}

function lineStrip(points, widthM, color, h) {
  // Painted lines are flat strips of their real width (GL line widths are always 1 px).
  const group = new THREE.Group();
  const mat = new THREE.MeshBasicMaterial({ color });
  for (let i = 0; i + 1 < points.length; i += 1) {
    const [x0, y0] = points[i];
    const [x1, y1] = points[i + 1];
    const len = Math.hypot(x1 - x0, y1 - y0);
    const seg = new THREE.Mesh(new THREE.PlaneGeometry(len, Math.max(widthM, 0.05)), mat);
    seg.rotation.x = -Math.PI / 2;
    seg.rotation.z = Math.atan2(y1 - y0, x1 - x0);
    seg.position.copy(floorToWorld((x0 + x1) / 2, (y0 + y1) / 2, h));
    group.add(seg);
  }
  return group;
}

export class FactoryScene {
  /**
   * @param {HTMLElement} host element that receives the canvas and the label layer
   * @param {object} layout site layout from /api/replay (machines, workers, markings, extent)
   * @param {{t:(k:string)=>string, lang:string, machineName:(m:object)=>string}} ui
   */
  constructor(host, layout, ui) {
    this.host = host;
    this.layout = layout;
    this.ui = ui;
    this.renderer = new THREE.WebGLRenderer({ antialias: false, powerPreference: 'high-performance' });
    this.renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
    this.renderer.setClearColor('#dfe4ea');
    host.appendChild(this.renderer.domElement);
    this.renderer.domElement.id = 'scene-canvas';
    this.labels = new CSS2DRenderer();
    this.labels.domElement.className = 'label-layer';
    this.labels.domElement.id = 'scene-labels';
    host.appendChild(this.labels.domElement);
    // Side by side: the ideal day in the right half of the same canvas, same scene and camera;
    // its labels live in a scene of their own (a label element can only be in one place).
    this.split = false;
    this.stacked = false;  // side by side on a portrait screen: recording above, ideal below
    this.idealLabels = null;
    this.labelScene = null;
    // Areas of the host the name tags keep clear of (the camera buttons), in host pixels.
    this.obstacles = ui.obstacles ?? (() => []);
    this._v = new THREE.Vector3();

    this.scene = new THREE.Scene();
    this.camera = new THREE.PerspectiveCamera(45, 1, 0.1, 500);
    this.controls = new OrbitControls(this.camera, host);  // drags on either half
    this.controls.enableDamping = false;
    this.controls.maxPolarAngle = Math.PI / 2 - 0.05;

    this.scene.add(new THREE.HemisphereLight('#ffffff', '#8a8f99', 2.2));
    const sun = new THREE.DirectionalLight('#ffffff', 1.6);
    sun.position.set(5, 12, 4);
    this.scene.add(sun);

    this.staticGroup = new THREE.Group();  // replaced by the models3d GLB when it loads
    this.scene.add(this.staticGroup);
    this.machines = {};
    this.workers = {};
    this._buildStatic();
    this._buildMachines();
    this._buildWorkers();
    this.resize();
    this.setCamera('overview');
  }

  get centre() {
    const [x0, y0, x1, y1] = this.layout.extent;
    return [(x0 + x1) / 2, (y0 + y1) / 2];
  }

  _buildStatic() {
    const [x0, y0, x1, y1] = this.layout.extent;
    const floor = flatPolygon([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], '#b9bec6', 1, 0);
    floor.name = 'floor';
    this.staticGroup.add(floor);
    for (const mk of this.layout.markings) {
      if (mk.kind === 'area') this.staticGroup.add(flatPolygon(mk.points, mk.color, 0.55, 0.004));
      else this.staticGroup.add(lineStrip(mk.points, mk.width_m, mk.color, 0.006));
    }
    for (const m of this.layout.machines) {
      const zone = flatPolygon(m.zone, '#5b9bd5', 0.22, 0.003);
      zone.name = `zone:${m.id}`;
      this.staticGroup.add(zone);
      const edge = lineStrip([...m.zone, m.zone[0]], 0.04, '#3a78b5', 0.007);
      this.staticGroup.add(edge);
    }
  }

  _buildMachines() {
    for (const m of this.layout.machines) {
      const group = new THREE.Group();
      group.position.copy(floorToWorld(m.centre[0], m.centre[1]));
      group.rotation.y = (m.rotation_deg * Math.PI) / 180;
      const [w, d] = m.footprint;
      const h = m.height_m;
      const body = new THREE.Mesh(new THREE.BoxGeometry(w, h * 0.85, d),
        new THREE.MeshLambertMaterial({ color: '#7d8a99' }));
      body.position.y = (h * 0.85) / 2;
      body.name = `box:${m.id}`;
      group.add(body);
      // Stack light on the top corner: the lamp the real light sensor watches.
      const lamp = new THREE.Mesh(new THREE.CylinderGeometry(0.09, 0.09, 0.35, 16),
        new THREE.MeshLambertMaterial({ color: STATE_COLORS.unknown, emissive: '#000000' }));
      lamp.position.set(w / 2 - 0.15, h * 0.85 + 0.18, 0);
      group.add(lamp);
      this.scene.add(group);

      const el = document.createElement('div');
      el.className = 'machine-label';
      el.dataset.machine = m.id;
      el.innerHTML = `<div class="name"></div><div class="state"></div><div class="task"></div>`
        + '<div class="ideal" hidden></div>';
      el.querySelector('.name').textContent = this.ui.machineName(m);
      const label = new CSS2DObject(el);
      label.position.set(0, h + 0.6, 0);
      group.add(label);
      this.machines[m.id] = { group, body, lamp, el, label, layout: m, key: '', real: null, ideal: null, painted: '' };
    }
  }

  _buildWorkers() {
    this.layout.workers.forEach((w, k) => {
      const color = WORKER_COLORS[k % WORKER_COLORS.length];
      const group = new THREE.Group();
      const mat = new THREE.MeshLambertMaterial({ color });
      const body = new THREE.Mesh(new THREE.CylinderGeometry(0.2, 0.24, 1.1, 16), mat);
      body.position.y = 0.55 + 0.25;
      const head = new THREE.Mesh(new THREE.SphereGeometry(0.17, 16, 12),
        new THREE.MeshLambertMaterial({ color: '#f1c9a5' }));
      head.position.y = 1.55;
      const legs = new THREE.Mesh(new THREE.BoxGeometry(0.25, 0.3, 0.3), new THREE.MeshLambertMaterial({ color: '#333a44' }));
      legs.position.y = 0.15;
      // The nose shows which way the worker faces (+X of the group is "forward").
      const nose = new THREE.Mesh(new THREE.ConeGeometry(0.08, 0.3, 12), new THREE.MeshLambertMaterial({ color: '#222' }));
      nose.rotation.z = -Math.PI / 2;
      nose.position.set(0.32, 1.2, 0);
      group.add(body, head, legs, nose);
      const el = document.createElement('div');
      el.className = 'worker-label';
      el.dataset.worker = w.id;
      el.style.borderColor = color;
      el.innerHTML = '<span class="name"></span> <span class="task"></span>';
      el.querySelector('.name').textContent = this.ui.workerName ? this.ui.workerName(w) : w.name;
      const label = new CSS2DObject(el);
      label.position.set(0, 2.0, 0);
      group.add(label);
      this.scene.add(group);
      this.workers[w.id] = { group, body, el, label, color, key: '', real: null, ideal: null };
    });
  }

  /** Update a machine's label from its status (and the ideal day's, if shown inline). */
  setMachineStatus(id, status, idealStatus = null) {
    const m = this.machines[id];
    if (!m) return;
    m.real = status;
    const key = `${status.state}|${status.task}|${idealStatus ? `${idealStatus.state}|${idealStatus.task}` : ''}`;
    if (key === m.key) return;  // touch the DOM only when something changed
    m.key = key;
    this._label(m.el, status);
    const ideal = m.el.querySelector('.ideal');
    ideal.hidden = !idealStatus;
    if (idealStatus) {
      const t = this.ui.t;
      ideal.textContent = `${t('idealLane')}: ${t(idealStatus.state)}${idealStatus.task ? ` / ${t(idealStatus.task)}` : ''}`;
      ideal.className = `ideal ${idealStatus.state}`;
    }
  }

  /** The ideal day's status of a machine, drawn in the right half when side by side. */
  setIdealMachineStatus(id, status) {
    const m = this.machines[id];
    if (!m || !m.idealEl) return;
    m.ideal = status;
    const key = `${status.state}|${status.task}`;
    if (key === m.idealKey) return;
    m.idealKey = key;
    this._label(m.idealEl, status);
  }

  _label(el, status) {
    const t = this.ui.t;
    el._measured = false;
    el.dataset.state = status.state;
    el.dataset.task = status.task ?? '';
    const st = el.querySelector('.state');
    st.textContent = t(status.state);
    st.className = `state ${status.state}`;
    const task = el.querySelector('.task');
    task.textContent = status.task ? t(status.task) : '';
    task.dataset.task = status.task ?? '';
    task.style.background = status.task ? TASK_COLORS[status.task] : 'transparent';
  }

  /** Colour a machine's lamp and body (or its GLB meshes) for one status; cheap when unchanged. */
  _paint(m, status) {
    if (!status) return;
    const key = `${status.state}|${status.task}`;
    if (key === m.painted) return;
    m.painted = key;
    m.lamp.material.color.copy(colour(STATE_COLORS[status.state] ?? STATE_COLORS.unknown));
    m.lamp.material.emissive.copy(colour(status.state === 'running' ? '#1d6b1d' : '#000000'));
    m.body.material.color.copy(colour(status.task ? TASK_COLORS[status.task] : '#7d8a99'));
    for (const [mesh, original] of m.glbMeshes ?? []) {
      mesh.material.color.copy(status.task ? colour(TASK_COLORS[status.task]) : original);
    }
  }

  /** Place a worker figure from its pose; `tS` animates walking. */
  setWorkerPose(id, pose, tS) {
    const w = this.workers[id];
    if (!w) return;
    w.real = placed(pose, tS);
    const key = `${pose.task}|${pose.zone}`;
    if (key !== w.key) {
      w.key = key;
      this._workerLabel(w.el, pose);
    }
  }

  /** The ideal day's pose of a worker (right half, side by side). */
  setIdealWorkerPose(id, pose, tS) {
    const w = this.workers[id];
    if (!w || !w.idealEl) return;
    w.ideal = placed(pose, tS);
    w.idealAnchor.position.set(w.ideal.pos.x, w.ideal.pos.y + 2.0, w.ideal.pos.z);
    const key = `${pose.task}|${pose.zone}`;
    if (key !== w.idealKey) {
      w.idealKey = key;
      this._workerLabel(w.idealEl, pose);
    }
  }

  _workerLabel(el, pose) {
    el._measured = false;
    const task = el.querySelector('.task');
    el.dataset.zone = pose.zone;
    el.dataset.task = pose.task ?? '';
    task.textContent = pose.task ? this.ui.t(pose.task) : pose.zone === 'none' ? this.ui.t('away') : '';
  }

  /**
   * Side by side on or off: the right half of the canvas shows the ideal day (same scene, same
   * camera, machines and workers repainted between the two passes), with its own labels.
   */
  setSplit(on) {
    this.split = !!on;
    if (this.split && !this.idealLabels) this._buildIdealLabels();
    if (this.idealLabels) this.idealLabels.domElement.hidden = !this.split;
    for (const m of Object.values(this.machines)) { m.painted = ''; m.idealKey = ''; }
    for (const w of Object.values(this.workers)) w.idealKey = '';
    this.resize();
  }

  _buildIdealLabels() {
    this.idealLabels = new CSS2DRenderer();
    this.idealLabels.domElement.className = 'label-layer ideal-layer';
    this.idealLabels.domElement.id = 'ideal-labels';
    this.host.appendChild(this.idealLabels.domElement);
    this.labelScene = new THREE.Scene();
    for (const m of Object.values(this.machines)) {
      const el = m.el.cloneNode(true);
      el.classList.add('ideal-view');
      el.querySelector('.ideal').remove();
      const anchor = new CSS2DObject(el);
      anchor.position.copy(floorToWorld(m.layout.centre[0], m.layout.centre[1], m.layout.height_m + 0.6));
      this.labelScene.add(anchor);
      m.idealEl = el;
      m.idealLabel = anchor;
    }
    for (const w of Object.values(this.workers)) {
      const el = w.el.cloneNode(true);
      el.classList.add('ideal-view');
      w.idealAnchor = new CSS2DObject(el);
      this.labelScene.add(w.idealAnchor);
      w.idealEl = el;
    }
  }

  /** Put the machines and workers in the state of one view (`real` or `ideal`). */
  _apply(which) {
    for (const m of Object.values(this.machines)) this._paint(m, m[which] ?? m.real);
    for (const w of Object.values(this.workers)) {
      const p = w[which] ?? w.real;
      if (!p) continue;
      w.group.position.copy(p.pos);
      w.group.rotation.y = p.heading;
    }
  }

  /** Camera presets: `overview` from above, or `machine:ID` looking at a machine from its zone. */
  setCamera(name) {
    const [cx, cy] = this.centre;
    const [x0, y0, x1, y1] = this.layout.extent;
    const m = name.startsWith('machine:') ? this.layout.machines.find((mm) => `machine:${mm.id}` === name) : null;
    if (m) {
      const zx = m.zone.reduce((a, p) => a + p[0], 0) / m.zone.length;
      const zy = m.zone.reduce((a, p) => a + p[1], 0) / m.zone.length;
      let dx = zx - m.centre[0];
      let dy = zy - m.centre[1];
      const n = Math.hypot(dx, dy) || 1;
      dx /= n; dy /= n;
      this.camera.position.copy(floorToWorld(m.centre[0] + dx * 7 + dy * 1.5, m.centre[1] + dy * 7 - dx * 1.5, 4.5));
      this.controls.target.copy(floorToWorld(m.centre[0], m.centre[1], 0.9));
    } else {
      // Fit the floor in the view, seen from above with a slight tilt towards the door side
      // so machines read as boxes, not squares.
      const tanV = Math.tan((this.camera.fov * Math.PI) / 360);
      const dist = 1.08 * Math.max((x1 - x0) / 2 / (tanV * this.camera.aspect), (y1 - y0) / 2 / tanV);
      const tilt = 0.35;
      this.camera.position.copy(floorToWorld(cx, cy - dist * Math.sin(tilt), dist * Math.cos(tilt)));
      this.controls.target.copy(floorToWorld(cx, cy, 0));
    }
    this.cameraName = m ? name : 'overview';
    this.controls.update();
  }

  /**
   * Replace the boxes with the models3d scene. Nodes named `machine:ID` are matched to the
   * layout; if the GLB's floor axis points the other way it is flipped to fit.
   */
  async loadGlb(url) {
    const gltf = await new GLTFLoader().loadAsync(url);
    const root = gltf.scene;
    const found = [];
    root.traverse((o) => {
      // GLTFLoader strips ':' from names (three.js reserves it); the original is in userData.
      const m = /^machine:(.+)$/.exec(o.userData?.name ?? o.name);
      if (m && this.machines[m[1]]) found.push([o, this.machines[m[1]].layout]);
    });
    if (!found.length) throw new Error('the scene has no machine:ID nodes');
    root.updateMatrixWorld(true);
    const err = (flip) => found.reduce((a, [o, lm]) => {
      const c = new THREE.Box3().setFromObject(o).getCenter(new THREE.Vector3());
      return a + Math.hypot(c.x - lm.centre[0], c.z - (flip ? lm.centre[1] : -lm.centre[1]));
    }, 0) / found.length;
    if (err(true) < err(false)) root.scale.z = -1;  // the GLB used (x, 0, +y)
    // Lambert shading instead of the loader's PBR materials: far cheaper on software GL and
    // tablets, and a scanned machine's texture or vertex colours are kept.
    root.traverse((o) => {
      if (!o.isMesh) return;
      const old = Array.isArray(o.material) ? o.material[0] : o.material;
      o.material = new THREE.MeshLambertMaterial({
        color: old.color ?? new THREE.Color('#cccccc'), map: old.map ?? null, vertexColors: !!old.vertexColors,
        transparent: old.transparent, opacity: old.opacity, side: old.side,
      });
    });
    for (const [node, lm] of found) {
      // The machine's own meshes take the task's colour, as the boxes do.
      const meshes = [];
      node.traverse((o) => { if (o.isMesh) meshes.push([o, o.material.color.clone()]); });
      this.machines[lm.id].glbMeshes = meshes;
      this.machines[lm.id].painted = '';
    }
    this.scene.remove(this.staticGroup);
    for (const m of Object.values(this.machines)) m.body.visible = false;
    this.scene.add(root);
    this.glb = root;
    return found.length;
  }

  resize() {
    const w = this.host.clientWidth || 800;
    const h = this.host.clientHeight || 450;
    this.renderer.setSize(w, h, false);
    this.renderer.domElement.style.width = `${w}px`;
    this.renderer.domElement.style.height = `${h}px`;
    // Small or halved views: one-line name tags (they must all fit without covering each other).
    this.host.classList.toggle('compact', w < 600 || h < 400 || this.split);
    for (const x of [...Object.values(this.machines), ...Object.values(this.workers)]) {
      for (const el of [x.el, x.idealEl]) if (el) el._measured = false;  // their size may change
    }
    // Side by side on a portrait screen the halves are stacked (two slivers would be unreadable).
    this.stacked = this.split && h > w;
    const half = this.stacked ? Math.floor(h / 2) : Math.floor(w / 2);
    this.viewW = this.split && !this.stacked ? half : w;
    this.viewH = this.stacked ? half : h;
    this.labels.setSize(this.viewW, this.viewH);
    if (this.idealLabels) {
      const el = this.idealLabels.domElement;
      this.idealLabels.setSize(this.stacked ? w : w - half, this.stacked ? h - half : h);
      el.style.left = this.stacked ? '0px' : `${half}px`;
      el.style.top = this.stacked ? `${half}px` : '0px';
      el.classList.toggle('stacked', this.stacked);
    }
    this.camera.aspect = this.viewW / this.viewH;
    this.camera.updateProjectionMatrix();
    this._obstacles = null;
    if (this.cameraName === 'overview') this.setCamera('overview');  // re-fit the floor
  }

  /** The areas to keep clear moved (the camera buttons were rebuilt): measure them again. */
  invalidateObstacles() {
    this._obstacles = null;
  }

  /**
   * Move the name tags of one label layer so none covers another or the camera buttons.
   * `which`: 'real' (the main layer) or 'ideal' (the right or lower half, side by side).
   */
  _declutter(which, w, h, offX, offY) {
    const items = [];
    const els = [];
    const push = (obj, el) => {
      if (!obj || !el || el.style.display === 'none') return;
      if (!el._measured) { el._w = el.offsetWidth; el._h = el.offsetHeight; el._measured = true; }
      const v = this._v.setFromMatrixPosition(obj.matrixWorld).project(this.camera);
      items.push({ x: (v.x * 0.5 + 0.5) * w, y: (-v.y * 0.5 + 0.5) * h, w: el._w, h: el._h });
      els.push(el);
    };
    for (const m of Object.values(this.machines)) push(which === 'real' ? m.label : m.idealLabel, which === 'real' ? m.el : m.idealEl);
    for (const wk of Object.values(this.workers)) {
      push(which === 'real' ? wk.label : wk.idealAnchor, which === 'real' ? wk.el : wk.idealEl);
    }
    this._obstacles ??= this.obstacles();
    const obstacles = this._obstacles.map((o) => ({ x0: o.x0 - offX, y0: o.y0 - offY, x1: o.x1 - offX, y1: o.y1 - offY }));
    const out = placeLabels(items, { x0: 0, y0: 0, x1: w, y1: h }, obstacles);
    out.forEach((o, i) => {
      const v = `${Math.round(o.dx)}px ${Math.round(o.dy)}px`;
      if (els[i]._offset !== v) { els[i].style.translate = v; els[i]._offset = v; }
    });
  }

  render() {
    const w = this.host.clientWidth || 800;
    const h = this.host.clientHeight || 450;
    if (!this.split) {
      this._apply('real');
      this.renderer.render(this.scene, this.camera);
      this.labels.render(this.scene, this.camera);
      this._declutter('real', w, h, 0, 0);
      return;
    }
    // One canvas, two viewports: the recording on the left (above, on a portrait screen), the
    // ideal day on the right (below). GL viewports count from the bottom.
    const r = this.renderer;
    const [vw, vh] = [this.viewW, this.viewH];
    const first = this.stacked ? [0, h - vh, w, vh] : [0, 0, vw, h];
    const second = this.stacked ? [0, 0, w, h - vh] : [vw, 0, w - vw, h];
    r.setScissorTest(true);
    this._apply('real');
    r.setViewport(...first);
    r.setScissor(...first);
    r.render(this.scene, this.camera);
    this.labels.render(this.scene, this.camera);
    this._declutter('real', vw, vh, 0, 0);
    this._apply('ideal');
    r.setViewport(...second);
    r.setScissor(...second);
    r.render(this.scene, this.camera);
    this.idealLabels.render(this.labelScene, this.camera);
    this._declutter('ideal', second[2], second[3], this.stacked ? 0 : vw, this.stacked ? vh : 0);
    r.setScissorTest(false);
    r.setViewport(0, 0, w, h);
  }
}

const COLOURS = new Map();

/** A cached THREE.Color per CSS colour: repainting between the two views allocates nothing. */
function colour(css) {
  let c = COLOURS.get(css);
  if (!c) { c = new THREE.Color(css); COLOURS.set(css, c); }
  return c;
}

function placed(pose, tS) {
  const bob = pose.walking ? Math.abs(Math.sin(tS * 6)) * 0.06 : 0;
  return { pos: floorToWorld(pose.x, pose.y, bob), heading: pose.heading };
}
