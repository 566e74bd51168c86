// Reading the engine's WebAssembly binary: the base64 text the build embeds, and the one rewrite the
// backend needs (a shared-memory import made unshared, for contexts without SharedArrayBuffer).

/** Bytes of a base64 string. */
export function decodeBase64(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Rewrites the memory import of a shared-memory module to unshared (for contexts without SharedArrayBuffer). */
export function unshareMemoryImport(bytes: Uint8Array): Uint8Array {
  const wasm = bytes.slice();
  let pos = 8;
  const readLeb128 = (): number => {
    let result = 0, shift = 0, byte: number;
    do { byte = wasm[pos++]; result += (byte & 0x7f) * 2 ** shift; shift += 7; } while (byte & 0x80);
    return result;
  };
  while (pos < wasm.length) {
    const sectionId = wasm[pos++];
    const size = readLeb128();
    const end = pos + size;
    if (sectionId === 2) { // the import section
      const count = readLeb128();
      for (let i = 0; i < count; i++) {
        const modLen = readLeb128();
        pos += modLen; // module name
        const fieldLen = readLeb128();
        pos += fieldLen; // field name
        const kind = wasm[pos++];
        if (kind === 0) readLeb128();
        else if (kind === 1) { pos++; const tableFlags = wasm[pos++]; readLeb128(); if (tableFlags & 1) readLeb128(); }
        else if (kind === 3) pos += 2;
        else if (kind === 2) {
          const flags = wasm[pos];
          wasm[pos++] = flags & ~2;
          readLeb128(); if (flags & 1) readLeb128();
        } else throw new Error(`unexpected import kind ${kind}`);
      }
      return wasm;
    }
    pos = end;
  }
  return wasm;
}
