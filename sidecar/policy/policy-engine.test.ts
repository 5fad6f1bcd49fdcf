// Unit tests of the policy document and engine: validation errors name the path, v0.3 aliases, deny
// before allow, MCP plumbing, tools and argument constraints, user claims and via chains, discovery.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isMeshError } from '../../sdk/errors.ts';
import { CompiledPolicy, type PolicyCall } from './policy-engine.ts';
import { parsePolicy } from './policy-schema.ts';

const TD = 'spiffe://mesh.test';
const DOC = `
default: deny
registrations:
  - { identity: ${TD}/agent/researcher, mcp: [stats] }
rules:
  - name: planner-researches
    from: { identity: ${TD}/agent/planner }
    to: { agent: researcher, methods: [SendMessage, tasks/get] }
  - name: no-cancel-for-interns
    action: deny
    from: { identity: "${TD}/agent/intern-*" }
    to: { agent: researcher, methods: [CancelTask] }
  - name: interns-research
    from: { identity: "${TD}/agent/intern-*" }
    to: { agent: researcher }
  - name: planner-counts
    from: { identity: ${TD}/agent/planner }
    to: { mcp: stats, tools: [word_count], arguments: { text: { pattern: "[a-z ]*", maxLength: 20 }, lang: { values: [en, de] } } }
  - name: analysts-via-writer
    from: { user: { claims: { role: analyst } }, via: [${TD}/agent/writer] }
    to: { mcp: stats, tools: [shout] }
limits:
  - { from: { identity: "${TD}/agent/*" }, to: { agent: researcher }, rate: 20/s, burst: 40, concurrency: 8 }
push:
  allow: [https://hooks.internal.example]
`;

const policy = new CompiledPolicy(parsePolicy(DOC, 'test'), 7);
const call = (caller: string, target: string, method: string, extra: Partial<PolicyCall> = {}): PolicyCall => {
  const [kind, name] = target.split(':') as ['agent' | 'mcp', string];
  return { caller: `${TD}/agent/${caller}`, target: { kind, name }, method, ...extra };
};

describe('policy document', () => {
  test('errors name the path of each problem', () => {
    const bad = `
mode: enforced
rules:
  - name: a
    to: { agent: x, methods: [SendMesage] }
  - name: a
    to: { agent: x, mcp: y }
  - name: b
    to: { agent: x, tools: [t] }
limits:
  - { to: { agent: x }, rate: fast }
`;
    try {
      parsePolicy(bad, 'bad.yaml');
      assert.fail('expected an error');
    } catch (err) {
      assert.ok(isMeshError(err, 'CONFIG_INVALID'));
      assert.match(err.message, /invalid policy bad\.yaml/);
      assert.match(err.message, /mode: /);
      assert.match(err.message, /rules\.0\.to\.methods\.0: unknown A2A method 'SendMesage'/);
      assert.match(err.message, /rules\.1\.name: duplicate rule name 'a'/);
      assert.match(err.message, /rules\.1\.to: expected exactly one of agent or mcp/);
      assert.match(err.message, /rules\.2\.to\.tools: tools apply to MCP servers only/);
      assert.match(err.message, /limits\.0\.rate: expected a rate like 20\/s/);
    }
  });

  test('an unknown key is refused and not YAML is said so', () => {
    assert.throws(() => parsePolicy('defualt: allow', 'x'), /\(root\): Unrecognized key: "defualt"/);
    assert.throws(() => parsePolicy('rules: [', 'x'), /not valid YAML or JSON/);
  });

  test('defaults: enforce, deny; limits and push parsed', () => {
    const doc = parsePolicy('{}', 'empty');
    assert.equal(doc.mode, 'enforce');
    assert.equal(doc.default, 'deny');
    const full = policy.document;
    assert.deepEqual(full.limits[0]?.rate, { tokens: 20, perMs: 1000 });
    assert.equal(full.limits[0]?.concurrency, 8);
    assert.deepEqual(full.push.allow, ['https://hooks.internal.example']);
    const limits = policy.limitsFor(`${TD}/agent/planner`, { kind: 'agent', name: 'researcher' });
    assert.deepEqual(limits, [{ name: 'limits[0]', rate: { tokens: 20, perMs: 1000 }, burst: 40, concurrency: 8 }]);
    assert.equal(policy.limitsFor(`${TD}/agent/planner`, { kind: 'agent', name: 'researcher' }), limits); // cached
    assert.equal(policy.limitsFor('spiffe://other.td/agent/planner', { kind: 'agent', name: 'researcher' }).length, 0);
    assert.equal(policy.limitsFor(`${TD}/agent/planner`, { kind: 'mcp', name: 'stats' }).length, 0);
    assert.deepEqual(policy.registrationsFor(`${TD}/agent/researcher`), { agents: [], mcp: ['stats'] });
  });
});

describe('decisions', () => {
  test('default deny names no rule; allowed methods pass; v0.3 aliases map to v1.0 names', () => {
    const denied = policy.decide(call('intruder', 'agent:researcher', 'SendMessage'));
    assert.equal(denied.allowed, false);
    assert.equal(denied.rule, undefined);
    assert.match(denied.reason, /no rule allows it/);
    assert.equal(denied.version, 7);
    assert.equal(policy.decide(call('planner', 'agent:researcher', 'SendMessage')).rule, 'planner-researches');
    assert.equal(policy.decide(call('planner', 'agent:researcher', 'GetTask')).allowed, true);
    assert.equal(policy.decide(call('planner', 'agent:researcher', 'CancelTask')).allowed, false);
    assert.equal(policy.decide(call('planner', 'agent:researcher', 'agent-card')).allowed, true);
    assert.equal(policy.decide(call('intruder', 'agent:researcher', 'agent-card')).allowed, false);
  });

  test('deny rules come first and are named', () => {
    const d = policy.decide(call('intern-7', 'agent:researcher', 'CancelTask'));
    assert.equal(d.allowed, false);
    assert.equal(d.rule, 'no-cancel-for-interns');
    assert.equal(policy.decide(call('intern-7', 'agent:researcher', 'SendMessage')).rule, 'interns-research');
    // A glob's * stays within one path segment.
    assert.equal(policy.decide(call('intern-7/x', 'agent:researcher', 'SendMessage')).allowed, false);
  });

  test('MCP: session plumbing and the listed tool pass, another tool of the server is denied', () => {
    for (const m of ['initialize', 'notifications/initialized', 'MCP GET', 'MCP DELETE', 'tools/list', 'ping']) {
      assert.equal(policy.decide(call('planner', 'mcp:stats', m)).allowed, true, m);
    }
    assert.equal(policy.decide(call('planner', 'mcp:stats', 'tools/call', { tool: 'word_count', args: { text: 'two words' } })).allowed, true);
    assert.equal(policy.decide(call('planner', 'mcp:stats', 'tools/call', { tool: 'shout' })).allowed, false);
    assert.equal(policy.decide(call('planner', 'mcp:stats', 'resources/list')).allowed, false);
    assert.equal(policy.decide(call('planner', 'mcp:stats', 'batch')).allowed, false);
  });

  test('argument constraints: pattern, maxLength, values; the reason names the argument', () => {
    const wc = (args: unknown) => policy.decide(call('planner', 'mcp:stats', 'tools/call', { tool: 'word_count', args }));
    assert.equal(wc({ text: 'fine', lang: 'de' }).allowed, true);
    assert.match(wc({ text: 'DROP TABLE' }).reason, /argument 'text' does not match the allowed pattern \(rule 'planner-counts'\)/);
    assert.equal(wc({ text: 'DROP TABLE' }).rule, 'planner-counts', 'refused only by its argument constraint: the decision names the rule');
    assert.match(wc({ text: 'a'.repeat(21) }).reason, /argument 'text' is longer than 20/);
    assert.match(wc({ text: 'ok', lang: 'fr' }).reason, /argument 'lang' is not one of the allowed values/);
    assert.equal(wc({ text: 'ok', lang: 'fr' }).allowed, false);
  });

  test('user claims and the via chain: the confused deputy is denied', () => {
    const shout = (user: unknown, via: unknown, caller = 'writer') => policy.decide(call(caller, 'mcp:stats', 'tools/call', { tool: 'shout', user, via }));
    assert.equal(shout({ subject: 'v', claims: { role: 'analyst' } }, [`${TD}/agent/writer`]).allowed, true);
    assert.equal(shout({ subject: 'v', claims: { role: ['viewer', 'analyst'] } }, []).allowed, true); // the caller ends the path
    assert.equal(shout({ subject: 'u', claims: { role: 'viewer' } }, [`${TD}/agent/writer`]).allowed, false);
    assert.equal(shout(undefined, [`${TD}/agent/writer`]).allowed, false);
    assert.equal(shout({ claims: { role: 'analyst' } }, [`${TD}/agent/other`], 'other').allowed, false);
  });

  test('discovery: what a caller may reach and which tools it may call', () => {
    assert.equal(policy.mayReach(`${TD}/agent/planner`, 'agent', 'researcher'), true);
    assert.equal(policy.mayReach(`${TD}/agent/intruder`, 'agent', 'researcher'), false);
    assert.equal(policy.mayCallTool(`${TD}/agent/planner`, 'stats', 'word_count'), true);
    assert.equal(policy.mayCallTool(`${TD}/agent/planner`, 'stats', 'delete_all'), false);
    // A rule that depends on the end user or the chain counts as possible: listing cannot know them.
    assert.equal(policy.mayCallTool(`${TD}/agent/planner`, 'stats', 'shout'), true);
    const audit = new CompiledPolicy(parsePolicy('mode: audit', 'audit'), 1);
    assert.equal(audit.decide(call('intruder', 'agent:researcher', 'SendMessage')).allowed, false);
    assert.equal(audit.mayReach(`${TD}/agent/intruder`, 'agent', 'researcher'), true);
  });

  test('a cached decision is the same object; conditional rules are decided per call', () => {
    const a = policy.decide(call('planner', 'agent:researcher', 'SendMessage'));
    assert.equal(policy.decide(call('planner', 'agent:researcher', 'SendMessage')), a);
    const allowAll = new CompiledPolicy(parsePolicy('default: allow\nrules: [{ name: stop, action: deny, to: { mcp: "*" } }]', 'x'), 1);
    assert.equal(allowAll.decide(call('x', 'agent:a', 'SendMessage')).allowed, true);
    assert.equal(allowAll.decide(call('x', 'mcp:any', 'initialize')).rule, 'stop');
  });

  test('the cache keeps apart what a joined key would not: no tool and the tool named ""', () => {
    const doc = parsePolicy('default: deny\nrules: [{ name: any-tool, to: { mcp: stats, tools: ["*"] } }]', 'x');
    for (const first of [undefined, '']) {
      const fresh = new CompiledPolicy(doc, 1);
      const second = first === undefined ? '' : undefined;
      const a = fresh.decide(call('x', 'mcp:stats', 'tools/call', { tool: first }));
      const b = fresh.decide(call('x', 'mcp:stats', 'tools/call', { tool: second }));
      assert.equal(a.allowed, first === '', `tool ${JSON.stringify(first)} decided first`);
      assert.equal(b.allowed, second === '', `tool ${JSON.stringify(second)} decided second`);
    }
  });

  test('settled() is the cached decision when caller, target, method and tool decide it, undefined when a rule reads more', () => {
    const planner = `${TD}/agent/planner`;
    const decided = policy.decide(call('planner', 'agent:researcher', 'SendMessage'));
    assert.equal(policy.settled(planner, { kind: 'agent', name: 'researcher' }, 'SendMessage', undefined), decided);
    assert.equal(policy.settled(`${TD}/agent/intern-1`, { kind: 'agent', name: 'researcher' }, 'CancelTask', undefined)?.rule, 'no-cancel-for-interns');
    // planner-counts constrains arguments; analysts-via-writer reads the user and the chain.
    assert.equal(policy.settled(planner, { kind: 'mcp', name: 'stats' }, 'tools/call', 'word_count'), undefined);
    assert.equal(policy.settled(planner, { kind: 'mcp', name: 'stats' }, 'tools/call', 'shout'), undefined);
  });
});

describe('sessions and listings for an end user', () => {
  const users = new CompiledPolicy(parsePolicy(`
default: deny
rules:
  - name: analysts-count
    from: { identity: ${TD}/agent/front, user: { claims: { role: analyst } } }
    to: { mcp: stats, tools: [word_count] }
  - name: interns-never-shout
    action: deny
    from: { user: { claims: { role: intern } } }
    to: { mcp: stats, tools: [shout] }
  - name: anyone-shouts
    from: { identity: ${TD}/agent/front }
    to: { mcp: stats, tools: [shout] }
`, 'users'), 1);
  const analyst = { subject: 'v', claims: { role: 'analyst' } };
  const intern = { subject: 'u', claims: { role: 'intern' } };

  test('opening and keeping a session comes with an allow rule whatever its user conditions; its tool calls do not', () => {
    for (const method of ['initialize', 'ping', 'MCP GET', 'MCP DELETE', 'notifications/initialized']) {
      assert.equal(users.decide(call('front', 'mcp:stats', method)).allowed, true, method);
    }
    assert.equal(users.decide(call('front', 'mcp:stats', 'tools/call', { tool: 'word_count' })).allowed, false);
    assert.equal(users.decide(call('front', 'mcp:stats', 'tools/call', { tool: 'word_count', user: intern })).allowed, false);
    assert.equal(users.decide(call('front', 'mcp:stats', 'tools/call', { tool: 'word_count', user: analyst })).rule, 'analysts-count');
    // Another identity has no rule for the server at all: no session either.
    assert.equal(users.decide(call('other', 'mcp:stats', 'initialize')).allowed, false);
  });

  test('mayCallTool for a known user decides its user rules; without one it assumes they fit', () => {
    const front = `${TD}/agent/front`;
    assert.equal(users.mayCallTool(front, 'stats', 'word_count'), true);
    assert.equal(users.mayCallTool(front, 'stats', 'word_count', { user: analyst }), true);
    assert.equal(users.mayCallTool(front, 'stats', 'word_count', { user: intern }), false);
    assert.equal(users.mayCallTool(front, 'stats', 'word_count', { user: undefined }), false);
    assert.equal(users.mayCallTool(front, 'stats', 'shout', { user: analyst }), true);
    assert.equal(users.mayCallTool(front, 'stats', 'shout', { user: intern }), false, 'a deny rule on the user hides the tool');
  });
});
