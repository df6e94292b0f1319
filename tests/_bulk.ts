// The large bodies of the serve() memory test, made the same way by the
// test (tests/serve_memory_test.ts) and its fixture
// (tests/fixtures/serve_memory.ts), so each side can check the other's.

/** The size of one chunk. */
export const CHUNK = 64 * 1024;

/** Chunk `index` of a body: bytes that differ from chunk to chunk. */
export function chunkOf(index: number, size = CHUNK): Uint8Array {
  const chunk = new Uint8Array(size);
  for (let offset = 0; offset < size; offset++) {
    chunk[offset] = (index * 31 + offset * 7) & 0xff;
  }
  return chunk;
}
