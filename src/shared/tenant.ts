/** The tenant of single-tenant deployments, and of capture contexts that name none. */
export const DEFAULT_TENANT = 'default';
