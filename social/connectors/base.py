"""What every network connector shares: URLs moved onto a configured base, one request under
the shared budget with the generic error mapping, token-endpoint calls, and the assembly of
per-metric outcomes into DailyMetrics.

Error mapping (platforms refine it in `_check`): 401 -> TokenInvalid; 429 -> the budget key
paused for Retry-After (or the platform's default) and RateLimited; 5xx, timeouts and
connection errors -> PlatformUnavailable; any other 4xx -> RequestRejected, which concerns the
one request (a deprecated metric, a missing permission) and is recorded against the metrics
it feeds instead of failing the account. No message ever carries a token or a secret: the
platform's text is scrubbed and httpx's exceptions (which name URLs) are not chained.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx
import orjson

from infra.clock import utcnow
from infra.settings import Settings
from social.connectors.types import (
    Budget,
    ConnectorError,
    DailyMetrics,
    MediaFile,
    OutcomeUnknown,
    Platform,
    PlatformUnavailable,
    PublishRejected,
    RateLimited,
    TokenInvalid,
    TokenSet,
)

Json = Any


def json_body(response: httpx.Response) -> Json:
    """A platform's answer as JSON; None when it is empty or not JSON. orjson reads the bytes
    as they came, where httpx decodes them to text first and then parses that with the
    standard library: the stats sync reads five answers per account, and decoding them was
    3 % of the worker's CPU (py-spy, bench social). What orjson refuses and the standard
    library reads (UTF-16, NaN, Infinity) goes through httpx as before. orjson reads integers
    past 64 bits as floats; no platform's numbers or ids come near (X's, the largest, are
    63-bit)."""
    if not response.content:
        return None
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        pass
    try:
        return response.json()
    except ValueError:
        return None


Series = dict[date, int | None]
Parts = dict[str, "Series | RequestRejected"]
"""A call's daily series per name (the platform's metric or ours), or why each is missing."""
Keys = Sequence[tuple[str, float]]

MAX_REASON = 200


class RequestRejected(ConnectorError):
    """The platform refused this one request, not the account: recorded against the metrics
    the request feeds (see DailyMetrics.errors)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def stream(media: MediaFile, size: int) -> AsyncIterator[bytes]:
    """The file as an upload body, `size` bytes at a time (never all of it in memory)."""
    for block in media.chunks(size):
        yield block


def utc_today() -> date:
    return utcnow().date()


def days(since: date, until: date) -> Iterator[date]:
    day = since
    while day <= until:
        yield day
        day += timedelta(days=1)


def chunks(since: date, until: date, size: int) -> Iterator[tuple[date, date]]:
    """[since, until] cut into inclusive spans of at most `size` days."""
    start = since
    while start <= until:
        end = min(until, start + timedelta(days=size - 1))
        yield start, end
        start = end + timedelta(days=1)


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def rewrite(url: str, base: str | None) -> str:
    """The real URL with its scheme and host replaced by `base` (tests, proxies)."""
    if not url or not base:
        return url
    parts = urlsplit(url)
    return base.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")


def retry_after_seconds(value: str | None, default: float) -> float:
    """Retry-After as delta-seconds or an HTTP date."""
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - utcnow()).total_seconds())


def token_key(platform: str, access_token: str) -> str:
    """The budget key of one user token (never the token itself: keys show up in Redis)."""
    return f"{platform}:token:{hashlib.sha256(access_token.encode()).hexdigest()[:16]}"


def as_int(value: Json) -> int | None:
    """Platforms send counts as numbers or (Google) as strings."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return round(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def as_dict(body: Json) -> dict[str, Json]:
    if isinstance(body, dict):
        return body
    raise PlatformUnavailable("the platform answered something that is not a JSON object")


def as_list(value: Json) -> list[Json]:
    return value if isinstance(value, list) else []


def sub(value: Json, key: str) -> dict[str, Json]:
    """value[key] when both are JSON objects, else an empty one."""
    inner = value.get(key) if isinstance(value, dict) else None
    return inner if isinstance(inner, dict) else {}


def combine(
    first: Series | RequestRejected,
    second: Series | RequestRejected,
    how: Callable[[int, int], int],
) -> Series | RequestRejected:
    if isinstance(first, RequestRejected):
        return first
    if isinstance(second, RequestRejected):
        return second
    return {
        day: how(a, b)
        for day, a in first.items()
        if a is not None and (b := second.get(day)) is not None
    }


class Assembly:
    """DailyMetrics for [since, until] built from per-metric series and failures."""

    def __init__(self, since: date, until: date) -> None:
        self.since, self.until = since, until
        self.result = DailyMetrics()

    def series(self, metric: str, values: Series | RequestRejected) -> None:
        if isinstance(values, RequestRejected):
            self.fail(metric, values.reason)
            return
        for day, value in values.items():
            if self.since <= day <= self.until:
                self.result.put(day, metric, value)

    def fail(self, metric: str, reason: str) -> None:
        self.result.errors[metric] = reason[:MAX_REASON]

    def done(self) -> DailyMetrics:
        # A metric that failed must not show half its days: callers keep the old figures.
        for row in self.result.days.values():
            for metric in self.result.errors:
                row.pop(metric, None)
        self.result.days = {day: row for day, row in self.result.days.items() if row}
        return self.result


def _severity(exc: BaseException) -> int:
    if not isinstance(exc, ConnectorError):
        return 0  # a bug or a cancellation: never hide it behind a platform error
    if isinstance(exc, TokenInvalid):
        return 1
    if isinstance(exc, RateLimited):
        return 2
    if isinstance(exc, PlatformUnavailable):
        return 3
    return 4


async def gather(calls: Sequence[tuple[Sequence[str], Awaitable[Parts]]]) -> Parts:
    """Run the calls at once, each announcing the series it makes. A refused call fails just
    those series; anything about the whole account (bad token, rate limit, platform down) is
    raised, the most telling first, once every call has finished."""
    results = await asyncio.gather(*(call for _, call in calls), return_exceptions=True)
    parts: Parts = {}
    fatal: BaseException | None = None
    for (names, _), result in zip(calls, results, strict=True):
        if isinstance(result, RequestRejected):
            parts.update(dict.fromkeys(names, result))
        elif isinstance(result, BaseException):
            if fatal is None or _severity(result) < _severity(fatal):
                fatal = result
        else:
            for name in names:
                parts[name] = result.get(name, missing(name))
    if fatal is not None:
        raise fatal
    return parts


def missing(field: str) -> RequestRejected:
    return RequestRejected(f"missing from the answer: {field}")


class Tally:
    """Per-day sums over posts (published that day) for [since, until], today at most. A
    figure absent from a post (the platform dropped the field) fails its metric."""

    def __init__(
        self, since: date, until: date, names: Sequence[str], *, zeros: bool = True
    ) -> None:
        """`zeros`: a day without posts counts 0 (listings); False for per-day statistics,
        where an absent day is unknown."""
        self.since, self.until = since, min(until, utc_today())
        self.values: dict[str, Series] = {
            name: dict.fromkeys(days(since, self.until), 0) if zeros else {} for name in names
        }
        self.missing: dict[str, str] = {}

    def covers(self, day: date) -> bool:
        return self.since <= day <= self.until

    def add(self, day: date, name: str, value: int) -> None:
        if self.covers(day):
            self.values[name][day] = (self.values[name].get(day) or 0) + value

    def add_fields(self, day: date, name: str, source: Json, fields: Sequence[str]) -> None:
        if not self.covers(day):
            return
        total = 0
        for field in fields:
            value = as_int(source.get(field)) if isinstance(source, dict) else None
            if value is None:
                self.missing.setdefault(name, field)
                return
            total += value
        self.add(day, name, total)

    def parts(self) -> Parts:
        return {
            name: missing(self.missing[name]) if name in self.missing else values
            for name, values in self.values.items()
        }


class HttpConnector:
    """A platform reached over HTTP. Subclasses set the class attributes and the methods of
    the Connector protocol; `_check` and `_observe` read the platform's own signals."""

    platform: Platform
    real_authorize_url: str = ""
    real_token_url: str = ""
    real_revoke_url: str = ""
    """The platform's token revocation endpoint, if it has one."""
    scopes: tuple[str, ...] = ()
    scope_separator: str = " "
    """How the platform wants `scope` joined (TikTok and Meta: commas; both accept spaces in
    our simulator)."""
    backfill_days: int = 90
    token_endpoint_auth_method: str = "client_secret_post"  # noqa: S105 - a method name
    """authlib's name for how the token endpoint wants the client credentials."""
    refresh_uses_access_token: bool = False
    """Meta has no refresh tokens: `refresh` takes the current (still valid) access token."""
    default_retry_after: float = 60.0
    default_headers: ClassVar[Mapping[str, str]] = {}

    def __init__(self, *, http: httpx.AsyncClient, budget: Budget, settings: Settings) -> None:
        client = settings.social_clients[self.platform.value]  # KeyError: not configured
        self._http = http
        self._budget = budget
        self._client_id = client.client_id
        self._client_secret = client.client_secret.get_secret_value()
        self._base = settings.social_base_urls.get(self.platform.value)
        self._timeout = settings.social_http_timeout_seconds
        self.authorize_url = self.url(self.real_authorize_url)
        self.token_url = self.url(self.real_token_url)
        self.extra_authorize_params: dict[str, str] = self._extra_authorize_params()
        self.extra_token_params: dict[str, str] = self._extra_token_params()

    def _extra_authorize_params(self) -> dict[str, str]:
        return {}

    def _extra_token_params(self) -> dict[str, str]:
        return {}

    def url(self, real: str) -> str:
        return rewrite(real, self._base)

    @property
    def key(self) -> str:
        return self.platform.value

    # --- requests

    async def _request(
        self,
        method: str,
        url: str,
        *,
        token: str | None,
        keys: Keys,
        params: Mapping[str, str | int] | None = None,
        data: Mapping[str, str] | None = None,
        json: Json = None,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | None = None,
        secrets: Sequence[str] = (),
        content: bytes | Iterable[bytes] | AsyncIterable[bytes] | None = None,
        files: Mapping[str, Any] | None = None,
        creates: bool = False,
        answer: list[httpx.Response] | None = None,
    ) -> Json:
        """One call under the budget; the JSON body of a successful answer (None if empty).

        `content`/`files`: a raw or multipart body (media uploads); a streamed body must be an
        async iterable (`stream(media, size)`): httpx's AsyncClient refuses a sync one.
        `creates`: this call makes a post visible, so whatever may have reached the platform
        without a definite answer (a read timeout, a dropped connection, a 5xx) is
        OutcomeUnknown, and a definite 4xx is PublishRejected; only a connection that never
        opened stays PlatformUnavailable.
        `answer`: receives the response, for callers that need its headers or status."""
        for key, cost in keys:
            await self._budget.acquire(key, cost=cost)
        sent = {"Accept": "application/json", **self.default_headers, **(headers or {})}
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        try:
            response = await self._http.request(
                method,
                url,
                params=params,
                data=data,
                json=json,
                content=content,
                files=files,
                headers=sent,
                auth=auth if auth is not None else httpx.USE_CLIENT_DEFAULT,
                timeout=self._timeout,
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # Nothing was sent: even a create call is safe to try again.
            raise PlatformUnavailable(f"{self.key}: {type(exc).__name__}") from None
        except httpx.TimeoutException:
            if creates:
                raise OutcomeUnknown(f"{self.key}: no answer in time to the post") from None
            raise PlatformUnavailable(f"{self.key}: no answer in time") from None
        except httpx.HTTPError as exc:
            if creates:
                raise OutcomeUnknown(f"{self.key}: {type(exc).__name__} during the post") from None
            raise PlatformUnavailable(f"{self.key}: {type(exc).__name__}") from None
        if answer is not None:
            answer.append(response)
        body = json_body(response)
        hidden = (*((token,) if token else ()), self._client_secret, *secrets)
        await self._observe(response, body, token=token, keys=keys)
        if not creates:
            await self._check(response, body, token=token, keys=keys, hidden=hidden)
            return body
        try:
            await self._check(response, body, token=token, keys=keys, hidden=hidden)
        except RequestRejected as exc:
            raise PublishRejected(exc.reason) from None
        except PlatformUnavailable as exc:
            raise OutcomeUnknown(f"{exc} (answer to the post)") from None
        return body

    async def _observe(
        self, response: httpx.Response, body: Json, *, token: str | None, keys: Keys
    ) -> None:
        """Read the platform's usage signals on every answer (Meta, X override)."""

    async def _check(
        self,
        response: httpx.Response,
        body: Json,
        *,
        token: str | None,
        keys: Keys,
        hidden: Sequence[str],
    ) -> None:
        status = response.status_code
        if status < 400:
            return
        reason = self._scrub(f"HTTP {status}: {self._message(body)}", hidden)
        if status == 401:
            raise TokenInvalid(f"{self.key}: the platform refused the token ({reason})")
        if status == 429:
            wait = retry_after_seconds(
                response.headers.get("Retry-After"), self.default_retry_after
            )
            await self._limited(self._limit_key(keys), wait, reason)
        if status >= 500 or status == 408:
            raise PlatformUnavailable(f"{self.key}: {reason}")
        raise RequestRejected(reason)

    async def _limited(self, key: str, seconds: float, reason: str) -> None:
        """Pause `key` for every worker and give up this call."""
        await self._budget.pause(key, seconds)
        raise RateLimited(f"{self.key}: rate limited ({reason})", retry_after=seconds)

    def _limit_key(self, keys: Keys) -> str:
        return keys[0][0] if keys else self.key

    def _message(self, body: Json) -> str:
        """The platform's own words about an error."""
        if isinstance(body, dict):
            error = body.get("error")
            if isinstance(error, dict):
                return str(error.get("message") or error.get("code") or error)
            if isinstance(error, str):
                return f"{error}: {body.get('error_description') or ''}".rstrip(": ")
            for field in ("message", "detail", "title"):
                if isinstance(body.get(field), str):
                    return str(body[field])
        return "no details"

    @staticmethod
    def _scrub(text: str, hidden: Sequence[str]) -> str:
        for secret in hidden:
            if secret and len(secret) >= 6:
                text = text.replace(secret, "[redacted]")
        return text[:MAX_REASON]

    # --- tokens

    def _client_credentials(self) -> dict[str, str]:
        return {"client_id": self._client_id, "client_secret": self._client_secret}

    async def revoke(self, token: str) -> bool:
        """Asks the platform to revoke a token (RFC 7009) where it has an endpoint for it
        (`real_revoke_url`); False where it has none. An agency's closure calls it."""
        if not self.real_revoke_url:
            return False
        data = {"token": token}
        auth: httpx.Auth | None = None
        if self.token_endpoint_auth_method == "client_secret_basic":  # noqa: S105
            auth = httpx.BasicAuth(self._client_id, self._client_secret)
        else:
            data = {**data, **self._client_credentials()}
        await self._request(
            "POST",
            self.url(self.real_revoke_url),
            token=None,
            keys=((self.key, 1.0),),
            data=data,
            auth=auth,
            secrets=(token,),
        )
        return True

    async def refresh(self, refresh_token: str) -> TokenSet:
        """A new access token (POST token_url, grant_type=refresh_token). A platform that
        answers no refresh token keeps the old one in the result."""
        data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return await self._token_call(data, keep=refresh_token)

    async def _token_call(self, data: dict[str, str], *, keep: str | None) -> TokenSet:
        auth: httpx.Auth | None = None
        if self.token_endpoint_auth_method == "client_secret_basic":  # noqa: S105
            auth = httpx.BasicAuth(self._client_id, self._client_secret)
        else:
            data = {**data, **self._client_credentials()}
        secrets = tuple(v for k, v in data.items() if "token" in k or k == "code")
        try:
            body = await self._request(
                "POST",
                self.token_url,
                token=None,
                keys=((self.key, 1.0),),
                data=data,
                auth=auth,
                secrets=secrets,
            )
        except RequestRejected as exc:
            raise TokenInvalid(f"{self.key}: the token endpoint refused ({exc.reason})") from None
        return self._token_set(body, keep=keep, hidden=secrets)

    def _token_set(self, body: Json, *, keep: str | None, hidden: Sequence[str]) -> TokenSet:
        answer = as_dict(body)
        access = answer.get("access_token")
        if not isinstance(access, str) or not access:
            if answer.get("error"):
                reason = self._scrub(self._message(answer), (*hidden, self._client_secret))
                raise TokenInvalid(f"{self.key}: the token endpoint refused ({reason})")
            raise PlatformUnavailable(f"{self.key}: the token endpoint gave no access token")
        expires_in = as_int(answer.get("expires_in"))
        refresh = answer.get("refresh_token")
        scope = answer.get("scope")
        return TokenSet(
            access_token=access,
            refresh_token=refresh if isinstance(refresh, str) and refresh else keep,
            expires_at=(utcnow() + timedelta(seconds=expires_in) if expires_in else None),
            scope=scope if isinstance(scope, str) else None,
        )
