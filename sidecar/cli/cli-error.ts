// How a failed command is printed: one line `agentmesh: CODE: message` (a config error lists each bad
// key on its own line below); the stack trace only with --debug.
import { MeshError } from '../../sdk/errors.ts';

export function formatCliError(err: unknown, debug: boolean): string {
  if (err instanceof MeshError) {
    const cause = debug && err.cause instanceof Error ? `\n${err.cause.stack ?? err.cause.message}` : '';
    return `agentmesh: ${err.code}: ${err.message}${debug ? `\n${err.stack ?? ''}` : ''}${cause}\n`;
  }
  const message = err instanceof Error ? err.message : String(err);
  if (debug) return `agentmesh: INTERNAL: ${err instanceof Error ? err.stack ?? message : message}\n`;
  return `agentmesh: INTERNAL: ${message.split('\n')[0] ?? ''} (run with --debug for the stack trace)\n`;
}
