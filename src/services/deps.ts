import type { DataSource } from 'typeorm';
import type { Limits } from '../config.js';
import type { AuditPubSub } from '../pubsub.js';
import type { Quotas } from './quotas.js';

/** What the use cases run on; built once per server and shared by every request. */
export interface ServiceDeps {
  dataSource: DataSource;
  pubsub: AuditPubSub;
  limits: Limits;
  quotas: Quotas;
}
