import { MiddlewareConsumer, Module, NestModule } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AuditSubscriber, auditEntities, auditMigrations } from 'auditql';
import { AuditActorMiddleware } from './audit-actor.middleware';
import { Note } from './note.entity';
import { NotesController } from './notes.controller';
import { CreateNote1764000000000 } from './migrations/1764000000000-create-note';

@Module({
  imports: [
    TypeOrmModule.forRoot({
      type: 'better-sqlite3',
      database: process.env.DATABASE ?? ':memory:',
      // The app's entities, plus auditql's; its migrations; and its subscriber.
      entities: [Note, ...auditEntities],
      migrations: [CreateNote1764000000000, ...auditMigrations],
      migrationsRun: true,
      subscribers: [AuditSubscriber],
    }),
    TypeOrmModule.forFeature([Note]),
  ],
  controllers: [NotesController],
})
export class AppModule implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(AuditActorMiddleware).forRoutes('*');
  }
}
