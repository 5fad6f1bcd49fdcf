// The JetStream stream `{bucket}-audit` (subjects `{bucket}-audit.{identity name}.{instance}`): created when missing
// (file storage, 2-minute duplicate window), published to in order (each acked before the next), and read back in order for
// `agentmesh audit`. A message carries one or more consecutive records as JSON lines (a batch); read yields
// them one record at a time. Loaded only with the NATS client. Works on nats-server 2.9 (no 2.10+ features).
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { StorageType, jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { MeshError } from '../sdk/errors.ts';
import { natsAccessOptions } from './nats-connect.ts';
import { permissionViolation } from './nats-bucket.ts';
import { whenJetStreamReady } from './jetstream-ready.ts';
import type { NatsAccess } from './nats-access.ts';

export interface AuditStream {
  /** Publishes in order with acks; resolves with how many of the first entries were stored. */
  publish(subject: string, entries: readonly { id: string; data: string }[], timeoutMs: number): Promise<number>;
  /** The last message on `subject`, if any (a batch: its last line is the last record). */
  lastOf(subject: string): Promise<string | undefined>;
  /**
   * Every record in the stream in order (all instances), each with the stream sequence of its message and
   * its line there (1-based); with follow, keeps waiting for new ones until signal.
   */
  read(options: { follow?: boolean; signal?: AbortSignal }): AsyncIterable<AuditStreamRecord>;
  close(): Promise<void>;
}

export interface AuditStreamRecord {
  text: string;
  message: number;
  line: number;
}

export interface AuditStreamOptions {
  nats: string | readonly string[];
  access?: NatsAccess;
  bucket: string;
  name: string;
  /** false: bind only (the CLI reading); true (default): create the stream when missing. */
  create?: boolean;
}

export function auditStreamName(bucket: string): string {
  return `${bucket}-audit`;
}

export async function openAuditStream(options: AuditStreamOptions): Promise<AuditStream> {
  const access = await natsAccessOptions(options.nats, options.access);
  // noAsyncTraces: otherwise every acked publish builds two Errors (RequestError, TimeoutError) for their stacks.
  const nc: NatsConnection = await connect({ ...access, name: options.name, maxReconnectAttempts: -1, reconnectTimeWait: 500, timeout: 5000, noAsyncTraces: true });
  const name = auditStreamName(options.bucket);
  let jsm: JetStreamManager;
  try {
    jsm = await whenJetStreamReady(`audit stream '${name}'`, () => jetstreamManager(nc));
    const manager = jsm;
    await whenJetStreamReady(`audit stream '${name}'`, () => ensureStream(manager, name, options.create !== false, options.access?.replicas ?? 1));
  } catch (err) {
    await nc.close();
    throw err;
  }
  const js: JetStreamClient = jetstream(nc);
  const decoder = new TextDecoder();
  return {
    // One at a time, each acked before the next is sent: after a failure nothing later is stored, so the
    // resend of the failed one cannot land behind a later record and break the chain's order.
    async publish(subject, entries, timeoutMs) {
      let stored = 0;
      for (const e of entries) {
        try {
          await js.publish(subject, e.data, { msgID: e.id, timeout: timeoutMs });
        } catch {
          break;
        }
        stored++;
      }
      return stored;
    },
    async lastOf(subject) {
      try {
        const msg = await jsm.streams.getMessage(name, { last_by_subj: subject });
        return msg ? decoder.decode(msg.data) : undefined;
      } catch {
        return undefined;
      }
    },
    async *read({ follow = false, signal } = {}) {
      const info = await jsm.streams.info(name);
      if (info.state.messages === 0 && !follow) return;
      const consumer = await js.consumers.get(name);
      const messages = await consumer.consume();
      const stop = () => { void messages.close(); };
      signal?.addEventListener('abort', stop, { once: true });
      try {
        for await (const m of messages) {
          const lines = decoder.decode(m.data).split('\n');
          for (let i = 0; i < lines.length; i++) {
            const text = lines[i] ?? '';
            if (text !== '') yield { text, message: m.seq, line: i + 1 };
          }
          if (!follow && m.info.pending === 0) break;
        }
      } finally {
        signal?.removeEventListener('abort', stop);
        await messages.close();
      }
    },
    async close() {
      await nc.drain().catch(() => nc.close());
    },
  };
}

async function ensureStream(jsm: JetStreamManager, name: string, create: boolean, replicas: number): Promise<void> {
  try {
    await jsm.streams.info(name);
    return;
  } catch (err) {
    if (permissionViolation(err)) throw denied(name, err);
    if (!/not found/i.test(String((err as Error).message))) throw err;
  }
  if (!create) throw new MeshError('REGISTRY_UNAVAILABLE', `audit stream '${name}' does not exist`);
  try {
    await jsm.streams.add({ name, subjects: [`${name}.>`], storage: StorageType.File, duplicate_window: 120_000_000_000, num_replicas: replicas });
  } catch (err) {
    if (permissionViolation(err)) throw denied(name, err);
    throw err;
  }
}

function denied(name: string, err: unknown): MeshError {
  return new MeshError('REGISTRY_UNAVAILABLE', `this NATS user may not use the audit stream '${name}' (${(err as Error).message}); `
    + `the mesh admin creates it with 'agentmesh nats init'`, { cause: err });
}
