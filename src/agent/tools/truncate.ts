/**
 * Output caps for tool results. A tool result goes back into the model's
 * context on every later turn, so one runaway `cat` must not eat the context
 * window. Every cut leaves a marker the model can read and act on
 * (`[… truncated: 1234 more lines]`), never a silent loss.
 */

/** Default caps for one tool result. */
export const MAX_OUTPUT_LINES = 2000;
export const MAX_OUTPUT_BYTES = 50 * 1024;

export interface TruncateOptions {
  /** Keep at most this many lines (default {@link MAX_OUTPUT_LINES}). */
  maxLines?: number;
  /** Keep at most this many UTF-8 bytes (default {@link MAX_OUTPUT_BYTES}). */
  maxBytes?: number;
  /**
   * `head` keeps the beginning (file listings, search results); `head-tail`
   * keeps the beginning and the end and cuts the middle (command output, where
   * the error or summary is usually last). Default `head`.
   */
  keep?: 'head' | 'head-tail';
}

export interface Truncated {
  text: string;
  truncated: boolean;
}

/**
 * Cuts `text` to the line and byte caps. Cuts fall on line boundaries where
 * possible and never split a UTF-8 character. The marker is not counted
 * against the caps (it is short and must always be visible).
 */
export function truncateOutput(text: string, options: TruncateOptions = {}): Truncated {
  const maxLines = Math.max(1, options.maxLines ?? MAX_OUTPUT_LINES);
  const maxBytes = Math.max(16, options.maxBytes ?? MAX_OUTPUT_BYTES);
  if (Buffer.byteLength(text) <= maxBytes && countLines(text) <= maxLines) return { text, truncated: false };
  const lines = text.split('\n');
  return options.keep === 'head-tail'
    ? headTail(lines, maxLines, maxBytes)
    : headOnly(lines, maxLines, maxBytes);
}

function countLines(text: string): number {
  let n = 1;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

/** Takes whole lines from the front while both budgets allow; a first line longer than the budget is cut inside. */
function takeLines(
  lines: readonly string[],
  maxLines: number,
  maxBytes: number,
): { kept: string[]; bytes: number } {
  const kept: string[] = [];
  let bytes = 0;
  for (const line of lines) {
    if (kept.length >= maxLines) break;
    const size = Buffer.byteLength(line) + 1;
    if (bytes + size > maxBytes) {
      if (kept.length === 0) {
        const cut = cutBytes(line, maxBytes);
        kept.push(cut);
        bytes += Buffer.byteLength(cut);
      }
      break;
    }
    kept.push(line);
    bytes += size;
  }
  return { kept, bytes };
}

function headOnly(lines: readonly string[], maxLines: number, maxBytes: number): Truncated {
  const { kept } = takeLines(lines, maxLines, maxBytes);
  const partialLine = kept.length > 0 && kept[kept.length - 1] !== lines[kept.length - 1];
  const remaining = lines.length - kept.length;
  const marker = partialLine
    ? `[… truncated: line ${kept.length} cut at ${maxBytes} bytes; ${remaining} more lines]`
    : `[… truncated: ${remaining} more lines]`;
  return { text: `${kept.join('\n')}\n${marker}`, truncated: true };
}

function headTail(lines: readonly string[], maxLines: number, maxBytes: number): Truncated {
  const headLines = Math.max(1, Math.ceil(maxLines / 2));
  const tailLines = Math.max(0, maxLines - headLines);
  const head = takeLines(lines, headLines, Math.ceil(maxBytes / 2));
  const rest = lines.slice(head.kept.length);
  const tailRev = takeLines([...rest].reverse(), tailLines, maxBytes - head.bytes);
  // A tail line cut inside would start mid-line; drop it rather than show half a line.
  const tail = tailRev.kept.filter((l, i) => l === rest[rest.length - 1 - i]).reverse();
  const omitted = lines.length - head.kept.length - tail.length;
  const headPartial = head.kept.length > 0 && head.kept[head.kept.length - 1] !== lines[head.kept.length - 1];
  const marker = headPartial
    ? `[… truncated: a long line was cut and ${omitted} lines omitted …]`
    : `[… truncated: ${omitted} lines omitted …]`;
  return { text: [...head.kept, marker, ...tail].join('\n'), truncated: true };
}

/** The longest prefix of `s` whose UTF-8 encoding fits in `maxBytes`, without splitting a character. */
export function cutBytes(s: string, maxBytes: number): string {
  if (Buffer.byteLength(s) <= maxBytes) return s;
  const buf = Buffer.from(s, 'utf8');
  let end = Math.max(0, maxBytes);
  // Step back over UTF-8 continuation bytes (10xxxxxx) so the cut lands on a character start.
  while (end > 0 && ((buf[end] ?? 0) & 0xc0) === 0x80) end--;
  return buf.subarray(0, end).toString('utf8');
}

/** Cuts one line to `maxChars` characters with a visible `…` suffix. */
export function truncateLine(line: string, maxChars: number): string {
  return line.length > maxChars ? `${line.slice(0, maxChars)}… [${line.length - maxChars} more chars]` : line;
}
