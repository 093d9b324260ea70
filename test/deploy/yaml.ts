import assert from 'node:assert/strict';
import { parse, parseAllDocuments } from 'yaml';

/** Parses a YAML document (compose output, Prometheus configs and rules) for structural checks. */
export function parseYaml(text: string): any {
  return parse(text);
}

/** Parses every document of a multi-document file (Kubernetes manifests), failing on YAML errors. */
export function parseYamlDocuments(text: string, file: string): any[] {
  return parseAllDocuments(text).map((document) => {
    assert.deepEqual(document.errors, [], `${file}: YAML errors`);
    return document.toJS();
  });
}
