/** Report notes quoted from what a gantry printed: onnxruntime's own messages, and the tail after a crash. */
import type { GantryProcess } from '../../support/gantry-process.js';

/** Terminal colour codes (pino-pretty, onnxruntime) would show as garbage in Markdown. */
// eslint-disable-next-line no-control-regex
const withoutColours = (text: string) => text.replace(/\x1b\[[0-9;]*m/g, '');

/** onnxruntime's own warnings and errors from a gantry's output (node placement, fallbacks), deduplicated. */
function onnxruntimeLines(gantry: GantryProcess): string[] {
  const seen = new Set<string>();
  for (const line of gantry.output().split('\n')) {
    if (/\[[WE]:onnxruntime/.test(line))
      seen.add(
        withoutColours(line)
          .replace(/^\S+ \S+ \[/, '[')
          .trim()
          .slice(0, 900),
      );
  }
  return [...seen].slice(0, 15);
}

/** A note quoting onnxruntime's messages from the gantry; undefined when it printed none. */
export function onnxruntimeNote(gantry: GantryProcess, label: string | undefined): string | undefined {
  const messages = onnxruntimeLines(gantry);
  if (messages.length === 0) return undefined;
  return `onnxruntime messages from the ${label} gantry:\n\n  \`\`\`\n${messages.map((message) => `  ${message}`).join('\n')}\n  \`\`\``;
}

/** A note quoting the last 3000 characters the gantry printed. */
export function outputTailNote(gantry: GantryProcess, label: string | undefined): string {
  return `${label} gantry output (last 3000 characters):\n\n  \`\`\`\n${withoutColours(gantry.output()).slice(-3000)}\n  \`\`\``;
}
