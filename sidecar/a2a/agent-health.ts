// Checks the local agent like tool-watcher.ts checks MCP servers: reads its card every interval; after
// `threshold` failed reads in a row (an error or a timeout) it is down (onDown withdraws its record),
// and the first good read after that brings it back (onUp announces it again, with the card it serves now).
import type { CardShape } from './agent-card.ts';
import { FailureLog } from '../log-once.ts';
import type { Logger } from '../log.ts';

export interface AgentHealthOptions {
  name: string;
  /** One read of the agent's card. */
  readCard: (signal: AbortSignal) => Promise<CardShape>;
  intervalMs: number;
  /** A read that takes longer counts as a failure. */
  timeoutMs: number;
  /** Consecutive failures that make the agent down. */
  threshold: number;
  /** The agent stopped answering: withdraw it. `reason` names the agent and the last failure. */
  onDown: (reason: string) => Promise<void>;
  /** It answers again: announce it with `card`. A failure here leaves it down; the next good read tries again. `signal`: close() was called. */
  onUp: (card: CardShape, signal: AbortSignal) => Promise<void>;
  /** It answers with a card other than the announced one while up. */
  onCard: (card: CardShape) => Promise<void>;
  log: Logger;
}

export interface AgentHealth {
  /** Why the agent counts as down, or undefined while it is up. */
  down(): string | undefined;
  /** Stops checking (waits for a check under way). Idempotent. */
  close(): Promise<void>;
}

export function watchAgentHealth(options: AgentHealthOptions, announced: CardShape): AgentHealth {
  const { log } = options;
  const stop = new AbortController();
  const failures = new FailureLog(log.child({ agent: options.name }), { what: `local agent '${options.name}' health check` });
  const announcing = new FailureLog(log.child({ agent: options.name }), { what: `announcing local agent '${options.name}' again` });
  let down: string | undefined;
  let card = JSON.stringify(announced);
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();

  const check = async (): Promise<void> => {
    let next: CardShape;
    try {
      next = await options.readCard(AbortSignal.any([stop.signal, AbortSignal.timeout(options.timeoutMs)]));
    } catch (err) {
      if (stop.signal.aborted) return;
      failures.failure(err);
      if (down === undefined && failures.failures >= options.threshold) {
        down = `local agent '${options.name}' is not answering: ${failures.failures} failed card reads in a row, last: ${describe(err)}`;
        log.warn({ agent: options.name, reason: down }, 'local agent is down; withdrawing it from the registry');
        await options.onDown(down).catch((e: unknown) => log.warn({ agent: options.name, err: e }, 'could not withdraw the local agent'));
      }
      return;
    }
    if (stop.signal.aborted) return;
    failures.success();
    const text = JSON.stringify(next);
    if (down !== undefined) {
      try {
        await options.onUp(next, stop.signal);
      } catch (err) {
        announcing.failure(err); // the next good read tries again
        return;
      }
      announcing.success();
      down = undefined;
      card = text;
      log.info({ agent: options.name }, 'local agent answers again; announced it');
    } else if (text !== card) {
      card = text;
      await options.onCard(next).catch((err: unknown) => log.warn({ agent: options.name, err }, 'could not announce the local agent\'s new card'));
    }
  };
  const schedule = (): void => {
    if (stop.signal.aborted) return;
    timer = setTimeout(() => { running = check().finally(schedule); }, options.intervalMs);
    timer.unref();
  };
  schedule();

  let closing: Promise<void> | undefined;
  return {
    down: () => down,
    close: () => (closing ??= (async () => {
      stop.abort();
      clearTimeout(timer);
      await running.catch(() => undefined);
    })()),
  };
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    if (err.name === 'TimeoutError') return `no answer within the timeout (agent.healthTimeout)`;
    return err.cause instanceof Error ? `${err.message}: ${err.cause.message}` : err.message;
  }
  return String(err);
}
