import { activityChart, type ActivityBucket, type ActivityGroup } from '../services/activity-chart.js';
import { parseAuditLogFilter } from '../services/audit-log-filter.js';
import { AuditLogFilterInput } from './audit-log-filter.js';
import { builder } from './builder.js';
import { activityChartCost } from './cost.js';
import { confine } from '../services/viewer-tokens.js';

const ActivityInterval = builder.enumType('ActivityInterval', { values: ['HOUR', 'DAY', 'WEEK', 'MONTH'] as const });
const ActivityGroupBy = builder.enumType('ActivityGroupBy', { values: ['ACTION', 'RESOURCE', 'AUTHOR'] as const });

const ActivityGroupRef = builder.objectRef<ActivityGroup>('ActivityGroup').implement({
  fields: (t) => ({
    key: t.exposeString('key', { description: 'The action, resource or author id; "" for entries without an author.' }),
    count: t.exposeInt('count'),
  }),
});

const ActivityBucketRef = builder.objectRef<ActivityBucket>('ActivityBucket').implement({
  fields: (t) => ({
    start: t.field({ type: 'DateTime', resolve: (bucket) => bucket.start }),
    end: t.field({ type: 'DateTime', description: 'Exclusive.', resolve: (bucket) => bucket.end }),
    count: t.exposeInt('count'),
    groups: t.field({ type: [ActivityGroupRef], description: 'Filled when groupBy is given; largest first.', resolve: (bucket) => bucket.groups }),
  }),
});

builder.queryField('activityChart', (t) =>
  t.field({
    type: [ActivityBucketRef],
    authScopes: { restrictedRead: true },
    complexity: (args, ctx) => activityChartCost(args, ctx.limits.maxChartBuckets),
    description:
      'Entry counts per interval, with buckets starting at local interval starts in `timezone` (weeks start on Monday). ' +
      'The range is filter.from..filter.to; without them, the last 48 hours (HOUR), 30 days (DAY), 26 weeks (WEEK) or 12 months (MONTH). ' +
      'Empty buckets are present with count 0.',
    args: {
      filter: t.arg({ type: AuditLogFilterInput }),
      interval: t.arg({ type: ActivityInterval, defaultValue: 'DAY' }),
      timezone: t.arg.string({ defaultValue: 'UTC', description: 'An IANA time zone such as "Europe/Berlin".' }),
      groupBy: t.arg({ type: ActivityGroupBy }),
    },
    resolve: async (_root, args, ctx) => {
      const buckets = await activityChart(
        ctx,
        {
          filter: confine(parseAuditLogFilter(args.filter, ctx.tenantId), ctx.principal?.restriction),
        interval: args.interval ?? 'DAY',
        timezone: args.timezone ?? 'UTC',
        groupBy: args.groupBy,
        maxBuckets: ctx.limits.maxChartBuckets,
        },
        ctx.reads,
      );
      ctx.metaAudit.read(ctx, { action: 'view', operation: 'activityChart', filter: { ...args.filter, interval: args.interval, timezone: args.timezone, groupBy: args.groupBy } });
      return buckets;
    },
  }),
);
