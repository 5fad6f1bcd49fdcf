// Which A2A answers count against the instance that gave them (balancing and ejection), though they are
// relayed unchanged: any 5xx, and a 404 where the agent must have a route (the JSON-RPC endpoint, a REST
// method not addressed to one task, or the peer sidecar saying it does not serve the agent).
import { ERROR_HEADER } from '../../sdk/mesh-headers.ts';
import type { ResponseHeaders } from '../transport/proxy.ts';
import type { A2aMethod } from './methods.ts';

type FaultTest = (status: number, headers: ResponseHeaders) => boolean;

/** Any 5xx, and any 404. */
const ANY_404: FaultTest = (status) => status >= 500 || status === 404;
/** Any 5xx, and a 404 the peer sidecar answered itself (it does not serve the agent or binding). */
const MESH_404: FaultTest = (status, headers) => status >= 500 || (status === 404 && headers[ERROR_HEADER] !== undefined);

/** The fault test for one call (no allocation): `rest` says whether it uses the REST binding, `method` what it is. */
export function a2aFault(rest: boolean, method: A2aMethod | undefined): FaultTest {
  // A task that does not exist is a REST 404 the agent answers rightly; any other 404 means a missing route.
  const notFoundIsFault = !rest || method === undefined || method.taskId.v1 === 'none' || method.name === 'SendMessage' || method.name === 'SendStreamingMessage';
  return notFoundIsFault ? ANY_404 : MESH_404;
}
