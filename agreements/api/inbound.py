"""`POST /blockchain/webhook`: the blockchain service's signed events (no token: the signature is the auth)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from agreements.services.inbound import MAX_BODY_BYTES, blockchain_webhook_receive
from config import throttling


def _error(status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse({"code": code, "detail": detail}, status=status)


def _throttled(wait: int) -> JsonResponse:
    response = _error(429, "throttled", throttling.throttled_detail(wait))
    response["Retry-After"] = str(wait)
    return response


@csrf_exempt
@require_POST
def blockchain_webhook(request: HttpRequest) -> JsonResponse:
    """Verify, validate and store one event; 202 when stored, 200 when already received."""
    # Per client address, before the body is even read (the service limits per application id).
    wait = throttling.take(
        "inbound-address", throttling.client_address(request), settings.THROTTLE_INBOUND_ADDRESS_RATE
    )
    if wait is not None:
        return _throttled(wait)
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _error(400, "invalid", "Bad Content-Length.")
    if declared > MAX_BODY_BYTES:
        return _error(413, "too_large", f"The body is larger than {MAX_BODY_BYTES} bytes.")
    body = request.read(MAX_BODY_BYTES + 1)
    result = blockchain_webhook_receive(headers=request.headers, body=body)
    if result.retry_after is not None:
        return _throttled(result.retry_after)
    payload: dict[str, object] = {"code": result.code, "detail": result.detail}
    if result.fields is not None:
        payload["fields"] = result.fields
    if result.event_id is not None:
        payload["event_id"] = str(result.event_id)
    return JsonResponse(payload, status=result.status_code)
