"""Page pagination with the upstream response shape: {items, total, page, limit, total_pages}.

`page` starts at 1, `limit` defaults to 10 (at most 100). Bad values are a 400, a page past the end
is an empty page (not a 404).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from django.db.models import QuerySet
from rest_framework import serializers
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class PageQuerySerializer(serializers.Serializer[Any]):
    page = serializers.IntegerField(min_value=1, default=1)
    limit = serializers.IntegerField(min_value=1, max_value=100, default=10)


class PagePagination(BasePagination):
    def paginate_queryset(
        self, queryset: QuerySet[Any] | Sequence[Any], request: Request, view: APIView | None = None
    ) -> list[Any]:
        query = PageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        self.page: int = query.validated_data["page"]
        self.limit: int = query.validated_data["limit"]
        self.total = queryset.count() if isinstance(queryset, QuerySet) else len(queryset)
        offset = (self.page - 1) * self.limit
        return list(queryset[offset : offset + self.limit])

    def get_paginated_response(self, data: Any) -> Response:
        return Response(
            {
                "items": data,
                "total": self.total,
                "page": self.page,
                "limit": self.limit,
                "total_pages": math.ceil(self.total / self.limit) if self.total else 0,
            }
        )

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["items", "total", "page", "limit", "total_pages"],
            "properties": {
                "items": schema,
                "total": {"type": "integer"},
                "page": {"type": "integer"},
                "limit": {"type": "integer"},
                "total_pages": {"type": "integer"},
            },
        }

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        return [
            {"name": "page", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1}},
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "schema": {"type": "integer", "minimum": 1, "maximum": 100},
            },
        ]
