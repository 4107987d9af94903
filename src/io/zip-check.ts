/**
 * The CRC check of a TorchScript archive (a zip of stored entries) before libtorch reads it.
 * libtorch's zip reader skips CRCs, so a damaged copy — a few flipped bytes in the code, the
 * pickles or model.json — would reach its deserializer, which can hang or corrupt the heap and
 * abort the process ("free(): invalid size"). Checked here, a damaged file is MODEL_LOAD up front.
 * Files that are not zips, and zip64 archives, are left to libtorch (it refuses them cleanly).
 * Entries are stored (tensors) or deflated (code): both are checked.
 */
import fs from 'node:fs/promises';
import zlib from 'node:zlib';
import { DiffusionSearchError } from '../errors';

const EOCD = 0x06054b50,
  CENTRAL = 0x02014b50,
  LOCAL = 0x04034b50;
const CHUNK = 1 << 20;

export async function checkArchive(file: string): Promise<void> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(file, 'r');
  } catch {
    return; // missing or unreadable: libtorch names the problem
  }
  try {
    const st = await fh.stat();
    // A directory or device: libtorch refuses it, and reading it here would throw EISDIR (an internal error).
    if (!st.isFile()) return;
    const size = st.size;
    const read = async (at: number, n: number): Promise<Buffer> => {
      const b = Buffer.alloc(n);
      const { bytesRead } = await fh.read(b, 0, n, at);
      return b.subarray(0, bytesRead);
    };
    // The end-of-central-directory record: the last 22 bytes plus a comment of up to 64 KiB.
    const tailAt = Math.max(0, size - 22 - 0xffff);
    const tail = await read(tailAt, size - tailAt);
    let e = tail.length - 22;
    while (e >= 0 && tail.readUInt32LE(e) !== EOCD) e--;
    if (e < 0) return; // not a zip: libtorch says so
    const entries = tail.readUInt16LE(e + 10),
      cdSize = tail.readUInt32LE(e + 12),
      cdAt = tail.readUInt32LE(e + 16);
    if (entries === 0xffff || cdSize === 0xffffffff || cdAt === 0xffffffff) return; // zip64
    const corrupt = (why: string) =>
      new DiffusionSearchError(
        `'${file}' is a damaged TorchScript archive (${why}): a partial or corrupted copy? Copy or export it again`,
        'MODEL_LOAD',
      );
    if (cdAt + cdSize > size) throw corrupt('its central directory lies past the end of the file');
    const cd = await read(cdAt, cdSize);
    for (let p = 0, k = 0; k < entries; k++) {
      if (p + 46 > cd.length || cd.readUInt32LE(p) !== CENTRAL)
        throw corrupt(`entry ${k} of the central directory is malformed`);
      const method = cd.readUInt16LE(p + 10),
        crc = cd.readUInt32LE(p + 16),
        stored = cd.readUInt32LE(p + 20);
      const nameLen = cd.readUInt16LE(p + 28),
        extraLen = cd.readUInt16LE(p + 30),
        commentLen = cd.readUInt16LE(p + 32);
      const localAt = cd.readUInt32LE(p + 42);
      const name = cd.toString('utf8', p + 46, p + 46 + nameLen);
      p += 46 + nameLen + extraLen + commentLen;
      if (stored === 0xffffffff || localAt === 0xffffffff) return; // zip64 sizes: left to libtorch
      const local = await read(localAt, 30);
      if (local.length < 30 || local.readUInt32LE(0) !== LOCAL)
        throw corrupt(`the local header of '${name}' is missing`);
      const dataAt = localAt + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
      if (dataAt + stored > size) throw corrupt(`'${name}' runs past the end of the file`);
      let c = 0;
      if (method === 0) {
        for (let at = dataAt; at < dataAt + stored; at += CHUNK)
          c = zlib.crc32(await read(at, Math.min(CHUNK, dataAt + stored - at)), c);
      } else if (method === 8) {
        // Deflated entries (torch.jit.save compresses the code; tensors are stored): small, inflated whole.
        try {
          c = zlib.crc32(zlib.inflateRawSync(await read(dataAt, stored)));
        } catch {
          throw corrupt(`'${name}' does not inflate`);
        }
      } else throw corrupt(`'${name}' has compression method ${method}, which TorchScript archives do not use`);
      if (c >>> 0 !== crc) throw corrupt(`the CRC of '${name}' does not match its bytes`);
    }
  } finally {
    await fh.close();
  }
}
