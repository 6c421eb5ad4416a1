import type { ValueTransformer } from 'typeorm';

/**
 * A column transformer that cannot read old values (`legacy:…`), as an app's column may after its format
 * changed: reading such a row throws, writing by criteria does not read it.
 */
export const unreadableLegacyCodes: ValueTransformer = {
  to: (value: string) => value,
  from: (value: string) => {
    if (value.startsWith('legacy:')) throw new Error(`unparseable code ${value}`);
    return value;
  },
};
