// The access log (log.access: true): one structured line per finished call, at info level, with the
// call event's fields. Ids and names only, never bodies or headers.
import type { Logger } from '../log.ts';
import type { CallEvent } from './call-event.ts';

export function accessLogger(log: Logger): (event: CallEvent) => void {
  const access = log.child({ log: 'access' });
  return (event) => access.info(event, 'call');
}
