"""The OpenAPI schema's account of errors: every operation lists the refusals it can answer with, in the
one format hospitals.api_rules.exception_handler gives them, so that a client generated from the schema
knows them (and schemathesis holds the API to it)."""

from typing import Any

ERROR = {
    "type": "object",
    "description": "An error: a stable code, a sentence saying what to do, and per-field sentences.",
    "properties": {
        "code": {"type": "string"},
        "detail": {"type": "string"},
        "errors": {"type": "object", "additionalProperties": True},
    },
    "required": ["code", "detail"],
}
ANY_CALL = {
    "401": "No credentials, or a token that is no longer valid.",
    "403": "Signed in, but this role or this hospital may not do it.",
    "404": "No such object in the caller's hospital (another hospital's is answered the same).",
    "406": "The Accept header asks for a format the API does not give.",
    "429": "Too many requests; try again later.",
}
WITH_BODY = {
    "400": "The request's fields need correcting; nothing was saved.",
    "409": "Refused in the object's present state; the detail says why.",
    "413": "The request body is larger than allowed.",
    "415": "The body is in a format this operation does not take.",
}


def errors_documented(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: add the error responses each operation can give, where its view
    has not described them itself."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR
    reference = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            statuses = {**ANY_CALL, **(WITH_BODY if method in ("post", "put", "patch") else {})}
            for code, description in statuses.items():
                operation["responses"].setdefault(code, {"description": description, "content": reference})
    return result
