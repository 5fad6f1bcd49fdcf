// agentmesh dashboard: polls the admin listener's JSON (/api/registry, /api/state, /api/edges,
// /api/overview) and shows live calls from the tap (/api/tap WebSocket) or, without it, /api/calls.
// Every value from the mesh is hostile: it is only ever set as text, never as HTML.

const REFRESH_MS = 2000;
const MAX_CALLS = 50;
const MAX_DENIALS = 20;

const $ = (id) => document.getElementById(id);

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function row(cells) {
  const tr = document.createElement('tr');
  for (const cell of cells) tr.append(cell instanceof Node ? cell : el('td', cell));
  return tr;
}

function num(value, digits = 2) {
  if (value === null || value === undefined) return el('td', '—', 'num');
  const text = Number(value).toFixed(digits);
  return el('td', text.includes('.') ? text.replace(/\.?0+$/, '') : text, 'num');
}

function fill(tableId, rows, emptyText) {
  const body = $(tableId).tBodies[0];
  const columns = $(tableId).tHead.rows[0].cells.length;
  if (rows.length === 0) {
    const td = el('td', emptyText, 'empty');
    td.colSpan = columns;
    body.replaceChildren(row([td]));
  } else {
    body.replaceChildren(...rows);
  }
}

async function getJson(path) {
  const res = await fetch(path, { headers: { accept: 'application/json' } });
  if (!res.ok && res.status !== 503) throw new Error(`${path}: HTTP ${res.status}`);
  return res.json();
}

/** `spiffe://td/agent/NAME` → NAME; anything else as it is. */
function short(id) {
  if (typeof id !== 'string') return '—';
  const m = /\/agent\/([^/]+)$/.exec(id);
  return m ? m[1] : id;
}

function duration(seconds) {
  const s = Math.abs(seconds);
  const text = s >= 86400 ? `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h` : s >= 3600 ? `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min` : `${Math.floor(s / 60)} min ${Math.floor(s % 60)} s`;
  return seconds < 0 ? `expired ${text} ago` : `expires in ${text}`;
}

function groupByName(records) {
  const byName = new Map();
  for (const r of records) {
    if (!byName.has(r.name)) byName.set(r.name, []);
    byName.get(r.name).push(r);
  }
  return [...byName].sort((a, b) => a[0].localeCompare(b[0]));
}

function renderAgents(agents) {
  fill('agents', groupByName(agents).map(([name, instances]) => {
    const skills = new Set(instances.flatMap((r) => (r.card?.skills ?? []).map((s) => s.id)));
    const list = el('td');
    list.append(el('ul', undefined, 'plain'));
    for (const r of instances) list.firstChild.append(el('li', `${r.instance} · ${r.endpoint}`, 'mono'));
    return row([el('td', name, 'agent-name'), list, el('td', [...new Set(instances.map((r) => r.identity))].join(', '), 'mono'), el('td', [...skills].join(', ') || '—')]);
  }), 'No agents registered.');
}

function renderMcp(servers) {
  fill('mcp', groupByName(servers).map(([name, instances]) => {
    const tools = new Set(instances.flatMap((r) => (r.tools ?? []).map((t) => t.name)));
    return row([el('td', name), el('td', instances.map((r) => r.instance).join(', '), 'mono'), el('td', [...tools].join(', ') || '—', 'mono')]);
  }), 'No MCP servers registered.');
}

function renderEdges(edges) {
  fill('edges', edges.map((e) => row([
    el('td', short(e.from)), el('td', e.direction === 'outbound' ? '→ out' : '→ in', 'muted'), el('td', e.to),
    num(e.rate), num(e.requests, 0), Object.assign(num(e.errors, 0), { className: e.errors > 0 ? 'num bad' : 'num' }), num(e.meanMs), num(e.p95Ms),
  ])), 'No calls through this sidecar yet.');
}

function renderState(state, ready) {
  $('self').textContent = `${state.agent ? `agent ${state.agent}` : 'no local agent'} · ${state.identity ?? ''} · instance ${state.instance ?? ''} · registry ${state.registry ?? ''}`;
  $('ready').textContent = ready.status ?? 'unknown';
  $('ready').className = `badge ${ready.status === 'ready' ? 'ok' : 'bad'}`;
  $('ready').title = (ready.reasons ?? []).join('; ');
  const breakers = [];
  for (const [target, instances] of Object.entries(state.breakers ?? {})) {
    for (const [instance, b] of Object.entries(instances ?? {})) breakers.push({ target, instance, ...b });
  }
  if (breakers.length === 0) {
    $('breakers').replaceChildren(el('p', 'No breaker state yet (no outbound calls).', 'muted empty'));
  } else {
    const list = el('ul', undefined, 'plain');
    for (const b of breakers) {
      const li = el('li');
      li.append(el('span', `${b.target} ${b.instance} `), el('strong', b.state, b.state === 'closed' ? 'ok' : b.state === 'open' ? 'bad' : 'warn'), el('span', ` · ${b.inflight} in flight · ${b.ewmaMs} ms`, 'muted'));
      list.append(li);
    }
    $('breakers').replaceChildren(list);
  }
}

function renderOverview(overview, state) {
  const cert = overview.certificate;
  $('cert').textContent = cert ? duration(cert.expiresInSeconds) : 'No certificate expiry on this sidecar.';
  $('cert').className = `big ${cert ? (cert.expiresInSeconds < 0 ? 'bad' : cert.expiresInSeconds < 3600 ? 'warn' : 'ok') : 'muted'}`;
  const policy = overview.policy;
  const status = state.policy;
  if (!policy && !status) {
    $('policy').textContent = 'No policy support in this sidecar.';
    $('policy').className = 'big muted';
    $('policy-detail').textContent = 'Policy version and decisions appear here once the sidecar enforces a policy.';
    return;
  }
  const version = status?.version ?? policy?.version ?? 0;
  $('policy').textContent = version ? `version ${version}` : 'no policy (every call allowed)';
  $('policy').className = 'big';
  const parts = [];
  if (status?.mode) parts.push(`mode ${status.mode}`);
  if (policy) parts.push(`${policy.denials} denied`, `${policy.auditDenials} denied in audit mode`);
  if (status?.lastError) parts.push(`last load error: ${status.lastError}`);
  $('policy-detail').textContent = parts.join(' · ');
}

// Live calls: the tap when the sidecar has one, else polling /api/calls.
const calls = [];
const denials = [];

function addCall(call) {
  calls.unshift(call);
  calls.length = Math.min(calls.length, MAX_CALLS);
  const denied = call.decision === 'deny' || (typeof call.error === 'string' && call.error.startsWith('POLICY'));
  if (denied) {
    denials.unshift(call);
    denials.length = Math.min(denials.length, MAX_DENIALS);
  }
}

function renderCalls() {
  fill('calls', calls.map((c) => row([
    el('td', (c.time ?? '').slice(11, 23), 'mono'), el('td', c.direction === 'inbound' ? 'in' : 'out'), el('td', short(c.caller)),
    el('td', c.target ?? '—'), el('td', c.method), el('td', c.status, c.status === 0 || c.status >= 400 ? 'num bad' : 'num ok'),
    num(c.durationMs), el('td', c.requestId ?? '—', 'mono small'),
  ])), 'Waiting for calls…');
  fill('denials', denials.map((c) => row([
    el('td', (c.time ?? '').slice(11, 23), 'mono'), el('td', short(c.caller)), el('td', c.target ?? '—'), el('td', c.method), el('td', c.error ?? c.decision ?? ''),
  ])), 'No denials seen since this page opened.');
}

function startTap() {
  const url = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/api/tap`;
  let opened = false;
  let socket;
  try { socket = new WebSocket(url); } catch { return pollCalls(); }
  socket.addEventListener('open', () => {
    opened = true;
    $('live-source').textContent = '(live from the tap)';
  });
  socket.addEventListener('message', (event) => {
    try { addCall(JSON.parse(event.data)); renderCalls(); } catch { /* a malformed event is skipped */ }
  });
  socket.addEventListener('close', () => {
    if (opened) { $('live-source').textContent = '(tap closed; reconnecting)'; setTimeout(startTap, REFRESH_MS); } else pollCalls();
  });
}

let pollAfter = 0;
let polling = false;
async function pollCalls() {
  if (polling) return;
  polling = true;
  $('live-source').textContent = '(polling /api/calls: this sidecar has no tap)';
  for (;;) {
    try {
      const page = await getJson(`/api/calls?after=${pollAfter}`);
      if (page.seq < pollAfter) pollAfter = 0; // the sidecar restarted
      for (const call of page.calls) addCall(call);
      if (page.calls.length > 0) renderCalls();
      pollAfter = page.seq;
    } catch { /* shown by the refresh loop */ }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

async function refresh() {
  try {
    const [registry, state, ready, edges, overview] = await Promise.all([
      getJson('/api/registry'), getJson('/api/state'), getJson('/readyz'), getJson('/api/edges'), getJson('/api/overview'),
    ]);
    renderState(state, ready);
    renderAgents(registry.agents ?? []);
    renderMcp(registry.mcp ?? []);
    renderEdges(edges.edges ?? []);
    renderOverview(overview, state);
    $('updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    $('updated').textContent = `cannot reach the sidecar: ${err.message}`;
  }
}

renderCalls();
startTap();
void refresh();
setInterval(refresh, REFRESH_MS);
