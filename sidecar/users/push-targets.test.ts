import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pushTargetRefusal, pushUrls } from './push-targets.ts';

test('every forbidden address form is refused, naming why', () => {
  const forbidden: [string, RegExp][] = [
    ['http://hooks.example.com/x', /only https/],
    ['https://127.0.0.1/x', /loopback/], ['https://127.1/', /loopback/], ['https://2130706433/', /loopback/],
    ['https://0x7f000001/', /loopback/], ['https://0x7f.0.0.1/', /loopback/], ['https://0177.0.0.1/', /loopback/],
    ['https://017700000001/', /loopback/], ['https://[::1]/', /loopback/], ['https://[::ffff:127.0.0.1]/', /IPv4-mapped.*loopback/],
    ['https://[::ffff:7f00:1]/', /IPv4-mapped.*loopback/], ['https://[::ffff:169.254.169.254]/', /IPv4-mapped.*metadata/],
    ['https://[::127.0.0.1]/', /IPv4-compatible/], ['https://[64:ff9b::7f00:1]/', /NAT64/],
    ['https://169.254.169.254/latest/meta-data', /metadata/], ['https://2852039166/', /metadata/],
    ['https://10.0.0.1/', /private/], ['https://172.16.5.4/', /private/], ['https://192.168.1.1/', /private/],
    ['https://100.64.0.1/', /CGNAT/], ['https://0.0.0.0/', /this network/], ['https://0/', /this network/],
    ['https://224.0.0.1/', /multicast/], ['https://255.255.255.255/', /broadcast/],
    ['https://[::]/', /unspecified/], ['https://[fe80::1]/', /link-local/], ['https://[fc00::1]/', /unique local/],
    ['https://[fd00:ec2::254]/', /unique local/], ['https://[ff02::1]/', /multicast/],
    ['https://localhost/', /local host/], ['https://LocalHost./', /local host/], ['https://api.localhost/', /local host/],
    ['https://metadata.google.internal/', /metadata/], ['not a url', /not an absolute URL/],
  ];
  for (const [url, why] of forbidden) {
    const refusal = pushTargetRefusal(url, { allow: [] });
    assert.ok(refusal, `${url} was allowed`);
    assert.match(refusal, why, url);
  }
});

test('public https URLs pass; push.allow admits a listed URL prefix or host, nothing more', () => {
  for (const url of ['https://hooks.example.com/a2a', 'https://8.8.8.8/x', 'https://[2606:4700::1111]/x']) {
    assert.equal(pushTargetRefusal(url, { allow: [] }), undefined, url);
  }
  const allow = ['http://127.0.0.1:8080/hooks/', 'internal.example', '10.1.2.3'];
  assert.equal(pushTargetRefusal('http://127.0.0.1:8080/hooks/a', { allow }), undefined);
  assert.ok(pushTargetRefusal('http://127.0.0.1:8080/other', { allow }));
  assert.ok(pushTargetRefusal('http://127.0.0.1:8081/hooks/a', { allow }));
  assert.equal(pushTargetRefusal('https://10.1.2.3/x', { allow }), undefined);
  assert.ok(pushTargetRefusal('http://10.1.2.3/x', { allow }), 'a bare host allows https only');
});

test('push URLs are found in v1.0 and v0.3 shapes of SendMessage and CreateTaskPushNotificationConfig', () => {
  assert.deepEqual(pushUrls('SendMessage', { configuration: { taskPushNotificationConfig: { url: 'https://a' } } }), ['https://a']);
  assert.deepEqual(pushUrls('SendStreamingMessage', { configuration: { pushNotificationConfig: { url: 'https://b' } } }), ['https://b']);
  assert.deepEqual(pushUrls('SendMessage', { configuration: { task_push_notification_config: { push_notification_config: { url: 'https://c' } } } }), ['https://c']);
  assert.deepEqual(pushUrls('CreateTaskPushNotificationConfig', { taskId: 't', url: 'https://d' }), ['https://d']);
  assert.deepEqual(pushUrls('CreateTaskPushNotificationConfig', { taskId: 't', pushNotificationConfig: { url: 'https://e' } }), ['https://e']);
  assert.deepEqual(pushUrls('CreateTaskPushNotificationConfig', { url: 7 }), ['7']);
  assert.deepEqual(pushUrls('GetTask', { url: 'https://f' }), []);
  assert.deepEqual(pushUrls('SendMessage', { configuration: {} }), []);
  assert.deepEqual(pushUrls('SendMessage', 'not params'), []);
  // In the order met, each once: a config's own URL, then its nested config's, then the next config.
  assert.deepEqual(pushUrls('SendMessage', { configuration: {
    taskPushNotificationConfig: { url: 'https://g', pushNotificationConfig: { url: 'https://h' } },
    pushNotificationConfig: { url: 'https://g' }, push_notification_config: { url: 'https://i' },
  } }), ['https://g', 'https://h', 'https://i']);
  assert.deepEqual(pushUrls('CreateTaskPushNotificationConfig', { url: 'https://j', config: { url: 'https://k' }, pushNotificationConfig: { url: 'https://l' } }),
    ['https://j', 'https://l', 'https://k']);
});
