"""Keeps one GPU architecture's kernels in a shared library's CUDA fat binary.

    python devkit/device/fatbin_keep.py --arch 90 libfaiss.so

The official faiss-gpu wheel's libfaiss.so (200 MB) holds its kernels for
seven architectures. The GPU machine the benchmarks run on takes at most
64 MiB of carried files, so before packing, every image in the library's
.nv_fatbin section that is not machine code (SASS) for `--arch` has its
payload zeroed in place: headers, sizes and offsets stay as they are, the
CUDA driver still picks the sm_<arch> image it would have picked, and the
zeros compress to nothing. A device tool, never applied to what ships.
"""

from __future__ import annotations

import argparse
import struct
from pathlib import Path

FATBIN_MAGIC = 0xBA55ED50
SASS = 2


def section(data: bytes | bytearray, name: str) -> tuple[int, int]:
    """(file offset, size) of the ELF64 section `name`."""
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    headers = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    names = headers[shstrndx][4]
    for h in headers:
        end = data.index(b"\0", names + h[0])
        if data[names + h[0] : end].decode() == name:
            return h[4], h[5]
    raise SystemExit(f"no {name} section")


def keep(path: Path, arch: int) -> tuple[int, int]:
    data = bytearray(path.read_bytes())
    start, size = section(data, ".nv_fatbin")
    kept = zeroed = 0
    off = start
    while off + 16 <= start + size:
        magic, _, header, payload = struct.unpack_from("<IHHQ", data, off)
        if magic != FATBIN_MAGIC:
            off += 8  # fat binaries are 8-byte aligned
            continue
        entry, end = off + header, off + header + payload
        while entry + 32 <= end:
            kind, _, entry_header, entry_size = struct.unpack_from("<HHIQ", data, entry)
            (entry_arch,) = struct.unpack_from("<I", data, entry + 28)
            body = entry + entry_header
            if kind == SASS and entry_arch == arch:
                kept += 1
            else:
                data[body : body + entry_size] = bytes(entry_size)
                zeroed += 1
            entry = body + entry_size
        off = end
    if not kept:
        raise SystemExit(f"{path} has no sm_{arch} machine code: nothing would run")
    path.write_bytes(data)
    return kept, zeroed


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", type=int, required=True, help="compute capability without the dot: 90 for H100/H200")
    parser.add_argument("library", type=Path)
    args = parser.parse_args()
    kept, zeroed = keep(args.library, args.arch)
    print(f"{args.library.name}: kept {kept} sm_{args.arch} images, zeroed {zeroed}")
