/** A model version as `models push` and `models show` print it: state, sizes and its signature. */
import type { TensorMetadata, VersionDetail } from '../client/index.js';
import { formatShape } from '../protocol/shape-text.js';
import { formatBytes } from './progress.js';
import { formatTable } from './output.js';

function tensorRows(kind: string, tensors: TensorMetadata[] | undefined): string {
  if (tensors === undefined || tensors.length === 0) return `${kind}: (not known yet: the version has not loaded)\n`;
  const table = formatTable(
    ['NAME', 'DATATYPE', 'SHAPE'],
    tensors.map((tensor) => [tensor.name, tensor.datatype, formatShape(tensor.shape)]),
  );
  return `${kind}:\n${table
    .trimEnd()
    .split('\n')
    .map((row) => `  ${row}`)
    .join('\n')}\n`;
}

export function formatVersionDetail(detail: VersionDetail): string {
  const lines = [`${detail.name} version ${detail.version}  ${detail.state}${detail.reason === undefined ? '' : `: ${detail.reason}`}`];
  const facts = [`size ${formatBytes(detail.size)}`, `created ${detail.createdAt}`];
  if (detail.sha256 !== undefined) facts.push(`sha256 ${detail.sha256.slice(0, 12)}…`);
  if (detail.warmup !== undefined) facts.push(`warm-up ${detail.warmup.status}${detail.warmup.reason === undefined ? '' : ` (${detail.warmup.reason})`}`);
  lines.push(`  ${facts.join(', ')}`);
  if (detail.unservedReason !== undefined) lines.push(`  not served: ${detail.unservedReason}`);
  return `${lines.join('\n')}\n${tensorRows('inputs', detail.inputs)}${tensorRows('outputs', detail.outputs)}`;
}
