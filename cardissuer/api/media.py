"""How a route that answers with bytes (an image, a PDF, a wallet pass) documents its media
type: FastAPI would otherwise describe every answer as JSON in the OpenAPI document."""

from __future__ import annotations

from typing import Any

from fastapi import Response


def binary(media_type: str, description: str) -> dict[str, Any]:
    """Route keyword arguments: a 200 answer of ``media_type`` bytes, not JSON."""
    return {
        "response_class": Response,
        "responses": {
            200: {
                "description": description,
                "content": {media_type: {"schema": {"type": "string", "format": "binary"}}},
            }
        },
    }
