// A store-only (uncompressed) ZIP archive writer: the downloads of the fine-tuning page as one file. Safetensors
// weights barely compress, so deflate would buy little; ZIP64 is not written, so the archive must stay under 4 GiB.

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (IEEE 802.3), as ZIP stores it. */
export function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = CRC_TABLE[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

const ZIP32_LIMIT = 0xffffffff;

/** The files (name → contents; strings as UTF-8) as one store-only ZIP archive, in the order given. */
export function zipStore(files: Iterable<[string, Uint8Array | string]>, date = new Date()): Uint8Array {
  const encoder = new TextEncoder();
  // MS-DOS date and time (local, 2-second resolution), as every unzip shows them.
  const dosTime = (date.getHours() << 11) | (date.getMinutes() << 5) | (date.getSeconds() >> 1);
  const dosDate = ((Math.max(1980, date.getFullYear()) - 1980) << 9) | ((date.getMonth() + 1) << 5) | date.getDate();
  const entries = [...files].map(([name, contents]) => {
    if (!name || name.startsWith('/') || name.split('/').includes('..')) throw new Error(`zip: '${name}' is not a relative file name`);
    const data = typeof contents === 'string' ? encoder.encode(contents) : contents;
    return { name: encoder.encode(name), data, crc: crc32(data), offset: 0 };
  });
  const localSize = entries.reduce((sum, e) => sum + 30 + e.name.length + e.data.length, 0);
  const centralSize = entries.reduce((sum, e) => sum + 46 + e.name.length, 0);
  const total = localSize + centralSize + 22;
  if (total > ZIP32_LIMIT || entries.length > 0xffff) throw new Error(`zip: ${total} bytes in ${entries.length} files is beyond a ZIP without ZIP64 (4 GiB, 65535 files); download the files one by one`);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let at = 0;
  const u16 = (value: number) => { view.setUint16(at, value, true); at += 2; };
  const u32 = (value: number) => { view.setUint32(at, value, true); at += 4; };
  const bytes = (value: Uint8Array) => { out.set(value, at); at += value.length; };
  // Flag bit 11: names are UTF-8. Version 2.0 needed; method 0: stored.
  const common = (e: (typeof entries)[number]) => { u16(20); u16(0x0800); u16(0); u16(dosTime); u16(dosDate); u32(e.crc); u32(e.data.length); u32(e.data.length); u16(e.name.length); u16(0); };
  for (const e of entries) {
    e.offset = at;
    u32(0x04034b50);
    common(e);
    bytes(e.name);
    bytes(e.data);
  }
  const centralStart = at;
  for (const e of entries) {
    u32(0x02014b50);
    u16(20); // made by: version 2.0, MS-DOS attributes
    common(e);
    u16(0); u16(0); u16(0); u32(0); u32(e.offset); // comment length, disk, internal and external attributes, offset
    bytes(e.name);
  }
  u32(0x06054b50);
  u16(0); u16(0); u16(entries.length); u16(entries.length); u32(centralSize); u32(centralStart); u16(0); // entries on this disk and in all, central size and offset, comment
  return out;
}
