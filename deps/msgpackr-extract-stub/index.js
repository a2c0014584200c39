// msgpackr (used by BullMQ) loads its native accelerator in a try/catch and runs in pure JS when
// loading fails. Throwing here selects that path deliberately; see package.json's "overrides".
throw new Error('msgpackr-extract is not installed in this project (pure-JS msgpackr is used)');
