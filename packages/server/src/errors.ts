/**
 * Every error the API answers with is JSON: `{ statusCode, error, message, field? }`, where
 * `field` names the part of the request that was wrong (`epochs`, `file`, `label`, ...). Anything
 * unexpected is a 500 whose message says only that, with the request id to find it in the log.
 */
import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DataError, DescentError } from '@descent/engine';

export class HttpError extends Error {
  constructor(readonly statusCode: number, message: string, readonly field?: string, readonly headers: Record<string, string> = {}) {
    super(message);
  }
}

export interface ErrorBody {
  statusCode: number;
  error: string;
  message: string;
  field?: string;
}

export const errorSchema = {
  type: 'object',
  properties: {
    statusCode: { type: 'integer' },
    error: { type: 'string' },
    message: { type: 'string' },
    field: { type: 'string' },
  },
  required: ['statusCode', 'error', 'message'],
} as const;

/** The error replies a route can give, for its schema (and so for the OpenAPI document). */
export function errorReplies(...codes: number[]): Record<number, typeof errorSchema> {
  return Object.fromEntries([401, 403, 429, ...codes].map((code) => [code, errorSchema]));
}

export function errorBody(statusCode: number, message: string, field?: string): ErrorBody {
  return { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', message: oneLine(message), ...(field ? { field } : {}) };
}

export function sendError(reply: FastifyReply, statusCode: number, message: string, field?: string): FastifyReply {
  return reply.code(statusCode).type('application/json; charset=utf-8').send(errorBody(statusCode, message, field));
}

/** Maps what handlers throw to a status, a message and a field. */
export function describeError(error: unknown): { statusCode: number; message: string; field?: string; expected: boolean } {
  if (error instanceof HttpError) return { statusCode: error.statusCode, message: error.message, field: error.field, expected: true };
  const fastifyError = error as FastifyError & { validationContext?: string; validation?: Array<{ instancePath: string; message?: string; params: Record<string, unknown> }> };
  if (fastifyError.validation && fastifyError.validation.length > 0) {
    const first = fastifyError.validation[0];
    const path = first.instancePath.replace(/^\//, '').replace(/\//g, '.');
    const missing = typeof first.params.missingProperty === 'string' ? first.params.missingProperty : undefined;
    const extra = typeof first.params.additionalProperty === 'string' ? first.params.additionalProperty : undefined;
    const field = [path, missing ?? extra].filter(Boolean).join('.') || fastifyError.validationContext || 'body';
    const allowed = Array.isArray(first.params.allowedValues) ? `: ${first.params.allowedValues.join(', ')}` : '';
    const what = extra ? `unknown field '${extra}'` : `${first.message ?? 'is invalid'}${allowed}`;
    return { statusCode: 400, message: `${field}: ${what}`, field, expected: true };
  }
  if (error instanceof DataError) return { statusCode: 422, message: error.message, field: 'file', expected: true };
  if (error instanceof DescentError && error.name === 'UsageError') return { statusCode: 400, message: error.message, expected: true };
  const status = fastifyError.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const field = fastifyError.code?.startsWith('FST_REQ_FILE') || fastifyError.code?.startsWith('FST_FILES') || fastifyError.code?.startsWith('FST_PARTS') ? 'file' : fastifyError.code?.startsWith('FST_ERR_CTP') ? 'body' : undefined;
    return { statusCode: status, message: fastifyError.message, field, expected: true };
  }
  return { statusCode: 500, message: 'internal error', expected: false };
}

/**
 * Replies with what the server has for every unknown path; `page` (the web app's index.html, for
 * its own routes) may answer a GET outside the API first.
 */
export function installErrorHandler(app: FastifyInstance, page?: (request: FastifyRequest, reply: FastifyReply) => FastifyReply | undefined): void {
  app.setErrorHandler((error, request, reply) => {
    const { statusCode, message, field, expected } = describeError(error);
    if (!expected) request.log.error({ err: error }, 'request failed');
    if (error instanceof HttpError) for (const [name, value] of Object.entries(error.headers)) reply.header(name, value);
    const text = expected ? message : `internal error (request ${request.id})`;
    void sendError(reply, statusCode, text, field);
  });
  app.setNotFoundHandler((request, reply) => {
    const api = /^\/(api|oauth)(\/|$)/.test(request.url) || request.url === '/health';
    if (page && !api && (request.method === 'GET' || request.method === 'HEAD') && page(request, reply)) return;
    void sendError(reply, 404, `no route ${request.method} ${request.url.split('?')[0].slice(0, 200)}`);
  });
}

export function oneLine(text: string, max = 500): string {
  const line = text.replace(/\s*\n\s*/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}
