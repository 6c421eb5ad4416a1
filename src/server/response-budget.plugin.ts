import { GraphQLError, type ExecutionResult } from 'graphql';
import { handleStreamOrSingleExecutionResult, type Plugin } from 'graphql-yoga';
import type { GraphQLContext } from '../schema/context.js';
import { ErrorCode } from '../shared/errors.js';

/**
 * A list cut by the response budget still returns what fits; this adds the error that says so, with the
 * cursor to continue from, next to the data (GraphQL lets a response carry both).
 */
export function useResponseBudgetErrors(): Plugin {
  return {
    onExecute({ args }) {
      const budget = (args.contextValue as Partial<GraphQLContext>).responseBudget;
      return {
        onExecuteDone: (payload) =>
          handleStreamOrSingleExecutionResult(payload, ({ result, setResult }: { result: ExecutionResult; setResult: (result: ExecutionResult) => void }) => {
            if (!budget || budget.cuts.length === 0) return;
            const errors = budget.cuts.map(
              (cut) =>
                new GraphQLError(
                  `The response reached MAX_RESPONSE_BYTES (${budget.limit} bytes): this list was cut after ${cut.returned} entries; ask again with "after" (or "before") to continue`,
                  { path: cut.path, extensions: { code: ErrorCode.ResponseTooLarge, after: cut.after, maxResponseBytes: budget.limit } },
                ),
            );
            setResult({ ...result, errors: [...(result.errors ?? []), ...errors] });
          }),
      };
    },
  };
}
