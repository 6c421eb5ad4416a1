#!/usr/bin/env node
import 'reflect-metadata';
import { Command, CommanderError } from 'commander';
import { apikeyCommand } from './cli/apikey.js';
import { eraseCommand } from './cli/erase.js';
import { exportCommand } from './cli/export.js';
import { migrateCommand } from './cli/migrate.js';
import { serve } from './cli/serve.js';
import { retentionCommand } from './cli/retention.js';
import { verifyCommand } from './cli/verify.js';
import { ConfigError, loadConfig } from './config.js';
import { NoCredentialsError } from './services/bootstrap.js';

/**
 * `auditql`: the server and its tools. Every command reads the same environment variables as the
 * server (see the README's configuration table), DATABASE_URL first of all.
 */
export function buildProgram(): Command {
  const program = new Command('auditql').description('An audit-log server with a GraphQL API').showHelpAfterError();
  program
    .command('serve', { isDefault: true })
    .description('run the server (HTTP, SSE and WebSocket on PORT; the database DATABASE_URL names)')
    .action(() => serve(loadConfig()));
  migrateCommand(program);
  apikeyCommand(program);
  verifyCommand(program);
  eraseCommand(program);
  retentionCommand(program);
  exportCommand(program);
  return program;
}

buildProgram()
  .exitOverride()
  .parseAsync(process.argv)
  .catch((error: unknown) => {
    if (error instanceof CommanderError) process.exit(error.exitCode);
    const known = error instanceof ConfigError || error instanceof NoCredentialsError;
    process.stderr.write(`${known ? `Configuration error: ${(error as Error).message}` : error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
