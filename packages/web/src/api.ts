/**
 * The server's REST API, as the app uses it: same origin, the session cookie (HttpOnly, set by
 * POST /api/v1/session) sent by the browser, JSON in and out. Errors are the server's one-line
 * messages as ApiError.
 */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

async function failure(response: Response): Promise<ApiError> {
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = (await response.json()) as { message?: string; error_description?: string };
    message = body.message ?? body.error_description ?? message;
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(response.status, message);
}

/** Listeners told when the server says the session is over (401), so the app shows Sign in. */
const signedOut = new Set<() => void>();
export function onSignedOut(listener: () => void): () => void {
  signedOut.add(listener);
  return () => signedOut.delete(listener);
}

export async function request(path: string, init: RequestInit = {}): Promise<Response> {
  const response = await fetch(path, { ...init, credentials: 'same-origin', headers: { accept: 'application/json', ...init.headers } });
  if (!response.ok) {
    if (response.status === 401 && path !== '/api/v1/session') for (const listener of signedOut) listener();
    throw await failure(response);
  }
  return response;
}

export async function getJson<T>(path: string): Promise<T> {
  return (await request(path)).json() as Promise<T>;
}

export async function sendJson<T>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await request(path, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  return (response.status === 204 ? undefined : await response.json()) as T;
}

/**
 * A multipart upload with progress (fetch reports no upload progress; XMLHttpRequest does).
 * `onProgress` gets the fraction sent, 0 to 1.
 */
export function upload<T>(path: string, form: FormData, onProgress: (fraction: number) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', path);
    xhr.responseType = 'json';
    xhr.setRequestHeader('accept', 'application/json');
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    };
    xhr.onload = () => {
      const body = xhr.response as { message?: string } | null;
      if (xhr.status >= 200 && xhr.status < 300) resolve(body as T);
      else {
        if (xhr.status === 401) for (const listener of signedOut) listener();
        reject(new ApiError(xhr.status, body?.message ?? `${xhr.status} ${xhr.statusText}`));
      }
    };
    xhr.onerror = () => reject(new ApiError(0, 'the upload failed: the server could not be reached'));
    xhr.send(form);
  });
}

// ---- the shapes the server answers with (docs/api.md) -------------------------------------

export interface Me {
  user: string | null;
  scope: 'predict' | 'train' | 'admin';
  expires_at?: string | null;
}

export interface Dataset {
  name: string;
  height: number;
  width: number;
  classes: string[];
  counts: { train: number[]; test: number[] };
  images: number;
  created_at: string;
}

export interface DatasetImage {
  id: number;
  split: 'train' | 'test';
  label: number;
  class: string;
  source: string;
  thumbnail: string;
}

export type History = Record<string, Array<number | null>>;

export type JobStatus = 'queued' | 'running' | 'complete' | 'stopped-early' | 'terminated-nan' | 'interrupted' | 'failed' | 'cancelled';

export interface Job {
  id: number;
  status: JobStatus;
  dataset: string | null;
  definition: Record<string, unknown>;
  epochs: number;
  epochs_done: number;
  history: History;
  model_id: number | null;
  message: string | null;
  started_at: string;
  finished_at: string | null;
}

export const FINISHED: ReadonlySet<JobStatus> = new Set(['complete', 'stopped-early', 'terminated-nan', 'failed', 'cancelled']);

export interface ModelSummary {
  id: number;
  name: string;
  dataset: string | null;
  test_loss: number | null;
  test_accuracy: number | null;
  created_at: string;
  created_by: string | null;
  predictions: number;
}

export interface ModelDetail extends ModelSummary {
  class_names: string[];
  architecture: Record<string, unknown>;
  confusion: number[][] | null;
  history: History | null;
  hyperparameters: Record<string, unknown> | null;
  files: Record<string, string>;
}

export interface ServerPrediction {
  id?: number;
  label: number;
  class: string;
  probabilities: number[];
  top: Array<{ label: number; class: string; probability: number }>;
}

export interface StoredPrediction {
  id: number;
  model_id: number;
  model: string | null;
  created_at: string;
  created_by: string | null;
  origin: string;
  label: number;
  class: string | null;
  true_label: number | null;
  true_class: string | null;
  probability: number;
  image: string;
}
