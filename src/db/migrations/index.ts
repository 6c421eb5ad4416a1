import { CreateAuditLog1763800000000 } from './1763800000000-create-audit-log.js';
import { AddRedactedChanges1763800000001 } from './1763800000001-add-redacted-changes.js';
import { ApiKeys1763800000002 } from './1763800000002-api-keys.js';
import { ActivityRollup1763800000003 } from './1763800000003-activity-rollup.js';
import { Chain1763800000004 } from './1763800000004-chain.js';
import { StorageProbe1763800000005 } from './1763800000005-storage-probe.js';
import { ServerSecrets1763800000016 } from './1763800000016-server-secrets.js';
import { ApiKeyExpiry1763800000100 } from './1763800000100-api-key-expiry.js';
import { SearchIndex1763800000101 } from './1763800000101-search-index.js';
import { Postgres1763800000200 } from './1763800000200-postgres.js';
import { ActivityDaily1763800000201 } from './1763800000201-activity-daily.js';
import { RetentionPolicy1763800000310 } from './1763800000310-retention-policy.js';
import { SearchDeleteMerge1763800000311 } from './1763800000311-search-delete-merge.js';
import { ActivityBy1763800000320 } from './1763800000320-activity-by.js';
import { RollupsByWriter1763800000330 } from './1763800000330-rollups-by-writer.js';

/** Every migration, oldest first. Listed explicitly so that bundlers and the library face need no glob. */
export const migrations = [
  CreateAuditLog1763800000000,
  AddRedactedChanges1763800000001,
  ApiKeys1763800000002,
  ActivityRollup1763800000003,
  Chain1763800000004,
  StorageProbe1763800000005,
  ServerSecrets1763800000016,
  ApiKeyExpiry1763800000100,
  SearchIndex1763800000101,
  Postgres1763800000200,
  ActivityDaily1763800000201,
  RetentionPolicy1763800000310,
  SearchDeleteMerge1763800000311,
  ActivityBy1763800000320,
  RollupsByWriter1763800000330,
];
