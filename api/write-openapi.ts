// Entry point of `npm run openapi:lint`: writes the document the api serves at /openapi.json to a file,
// so the linters (Spectral, Redocly) read exactly what clients get, without starting the api.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { openApiDocument } from './http/openapi.js';

const target = process.argv[2] ?? '.tmp/openapi.json';
mkdirSync(dirname(target), { recursive: true });
writeFileSync(target, `${JSON.stringify(openApiDocument, null, 2)}\n`);
