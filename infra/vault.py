"""OAuth tokens at rest: Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) under keys
from settings. MultiFernet decrypts with any configured key and encrypts with the first, so a
key is rotated by putting a new one first and re-encrypting every token (`rotate`)."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr

from infra.errors import TokenEncryptionNotConfigured


class TokenVault:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("no token encryption key")
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])
        except ValueError:
            # `from None`: the original message could quote part of the key.
            raise ValueError("TOKEN_ENCRYPTION_KEYS holds a key that is not a Fernet key") from None

    @classmethod
    def from_secret(cls, secret: SecretStr | None) -> TokenVault:
        if secret is None or not secret.get_secret_value().replace(",", "").strip():
            raise TokenEncryptionNotConfigured()
        return cls([k.strip() for k in secret.get_secret_value().split(",") if k.strip()])

    @staticmethod
    def generate_key() -> str:
        return Fernet.generate_key().decode()

    def encrypt(self, plaintext: str | None) -> bytes | None:
        return None if plaintext is None else self._fernet.encrypt(plaintext.encode())

    def decrypt(self, ciphertext: bytes | None) -> str | None:
        if ciphertext is None:
            return None
        try:
            return self._fernet.decrypt(bytes(ciphertext)).decode()
        except InvalidToken as exc:
            raise ValueError("a stored token cannot be decrypted with any configured key") from (
                exc
            )

    def rotate(self, ciphertext: bytes | None) -> bytes | None:
        """The same token under the first key (a no-op in meaning, new bytes)."""
        return None if ciphertext is None else self._fernet.rotate(bytes(ciphertext))
