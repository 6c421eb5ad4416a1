import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { read, writeTransaction } from '../db/transaction.js';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { checkpointKeyFrom, keyIdOf, publicKeysFromPem, type CheckpointKey } from '../shared/chain/checkpoint.js';
import type { Logger } from '../shared/logger.js';

/** The file name of the key generated when none is configured, in the database's folder. */
export const GENERATED_KEY_FILE = 'checkpoint-key.pem';

export interface CheckpointKeySource {
  /** An Ed25519 private key: PEM text or a KeyObject (CHECKPOINT_PRIVATE_KEY). */
  privateKey?: string | KeyObject;
  /** The SQLite file; without a configured key, one is generated next to it (or kept in memory for `:memory:`). */
  database?: string;
  /**
   * Keys that signed checkpoints before the current one (CHECKPOINT_PREVIOUS_KEYS: PEM text of one or more
   * public or private keys, or KeyObjects): their checkpoints stay trusted. A key generated next to the
   * database before one was configured is trusted so without being named.
   */
  previousKeys?: string | readonly KeyObject[];
}

/**
 * The key that signs checkpoints. Without a configured one the server generates an Ed25519 key on first
 * start into the database's folder (mode 0600) and says so in the log; production should supply its own,
 * kept apart from the database, since whoever holds the key can sign a rewritten chain.
 */
export function loadCheckpointKey(source: CheckpointKeySource, logger: Pick<Logger, 'info' | 'warn'>): CheckpointKey {
  const key = currentKey(source, logger);
  const previous = typeof source.previousKeys === 'string' ? publicKeysFromPem(source.previousKeys) : [...(source.previousKeys ?? [])].map((k) => createPublicKey(k));
  const generated = source.privateKey !== undefined && source.database && source.database !== ':memory:' ? join(dirname(source.database), GENERATED_KEY_FILE) : undefined;
  if (generated && existsSync(generated)) {
    const replaced = checkpointKeyFrom(createPrivateKey(readFileSync(generated, 'utf8')));
    if (replaced.keyId !== key.keyId) {
      previous.push(replaced.publicKey);
      logger.info(`checkpoints signed by the key generated at ${generated} (key id ${replaced.keyId}) stay trusted beside the configured key ${key.keyId}`);
    }
  }
  const distinct = previous.filter((k, i) => {
    const id = keyIdOf(k);
    return id !== key.keyId && previous.findIndex((other) => keyIdOf(other) === id) === i;
  });
  return distinct.length > 0 ? { ...key, previous: distinct } : key;
}

function currentKey(source: CheckpointKeySource, logger: Pick<Logger, 'info' | 'warn'>): CheckpointKey {
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

/** The name of a generated key in `audit_server_secret`, where a database without a folder (PostgreSQL) keeps it. */
const STORED_KEY_NAME = 'checkpoint-ed25519-pkcs8';

/**
 * The checkpoint key generated for a database that has no folder to keep it in (PostgreSQL): stored in the
 * database itself (PKCS#8 DER, base64; `audit_server_secret`), so that checkpoints still verify after a
 * restart and every instance signs and verifies with the same key. Made when `create` is set and none is
 * stored (the first of several instances starting together wins); undefined otherwise. As with the key
 * kept beside a SQLite file, whoever can read the database can then sign a rewritten chain: production
 * supplies its own key.
 */
export async function storedCheckpointKey(dataSource: DataSource, create: boolean): Promise<KeyObject | undefined> {
  const select = async () => {
    const row = await read(dataSource, (manager) =>
      manager.createQueryBuilder().select('s.value', 'value').from('audit_server_secret', 's').where('s.name = :name', { name: STORED_KEY_NAME }).getRawOne<{ value: string }>(),
    );
    return row && createPrivateKey({ key: Buffer.from(row.value, 'base64'), format: 'der', type: 'pkcs8' });
  };
  const stored = await select();
  if (stored || !create) return stored;
  const value = generateKeyPairSync('ed25519').privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64');
  try {
    await writeTransaction(dataSource, (manager) =>
      manager.createQueryBuilder().insert().into('audit_server_secret', ['name', 'value', 'created_at']).values({ name: STORED_KEY_NAME, value, created_at: Date.now() }).execute(),
    );
  } catch {
    // Another instance stored one first (primary key): theirs is read below.
  }
  const key = await select();
  if (!key) throw new Error('The generated checkpoint signing key could not be stored');
  return key;
}

