import { complexityFromQuery } from '@pothos/plugin-complexity';
import {
  getNamedType,
  getNullableType,
  getOperationAST,
  getVariableValues,
  GraphQLError,
  isInputObjectType,
  isInterfaceType,
  isListType,
  isObjectType,
  Kind,
  typeFromAST,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type FragmentDefinitionNode,
  type GraphQLNamedType,
  type GraphQLSchema,
  type InlineFragmentNode,
  type NamedTypeNode,
  type OperationDefinitionNode,
  type SelectionSetNode,
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
  const constant = constantCostOf(args, operation);
  if (constant !== undefined) return constant;
  return costWithVariables(args, operation);
}

function costWithVariables(args: ExecutionArgs, operation: OperationDefinitionNode): number | undefined {
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
  // complexityFromQuery coerces the variables once more, by their declared types: a list of input objects
  // is declared as JSON for it (taken as it is), so that 500 entries are not coerced a third time (~4 µs
  // per entry, measured in a profile of lists of 500).
  const loose = asGiven.length > 0 && args.schema.getType('JSON') ? { ...operation, variableDefinitions: definitions.map((d) => (asGiven.includes(d) ? { ...d, type: AS_JSON } : d)) } : operation;
  return complexityOf(args, loose, coerced.coerced);
}

const AS_JSON: NamedTypeNode = { kind: Kind.NAMED_TYPE, name: { kind: Kind.NAME, value: 'JSON' } };

function complexityOf(args: ExecutionArgs, operation: OperationDefinitionNode, variables: Record<string, unknown>): number {
  // complexityFromQuery measures the document's first operation: hand it the chosen one with the fragments.
  const document: DocumentNode = { ...args.document, definitions: [operation, ...args.document.definitions.filter((d) => d.kind === Kind.FRAGMENT_DEFINITION)] };
  return complexityFromQuery(document, { schema: args.schema, ctx: args.contextValue as object, variables }).complexity;
}

/**
 * The costs of operations that select no field whose cost depends on its arguments (`logEvent`, a
 * subscription without `after`, the key operations): the same for every request with that document, so
 * computed once. A request's document comes from yoga's parse cache, the same object for the same text;
 * walking the selection and coercing the variables again took ~30 µs per `logEvent` (measured).
 */
const constantCosts = new WeakMap<DocumentNode, WeakMap<GraphQLSchema, Map<string, number | null>>>();

function constantCostOf(args: ExecutionArgs, operation: OperationDefinitionNode): number | undefined {
  let bySchema = constantCosts.get(args.document);
  if (!bySchema) constantCosts.set(args.document, (bySchema = new WeakMap()));
  let byOperation = bySchema.get(args.schema);
  if (!byOperation) bySchema.set(args.schema, (byOperation = new Map()));
  const name = operation.name?.value ?? '';
  let cost = byOperation.get(name);
  if (cost === undefined) {
    const fragments = new Map(
      args.document.definitions.filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION).map((d) => [d.name.value, d]),
    );
    const root = args.schema.getRootType(operation.operation);
    const variable = !root || dependsOnArguments(args.schema, root, operation.selectionSet, fragments, new Set());
    // Without its variable definitions: complexityFromQuery would coerce (and require) the variables.
    cost = variable ? null : complexityOf(args, { ...operation, variableDefinitions: [] }, {});
    byOperation.set(name, cost);
  }
  return cost ?? undefined;
}

/** Whether a field selected here (through fragments too) computes its cost from its arguments. */
function dependsOnArguments(
  schema: GraphQLSchema,
  type: GraphQLNamedType,
  selectionSet: SelectionSetNode,
  fragments: Map<string, FragmentDefinitionNode>,
  visited: Set<string>,
): boolean {
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FIELD) {
      if (selection.name.value.startsWith('__')) continue;
      const field = isObjectType(type) || isInterfaceType(type) ? type.getFields()[selection.name.value] : undefined;
      if (!field || typeof field.extensions?.complexity === 'function') return true;
      if (selection.selectionSet && dependsOnArguments(schema, getNamedType(field.type), selection.selectionSet, fragments, visited)) return true;
    } else {
      let fragment: FragmentDefinitionNode | InlineFragmentNode | undefined;
      if (selection.kind === Kind.FRAGMENT_SPREAD) {
        if (visited.has(selection.name.value)) continue;
        visited.add(selection.name.value);
        fragment = fragments.get(selection.name.value);
      } else {
        fragment = selection;
      }
      if (!fragment) return true;
      const condition = fragment.typeCondition ? schema.getType(fragment.typeCondition.name.value) : type;
      if (!condition || dependsOnArguments(schema, condition, fragment.selectionSet, fragments, visited)) return true;
    }
  }
  return false;
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
