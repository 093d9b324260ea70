import assert from 'node:assert/strict';
import { parse, parseAllDocuments } from 'yaml';
import type { JsonBody } from '../../support/json-body.js';

/**
 * Parses a YAML document (compose output, Prometheus configs and rules) for structural checks. The document is
 * typed like a reply's JSON body: indexed freely, the checks that follow assert its shape.
 */
export function parseYaml(text: string): JsonBody {
  return parse(text);
}

/** Parses every document of a multi-document file (Kubernetes manifests), failing on YAML errors. */
export function parseYamlDocuments(text: string, file: string): JsonBody[] {
  return parseAllDocuments(text).map((document) => {
    assert.deepEqual(document.errors, [], `${file}: YAML errors`);
    return document.toJS();
  });
}
