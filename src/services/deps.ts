import type { DataSource } from 'typeorm';
import type { Limits } from '../config.js';
import type { AuditPubSub } from '../pubsub.js';
import type { Quotas } from './quotas.js';
import type { CheckpointKey } from '../shared/chain/checkpoint.js';
import type { MetaAudit } from './meta-audit.js';

/** What the use cases run on; built once per server and shared by every request. */
export interface ServiceDeps {
  dataSource: DataSource;
  pubsub: AuditPubSub;
  limits: Limits;
  quotas: Quotas;
  /** Signs checkpoints; its public half checks them. */
  checkpointKey: CheckpointKey;
  /** Records reads and administration of the log as entries. */
  metaAudit: MetaAudit;
}
