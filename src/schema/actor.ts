import type { AuditActor } from '../audit/context.js';
import { builder } from './builder.js';

export const ActorRef = builder.objectRef<AuditActor>('Actor').implement({
  description: 'Who made a change: a user, a service, or the system.',
  fields: (t) => ({
    id: t.exposeID('id'),
    name: t.string({ nullable: true, resolve: (actor) => actor.name ?? null }),
    type: t.string({ nullable: true, description: 'e.g. "user", "service", "system"', resolve: (actor) => actor.type ?? null }),
  }),
});

export const ActorInput = builder.inputType('ActorInput', {
  fields: (t) => ({
    id: t.id({ required: true }),
    name: t.string(),
    type: t.string(),
  }),
});
