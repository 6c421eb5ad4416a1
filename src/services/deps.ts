import type { DataSource } from 'typeorm';
import type { TenantDraft } from '../audit/group-commit.js';
import type { Limits } from '../config.js';
import type { AuditLog } from '../db/entities/audit-log.entity.js';
import type { AuditStore, ReadOptions } from '../db/store.js';
import type { AuditPubSub } from '../pubsub.js';
import type { Quotas } from './quotas.js';
import type { ReplaySlots } from './replay-slots.js';
import type { CheckpointKey } from '../shared/chain/checkpoint.js';
import type { MetaAudit } from './meta-audit.js';
import type { Logger } from '../shared/logger.js';

/** What the use cases run on; built once per server and shared by every request. */
export interface ServiceDeps {
  /** Entity metadata, the query builder that writes SQL, migrations. Statements run through `store`. */
  dataSource: DataSource;
  store: AuditStore;
  /** Writes one independent entry through the group commit; resolves once it is committed. */
  commit(draft: TenantDraft): Promise<AuditLog>;
  /** Writes entries in one transaction, in order, all or none (after any queued before them); one stored entry per draft. */
  commitAll(drafts: TenantDraft[]): Promise<AuditLog[]>;
  pubsub: AuditPubSub;
  limits: Limits;
  quotas: Quotas;
  /** Caps replays of resumed subscriptions, per principal and per server. */
  replays: ReplaySlots;
  /** Aborted when the server starts shutting down: live streams end with SHUTTING_DOWN. */
  closing: AbortSignal;
  /** Signs checkpoints; its public half checks them. */
  checkpointKey: CheckpointKey;
  /** Records reads and administration of the log as entries. */
  metaAudit: MetaAudit;
  /** RETENTION_DAYS: how long entries are kept unless their tenant says otherwise; 0 keeps them forever. */
  retentionDays: number;
  /** RETENTION_ARCHIVE_DIR: where retention archives removed entries (erasure rewrites them there too). */
  retentionArchiveDir?: string;
  /** The server's log, for what an operator should see that is not an error of the request. */
  logger: Pick<Logger, 'info' | 'warn'>;
}

/** A use case run for a caller: whose reads count against their concurrency cap. */
export interface Caller {
  reads: ReadOptions;
}
