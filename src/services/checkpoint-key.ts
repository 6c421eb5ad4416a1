import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { checkpointKeyFrom, type CheckpointKey } from '../shared/chain/checkpoint.js';
import type { Logger } from '../shared/logger.js';

/** The file name of the key generated when none is configured, in the database's folder. */
export const GENERATED_KEY_FILE = 'checkpoint-key.pem';

export interface CheckpointKeySource {
  /** An Ed25519 private key: PEM text or a KeyObject (CHECKPOINT_PRIVATE_KEY). */
  privateKey?: string | KeyObject;
  /** The SQLite file; without a configured key, one is generated next to it (or kept in memory for `:memory:`). */
  database?: string;
}

/**
 * The key that signs checkpoints. Without a configured one the server generates an Ed25519 key on first
 * start into the database's folder (mode 0600) and says so in the log; production should supply its own,
 * kept apart from the database, since whoever holds the key can sign a rewritten chain.
 */
export function loadCheckpointKey(source: CheckpointKeySource, logger: Pick<Logger, 'info' | 'warn'>): CheckpointKey {
  if (source.privateKey !== undefined) {
    return checkpointKeyFrom(typeof source.privateKey === 'string' ? createPrivateKey(source.privateKey) : source.privateKey);
  }
  const generate = () => generateKeyPairSync('ed25519').privateKey;
  if (!source.database || source.database === ':memory:') {
    const key = checkpointKeyFrom(generate());
    logger.warn(`no CHECKPOINT_PRIVATE_KEY: checkpoints are signed with a key that lives in memory only (key id ${key.keyId}); configure one to keep checkpoints verifiable across restarts`);
    return key;
  }
  const file = join(dirname(source.database), GENERATED_KEY_FILE);
  if (existsSync(file)) return checkpointKeyFrom(createPrivateKey(readFileSync(file, 'utf8')));
  const privateKey = generate();
  mkdirSync(dirname(file), { recursive: true });
  // 'wx': never overwrite a key another process wrote meanwhile.
  try {
    writeFileSync(file, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return checkpointKeyFrom(createPrivateKey(readFileSync(file, 'utf8')));
    throw error;
  }
  const key = checkpointKeyFrom(privateKey);
  logger.warn(`no CHECKPOINT_PRIVATE_KEY: generated a checkpoint signing key at ${file} (key id ${key.keyId}); production should supply its own, stored apart from the database`);
  return key;
}
