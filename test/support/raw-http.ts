// Test-only: one HTTP/1.1 request with exactly the headers given (node:http lets a test set Host, Origin
// and the rest as a browser or an attacker would), over TCP or a Unix socket.
import { request } from 'node:http';

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** `base` is `http://host:port` or `unix:/path`. */
export function rawRequest(base: string, options: { method?: string; path: string; headers?: Record<string, string>; body?: string }): Promise<RawResponse> {
  const target = base.startsWith('unix:') ? { socketPath: base.slice('unix:'.length) } : { host: new URL(base).hostname, port: new URL(base).port };
  return new Promise((resolve, reject) => {
    const req = request({ ...target, method: options.method ?? 'GET', path: options.path, headers: options.headers ?? {} }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { body += chunk; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}
