import { Injectable, NestMiddleware } from '@nestjs/common';
import { withAuditContext } from 'auditql';

type Request = { header(name: string): string | undefined; ip?: string };

/**
 * Runs the rest of the request inside `withAuditContext`, so every entity change it makes is attributed
 * to the acting user. Here the user comes from a header; a real app takes it from its authentication.
 */
@Injectable()
export class AuditActorMiddleware implements NestMiddleware {
  use(req: Request, _res: unknown, next: () => void): void {
    const id = req.header('x-user-id');
    withAuditContext({ author: id ? { id, name: req.header('x-user-name') ?? null } : null, ip: req.ip ?? null, userAgent: req.header('user-agent') ?? null }, next);
  }
}
