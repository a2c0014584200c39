/**
 * The provider answered, and refused the request itself (a 4xx other than 429: a refund of a declined
 * charge, an idempotency key reused with another body, an unknown charge). Retrying the same request
 * cannot help, and it says nothing about the provider's health, so it never counts against the breaker.
 * Not part of the saga's port: the saga sees an ordinary error (its attempt fails and is retried).
 */
export class PaymentRequestError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code?: string,
  ) {
    super(message);
    this.name = 'PaymentRequestError';
  }
}
