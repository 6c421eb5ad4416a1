import type { FieldChange } from '../audit/diff.js';
import { builder } from './builder.js';

const FieldChangeKind = builder.enumType('FieldChangeKind', {
  values: {
    ADDED: { description: 'The field is only in the new state.' },
    REMOVED: { description: 'The field is only in the previous state.' },
    CHANGED: { description: 'The field is in both states with different values.' },
  } as const,
});

export const FieldChangeRef = builder.objectRef<FieldChange>('FieldChange').implement({
  description: 'One field that differs between previousData and data. Field "$" stands for the whole value when it is not an object.',
  fields: (t) => ({
    field: t.exposeString('field'),
    kind: t.field({ type: FieldChangeKind, resolve: (change) => change.kind }),
    from: t.field({ type: 'JSON', nullable: true, resolve: (change) => change.from }),
    to: t.field({ type: 'JSON', nullable: true, resolve: (change) => change.to }),
  }),
});
