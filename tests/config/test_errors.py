"""Domain errors are mapped to HTTP once, in `config.api.exception_handler`: status and body per class."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.http import Http404
from rest_framework.test import APIClient

from chain.errors import RpcConnectionError
from chain.lane.base import CancelRefused
from config.api import exception_handler
from config.errors import Conflict, DomainError, InvalidInput, NotFound, parse_id


class _Gone(DomainError):
    """A subclass an app might declare: its own status and code, no change to the handler."""

    http_status = 410
    code = "gone"


def _answer(exc: Exception) -> tuple[int, dict[str, Any]]:
    response = exception_handler(exc, {"view": None})
    assert response is not None
    return response.status_code, dict(response.data)


@pytest.mark.parametrize(
    ("error", "status", "body"),
    [
        (NotFound("asset not found"), 404, {"code": "not_found", "detail": "asset not found"}),
        (
            Conflict("the asset is paused: unpause it first"),
            409,
            {"code": "conflict", "detail": "the asset is paused: unpause it first"},
        ),
        (
            InvalidInput("amount", "must be greater than zero"),
            400,
            {
                "code": "invalid",
                "detail": "Invalid input: amount: must be greater than zero",
                "fields": {"amount": ["must be greater than zero"]},
            },
        ),
        (_Gone("this series is over"), 410, {"code": "gone", "detail": "this series is over"}),
        # a chain refusal that is a state conflict, not an outage
        (CancelRefused("it is CONFIRMED"), 409, {"code": "conflict", "detail": "it is CONFIRMED"}),
        # Django's own 404 (a URL that matched no object) keeps DRF's body
        (Http404("No such thing."), 404, {"code": "not_found", "detail": "Not found."}),
    ],
)
def test_each_error_class_answers_its_status_and_the_common_body(
    error: Exception, status: int, body: dict[str, Any]
) -> None:
    # when
    answered = _answer(error)
    # then
    assert answered == (status, body)


def test_a_chain_outage_is_a_503_that_names_no_url() -> None:
    # given an RPC error whose message carries the node's URL (and maybe its credentials)
    error = RpcConnectionError("could not reach https://user:secret@rpc.example/v1")
    # when
    status, body = _answer(error)
    # then
    assert status == 503
    assert body["code"] == "unavailable"
    assert "rpc.example" not in body["detail"]
    assert "secret" not in body["detail"]


def test_an_unexpected_error_is_a_masked_500() -> None:
    # when
    status, body = _answer(RuntimeError("database password is hunter2"))
    # then
    assert (status, body) == (500, {"code": "server_error", "detail": "Internal server error."})


@pytest.mark.parametrize("raw", ["not-a-uuid", "12345", "", None, 42])
def test_parse_id_turns_a_malformed_id_into_not_found_naming_what(raw: object) -> None:
    with pytest.raises(NotFound, match="agreement not found"):
        parse_id(raw, what="agreement")


def test_parse_id_reads_a_uuid_as_text_or_as_uuid() -> None:
    # given
    value = uuid.uuid4()
    # then
    assert parse_id(str(value)) == parse_id(value) == value


@pytest.mark.django_db
@pytest.mark.parametrize("depth", [65, 100_000])
def test_a_json_body_nested_past_the_limit_is_a_400_before_it_is_parsed(api_client: APIClient, depth: int) -> None:
    # given a body nested far deeper than any request of the API (parsing 100,000 levels crashed
    # the web worker)
    body = b'{"amount_type": ' + b"[" * depth + b"]" * depth + b"}"
    # when
    response = api_client.post("/api/v1/agreements/", data=body, content_type="application/json")
    # then
    assert response.status_code == 400
    assert "nested" in response.json()["detail"]
