'use strict';
// The HTML report's page: reads the JSON in #llmeval-data (built by html_report.py), draws the
// per-model bars, a filterable, groupable, paginated table whose rows open to their samples,
// and the model x test matrix. Every text from the data goes in as a text node, never as HTML.
(() => {
const data = JSON.parse(document.getElementById('llmeval-data').textContent);
const rows = data.rows, models = data.models;
const PAGE = 100;
const NS = 'http://www.w3.org/2000/svg';
const NO_SUITE = '(not in a suite)';

function h(tag, props, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v == null || v === false) continue;
    if (typeof v === 'function') e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.className = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  e.append(...kids.flat(Infinity).filter(k => k != null && k !== false && k !== '')
    .map(k => (typeof k === 'object' ? k : String(k))));
  return e;
}
function s(tag, attrs, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text != null) e.textContent = text;
  return e;
}
const pct = x => (x == null ? '-' : (100 * x).toFixed(1) + '%');
const pct0 = x => (x == null ? '-' : Math.round(100 * x) + '%');
const num = (x, d) => (x == null ? '-' : x.toFixed(d));
const money = x => (x == null ? '-' : '$' + x.toFixed(0 < x && x < 0.00005 ? 6 : 4));
const rate = r => (r.v ? r.p / r.v : null);
const modelName = r => models[r.m].model;
const badge = (text, kind) => h('span', {class: 'badge ' + (kind || text.replace(/\W+/g, '-'))}, text);
const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

// ---- per-model bars --------------------------------------------------------------------------
function chart(id, title, value, label, whiskers) {
  const width = 180, left = 120, bar = 18, gap = 8;
  const svg = s('svg', {width: left + width + 80, height: 30 + models.length * (bar + gap),
                        role: 'img', 'aria-label': title});
  svg.append(s('text', {x: 0, y: 14, 'font-weight': 'bold'}, title));
  const top = whiskers ? 1 : Math.max(1e-12, ...models.map(m => value(m) ?? 0));
  models.forEach((m, i) => {
    const y = 24 + i * (bar + gap), v = value(m) ?? 0;
    svg.append(s('text', {x: 0, y: y + 13}, m.model));
    svg.append(s('rect', {class: 'bar', x: left, y, width: width * v / top, height: bar,
                          'data-model': m.model}));
    if (whiskers) {
      const a = left + width * m.lo, b = left + width * m.hi, c = y + bar / 2;
      const ends = `M${a} ${y + 3}V${y + bar - 3}M${b} ${y + 3}V${y + bar - 3}`;
      svg.append(s('path', {class: 'ci', d: `M${a} ${c}H${b}` + ends}));
    }
    svg.append(s('text', {x: left + width + 6, y: y + 13}, label(m)));
  });
  document.getElementById(id).append(svg);
}

// ---- state, filters and the URL hash ---------------------------------------------------------
const state = {q: '', model: '', verdict: '', file: '', change: '', group: '', sort: 'rate',
               desc: false, page: 0, mpage: 0, open: new Set()};
const closed = new Set();  // collapsed groups, by `${grouping}:${label}`
// A gated suite's cases are compared with the baseline as a suite, not one by one.
const isNew = r => !r.b && !r.gated;
const CHANGES = {
  regressed: ['regressed', r => r.b && r.b.regressed],
  changed: ['prompt changed', r => r.b && r.b.changed],
  either: ['regressed or prompt changed', r => r.b && (r.b.regressed || r.b.changed)],
  new: ['new since the baseline', isNew],
};
const GROUPS = {file: r => data.files[r.f], suite: r => (r.s == null ? NO_SUITE : data.suites[r.s])};

function keep(r, q) {
  return (!state.model || modelName(r) === state.model)
    && (!state.verdict || r.vd === state.verdict)
    && (!state.file || data.files[r.f] === state.file)
    && (!state.change || !CHANGES[state.change] || CHANGES[state.change][1](r))
    && (!q || r.t.toLowerCase().includes(q));
}

function readHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  for (const k of ['q', 'model', 'verdict', 'file', 'change', 'group']) state[k] = p.get(k) || '';
  if (!GROUPS[state.group]) state.group = '';
  state.sort = columns.some(c => c.name === p.get('sort')) ? p.get('sort') : 'rate';
  state.desc = p.get('desc') === '1';
  state.page = Math.max(0, (parseInt(p.get('page'), 10) || 1) - 1);
  state.open = new Set((p.get('open') || '').split(',').filter(x => /^\d+$/.test(x))
    .map(Number).filter(i => i < rows.length));
}
let written = null;
function writeHash() {
  const p = new URLSearchParams();
  for (const k of ['q', 'model', 'verdict', 'file', 'change', 'group']) if (state[k]) p.set(k, state[k]);
  if (state.sort !== 'rate') p.set('sort', state.sort);
  if (state.desc) p.set('desc', '1');
  if (state.page) p.set('page', state.page + 1);
  if (state.open.size) p.set('open', [...state.open].join(','));
  written = p.toString();
  if (location.hash.slice(1) === written) return;
  try {
    history.replaceState(null, '', '#' + written);
  } catch (e) {
    location.replace('#' + written);
  }
}

// ---- table columns ---------------------------------------------------------------------------
function trendKey(r) {
  if (r.h == null) return -2;
  const pts = data.history[r.h].filter(p => p[2]);
  return pts.length < 2 ? 0 : pts[pts.length - 1][1] / pts[pts.length - 1][2] - pts[0][1] / pts[0][2];
}
function versusCell(r) {
  if (!r.b) return !data.baseline ? '-' : isNew(r) ? 'new' : 'with its suite';
  return [`p=${r.b.p.toPrecision(3)} `, r.b.regressed && badge('regressed'),
          r.b.changed && badge('prompt changed')];
}
const columns = [
  {name: 'test', key: r => r.t, cell: (r, i) => h('button', {
    class: 'open', type: 'button', 'aria-expanded': String(state.open.has(i)),
    'aria-controls': 'detail-' + i, title: 'show samples'}, r.t)},
  {name: 'model', key: modelName},
  {name: 'pass/valid', key: r => rate(r) ?? -1,
   show: r => r.p + '/' + r.v + (r.e ? ' (' + r.e + ' err)' : '')},
  {name: 'rate', key: r => rate(r) ?? -1, show: r => pct(rate(r))},
  {name: 'CI', key: r => r.lo, show: r => (r.v ? pct(r.lo) + '-' + pct(r.hi) : '-')},
  {name: 'verdict', key: r => r.vd},
  data.baseline && {name: 'vs baseline', key: r => (r.b ? r.b.p : 2), cell: versusCell},
  data.history.length && {name: 'trend', key: trendKey, cell: sparkline},
  {name: 'p50 s', key: r => r.p50 ?? -1, show: r => num(r.p50, 2)},
  {name: 'cost $', key: r => r.c ?? -1, show: r => num(r.c, 4)},
  rows.some(r => r.jc != null) && {name: 'judge $', key: r => r.jc ?? -1, show: r => num(r.jc, 4)},
  {name: 'cached', key: r => r.ca},
].filter(Boolean);

// ---- what the table shows: filtered, sorted, grouped -----------------------------------------
function view() {
  const col = columns.find(c => c.name === state.sort) || columns[3];
  const dir = state.desc ? -1 : 1, q = state.q.toLowerCase();
  const keyed = [];
  rows.forEach((r, i) => { if (keep(r, q)) keyed.push([col.key(r), i]); });
  keyed.sort((a, b) => (a[0] < b[0] ? -dir : a[0] > b[0] ? dir : a[1] - b[1]));
  const shown = keyed.map(k => k[1]);
  if (!state.group) return {shown, items: shown.map(i => ({i}))};
  const label = GROUPS[state.group], groups = new Map();
  for (const i of shown) {
    const g = label(rows[i]);
    if (!groups.has(g)) groups.set(g, {g, members: []});
    groups.get(g).members.push(i);
  }
  const items = [];
  const order = [...groups.keys()].sort((a, b) => (a === NO_SUITE) - (b === NO_SUITE) || (a < b ? -1 : a > b ? 1 : 0));
  for (const g of order) {
    const group = groups.get(g);
    items.push(group);
    if (!closed.has(state.group + ':' + g)) for (const i of group.members) items.push({i, group});
  }
  return {shown, items};
}

function groupRow(group, continued) {
  const key = state.group + ':' + group.g, shut = closed.has(key);
  const members = group.members.map(i => rows[i]);
  const passed = members.reduce((a, r) => a + r.p, 0), valid = members.reduce((a, r) => a + r.v, 0);
  const verdicts = {};
  for (const r of members) verdicts[r.vd] = (verdicts[r.vd] || 0) + 1;
  const stats = [plural(members.length, 'row'),
                 Object.entries(verdicts).map(([v, n]) => `${n} ${v}`).join(', '),
                 valid ? `${pct(passed / valid)} of ${valid} valid samples passed` : 'no valid samples'];
  const index = state.group === 'suite' ? data.suites.indexOf(group.g) : -1;
  const gates = data.suite_rows.filter(e => e.s === index && e.g)
    .map(e => `gate ${models[e.m].model}: ${e.g}` + (e.st ? ` (${e.st})` : ''));
  const toggle = () => {
    if (shut) closed.delete(key); else closed.add(key);
    render();
    const again = [...tbody.querySelectorAll('tr.group')].find(tr => tr.dataset.group === group.g);
    if (again) again.querySelector('button').focus();
  };
  return h('tr', {class: 'group', 'data-group': group.g},
    h('td', {colspan: columns.length},
      h('button', {type: 'button', 'aria-expanded': String(!shut), onclick: toggle},
        (shut ? '▸ ' : '▾ ') + group.g + (continued ? ' (continued)' : '')),
      h('span', {class: 'group-stats'}, [...stats, ...gates].join(' · '))));
}

function rowTr(i) {
  const r = rows[i];
  const tr = h('tr', {
    class: [r.vd, r.b && r.b.regressed && 'regressed', r.b && r.b.changed && 'changed',
            state.open.has(i) && 'opened'].filter(Boolean).join(' '),
    'data-row': i,
    onclick: e => {
      if (!e.target.closest('a, summary, input, select, textarea') && !String(getSelection())) toggle(i);
    },
  });
  for (const c of columns) {
    tr.append(h('td', null, c.cell ? c.cell(r, i) : c.show ? c.show(r) : c.key(r)));
  }
  return tr;
}

const details = new Map();  // row index -> its detail <tr>, built on first open
function detailTr(i) {
  if (!details.has(i)) {
    details.set(i, h('tr', {class: 'detail', id: 'detail-' + i},
      h('td', {colspan: columns.length}, detail(rows[i]))));
  }
  return details.get(i);
}

function toggle(i) {
  const tr = tbody.querySelector(`tr[data-row="${i}"]`);
  const open = !state.open.has(i);
  if (open) {
    state.open.add(i);
    tr.after(detailTr(i));
  } else {
    state.open.delete(i);
    detailTr(i).remove();
  }
  tr.classList.toggle('opened', open);
  tr.querySelector('button.open').setAttribute('aria-expanded', String(open));
  writeHash();
}

// ---- an opened row ---------------------------------------------------------------------------
function detail(r) {
  const facts = [`${r.p}/${r.v} valid samples passed`, r.e && plural(r.e, 'error sample'),
                 `CI ${pct(r.lo)}-${pct(r.hi)}`, `need ${r.need}`, `stopped: ${r.stop}`,
                 r.gated && 'case of a gated suite', r.s != null && `suite ${data.suites[r.s]}`];
  return h('div', {class: 'detail-body'},
    h('p', {class: 'facts'}, h('strong', null, r.t), ` on ${modelName(r)}: `, badge(r.vd), ' ',
      facts.filter(Boolean).join(' · ')),
    r.msg && h('pre', {class: 'message'}, r.msg),
    r.b && versus(r),
    r.h != null && history(r),
    samples(r));
}

function versus(r) {
  const b = r.b;
  const was = `was ${b.bp}/${b.bv} (${pct(b.bv ? b.bp / b.bv : null)}), now ${r.p}/${r.v} (${pct(rate(r))})`;
  const box = h('section', {class: 'versus'}, h('h3', null, 'Against the baseline'),
    h('p', null, was, `, p=${b.p.toPrecision(3)} `, b.regressed && badge('regressed'), ' ',
      b.changed && badge('prompt changed')));
  const d = b.diff;
  if (!d) return box;
  const line = text => h('span', {
    class: text.startsWith('@@') ? 'hunk' : text.startsWith('+') ? 'add'
      : text.startsWith('-') ? 'del' : 'same',
  }, text.replace(/\n$/, '') + '\n');
  box.append(h('div', {class: 'diff'},
    d.prompt_diff.length
      ? h('pre', {class: 'prompt-diff', 'aria-label': 'prompt diff, baseline to current'},
          d.prompt_diff.map(line))
      : h('p', null, 'The messages sent are the same as in the baseline.'),
    h('div', {class: 'sides'}, side('baseline', d.baseline), side('current', d.current))));
  return box;
}

function side(title, example) {
  return h('div', {class: 'side ' + title}, h('h4', null, title),
    example
      ? [h('p', null, `sample #${example.index} `, badge(example.outcome)),
         example.message && h('pre', {class: 'message'}, example.message),
         h('pre', {class: 'answer'}, example.answer)]
      : h('p', {class: 'none'}, 'no example answer kept'));
}

function history(r) {
  const pts = data.history[r.h], n = pts.length;
  const W = 560, H = 180, L = 44, R = 40, T = 12, B = 44;
  const x = k => L + (n === 1 ? (W - L - R) / 2 : k * (W - L - R) / (n - 1));
  const y = v => T + (1 - v) * (H - T - B);
  const svg = s('svg', {class: 'history', width: W, height: H, role: 'img',
                        'aria-label': `pass rate over ${plural(n, 'run')}, 95% CI band`});
  for (const v of [0, 0.5, 1]) {
    svg.append(s('line', {class: 'grid', x1: L, x2: W - R, y1: y(v), y2: y(v)}),
               s('text', {x: L - 6, y: y(v) + 4, 'text-anchor': 'end'}, pct0(v)));
  }
  const upper = pts.map((p, k) => `${x(k)},${y(p[4])}`);
  const lower = pts.map((p, k) => `${x(k)},${y(p[3])}`).reverse();
  svg.append(s('polygon', {class: 'band', points: upper.concat(lower).join(' ')}));
  const rated = pts.map((p, k) => [k, p]).filter(([, p]) => p[2]);
  svg.append(s('polyline', {class: 'line',
                            points: rated.map(([k, p]) => `${x(k)},${y(p[1] / p[2])}`).join(' ')}));
  const step = Math.ceil(n / 8);
  pts.forEach((p, k) => {
    const run = data.runs[p[0]], v = p[2] ? p[1] / p[2] : null;
    const point = s('circle', {class: 'point ' + p[5], cx: x(k), cy: y(v ?? 0), r: 4});
    point.append(s('title', null, [
      `run ${run.run}`, run.commit && run.commit.slice(0, 7), run.created_at,
      `${p[1]}/${p[2]} (${pct(v)})`, `CI ${pct(p[3])}-${pct(p[4])}`, p[5],
      p[6] != null && money(p[6])].filter(Boolean).join(' · ')));
    svg.append(point);
    if ((k % step === 0 && n - 1 - k >= step) || k === n - 1) {
      const tick = s('text', {class: 'tick', x: x(k), y: H - B + 16, 'text-anchor': 'middle'},
                     run.commit ? run.commit.slice(0, 7) : `run ${run.run}`);
      svg.append(tick, s('text', {class: 'tick date', x: x(k), y: H - B + 30, 'text-anchor': 'middle'},
                         run.created_at.slice(0, 10)));
    }
  });
  return h('figure', {class: 'trend'}, h('figcaption', null, 'Pass rate over runs (95% CI band)'), svg);
}

function sparkline(r) {
  if (r.h == null) return '';
  const pts = data.history[r.h].filter(p => p[2]), n = pts.length;
  if (!n) return '';
  const W = 72, H = 18, x = k => 3 + (n === 1 ? (W - 6) / 2 : k * (W - 6) / (n - 1));
  const y = p => 3 + (1 - p[1] / p[2]) * (H - 6);
  const svg = s('svg', {class: 'spark', width: W, height: H, role: 'img',
    'aria-label': `pass rate over ${plural(n, 'run')}: ${pct0(pts[0][1] / pts[0][2])} to ${pct0(pts[n - 1][1] / pts[n - 1][2])}`});
  svg.append(s('polyline', {points: pts.map((p, k) => `${x(k)},${y(p)}`).join(' ')}),
             s('circle', {class: pts[n - 1][5], cx: x(n - 1), cy: y(pts[n - 1]), r: 2.5}));
  return svg;
}

function samples(r) {
  const count = o => r.x.filter(x => x.o === o).length;
  const counts = [['failed', 'failed'], ['error', 'erred'], ['passed', 'passed']]
    .map(([o, word]) => `${count(o)} ${word}`).join(', ');
  return h('section', {class: 'samples'},
    h('h3', null, `Samples (${r.x.length}): ${counts}`),
    r.x.map((x, k) => sample(x, k === 0 && x.o !== 'passed')));
}

function sample(x, open) {
  const numbers = [`${num(x.s, 2)} s`, `${x.ti} → ${x.to} tokens`, money(x.c),
                   x.cached && 'cached', x.retries && (x.retries === 1 ? '1 retry' : `${x.retries} retries`)];
  return h('article', {class: 'sample ' + x.o},
    h('h4', null, badge(x.o), ` sample #${x.i}`),
    h('p', {class: 'numbers'}, numbers.filter(Boolean).join(' · ')),
    x.msg && h('pre', {class: 'message'}, x.msg),
    x.err && h('p', {class: 'error'}, 'error: ', x.err),
    x.sb && h('ul', {class: 'sandbox'}, x.sb.map(run => h('li', null,
      'sandbox ', badge(run.st, 'sandbox'), run.cs != null && ` ${run.cp}/${run.cs} hidden cases passed`,
      ` in ${num(run.s, 2)} s`, run.d && h('pre', null, run.d)))),
    x.j && h('ul', {class: 'judgements'}, x.j.map(j => h('li', null,
      `judge ${j.j} (${j.k})`, j.ok != null && [' ', badge(j.ok ? 'passed' : 'failed')],
      j.sc != null && ` score ${j.sc}`, j.w && ` winner ${j.w}`, ': ', h('q', null, j.r)))),
    x.x ? transcript(x.x, open)
      : h('p', {class: 'none'}, 'no transcript kept (--llm-record)' +
          (data.record ? `; this run recorded: ${data.record}` : '')));
}

const ROLES = new Set(['system', 'user', 'assistant', 'tool', 'developer']);
function transcript(t, open) {
  const summary = `transcript: ${plural(t.c.length, 'call')}` + (t.cut ? ' (some text cut at the cap)' : '');
  return h('details', {class: 'transcript', open},
    h('summary', null, summary),
    t.c.map((c, k) => h('div', {class: 'exchange'},
      h('p', {class: 'call'}, [`call ${k + 1}: ${c.r}`, c.e, c.f && `finish: ${c.f}`].filter(Boolean).join(' · ')),
      c.ms.map(([role, text]) => h('div', {class: 'msg ' + (ROLES.has(role) ? role : 'other')},
        h('span', {class: 'role'}, role), h('pre', null, data.texts[text]))),
      h('div', {class: 'msg answer'}, h('span', {class: 'role'}, 'answer'), h('pre', null, data.texts[c.a])),
      (c.tc || []).map(([name, args]) => h('div', {class: 'msg tool-call'},
        h('span', {class: 'role'}, 'tool call'), h('pre', null, `${name}(${args})`))),
      c.er && h('p', {class: 'error'}, 'error: ', c.er))));
}

// ---- the model x test matrix -----------------------------------------------------------------
const LOW = [239, 138, 98], MID = [247, 247, 247], HIGH = [103, 169, 207];
function shade(v) {
  const [a, b, t] = v < 0.5 ? [LOW, MID, v * 2] : [MID, HIGH, v * 2 - 1];
  return `rgb(${a.map((c, k) => Math.round(c + (b[k] - c) * t)).join(',')})`;
}
function cell(passed, valid, lo, hi, label, open, gate) {
  const v = valid ? passed / valid : null;
  const bar = h('span', {class: 'cibar'}), band = h('span'), tick = h('span', {class: 'tick'});
  band.style.left = 100 * lo + '%';
  band.style.width = 100 * (hi - lo) + '%';
  tick.style.left = 100 * (v ?? 0) + '%';
  bar.append(band, tick);
  const inner = [h('span', {class: 'rate'}, pct0(v)), h('span', {class: 'range'}, `${pct0(lo)}-${pct0(hi)}`), bar,
                 gate && h('span', {class: 'gate'}, 'gate ', badge(gate))];
  const td = h('td', {class: 'cell', title: `${label}: ${passed}/${valid} passed, 95% CI ${pct(lo)}-${pct(hi)}`},
    open ? h('button', {type: 'button', onclick: open, 'aria-label': `${label}: ${pct(v)}, open`}, inner) : inner);
  if (v != null) td.style.background = shade(v);
  return td;
}

// The matrix is drawn when it comes near the viewport: filtering below it costs nothing.
let matrixRows = null, matrixSeen = false;
function matrixLater(shown) {
  matrixRows = shown;
  if (matrixSeen) matrix(shown);
}
function matrix(shown) {
  matrixRows = null;
  const present = [...new Set(shown.map(i => rows[i].m))].sort((a, b) => a - b);
  const cols = present.length ? present : models.map((m, k) => k);
  const lines = [];
  const suites = new Set(shown.map(i => rows[i].s).filter(x => x != null));
  for (const k of [...suites].sort((a, b) => (data.suites[a] < data.suites[b] ? -1 : 1))) {
    const entries = new Map(data.suite_rows.filter(e => e.s === k).map(e => [e.m, e]));
    if (entries.size) lines.push({label: 'suite ' + data.suites[k], suite: entries});
  }
  const tests = new Map();
  for (const i of shown) {
    const r = rows[i];
    if (!tests.has(r.t)) tests.set(r.t, new Map());
    tests.get(r.t).set(r.m, i);
  }
  for (const t of [...tests.keys()].sort()) lines.push({label: t, tests: tests.get(t)});
  const pages = Math.max(1, Math.ceil(lines.length / PAGE));
  state.mpage = Math.min(state.mpage, pages - 1);
  const table = document.getElementById('matrix');
  table.tHead.rows[0].replaceChildren(h('th', {scope: 'col'}, 'test'),
    ...cols.map(m => h('th', {scope: 'col'}, models[m].model)));
  table.tBodies[0].replaceChildren(...lines.slice(state.mpage * PAGE, (state.mpage + 1) * PAGE).map(line =>
    h('tr', {class: line.suite ? 'suite' : null}, h('th', {scope: 'row'}, line.label), cols.map(m => {
      if (line.suite) {
        const e = line.suite.get(m);
        const label = `${line.label} on ${models[m].model}` + (e && e.st ? `, ${e.st}` : '');
        return e ? cell(e.p, e.v, e.lo, e.hi, label, null, e.g)
          : h('td', {class: 'cell none'}, '');
      }
      const i = line.tests.get(m);
      if (i == null) return h('td', {class: 'cell none'}, '');
      const r = rows[i];
      return cell(r.p, r.v, r.lo, r.hi, `${r.t} on ${models[m].model}`, () => reveal(i));
    }))));
  pager(document.getElementById('matrix-pager'), state.mpage, pages, p => { state.mpage = p; matrix(shown); },
        `${plural(lines.length, 'line')}`);
}

// ---- page layout and rendering ---------------------------------------------------------------
function pager(nav, page, pages, go, what) {
  const focused = nav.contains(document.activeElement) && document.activeElement.getAttribute('aria-label');
  const button = (label, to, text) => h('button', {type: 'button', 'aria-label': label,
    disabled: to < 0 || to >= pages || to === page, onclick: () => go(to)}, text);
  nav.replaceChildren(button('first page', 0, '«'), button('previous page', page - 1, '‹'),
    h('span', {class: 'where'}, `page ${page + 1} of ${pages}` + (what ? ` (${what})` : '')),
    button('next page', page + 1, '›'), button('last page', pages - 1, '»'));
  nav.hidden = pages < 2;
  const again = [...nav.children].find(b => focused && b.getAttribute('aria-label') === focused);
  if (again && !again.disabled) again.focus();
}

const option = (value, text) => h('option', {value}, text ?? value);
const select = (id, label, options) => h('label', null, label + ' ',
  h('select', {id, onchange: e => { state[id.slice(2)] = e.target.value; state.page = 0; render(); }}, options));
const verdicts = [...new Set(rows.map(r => r.vd))].sort();
const controls = h('form', {id: 'controls', role: 'search', onsubmit: e => e.preventDefault()},
  h('label', null, 'test ', h('input', {id: 'f-q', type: 'search', placeholder: 'search test names',
    oninput: e => { state.q = e.target.value; state.page = 0; render(); }})),
  select('f-model', 'model', [option('', 'all'), models.map(m => option(m.model))]),
  select('f-verdict', 'verdict', [option('', 'all'), verdicts.map(v => option(v))]),
  select('f-file', 'file', [option('', 'all'), [...data.files].sort().map(f => option(f))]),
  data.baseline && select('f-change', 'baseline', [option('', 'all'),
    Object.entries(CHANGES).map(([k, [text]]) => option(k, text))]),
  select('f-group', 'group by', [option('', 'nothing'), option('file'),
    data.suites.length > 0 && option('suite')]),
  h('button', {type: 'button', id: 'f-clear', onclick: () => {
    Object.assign(state, {q: '', model: '', verdict: '', file: '', change: '', group: '', page: 0});
    syncControls();
    render();
  }}, 'clear filters'));
const status = h('p', {id: 'status', 'aria-live': 'polite'});
const table = h('table', {id: 'results'}, h('thead', null, h('tr')), h('tbody'));
const tbody = table.tBodies[0];
const nav = h('nav', {id: 'pager', 'aria-label': 'table pages'});
const app = document.getElementById('app');
app.append(h('h2', null, 'Tests'), controls, status, table, nav);
if (models.length > 1) {
  const section = h('section', {id: 'matrix-view'},
    h('h2', null, 'Which model for which test'),
    h('p', {class: 'hint'}, 'Pass rate of each test x model (the rows the filters keep; suites ' +
      'first, by case), its 95% CI as the range and bar; a cell opens its row.'),
    h('table', {id: 'matrix'}, h('thead', null, h('tr')), h('tbody')),
    h('nav', {id: 'matrix-pager', 'aria-label': 'matrix pages'}));
  app.append(section);
  new IntersectionObserver(([entry]) => {
    matrixSeen = entry.isIntersecting;
    if (matrixSeen && matrixRows) matrix(matrixRows);
  }, {rootMargin: '300px'}).observe(section);
}

const head = table.tHead.rows[0];
columns.forEach(c => {
  const sort = () => {
    state.desc = state.sort === c.name ? !state.desc : false;
    state.sort = c.name;
    state.page = 0;
    render();
  };
  head.append(h('th', {scope: 'col', tabindex: 0, onclick: sort,
    onkeydown: e => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); sort(); } }}, c.name));
});

function syncControls() {
  for (const k of ['q', 'model', 'verdict', 'file', 'change', 'group']) {
    const input = document.getElementById('f-' + k);
    if (input) input.value = state[k];
  }
}

function render() {
  const {shown, items} = view();
  const pages = Math.max(1, Math.ceil(items.length / PAGE));
  state.page = Math.min(state.page, pages - 1);
  const slice = items.slice(state.page * PAGE, (state.page + 1) * PAGE);
  const out = [];
  if (slice.length && slice[0].group) out.push(groupRow(slice[0].group, true));
  for (const item of slice) {
    if (item.members) {
      out.push(groupRow(item, false));
      continue;
    }
    out.push(rowTr(item.i));
    if (state.open.has(item.i)) out.push(detailTr(item.i));
  }
  tbody.replaceChildren(...out);
  const col = columns.find(c => c.name === state.sort) || columns[3];
  [...head.cells].forEach(th => (th.textContent === col.name
    ? th.setAttribute('aria-sort', state.desc ? 'descending' : 'ascending')
    : th.removeAttribute('aria-sort')));
  table.dataset.sortedBy = col.name;
  const first = state.page * PAGE;
  status.textContent = shown.length === rows.length
    ? `${plural(rows.length, 'row')}` : `${shown.length} of ${plural(rows.length, 'row')} match the filters`;
  if (pages > 1) status.textContent += `; showing ${first + 1}-${Math.min(first + PAGE, items.length)} of ${items.length} lines`;
  pager(nav, state.page, pages, p => { state.page = p; render(); table.scrollIntoView(); });
  matrixLater(shown);
  writeHash();
}

function reveal(i) {
  if (state.group) closed.delete(state.group + ':' + GROUPS[state.group](rows[i]));
  state.open.add(i);
  const {items} = view();
  state.page = Math.floor(Math.max(0, items.findIndex(item => item.i === i)) / PAGE);
  render();
  const tr = tbody.querySelector(`tr[data-row="${i}"]`);
  tr.scrollIntoView({block: 'start'});
  tr.querySelector('button.open').focus();
}

chart('chart-rate', 'pass rate (95% CI)', m => m.rate, m => pct(m.rate), true);
chart('chart-latency', 'p50 latency (s)', m => m.p50, m => num(m.p50, 2), false);
chart('chart-cost', 'cost ($)', m => m.cost, m => num(m.cost, 4), false);
readHash();
syncControls();
render();
window.addEventListener('hashchange', () => {
  if (location.hash.slice(1) === written) return;
  readHash();
  syncControls();
  render();
});
document.body.dataset.rendered = 'yes';
})();
