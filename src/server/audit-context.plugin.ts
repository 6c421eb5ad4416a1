import type { Plugin } from 'graphql-yoga';
import { withAuditContext, type AuditContext } from '../audit/context.js';

/**
 * Runs every operation (query, mutation, subscription) inside `withAuditContext`, so any entity change a
 * resolver makes, however deep, is attributed to the request's actor without passing it around.
 */
export function useAuditContext<Context extends object>(contextOf: (context: Context) => AuditContext | undefined): Plugin<Context> {
  return {
    onExecute({ executeFn, setExecuteFn }) {
      setExecuteFn((args) => {
        const audit = contextOf(args.contextValue as Context);
        return audit ? withAuditContext(audit, () => executeFn(args)) : executeFn(args);
      });
    },
    onSubscribe({ subscribeFn, setSubscribeFn }) {
      setSubscribeFn((args) => {
        const audit = contextOf(args.contextValue as Context);
        return audit ? withAuditContext(audit, () => subscribeFn(args)) : subscribeFn(args);
      });
    },
  };
}
