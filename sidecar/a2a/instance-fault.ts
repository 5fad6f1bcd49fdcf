// Which A2A answers count against the instance that gave them (balancing and ejection), though they are
// relayed unchanged: any 5xx, and a 404 where the agent must have a route (the JSON-RPC endpoint, a REST
// method not addressed to one task, or the peer sidecar saying it does not serve the agent).
import { ERROR_HEADER } from '../../sdk/mesh-headers.ts';
import type { ResponseHeaders } from '../transport/proxy.ts';
import type { A2aMethod } from './methods.ts';

/** The fault test for one call: `rest` says whether it uses the REST binding, `method` what it is. */
export function a2aFault(rest: boolean, method: A2aMethod | undefined): (status: number, headers: ResponseHeaders) => boolean {
  // A task that does not exist is a REST 404 the agent answers rightly; any other 404 means a missing route.
  const notFoundIsFault = !rest || method === undefined || method.taskId.v1 === 'none' || method.name === 'SendMessage' || method.name === 'SendStreamingMessage';
  return (status, headers) => status >= 500 || (status === 404 && (notFoundIsFault || headers[ERROR_HEADER] !== undefined));
}
