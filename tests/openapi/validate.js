#!/usr/bin/env node
// Validates govcloud's OpenAPI document with @apidevtools/swagger-parser: strict validation
// against the OpenAPI 3 schema, the parser's spec checks and resolution of every $ref, plus
// checks of our own that the parser does not make for OpenAPI 3 (a 3.0.x version, unique
// operationIds, a summary, declared tags and responses on every operation, path parameters
// that match the path template, defined security schemes).
//
//   node validate.js FILE_OR_URL
//   node validate.js --routes FILE_OR_URL ROUTES_FILE
//
// FILE_OR_URL is a path to the JSON document or an http(s):// URL to fetch it from (e.g. a
// running daemon's /v1/openapi.json). ROUTES_FILE has one `METHOD /path` per line, path
// templates in OpenAPI form (`/v1/users/{id}`); blank lines and lines starting with `#` are
// ignored. With --routes the document's (method, path) pairs must be exactly those.
//
// Exit status: 0 valid (and routes match); 1 invalid, mismatch, or a document or routes
// file that cannot be read or parsed; 2 wrong usage.
'use strict';

const fs = require('fs');
const SwaggerParser = require('@apidevtools/swagger-parser');

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
const FETCH_TIMEOUT_MS = 15000;

class InputError extends Error {}

function usage() {
  process.stderr.write(
    'usage: node validate.js FILE_OR_URL\n' +
      '       node validate.js --routes FILE_OR_URL ROUTES_FILE\n'
  );
  process.exit(2);
}

function parseJson(text, where) {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new InputError(`${where}: not valid JSON: ${e.message}`);
  }
}

async function load(source) {
  if (/^https?:\/\//i.test(source)) {
    let res;
    try {
      res = await fetch(source, {
        headers: { Accept: 'application/json' },
        signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
      });
    } catch (e) {
      const why = e.cause && e.cause.message ? e.cause.message : e.message;
      throw new InputError(`${source}: cannot fetch: ${why}`);
    }
    const text = await res.text();
    if (!res.ok) {
      const body = text.replace(/\s+/g, ' ').trim().slice(0, 300);
      throw new InputError(`${source}: HTTP ${res.status} ${res.statusText}${body ? `: ${body}` : ''}`);
    }
    return parseJson(text, source);
  }
  let text;
  try {
    text = fs.readFileSync(source, 'utf8');
  } catch (e) {
    throw new InputError(`${source}: cannot read: ${e.message}`);
  }
  return parseJson(text, source);
}

// The (METHOD, path) pairs of the document, as "METHOD /path" strings.
function operations(doc) {
  const ops = [];
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const m of METHODS) {
      if (item && item[m]) ops.push({ key: `${m.toUpperCase()} ${path}`, op: item[m] });
    }
  }
  return ops;
}

// Checks of our own on top of swagger-parser's (which, for OpenAPI 3, checks the document
// against the schema and resolves $refs but does not check these). `api` is dereferenced.
// Returns a list of messages.
function lint(api) {
  const problems = [];
  if (typeof api.openapi !== 'string' || !/^3\.0\.\d+$/.test(api.openapi)) {
    problems.push(`openapi: expected a 3.0.x version, got ${JSON.stringify(api.openapi)}`);
  }
  const declaredTags = new Set((api.tags || []).map((t) => t.name));
  const schemes = new Set(Object.keys((api.components && api.components.securitySchemes) || {}));
  const checkSecurity = (where, security) => {
    for (const req of security || []) {
      for (const name of Object.keys(req)) {
        if (!schemes.has(name)) problems.push(`${where}: security scheme '${name}' is not defined`);
      }
    }
  };
  checkSecurity('security', api.security);

  const seen = new Map();
  for (const [path, item] of Object.entries(api.paths || {})) {
    const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
    for (const m of METHODS) {
      const op = item[m];
      if (!op) continue;
      const key = `${m.toUpperCase()} ${path}`;
      if (!op.operationId) {
        problems.push(`${key}: no operationId`);
      } else if (seen.has(op.operationId)) {
        problems.push(`${key}: operationId '${op.operationId}' is also used by ${seen.get(op.operationId)}`);
      } else {
        seen.set(op.operationId, key);
      }
      if (!op.summary) problems.push(`${key}: no summary`);
      if (!Array.isArray(op.tags) || op.tags.length === 0) {
        problems.push(`${key}: no tags`);
      } else {
        for (const t of op.tags) {
          if (!declaredTags.has(t)) problems.push(`${key}: tag '${t}' is not declared in the top-level tags`);
        }
      }
      if (!op.responses || Object.keys(op.responses).length === 0) problems.push(`${key}: no responses`);
      checkSecurity(key, op.security);

      // Parameters: operation-level ones override path-level ones with the same name and in.
      const params = new Map();
      for (const p of item.parameters || []) params.set(`${p.in}:${p.name}`, p);
      const own = new Set();
      for (const p of op.parameters || []) {
        const id = `${p.in}:${p.name}`;
        if (own.has(id)) problems.push(`${key}: parameter '${p.name}' (in ${p.in}) is listed twice`);
        own.add(id);
        params.set(id, p);
      }
      const pathParams = [...params.values()].filter((p) => p.in === 'path');
      for (const name of templated) {
        const p = pathParams.find((q) => q.name === name);
        if (!p) problems.push(`${key}: path parameter '{${name}}' is not defined`);
        else if (p.required !== true) problems.push(`${key}: path parameter '${name}' must have required: true`);
      }
      for (const p of pathParams) {
        if (!templated.includes(p.name)) problems.push(`${key}: path parameter '${p.name}' is not in the path`);
      }
    }
  }
  return problems;
}

function printValidationError(err) {
  // For schema errors the message already lists every Ajv error with its JSON pointer.
  process.stdout.write(`openapi: INVALID\n${String(err.message).trimEnd()}\n`);
}

function readRoutes(file) {
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new InputError(`${file}: cannot read: ${e.message}`);
  }
  const routes = new Set();
  const bad = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const m = /^([A-Za-z]+)\s+(\/\S*)$/.exec(line);
    if (!m || !METHODS.includes(m[1].toLowerCase())) {
      bad.push(`${file}:${i + 1}: expected 'METHOD /path', got '${line}'`);
      return;
    }
    routes.add(`${m[1].toUpperCase()} ${m[2]}`);
  });
  if (bad.length) throw new InputError(bad.join('\n'));
  return routes;
}

function compareRoutes(doc, routes, routesFile) {
  const documented = new Set(operations(doc).map((o) => o.key));
  const byPath = (a, b) => {
    const [ma, pa] = a.split(' ');
    const [mb, pb] = b.split(' ');
    return pa === pb ? ma.localeCompare(mb) : pa.localeCompare(pb);
  };
  const notRouted = [...documented].filter((k) => !routes.has(k)).sort(byPath);
  const notDocumented = [...routes].filter((k) => !documented.has(k)).sort(byPath);
  if (!notRouted.length && !notDocumented.length) {
    process.stdout.write(`routes: match (${routes.size} routes in ${routesFile})\n`);
    return true;
  }
  process.stdout.write(`routes: MISMATCH with ${routesFile}\n`);
  if (notRouted.length) {
    process.stdout.write(`  in the document but not in the routes (${notRouted.length}):\n`);
    for (const k of notRouted) process.stdout.write(`    ${k}\n`);
  }
  if (notDocumented.length) {
    process.stdout.write(`  in the routes but not in the document (${notDocumented.length}):\n`);
    for (const k of notDocumented) process.stdout.write(`    ${k}\n`);
  }
  return false;
}

async function main(argv) {
  let source;
  let routesFile = null;
  if (argv[0] === '--routes') {
    if (argv.length !== 3) usage();
    [, source, routesFile] = argv;
  } else {
    if (argv.length !== 1 || argv[0].startsWith('-')) usage();
    [source] = argv;
  }

  const doc = await load(source);
  const routes = routesFile ? readRoutes(routesFile) : null;
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new InputError(`${source}: the document is not a JSON object`);
  }

  let ok = true;
  let api = null;
  try {
    // validate() dereferences in place: give it a copy and count on the original.
    api = await SwaggerParser.validate(structuredClone(doc));
  } catch (err) {
    printValidationError(err);
    ok = false;
  }
  if (ok) {
    const problems = lint(api);
    if (problems.length) {
      process.stdout.write('openapi: INVALID\n');
      for (const p of problems) process.stdout.write(`  ${p}\n`);
      ok = false;
    }
  }
  if (ok) {
    const nPaths = Object.keys(doc.paths || {}).length;
    const nOps = operations(doc).length;
    process.stdout.write(`openapi: valid (${nPaths} paths, ${nOps} operations)\n`);
  }
  if (routes && !compareRoutes(doc, routes, routesFile)) ok = false;
  return ok ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    if (err instanceof InputError) {
      process.stderr.write(`validate.js: ${err.message}\n`);
      process.exit(1);
    }
    process.stderr.write(`validate.js: ${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
  }
);
