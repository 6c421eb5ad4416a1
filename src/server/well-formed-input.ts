import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { ErrorCode } from '../shared/errors.js';

/** In a `u` regular expression a surrogate pair is one code point; only a lone surrogate is in category Cs. */
const LONE_SURROGATE = /\p{Cs}/u;

/** The path (`$input.data.name`) of the first string or object key in `value` that is not well-formed UTF-16, if any. */
export function findLoneSurrogate(value: unknown, path: string): string | undefined {
  const stack: Array<[unknown, string]> = [[value, path]];
  while (stack.length > 0) {
    const [current, at] = stack.pop()!;
    if (typeof current === 'string') {
      if (LONE_SURROGATE.test(current)) return at;
    } else if (Array.isArray(current)) {
      current.forEach((item, i) => stack.push([item, `${at}[${i}]`]));
    } else if (typeof current === 'object' && current !== null) {
      for (const [key, item] of Object.entries(current)) {
        if (LONE_SURROGATE.test(key)) return `${at} (a key)`;
        stack.push([item, `${at}.${key}`]);
      }
    }
  }
  return undefined;
}

function refusal(path: string): GraphQLError {
  return new GraphQLError(`${path} contains a lone UTF-16 surrogate, which is not text; send well-formed Unicode`, {
    extensions: { code: ErrorCode.BadUserInput, argument: path.replace(/^\$/, '').split(/[.[ ]/)[0] },
  });
}

const SURROGATE_SYNTAX = /Invalid Unicode escape sequence: "\\u\{?0*[dD][89a-fA-F]|Invalid character within String: U\+D[89A-F]/;

/**
 * Refuses lone UTF-16 surrogates (`"\ud800"`) in every string a client sends, with BAD_USER_INPUT: stored,
 * they become invalid UTF-8, read back as U+FFFD, and filters stop matching them. JSON variables may carry
 * them in any value or key; graphql-js already refuses them inside the document, as a syntax error that is
 * given the same code here. Works on every transport (HTTP, SSE, graphql-ws), before any resolver runs.
 */
export function useWellFormedInput(): Plugin {
  const check = (variables: unknown, stop: (result: { errors: GraphQLError[] }) => void) => {
    if (variables == null) return;
    const path = findLoneSurrogate(variables, '$');
    if (path !== undefined) stop({ errors: [refusal(path)] });
  };
  return {
    onParse() {
      return ({ result }) => {
        if (result instanceof GraphQLError && SURROGATE_SYNTAX.test(result.message)) {
          (result.extensions as Record<string, unknown>).code = ErrorCode.BadUserInput;
        }
      };
    },
    onExecute({ args, setResultAndStopExecution }) {
      check(args.variableValues, setResultAndStopExecution);
    },
    onSubscribe({ args, setResultAndStopExecution }) {
      check(args.variableValues, setResultAndStopExecution);
    },
  };
}
