import type { ExecutionArgs } from 'graphql';
import { withAuditContext, type AuditContext } from '../audit/context.js';

type Run = (args: ExecutionArgs) => unknown;

/**
 * An envelop/yoga plugin (structurally: `onExecute` and `onSubscribe` hooks), described here rather than
 * imported from graphql-yoga so that apps type-check it whatever version of yoga or envelop they run.
 */
export interface AuditContextPlugin {
  onExecute(payload: { args: ExecutionArgs; executeFn: Run; setExecuteFn(fn: Run): void }): void;
  onSubscribe(payload: { args: ExecutionArgs; subscribeFn: Run; setSubscribeFn(fn: Run): void }): void;
}

export interface AuditContextOptions {
  /**
   * Whether subscriptions run inside the audit context too. `false` suits servers whose subscriptions never
   * write audited entities: every promise a live stream keeps pending would otherwise carry the context
   * (with async ids of its own), about 1.4 KB per open subscription (measured in heap snapshots).
   * @default true
   */
  subscriptions?: boolean;
}

/**
 * Runs every operation (query, mutation, subscription) inside `withAuditContext`, so any entity change a
 * resolver makes, however deep, is attributed to the request's actor without passing it around.
 */
export function useAuditContext<Context extends object>(contextOf: (context: Context) => AuditContext | undefined, options: AuditContextOptions = {}): AuditContextPlugin {
  const aroundSubscriptions = options.subscriptions ?? true;
  return {
    onExecute({ executeFn, setExecuteFn }) {
      setExecuteFn((args) => {
        const audit = contextOf(args.contextValue as Context);
        return audit ? withAuditContext(audit, () => executeFn(args)) : executeFn(args);
      });
    },
    onSubscribe({ subscribeFn, setSubscribeFn }) {
      if (!aroundSubscriptions) return;
      setSubscribeFn((args) => {
        const audit = contextOf(args.contextValue as Context);
        return audit ? withAuditContext(audit, () => subscribeFn(args)) : subscribeFn(args);
      });
    },
  };
}
