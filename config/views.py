"""Project-level API views."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class ApiRootApi(APIView):
    """Who am I, and where the API's parts are. Requires authentication like every API view."""

    @extend_schema(responses={200: dict})
    def get(self, request: Request) -> Response:
        return Response(
            {
                "user": request.user.get_username() if request.user else None,
                "schema": request.build_absolute_uri("/api/schema/"),
                "docs": request.build_absolute_uri("/api/docs/"),
            }
        )
