import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { AuditLog } from 'auditql';
import { DataSource } from 'typeorm';
import { AppModule } from './app.module';

/** Starts the app, creates a note as a user over HTTP, and prints the audit entry that recorded it. */
async function main(): Promise<void> {
  const app = await NestFactory.create(AppModule, { logger: false });
  await app.listen(0, '127.0.0.1');
  const url = await app.getUrl();
  const response = await fetch(`${url}/notes`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-user-id': 'u42', 'x-user-name': 'Lin' },
    body: JSON.stringify({ text: 'hello' }),
  });
  const note = (await response.json()) as { id: number };
  const entry = await app.get(DataSource).getRepository(AuditLog).findOneByOrFail({ resource: 'note', resourceId: String(note.id) });
  console.log(JSON.stringify({ action: entry.action, author: entry.authorId, authorName: entry.authorName, data: entry.data }));
  await app.close();
}

void main();
