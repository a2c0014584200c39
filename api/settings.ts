/** The api's tuning constants: what scripts and tests may rely on without reaching into the composition root. */

/** The api answers 503 within this bound when MongoDB is away. */
export const API_MONGO_TIMEOUT_MS = 1500;
/** The api answers 202 within about this bound when Redis is frozen or away. */
export const QUEUE_CALL_TIMEOUT_MS = 800;
