// A streaming check of a JSON body's nesting depth, fed chunk by chunk while the body arrives, so a
// deeply nested body is refused at the byte that goes too deep — before it is buffered whole or parsed.
// It does not validate JSON (JSON.parse does that once, afterwards); it only counts brackets outside strings.
import { MeshError } from '../../sdk/errors.ts';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

export class JsonDepthGuard {
  readonly #max: number;
  #depth = 0;
  #inString = false;
  #escaped = false;

  constructor(maxDepth: number) {
    this.#max = maxDepth;
  }

  /** Scans the next chunk; throws INVALID_REQUEST once the nesting passes the limit. */
  feed(chunk: Buffer): void {
    let depth = this.#depth;
    let inString = this.#inString;
    let escaped = this.#escaped;
    const end = chunk.length;
    // The next backslash at or after i (-1: none left in this chunk), found once and reused.
    let backslash = -2;
    for (let i = 0; i < end; i++) {
      if (inString) {
        if (escaped) {
          escaped = false;
          continue;
        }
        // Most of a request body is string content: jump to its next quote or backslash natively.
        const quote = chunk.indexOf(QUOTE, i);
        if (backslash !== -1 && backslash < i) backslash = chunk.indexOf(BACKSLASH, i);
        if (quote === -1 && backslash === -1) break;
        if (backslash !== -1 && (quote === -1 || backslash < quote)) {
          i = backslash;
          escaped = true;
        } else {
          i = quote;
          inString = false;
        }
        continue;
      }
      const c = chunk[i];
      if (c === QUOTE) {
        inString = true;
      } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
        if (++depth > this.#max) {
          throw new MeshError('INVALID_REQUEST', `request body nests JSON deeper than ${this.#max} levels (limits.maxJsonDepth)`, { details: { limit: this.#max } });
        }
      } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
        depth--;
      }
    }
    this.#depth = depth;
    this.#inString = inString;
    this.#escaped = escaped;
  }
}
