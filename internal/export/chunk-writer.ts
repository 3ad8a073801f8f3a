/**
 * Writes a file as fixed-size chunks (exactly `chunkBytes`, the last one
 * shorter), handing each to `store`, in order. Text is encoded as UTF-8 into
 * one of two reused buffers: one chunk is being stored while the next one
 * fills, and when that one is full before the store has finished, `write`
 * returns a promise to wait on. So a file of any size costs two chunks of
 * memory and allocates no buffer per row or per chunk.
 */
export class ChunkWriter {
  private filling: Buffer;
  private spare: Buffer;
  private offset = 0;
  /** UTF-8 of the text being written (a text longer than the space left is split across chunks). */
  private scratch = Buffer.allocUnsafe(64 * 1024);
  /** The store in flight, if any (it reads `spare`). */
  private storing: Promise<void> | undefined;
  private chunks = 0;
  private bytes = 0;

  constructor(
    private readonly chunkBytes: number,
    private readonly store: (chunk: Buffer, n: number) => Promise<void>,
  ) {
    this.filling = Buffer.allocUnsafe(chunkBytes);
    this.spare = Buffer.allocUnsafe(chunkBytes);
  }

  /** Chunks stored so far. */
  get chunkCount(): number {
    return this.chunks;
  }

  /** Bytes stored so far. */
  get byteCount(): number {
    return this.bytes;
  }

  /**
   * Appends `text`; returns a promise when the caller must wait (both buffers
   * are in use), which it must await before writing again, else undefined.
   */
  write(text: string): Promise<void> | undefined {
    if (text.length === 0) return undefined;
    const room = this.chunkBytes - this.offset;
    // At most 3 bytes of UTF-8 per UTF-16 unit: if that fits, encode straight into the chunk.
    if (text.length * 3 <= room) {
      this.offset += this.filling.write(text, this.offset);
      return this.offset === this.chunkBytes ? this.flush() : undefined;
    }
    if (this.scratch.length < text.length * 3) this.scratch = Buffer.allocUnsafe(text.length * 3);
    const length = this.scratch.write(text, 0);
    return this.copy(0, length);
  }

  /** Stores what is left and waits for every store; rejects with a store's failure. */
  async close(): Promise<void> {
    if (this.offset > 0) await this.flush();
    await this.storing;
  }

  /** Waits for the store in flight, whatever its outcome (after a failure, before giving up the attempt). */
  async idle(): Promise<void> {
    await this.storing?.catch(() => undefined);
  }

  private async copy(from: number, to: number): Promise<void> {
    while (from < to) {
      const n = Math.min(to - from, this.chunkBytes - this.offset);
      this.scratch.copy(this.filling, this.offset, from, from + n);
      this.offset += n;
      from += n;
      if (this.offset === this.chunkBytes) await this.flush();
    }
  }

  /** Waits for the store in flight, then stores the filled chunk in the background and starts the next. */
  private async flush(): Promise<void> {
    await this.storing;
    const chunk = this.filling.subarray(0, this.offset);
    [this.filling, this.spare] = [this.spare, this.filling];
    this.offset = 0;
    const n = this.chunks;
    const storing = this.store(chunk, n).then(() => {
      this.chunks++;
      this.bytes += chunk.length;
    });
    // Awaited by the next flush or by close(); until then a failure must not count as unhandled.
    storing.catch(() => undefined);
    this.storing = storing;
  }
}
