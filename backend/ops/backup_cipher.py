"""Encrypted backup files: AES-256-GCM over the gzip stream, in chunks, keys from settings.

`BACKUP_ENCRYPTION_KEY` holds one or more keys (url-safe base64 of 32 bytes, comma-separated,
newest first): the first encrypts, every one decrypts, so a key is rotated by putting the new
one first and keeping the old ones until the files they sealed have aged out of retention.

File layout (all integers big-endian):

    magic      8 bytes   b"FIDUSBK\\x01"
    key id    12 bytes   ASCII fingerprint of the key that sealed the file (not secret)
    salt      16 bytes   random; the file key is HKDF-SHA256(key, salt)
    prefix     7 bytes   random nonce prefix
    chunks               4-byte ciphertext length, then AES-GCM(plaintext <= 1 MiB) + tag

Chunk n is sealed with the nonce prefix + n (4 bytes) + a last-chunk flag (1 byte) and with the
header as associated data (the STREAM construction): a changed byte, a swapped header, chunks
reordered, dropped or appended, or a file cut short all fail authentication. Nothing is held
in memory beyond one chunk, so a large backup streams through.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
import struct
from collections.abc import Sequence
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from backend.ops._cli import CommandRefused
from backend.settings import Settings

MAGIC = b"FIDUSBK\x01"
KEY_ID_LENGTH = 12
SALT_LENGTH = 16
PREFIX_LENGTH = 7
HEADER_LENGTH = len(MAGIC) + KEY_ID_LENGTH + SALT_LENGTH + PREFIX_LENGTH
CHUNK_SIZE = 1024 * 1024
TAG_LENGTH = 16
_LENGTH = struct.Struct(">I")
_KDF_INFO = b"fidus backup file v1"


class BackupCorrupt(CommandRefused):
    """A backup file fails its manifest or its authentication: altered, damaged or cut short."""

    code = "BACKUP_CORRUPT"


class BackupKeyMismatch(CommandRefused):
    """The file was sealed with a key the settings do not hold (or with none at all)."""

    code = "BACKUP_KEY_MISMATCH"


def decode_key(text: str) -> bytes:
    """A configured key's 32 bytes; ValueError when it is not url-safe base64 of 32 bytes."""
    try:
        raw = base64.urlsafe_b64decode(text.strip().encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError) as error:
        raise ValueError("not url-safe base64") from error
    if len(raw) != 32:
        raise ValueError(f"decodes to {len(raw)} bytes, not 32")
    return raw


def fingerprint(key: bytes) -> str:
    """A short, non-secret name for a key, written in each file it seals."""
    return hashlib.sha256(b"fidus backup key id:" + key).hexdigest()[:KEY_ID_LENGTH]


def is_encrypted(path_or_head: bytes) -> bool:
    return path_or_head.startswith(MAGIC)


class BackupKeys:
    """The configured backup keys: the first seals, every one opens."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("at least one backup key is required")
        self._keys = {fingerprint(key): key for key in keys}
        self.current_id = fingerprint(keys[0])

    @classmethod
    def from_settings(cls, settings: Settings) -> BackupKeys | None:
        """None in development and tests without BACKUP_ENCRYPTION_KEY: files are then written
        unencrypted (production refuses to start without a key)."""
        keys = [decode_key(k.get_secret_value()) for k in settings.backup_encryption_key]
        return cls(keys) if keys else None

    @property
    def ids(self) -> list[str]:
        return list(self._keys)

    def key(self, key_id: str) -> bytes | None:
        return self._keys.get(key_id)


def _file_cipher(key: bytes, salt: bytes) -> AESGCM:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_KDF_INFO)
    return AESGCM(hkdf.derive(key))


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    return prefix + struct.pack(">I", index) + (b"\x01" if last else b"\x00")


class EncryptingWriter(io.RawIOBase):
    """A write-only stream that seals what it is given into `target`, chunk by chunk.

    `close()` seals the last chunk; it does not close `target`.
    """

    def __init__(self, target: BinaryIO, keys: BackupKeys) -> None:
        super().__init__()
        self._target = target
        key = keys.key(keys.current_id)
        assert key is not None
        salt, self._prefix = os.urandom(SALT_LENGTH), os.urandom(PREFIX_LENGTH)
        self._header = MAGIC + keys.current_id.encode("ascii") + salt + self._prefix
        self._cipher = _file_cipher(key, salt)
        self._buffer = bytearray()
        self._index = 0
        target.write(self._header)

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self._buffer += data
        while len(self._buffer) > CHUNK_SIZE:
            self._seal(bytes(self._buffer[:CHUNK_SIZE]), last=False)
            del self._buffer[:CHUNK_SIZE]
        return len(data)

    def _seal(self, plaintext: bytes, *, last: bool) -> None:
        if self._index >= 2**32 - 1:
            raise ValueError("backup too large for one file")
        sealed = self._cipher.encrypt(_nonce(self._prefix, self._index, last), plaintext,
                                      self._header)
        self._target.write(_LENGTH.pack(len(sealed)) + sealed)
        self._index += 1

    def close(self) -> None:
        if not self.closed:
            self._seal(bytes(self._buffer), last=True)
            self._buffer.clear()
        super().close()


class DecryptingReader(io.RawIOBase):
    """A read-only stream of the plaintext of an encrypted backup, authenticated chunk by chunk.

    Raises `BackupKeyMismatch` at construction when no configured key opened the file, and
    `BackupCorrupt` as soon as a chunk fails authentication or the file ends before its last
    chunk: what was read before is genuine, nothing after it is trusted.
    """

    def __init__(self, source: BinaryIO, keys: BackupKeys | None, *, name: str) -> None:
        super().__init__()
        self._source = source
        self._name = name
        header = source.read(HEADER_LENGTH)
        if len(header) < HEADER_LENGTH or not header.startswith(MAGIC):
            raise BackupCorrupt(f"{name}: not an encrypted Fidus backup (bad header)")
        key_id = header[len(MAGIC):len(MAGIC) + KEY_ID_LENGTH].decode("ascii", "replace")
        if keys is None:
            raise BackupKeyMismatch(f"{name} is encrypted (key {key_id}) and "
                                    "BACKUP_ENCRYPTION_KEY is not set")
        key = keys.key(key_id)
        if key is None:
            raise BackupKeyMismatch(
                f"{name} was encrypted with key {key_id}, which is not among "
                f"BACKUP_ENCRYPTION_KEY (configured: {', '.join(keys.ids)})")
        salt_at = len(MAGIC) + KEY_ID_LENGTH
        self._header = header
        self._prefix = header[salt_at + SALT_LENGTH:]
        self._cipher = _file_cipher(key, header[salt_at:salt_at + SALT_LENGTH])
        self._plain = b""
        self._offset = 0
        self._index = 0
        self._finished = False

    def readable(self) -> bool:
        return True

    def _damaged(self, what: str) -> BackupCorrupt:
        return BackupCorrupt(f"{self._name} fails authentication ({what}): the file was "
                             "altered or damaged")

    def _next_chunk(self) -> None:
        if self._finished:
            self._plain, self._offset = b"", 0
            return
        length_bytes = self._source.read(_LENGTH.size)
        if len(length_bytes) < _LENGTH.size:
            raise BackupCorrupt(f"{self._name} ends before its last chunk (the file is "
                                "truncated)")
        (length,) = _LENGTH.unpack(length_bytes)
        if not TAG_LENGTH <= length <= CHUNK_SIZE + TAG_LENGTH:
            raise self._damaged(f"chunk {self._index} has an impossible length")
        sealed = self._source.read(length)
        if len(sealed) < length:
            raise BackupCorrupt(f"{self._name} ends inside chunk {self._index} (the file is "
                                "truncated)")
        for last in (False, True):
            try:
                plain = self._cipher.decrypt(_nonce(self._prefix, self._index, last), sealed,
                                             self._header)
            except InvalidTag:
                continue
            self._index += 1
            self._plain, self._offset = plain, 0
            if last:
                self._finished = True
                if self._source.read(1):
                    raise self._damaged("data after the last chunk")
            return
        raise self._damaged(f"chunk {self._index}")

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while self._offset >= len(self._plain):
            if self._finished:
                return 0
            self._next_chunk()
        view = memoryview(buffer).cast("B")
        count = min(len(view), len(self._plain) - self._offset)
        view[:count] = self._plain[self._offset:self._offset + count]
        self._offset += count
        return count
