"""Encryption of secrets at rest (MT5 investor passwords, OAuth tokens).

Fernet (AES-128-CBC with HMAC-SHA256) through `MultiFernet`: the first configured key encrypts,
every key decrypts, so a key is rotated by putting the new one first and re-encrypting.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from backend.errors import FidusError
from backend.settings import Settings

#: Used only in development and tests when FIELD_ENCRYPTION_KEYS is unset; production refuses
#: to start without real keys.
_DEVELOPMENT_KEY = base64.urlsafe_b64encode(b"fidus-development-only-field-key")


class DecryptionFailed(FidusError):
    code = "DECRYPTION_FAILED"
    http_status = 500


class FieldCipher:
    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is required")
        self._fernets = [Fernet(key) for key in keys]
        self._multi = MultiFernet(self._fernets)
        self.key_id = self.fingerprint(keys[0])

    @staticmethod
    def fingerprint(key: bytes) -> str:
        """A short, non-secret name for a key, stored beside each ciphertext."""
        return hashlib.sha256(key).hexdigest()[:12]

    @classmethod
    def from_settings(cls, settings: Settings) -> FieldCipher:
        keys = [k.get_secret_value().encode() for k in settings.field_encryption_keys]
        if not keys:
            if settings.is_production:
                raise ValueError("FIELD_ENCRYPTION_KEYS is required in production")
            keys = [_DEVELOPMENT_KEY]
        return cls(keys)

    def encrypt(self, plaintext: str) -> str:
        return self._multi.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._multi.decrypt(token.encode()).decode()
        except InvalidToken as error:
            raise DecryptionFailed("a stored secret cannot be decrypted with the configured keys"
                                   ) from error

    def rotate(self, token: str) -> str:
        """Re-encrypt under the newest key."""
        try:
            return self._multi.rotate(token.encode()).decode()
        except InvalidToken as error:
            raise DecryptionFailed("a stored secret cannot be decrypted with the configured keys"
                                   ) from error
