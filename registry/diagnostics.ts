// The registry's diagnostics_channel: registry/ never logs; the sidecar subscribes and logs.
import { channel } from 'node:diagnostics_channel';

export const REGISTRY_CHANNEL = 'agentmesh:registry';
const registryChannel = channel(REGISTRY_CHANNEL);

export type RegistryEvent =
  | { type: 'invalid'; key: string; error: string }
  | { type: 'disconnect' | 'reconnect'; backend: 'nats' | 'embedded'; server?: string }
  | { type: 'watch-restart'; backend: 'nats' | 'embedded'; error: string };

export function publish(event: RegistryEvent): void {
  if (registryChannel.hasSubscribers) registryChannel.publish(event);
}
