import { DateTime, type DurationLikeObject } from 'luxon';
import { describe, expect, it } from 'vitest';
import { bucketBounds, type ActivityInterval } from '../src/services/activity-chart.js';
import { random } from './helpers/seed.js';

/** The bounds as luxon's calendar arithmetic gives them, one DateTime per bucket. */
function reference(from: number, to: number, interval: ActivityInterval, zone: string): Array<[number, number]> {
  const unit = { HOUR: 'hour', DAY: 'day', WEEK: 'week', MONTH: 'month' } as const;
  const step: Record<ActivityInterval, DurationLikeObject> = { HOUR: { hours: 1 }, DAY: { days: 1 }, WEEK: { weeks: 1 }, MONTH: { months: 1 } };
  const bounds: Array<[number, number]> = [];
  let start = DateTime.fromMillis(from, { zone }).startOf(unit[interval]);
  while (start.toMillis() < to) {
    const end = start.plus(step[interval]);
    bounds.push([start.toMillis(), end.toMillis()]);
    start = end;
  }
  return bounds;
}

describe('chart bucket bounds', () => {
  // DST at 02:00 or 03:00, at midnight (Santiago, Havana, Beirut), by 30 minutes (Lord Howe), offsets of
  // 30 and 45 minutes, and a day the zone skipped (Apia, 30 December 2011).
  const zones = ['UTC', 'Europe/Berlin', 'America/New_York', 'America/Santiago', 'America/Havana', 'Asia/Beirut', 'Australia/Lord_Howe', 'Asia/Kolkata', 'Asia/Kathmandu', 'Pacific/Apia'];
  it.each(zones)('are luxon’s calendar bounds, hour and day, across years of offset changes (%s)', (zone) => {
    const next = random(zone.length * 7919);
    const t0 = Date.UTC(2009, 0, 1);
    const span = Date.UTC(2031, 0, 1) - t0;
    for (let i = 0; i < 40; i++) {
      const from = t0 + Math.floor(next() * span);
      const day = [from, from + Math.floor((30 + next() * 400) * 86_400_000)] as const;
      expect(bucketBounds(day[0], day[1], 'DAY', zone, 1000)).toEqual(reference(day[0], day[1], 'DAY', zone));
      const hour = [from, from + Math.floor((1 + next() * 20) * 86_400_000)] as const;
      expect(bucketBounds(hour[0], hour[1], 'HOUR', zone, 1000)).toEqual(reference(hour[0], hour[1], 'HOUR', zone));
    }
    const apia = Date.UTC(2011, 11, 20);
    expect(bucketBounds(apia, apia + 20 * 86_400_000, 'DAY', zone, 1000)).toEqual(reference(apia, apia + 20 * 86_400_000, 'DAY', zone));
  });
});
