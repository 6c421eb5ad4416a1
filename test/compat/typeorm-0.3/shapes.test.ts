import 'reflect-metadata';
import { describeCaptureSuite } from '../../capture/suite.js';
import { sqliteDatabases } from '../../capture/databases.js';

const { version } = (await import('typeorm/package.json', { with: { type: 'json' } })).default;
describeCaptureSuite(sqliteDatabases('sqlite', `TypeORM ${version} + sqlite3`));
