"""OpenAPI for routes that read their body themselves (to verify signatures over the raw bytes)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode

from hq.api.models import ErrorOut

_SCHEMAS: dict[str, Any] = {}
_PATHS: dict[str, dict[str, Any]] = {}


def _component(model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, str]:
    """Register ``model`` (and the models it uses) under components/schemas; return its $ref."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode=mode)
    _SCHEMAS.update(schema.pop("$defs", {}))
    _SCHEMAS[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def request_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` describing a JSON body of ``model``."""
    ref = _component(model, "validation")
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


def document_route(
    path: str,
    method: str,
    *,
    summary: str,
    request_model: type[BaseModel],
    response_model: type[BaseModel],
    errors: dict[int | str, dict[str, Any]],
) -> None:
    """The OpenAPI entry of a plain Starlette route (the hot path), shaped like FastAPI's own."""

    def answer(description: str, model: type[BaseModel]) -> dict[str, Any]:
        return {"description": description,
                "content": {"application/json": {"schema": _component(model, "serialization")}}}

    responses = {"200": answer("Successful Response", response_model)}
    responses.update({str(status): answer("Error", spec["model"]) for status, spec in errors.items()})
    _PATHS.setdefault(path, {})[method] = {
        "summary": summary,
        "operationId": f"{summary.lower().replace(' ', '_')}_{method}",
        "requestBody": request_body(request_model)["requestBody"],
        "responses": responses,
    }


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorOut} for status in statuses}


SIGNED_ERRORS = errors(401, 413, 422, 429)


def install_openapi(app: FastAPI) -> None:
    def schema() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            for path, operations in _PATHS.items():
                document.setdefault("paths", {}).setdefault(path, {}).update(operations)
            document.setdefault("components", {}).setdefault("schemas", {}).update(_SCHEMAS)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = schema  # type: ignore[method-assign]
