/**
 * The session: the server keeps the token in an HttpOnly cookie the page cannot read, so the page
 * asks the server who it is (GET /api/v1/session) and signs in and out through the API.
 */
import { ApiError, getJson, request, sendJson, type Me } from './api.js';

export async function currentSession(): Promise<Me | null> {
  try {
    return await getJson<Me>('/api/v1/session');
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return null;
    throw error;
  }
}

export async function signIn(username: string, password: string): Promise<Me> {
  const answer = await sendJson<{ user: string; scope: Me['scope'] }>('POST', '/api/v1/session', { username, password });
  return { user: answer.user, scope: answer.scope };
}

export async function signOut(): Promise<void> {
  await request('/api/v1/session', { method: 'DELETE' }).catch(() => undefined);
}
