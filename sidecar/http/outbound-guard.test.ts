// Unit tests for the outbound listener's Host / Origin rules (the end-to-end ones are in test/outbound-guard.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isLoopbackHost, outboundRefusal } from './outbound-guard.ts';

test('loopback hosts are accepted in every spelling', () => {
  for (const host of ['127.0.0.1', '127.0.0.1:15001', '127.1.2.3:80', 'localhost', 'LOCALHOST:1', 'localhost.', 'localhost.:15001',
    '[::1]', '[::1]:15001', '[0:0:0:0:0:0:0:1]:8080', '[0::1]']) {
    assert.equal(isLoopbackHost(host), true, host);
  }
});

test('anything else is refused, however it is dressed up', () => {
  for (const host of ['', 'evil.example', '127.0.0.1:1@evil.example', 'evil.example@127.0.0.1', '127.0.0.1.evil.example',
    'localhost.evil.example', 'evil.localhost', '128.0.0.1', '127.0.0.256', '127.0.0.01', '127.1', '2130706433', '0.0.0.0',
    '[::1', '[::1]x', '[::1]:99999', '[::2]', '[::ffff:127.0.0.1]', '[fe80::1%lo]', '::1', '127.0.0.1:', '127.0.0.1:abc',
    '127.0.0.1:80:80', 'localhost..', '127.0.0.1/x', '127.0.0.1\\x', 'local host', '127.0.0.1%2e']) {
    assert.equal(isLoopbackHost(host), false, host);
  }
});

test('origins: absent or loopback http(s) pass; null, foreign, odd schemes and paths are refused', () => {
  assert.equal(outboundRefusal({ host: '127.0.0.1:1' }), undefined);
  for (const origin of ['http://127.0.0.1:3000', 'https://localhost', 'http://[::1]:8080', 'HTTP://LOCALHOST']) {
    assert.equal(outboundRefusal({ host: '127.0.0.1:1', origin }), undefined, origin);
  }
  for (const origin of ['null', 'https://evil.example', 'http://127.0.0.1:1@evil.example', 'file://', 'chrome-extension://abc',
    'http://localhost/path', 'http://127.0.0.1.nip.io', '']) {
    assert.match(outboundRefusal({ host: '127.0.0.1:1', origin }) ?? '', /Origin/, origin);
  }
  assert.match(outboundRefusal({}) ?? '', /Host header is required/);
  assert.match(outboundRefusal({ host: 'evil.example:15001' }) ?? '', /not a loopback name/);
  assert.match(outboundRefusal({ host: '127.0.0.1', 'sec-fetch-site': 'cross-site' }) ?? '', /another site/);
  assert.equal(outboundRefusal({ host: '127.0.0.1', 'sec-fetch-site': 'none' }), undefined);
});
