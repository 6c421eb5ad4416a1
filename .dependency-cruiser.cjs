/**
 * The house rule: imports point down only. A request goes server → schema → services → db; a change goes
 * audit → pubsub → db. Each layer may import the layers below it, never one above.
 * `test/layers.test.ts` runs this and fails on any arrow that points up.
 */
const layers = [
  ['shared', '^src/(shared/|config\\.ts$)'],
  ['db', '^src/db/'],
  ['pubsub', '^src/pubsub(\\.ts$|/)'],
  ['audit and auth', '^src/(audit|auth)/'],
  ['services', '^src/services/'],
  ['schema', '^src/schema/'],
  ['server', '^src/server/'],
  ['app', '^src/app\\.ts$'],
];

const forbidden = layers.flatMap(([name, path], rank) =>
  layers.slice(rank + 1).map(([higher, higherPath]) => ({
    name: `${name} must not import ${higher}`.replace(/ /g, '-'),
    severity: 'error',
    from: { path },
    to: { path: higherPath },
  })),
);

forbidden.push({
  name: 'no-circular',
  severity: 'error',
  from: { path: '^src/' },
  to: { circular: true, dependencyTypesNot: ['type-only'] },
});

module.exports = {
  forbidden,
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
