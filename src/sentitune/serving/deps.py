"""Dependencies of the guarded routes: the service, the API key, the rate limit.

Plain functions reading ``request.app.state``, so ``app.dependency_overrides`` can replace them.
"""

from __future__ import annotations

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from sentitune.serving.errors import ApiError
from sentitune.serving.guards import retry_seconds
from sentitune.serving.observability import client_address
from sentitune.serving.service import Service

API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, description="One of the server's API keys.")
# Hugging Face clients (InferenceClient, TEI's) send the key as a bearer token
BEARER = HTTPBearer(auto_error=False, description="The same API key, as `Authorization: Bearer <key>`.")
UNAUTHORIZED = {"WWW-Authenticate": "APIKey"}


async def get_service(request: Request) -> Service:
    # async, as every dependency here: FastAPI runs a plain `def` dependency in its thread pool,
    # which cost about 0.2 ms a request in the load benchmark
    return request.app.state.service


async def require_key(
    request: Request,
    api_key: str | None = Security(API_KEY_HEADER),
    bearer: HTTPAuthorizationCredentials | None = Security(BEARER),
    service: Service = Depends(get_service),
) -> str:
    """The client's id: ``key:<HMAC of the key>``, or ``ip:<address>`` when auth is off.

    The key comes from ``X-API-Key`` or, failing that, ``Authorization: Bearer``; either way it meets
    the same constant-time check and the same failed-auth throttle.
    """
    api_key = api_key or (bearer.credentials if bearer is not None else None)
    address = client_address(request)
    if not service.config.auth_enabled:
        return f"ip:{address}"
    # checked before the key, so an address that keeps guessing learns nothing until it slows down
    blocked = await service.limiter.auth_blocked(address)
    if blocked is not None:
        request.state.auth_failed = True
        raise ApiError(
            429, "rate_limited",
            f"too many failed authentications from this address; retry in {retry_seconds(blocked)} s",
            {"Retry-After": retry_seconds(blocked)},
        )
    if not api_key or not service.key_matches(api_key):
        await service.limiter.auth_failed(address)
        raise ApiError(401, "unauthorized", "invalid API key" if api_key else "missing X-API-Key header (or Authorization: Bearer)", UNAUTHORIZED)
    return service.client_id(api_key)


async def charge(service: Service, client: str, cost: int) -> None:
    """Take ``cost`` units of ``client``'s hourly limit, or raise 429."""
    retry_after = await service.limiter.charge(client, cost)
    if retry_after is not None:
        service.metrics.rate_limited.inc()
        seconds = retry_seconds(retry_after)
        per_hour = service.config.rate_limit_per_hour
        raise ApiError(
            429, "rate_limited",
            f"rate limit of {per_hour} requests/hour exceeded (a batch counts one per text); retry in {seconds} s",
            {"Retry-After": seconds},
        )


async def identify(request: Request, client: str = Depends(require_key)) -> str:
    """The authenticated client, kept for the log line and for routes that charge by size."""
    request.state.client = client
    return client


async def rate_limit(client: str = Depends(identify), service: Service = Depends(get_service)) -> str:
    """One unit per request (the batch route depends on ``identify`` and calls ``charge_texts``)."""
    await charge(service, client, 1)
    return client


async def charge_texts(request: Request, n_texts: int) -> None:
    """A batch costs one unit per text, taken at once: all or none."""
    await charge(request.app.state.service, request.state.client, max(n_texts, 1))
