import { GraphQLError, validate, type ExecutionResult, ValuesOfCorrectTypeRule } from 'graphql';
import { handleStreamOrSingleExecutionResult, type Plugin } from 'graphql-yoga';
import { ErrorCode } from '../shared/errors.js';

function withCode(error: GraphQLError): GraphQLError {
  return new GraphQLError(error.message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    path: error.path,
    extensions: { ...error.extensions, code: ErrorCode.BadUserInput },
  });
}

const isVariableError = (error: GraphQLError) => error.path === undefined && error.message.startsWith('Variable "$');

function tagVariableErrors({ result, setResult }: { result: ExecutionResult; setResult: (result: ExecutionResult) => void }): void {
  if (result.errors?.some(isVariableError)) {
    setResult({ ...result, errors: result.errors.map((error) => (isVariableError(error) ? withCode(error) : error)) });
  }
}

/**
 * Bad values are the client's mistake and carry BAD_USER_INPUT, wherever graphql-js catches them:
 * an invalid literal (e.g. an unparsable DateTime) fails validation, an invalid variable fails coercion
 * before execution. Other validation failures (unknown fields…) keep yoga's GRAPHQL_VALIDATION_FAILED.
 */
export function useInputErrorCodes(): Plugin {
  return {
    onValidate({ params }) {
      return ({ result, setResult }) => {
        if (result.length === 0) return;
        const badValues = new Set(validate(params.schema, params.documentAST, [ValuesOfCorrectTypeRule]).map((e) => e.message));
        if (badValues.size > 0) setResult(result.map((error) => (badValues.has(error.message) ? withCode(error) : error)));
      };
    },
    onExecute() {
      return {
        onExecuteDone: (payload) => handleStreamOrSingleExecutionResult(payload, tagVariableErrors),
      };
    },
    // Whatever graphql-js or graphql-armor refused before execution (syntax, query limits) and left
    // without a code is the client's mistake too.
    onResultProcess({ result, setResult }) {
      if (Array.isArray(result) || !('errors' in result) || !result.errors?.some((e) => !e.extensions?.code)) return;
      const single = result as ExecutionResult;
      setResult({ ...single, errors: single.errors!.map((e) => (e.extensions?.code ? e : withCode(e))) });
    },
    onSubscribe() {
      return {
        onSubscribeResult: (payload) => handleStreamOrSingleExecutionResult(payload, tagVariableErrors),
      };
    },
  };
}
