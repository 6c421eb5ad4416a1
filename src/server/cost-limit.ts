import { complexityFromQuery } from '@pothos/plugin-complexity';
import {
  getNamedType,
  getNullableType,
  getOperationAST,
  getVariableValues,
  GraphQLError,
  isInputObjectType,
  isListType,
  Kind,
  typeFromAST,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type GraphQLSchema,
  type VariableDefinitionNode,
} from 'graphql';
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
  const given = (args.variableValues ?? {}) as Record<string, unknown>;
  // Lists of input objects (logEvents' inputs) are passed as given: no cost depends on what is in them,
  // only on how many there are, and coercing a list of 500 entries here as well as in execution cost
  // ~9 µs per entry (measured). Execution coerces and checks them.
  const definitions = operation.variableDefinitions ?? [];
  const asGiven = definitions.filter((definition) => isListOfInputObjects(args.schema, definition));
  const coerced = getVariableValues(args.schema, asGiven.length > 0 ? definitions.filter((definition) => !asGiven.includes(definition)) : definitions, given);
  if (coerced.errors) return undefined;
  for (const definition of asGiven) {
    const value = given[definition.variable.name.value];
    if (value !== undefined) coerced.coerced[definition.variable.name.value] = Array.isArray(value) ? value : [value];
  }
  // complexityFromQuery measures the document's first operation: hand it the chosen one with the fragments.
  const document: DocumentNode = { ...args.document, definitions: [operation, ...args.document.definitions.filter((d) => d.kind === Kind.FRAGMENT_DEFINITION)] };
  return complexityFromQuery(document, { schema: args.schema, ctx: args.contextValue as object, variables: coerced.coerced }).complexity;
}

function isListOfInputObjects(schema: GraphQLSchema, definition: VariableDefinitionNode): boolean {
  const type = typeFromAST(schema, definition.type);
  const list = type && getNullableType(type);
  return isListType(list) && isInputObjectType(getNamedType(list));
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
