/**
 * Errors as OpenAI's API sends them: an HTTP status and `{"error": {"message", "type", "param",
 * "code"}}`. Every refusal of `r1 serve` is an ApiError, so a client library (the `openai`
 * package, LangChain, curl) reads it the way it reads OpenAI's own.
 */

export type ApiErrorType = 'invalid_request_error' | 'authentication_error' | 'rate_limit_error' | 'server_error';

export interface ApiErrorBody {
  error: { message: string; type: ApiErrorType; param: string | null; code: string | null };
}

export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    message: string,
    readonly type: ApiErrorType,
    readonly code: string | null,
    readonly param: string | null = null,
    /** Extra response headers (Retry-After, Allow, WWW-Authenticate). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  get body(): ApiErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** 400: the request cannot be used as it is; `param` names the field. */
export function badRequest(message: string, param: string | null = null, code: string | null = 'invalid_value'): ApiError {
  return new ApiError(400, message, 'invalid_request_error', code, param);
}
