"""Distribution (배포용) HWP documents: their body is kept readable by anyone, but stored encrypted in ``ViewText``.

Implemented from Hancom's published specification ("한글 문서 파일 형식 5.0", 배포용 문서 데이터): each
``ViewText/Section<N>`` stream opens with an ``HWPTAG_DISTRIBUTE_DOC_DATA`` record of 256 bytes. Its first 4 bytes
(little-endian) seed the Microsoft C runtime's ``rand()``; the rest is XOR-scrambled with a byte sequence drawn from
it: a value ``rand() & 0xFF``, repeated ``(rand() & 0xF) + 1`` times, then the next value. Unscrambled, the data
holds a SHA-1 hash (as 40 UTF-16 hex digits) at offset ``4 + (seed & 0xF)``; its first 16 bytes are the AES-128 key.
The stream after the record is AES-128-ECB encrypted; decrypted, it is the section as a normal document stores it
(raw deflate when the FileHeader says compressed). :func:`encrypt_section` is the inverse, which tests use.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from evalsets.ingest.base import ExtractionError

TAG_DISTRIBUTE_DOC_DATA = 0x10 + 12
DATA_SIZE = 256
KEY_SIZE = 16
BLOCK = 16


def msvc_rand(seed: int) -> Iterator[int]:
    """The values of MSVC ``rand()`` after ``srand(seed)``: a 32-bit LCG whose bits 16-30 are returned."""
    state = seed & 0xFFFFFFFF
    while True:
        state = (state * 214013 + 2531011) & 0xFFFFFFFF
        yield (state >> 16) & 0x7FFF


def scramble(data: bytes) -> bytes:
    """XOR bytes 4-255 of a distribution record with the sequence its first 4 bytes seed; its own inverse."""
    (seed,) = struct.unpack_from("<I", data)
    rand = msvc_rand(seed)
    out = bytearray(data)
    value = run = 0
    for i in range(len(out)):
        if run == 0:
            value = next(rand) & 0xFF
            run = (next(rand) & 0xF) + 1
        if i >= 4:
            out[i] ^= value
        run -= 1
    return bytes(out)


def key_offset(seed: int) -> int:
    return 4 + (seed & 0xF)


def section_key(record: bytes) -> bytes:
    """The AES-128 key a ``HWPTAG_DISTRIBUTE_DOC_DATA`` payload carries."""
    if len(record) != DATA_SIZE:
        raise ExtractionError("corrupt", f"distribution HWP whose key record holds {len(record)} bytes, not 256")
    (seed,) = struct.unpack_from("<I", record)
    offset = key_offset(seed)
    return scramble(record)[offset:offset + KEY_SIZE]


def _ecb(key: bytes, encrypt: bool):
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    cipher = Cipher(algorithms.AES(key), modes.ECB())  # ECB: what the format uses
    return cipher.encryptor() if encrypt else cipher.decryptor()


def decrypt_section(stream: bytes, name: str) -> tuple[bytes, bool]:
    """The section bytes of a ``ViewText`` stream (still deflated when the document is compressed), and whether
    the stream was cut short (its ciphertext is not a whole number of AES blocks: what is whole is kept)."""
    if len(stream) < 4:
        raise ExtractionError("corrupt", f"distribution HWP stream {name} is empty")
    (header,) = struct.unpack_from("<I", stream)
    tag, size = header & 0x3FF, header >> 20
    if tag != TAG_DISTRIBUTE_DOC_DATA or size != DATA_SIZE:
        raise ExtractionError("corrupt", f"distribution HWP stream {name} does not open with its key record")
    if len(stream) < 4 + DATA_SIZE:
        raise ExtractionError("corrupt", f"distribution HWP stream {name} is truncated inside its key record")
    key = section_key(stream[4:4 + DATA_SIZE])
    body = stream[4 + DATA_SIZE:]
    whole = len(body) - len(body) % BLOCK
    decryptor = _ecb(key, encrypt=False)
    return decryptor.update(body[:whole]) + decryptor.finalize(), whole != len(body)


def encrypt_section(section: bytes, seed: int, filler: bytes) -> bytes:
    """A ``ViewText`` stream holding ``section`` (already deflated when the document is compressed): the inverse of
    :func:`decrypt_section`, for tests. ``filler`` (252 bytes) stands for the record's random data; the key is taken
    from it, as Hangul's is from the hash it writes there. The section is zero-padded to whole AES blocks."""
    if len(filler) != DATA_SIZE - 4:
        raise ValueError("filler must be 252 bytes")
    record = scramble(struct.pack("<I", seed) + filler)
    key = section_key(record)
    padded = section + b"\0" * (-len(section) % BLOCK)
    encryptor = _ecb(key, encrypt=True)
    header = struct.pack("<I", TAG_DISTRIBUTE_DOC_DATA | DATA_SIZE << 20)
    return header + record + encryptor.update(padded) + encryptor.finalize()
