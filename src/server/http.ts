import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { SECURITY_HEADERS } from './security-headers.js';

function refuse(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'application/json', connection: 'close' });
  res.end(JSON.stringify({ errors: [{ message, extensions: { code: 'BAD_REQUEST' } }] }));
}

/**
 * Caps request bodies before yoga reads them (its own default is 25 MB). A body must declare its length:
 * a chunked upload could otherwise stream any size.
 */
export function limitBodySize(handler: RequestListener, maxBytes: number): RequestListener {
  return (req: IncomingMessage, res: ServerResponse) => {
    if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') return handler(req, res);
    const length = req.headers['content-length'];
    if (length === undefined) {
      if (req.headers['transfer-encoding']) return refuse(res, 411, 'Send the body with a Content-Length header');
      return handler(req, res);
    }
    if (!/^\d+$/.test(length) || Number(length) > maxBytes) return refuse(res, 413, `The request body exceeds ${maxBytes} bytes`);
    return handler(req, res);
  };
}
