export interface Actor {
  id: string;
  name: string | null;
  type: string | null;
}

export interface Entry {
  id: string;
  cursor: string;
  resource: string;
  resourceId: string | null;
  action: string;
  name: string | null;
  createdAt: string;
  transactionId: string | null;
  author: Actor | null;
}

export interface FieldChange {
  field: string;
  kind: 'ADDED' | 'REMOVED' | 'CHANGED';
  from: unknown;
  to: unknown;
}

export interface EntryDetail extends Entry {
  ip: string | null;
  userAgent: string | null;
  recordedBy: string | null;
  meta: unknown;
  data: unknown;
  previousData: unknown;
  changes: FieldChange[];
  sequence?: number | string | null;
  hash?: string | null;
  previousHash?: string | null;
}

export interface Page {
  totalCount: number;
  edges: Array<{ cursor: string; node: Entry }>;
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

export interface Bucket {
  start: string;
  end: string;
  count: number;
  groups: Array<{ key: string; count: number }>;
}

const ENTRY = 'id cursor resource resourceId action name createdAt transactionId author { id name type }';

export const LIST = /* GraphQL */ `
  query ViewerList($filter: AuditLogFilter, $first: Int!, $after: String) {
    auditLogs(filter: $filter, first: $first, after: $after) {
      totalCount
      edges { cursor node { ${ENTRY} } }
      pageInfo { hasNextPage endCursor }
    }
  }
`;

/** The newest position in the (visible part of the) log. */
export const HEAD = /* GraphQL */ `
  query ViewerHead {
    auditLogs(first: 1) { edges { cursor } }
  }
`;

export const CHART = /* GraphQL */ `
  query ViewerChart($filter: AuditLogFilter, $interval: ActivityInterval!, $timezone: String!, $groupBy: ActivityGroupBy) {
    activityChart(filter: $filter, interval: $interval, timezone: $timezone, groupBy: $groupBy) { start end count groups { key count } }
  }
`;

/** `extra`: the optional fields this server has (sequence, hash, previousHash). */
export function detailQuery(extra: readonly string[]): string {
  return /* GraphQL */ `
    query ViewerEntry($id: ID!) {
      auditLog(id: $id) { ${ENTRY} ip userAgent recordedBy meta data previousData changes { field kind from to } ${extra.join(' ')} }
    }
  `;
}

export const LIVE = /* GraphQL */ `
  subscription ViewerLive($filter: AuditLogFilter, $after: String) {
    auditLogAdded(filter: $filter, after: $after) { ${ENTRY} }
  }
`;

export const CREATE_VIEWER_TOKEN = /* GraphQL */ `
  mutation ViewerShare($filter: AuditLogFilter!, $expiresIn: Int!) {
    createViewerToken(filter: $filter, expiresIn: $expiresIn) { token expiresAt }
  }
`;
