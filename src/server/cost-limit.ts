import { complexityFromQuery } from '@pothos/plugin-complexity';
import { getOperationAST, getVariableValues, GraphQLError, Kind, type DocumentNode, type ExecutionArgs, type ExecutionResult } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { ErrorCode } from '../shared/errors.js';

/**
 * What the operation about to run costs, by the weights its fields declare (src/schema/cost.ts). Computed
 * from the arguments with the variables already coerced, since what costs (a search, a chart's range) is
 * often passed in variables. `undefined` when the variables do not coerce: execution reports that itself.
 */
function costOf(args: ExecutionArgs): number | undefined {
  const operation = getOperationAST(args.document, args.operationName);
  if (!operation) return undefined;
  const coerced = getVariableValues(args.schema, operation.variableDefinitions ?? [], (args.variableValues ?? {}) as Record<string, unknown>);
  if (coerced.errors) return undefined;
  // complexityFromQuery measures the document's first operation: hand it the chosen one with the fragments.
  const document: DocumentNode = { ...args.document, definitions: [operation, ...args.document.definitions.filter((d) => d.kind === Kind.FRAGMENT_DEFINITION)] };
  return complexityFromQuery(document, { schema: args.schema, ctx: args.contextValue as object, variables: coerced.coerced }).complexity;
}

function tooCostly(cost: number, maxCost: number): ExecutionResult {
  return {
    errors: [
      new GraphQLError(
        `This operation costs ${cost} points; at most ${maxCost} are allowed (MAX_QUERY_COST). totalCount, search, chart buckets and groupBy cost the most, and every alias counts again`,
        { extensions: { code: ErrorCode.BadUserInput, cost, maxCost } },
      ),
    ],
  };
}

/**
 * Refuses an operation whose cost passes `maxCost` before any of it runs (no resolver, no SQL), on
 * every transport: HTTP, SSE and graphql-ws all go through execute/subscribe.
 */
export function useCostLimit(maxCost: number): Plugin {
  const check = (args: ExecutionArgs, stop: (result: ExecutionResult) => void) => {
    const cost = costOf(args);
    if (cost !== undefined && cost > maxCost) stop(tooCostly(cost, maxCost));
  };
  return {
    onExecute({ args, setResultAndStopExecution }) {
      check(args, setResultAndStopExecution);
    },
    onSubscribe({ args, setResultAndStopExecution }) {
      check(args, setResultAndStopExecution);
    },
  };
}
