import type { DataSource } from 'typeorm';
import type { Limits } from '../config.js';
import type { AuditPubSub } from '../pubsub.js';
import type { Quotas } from './quotas.js';
import type { ReplaySlots } from './replay-slots.js';

/** What the use cases run on; built once per server and shared by every request. */
export interface ServiceDeps {
  dataSource: DataSource;
  pubsub: AuditPubSub;
  limits: Limits;
  quotas: Quotas;
  /** Caps replays of resumed subscriptions, per principal and per server. */
  replays: ReplaySlots;
  /** Aborted when the server starts shutting down: live streams end with SHUTTING_DOWN. */
  closing: AbortSignal;
}
