"""Passwords, opaque secrets and signed tokens.

Access tokens are ES256 JWTs: every partner's JWT library verifies ES256, and the public keys
are published at /.well-known/jwks.json. Several keys may be live at once: the first signs,
all verify, so a key can be rotated without logging anyone out.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from typing import Any

import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet

from infra.clock import utcnow

ALGORITHM = "ES256"


def _epoch_seconds() -> int:
    """Now for JWT claims, from the application clock (signing and expiry checks agree)."""
    return int(utcnow().timestamp())


_LINK_TOKEN_IN_PATH = re.compile(r"(/approval-links/)[^/]+")


def redact_path(path: str) -> str:
    """A request path fit for logs and problem documents: approval-link tokens are secrets."""
    return _LINK_TOKEN_IN_PATH.sub(r"\1{token}", path)


class InvalidToken(Exception):
    """Any reason a token is not accepted; the reason is for logs, never for the caller."""


class Passwords:
    def __init__(self, *, time_cost: int = 3, memory_kib: int = 65536) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)
        # Verifying against this when the e-mail is unknown makes both failures cost the same.
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        return await anyio.to_thread.run_sync(self._verify, password_hash, password)

    def _verify(self, password_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash or self._dummy, password) and (
                password_hash is not None
            )
        except (VerificationError, InvalidHashError):
            return False


def new_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def hash_secret(secret: str) -> str:
    """High-entropy secrets need no slow hash; a digest keeps them out of the database."""
    return hashlib.sha256(secret.encode()).hexdigest()


def secrets_match(stored_hash: str, presented: str) -> bool:
    return hmac.compare_digest(stored_hash, hash_secret(presented))


def generate_signing_key() -> dict[str, Any]:
    key = ECKey.generate_key("P-256", private=True)
    data = key.as_dict(private=True)
    data["kid"] = key.thumbprint()
    data["alg"] = ALGORITHM
    data["use"] = "sig"
    return dict(data)


def generate_key_set_json() -> str:
    return json.dumps({"keys": [generate_signing_key()]}, separators=(",", ":"))


# How many good tokens a process remembers having verified (a few hundred bytes each).
VERIFIED_TOKENS_KEPT = 4096


class TokenSigner:
    def __init__(self, jwks_json: str, *, issuer: str) -> None:
        try:
            raw = json.loads(jwks_json)
            keys = raw["keys"] if isinstance(raw, dict) else raw
            self._keys = KeySet.import_key_set({"keys": keys})
        except (ValueError, KeyError, TypeError, JoseError) as exc:
            raise ValueError("JWT_PRIVATE_KEYS is not a JSON Web Key Set of EC keys") from exc
        if not self._keys.keys:
            raise ValueError("JWT_PRIVATE_KEYS holds no key")
        self._signing = self._keys.keys[0]
        if self._signing.kid is None:
            raise ValueError("every key in JWT_PRIVATE_KEYS needs a kid")
        self._kids = {k.kid for k in self._keys.keys}
        self.issuer = issuer
        self._verified: dict[str, dict[str, Any]] = {}
        self._registries: dict[tuple[str, bool], jwt.JWTClaimsRegistry] = {}

    def public_jwks(self) -> dict[str, Any]:
        keys = []
        for key in self._keys.keys:
            public = dict(key.as_dict(private=False))
            public.update({"alg": ALGORITHM, "use": "sig"})
            keys.append(public)
        return {"keys": keys}

    def sign(self, claims: dict[str, Any], *, audience: str, ttl_seconds: int) -> str:
        now = _epoch_seconds()
        payload = {"iss": self.issuer, "aud": audience, "iat": now, "exp": now + ttl_seconds}
        payload.update(claims)
        header = {"alg": ALGORITHM, "kid": self._signing.kid, "typ": "JWT"}
        return jwt.encode(header, payload, self._signing, algorithms=[ALGORITHM])

    def verify_signature(self, token: str, *, audience: str) -> dict[str, Any]:
        """Signature, key, issuer and audience, but not expiry: for tokens whose lifetime the
        database decides (approval links), so that "expired" and "forged" get distinct answers."""
        claims = self._signed_claims(token)
        unexpiring = {k: v for k, v in claims.items() if k != "exp"}
        self._validate(self._registry(audience, expiring=False), unexpiring)
        return claims

    def verify(self, token: str, *, audience: str) -> dict[str, Any]:
        claims = self._signed_claims(token)
        self._validate(self._registry(audience, expiring=True), claims)
        return claims

    def _signed_claims(self, token: str) -> dict[str, Any]:
        """The claims of a token whose signature one of our keys made. A signature check is
        the costliest step of every signed-in request and its answer never changes for the
        same token and keys, so good tokens are remembered (a bounded number, oldest
        forgotten first); their claims (expiry included) are still checked on every use."""
        claims = self._verified.get(token)
        if claims is None:
            try:
                decoded = jwt.decode(token, self._keys, algorithms=[ALGORITHM])
            except (JoseError, ValueError, TypeError) as exc:
                raise InvalidToken(f"undecodable: {exc}") from exc
            if decoded.header.get("kid") not in self._kids:
                raise InvalidToken("unknown kid")
            claims = dict(decoded.claims)
            if len(self._verified) >= VERIFIED_TOKENS_KEPT:
                del self._verified[next(iter(self._verified))]
            self._verified[token] = claims
        return dict(claims)

    def _registry(self, audience: str, *, expiring: bool) -> jwt.JWTClaimsRegistry:
        key = (audience, expiring)
        registry = self._registries.get(key)
        if registry is None:
            rules: dict[str, Any] = {
                "iss": {"essential": True, "value": self.issuer},
                "aud": {"essential": True, "value": audience},
                "sub": {"essential": True},
            }
            if expiring:
                rules["exp"] = {"essential": True}
            registry = self._registries[key] = jwt.JWTClaimsRegistry(now=_epoch_seconds, **rules)
        return registry

    @staticmethod
    def _validate(registry: jwt.JWTClaimsRegistry, claims: dict[str, Any]) -> None:
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise InvalidToken(f"claims: {exc}") from exc
