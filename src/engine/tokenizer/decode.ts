/**
 * The "clean up tokenization spaces" step of llama.cpp's detokenize, written so that the streaming
 * decoder (tokenizer.ts) can run it on bytes as they come and still produce exactly what the whole-
 * text passes produce.
 */

const APOS = 0x27;
const SPACE = 0x20;

/**
 * llama.cpp's clean_spaces passes over the detokenized bytes, for BPE vocabs that ask for it:
 *   1. " ?", " !", " .", " ,"  -> drop the space;
 *   2. " ' "                    -> "'" (drop both spaces);
 *   3. " 's", " 'm", " 're", " 've" -> drop the space (not before 't, 'd or 'll).
 * Written as three streaming transducers so the streaming decoder can run them with bounded
 * look-ahead; {@link cleanSpaces} runs them on a whole text.
 */
interface Transducer {
  push(byte: number, out: number[]): void;
  end(out: number[]): void;
}

/** Pass 1: a space is dropped when the next byte is one of ?!., */
class DropSpaceBeforePunct implements Transducer {
  private held = false;
  push(b: number, out: number[]): void {
    if (this.held) {
      if (!(b === 0x3f || b === 0x21 || b === 0x2e || b === 0x2c)) out.push(SPACE);
      this.held = false;
    }
    if (b === SPACE) this.held = true;
    else out.push(b);
  }
  end(out: number[]): void {
    if (this.held) out.push(SPACE);
    this.held = false;
  }
}

/**
 * Pass 2: " ' " becomes "'". (llama.cpp also overwrites the dropped trailing space with NUL, so the
 * byte after it cannot start another match: here the match's bytes are simply gone.)
 */
class CollapseLoneApostrophe implements Transducer {
  /** Undecided input: nothing, " ", or " '". */
  private pending: number[] = [];

  push(b: number, out: number[]): void {
    const p = this.pending;
    if (p.length === 2) {
      this.pending = [];
      if (b === SPACE) {
        out.push(APOS);
        return;
      }
      out.push(SPACE, APOS);
    } else if (p.length === 1) {
      if (b === APOS) {
        p.push(b);
        return;
      }
      this.pending = [];
      out.push(SPACE);
    }
    if (b === SPACE) this.pending = [SPACE];
    else out.push(b);
  }

  end(out: number[]): void {
    for (const b of this.pending) out.push(b);
    this.pending = [];
  }
}

/** Pass 3: drop the space in " 's", " 'm", " 're", " 've". */
class AttachContraction implements Transducer {
  private pending: number[] = [];

  push(b: number, out: number[]): void {
    const p = this.pending;
    p.push(b);
    this.drain(out, false);
  }

  private drain(out: number[], ended: boolean): void {
    const p = this.pending;
    while (p.length > 0) {
      if (p[0] !== SPACE) {
        out.push(p.shift()!);
        continue;
      }
      // p[0] is a space: its fate depends on up to three more bytes.
      if (p.length < 2) {
        if (!ended) return;
        out.push(p.shift()!);
        continue;
      }
      if (p[1] !== APOS) {
        out.push(p.shift()!);
        continue;
      }
      // " '" — llama.cpp needs the byte after the apostrophe to exist.
      if (p.length < 3) {
        if (!ended) return;
        out.push(p.shift()!);
        continue;
      }
      const x1 = p[2]!;
      if (x1 === 0x73 || x1 === 0x6d) {
        p.shift(); // " 's", " 'm"
        continue;
      }
      if (x1 === 0x74 || x1 === 0x64) {
        out.push(p.shift()!); // " 't", " 'd": keep
        continue;
      }
      if (p.length < 4) {
        if (!ended) return;
        out.push(p.shift()!);
        continue;
      }
      const x2 = p[3]!;
      if ((x1 === 0x72 && x2 === 0x65) || (x1 === 0x76 && x2 === 0x65)) p.shift(); // " 're", " 've"
      else out.push(p.shift()!);
    }
  }

  end(out: number[]): void {
    this.drain(out, true);
  }
}

/** The three clean-up passes chained, fed byte by byte. */
export class SpaceCleaner {
  private readonly passes: Transducer[] = [new DropSpaceBeforePunct(), new CollapseLoneApostrophe(), new AttachContraction()];

  /** Feeds bytes; returns the bytes that are final. */
  push(bytes: ArrayLike<number>): number[] {
    let data: ArrayLike<number> = bytes;
    for (const pass of this.passes) {
      const out: number[] = [];
      for (let i = 0; i < data.length; i++) pass.push(data[i]!, out);
      data = out;
    }
    return data as number[];
  }

  /** Ends the input; returns the remaining bytes. */
  end(): number[] {
    let carry: number[] = [];
    for (const pass of this.passes) {
      const out: number[] = [];
      for (const b of carry) pass.push(b, out);
      pass.end(out);
      carry = out;
    }
    return carry;
  }
}

/** clean_spaces on a whole byte array. */
export function cleanSpaces(bytes: Uint8Array): Uint8Array {
  const cleaner = new SpaceCleaner();
  const head = cleaner.push(bytes);
  const tail = cleaner.end();
  const out = new Uint8Array(head.length + tail.length);
  out.set(head);
  out.set(tail, head.length);
  return out;
}
