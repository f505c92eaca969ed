"""``/openapi.json``, generated from the same msgspec Structs that validate requests."""

from __future__ import annotations

from typing import Any

import msgspec

from collector.http import admin_types
from sdk_python.messages import (
    Alias,
    Batch,
    BatchResult,
    ConsentCall,
    ErrorBody,
    Group,
    Identify,
    Page,
    Screen,
    Track,
)

MESSAGES = (Track, Identify, Page, Screen, Group, Alias)
SINGLE = {
    "track": Track,
    "identify": Identify,
    "page": Page,
    "screen": Screen,
    "group": Group,
    "alias": Alias,
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _errors() -> dict[str, Any]:
    error = {"content": {"application/json": {"schema": _ref("ErrorBody")}}}
    return {
        "400": {
            "description": "Body is not JSON, not a batch, or a field is invalid (see path)",
            **error,
        },
        "401": {"description": "Unknown or missing write key", **error},
        "413": {"description": "Request over 500 KB", **error},
    }


def document(version: str = "0.1.0") -> dict[str, Any]:
    _, components = msgspec.json.schema_components(
        [*MESSAGES, Batch, BatchResult, ConsentCall, ErrorBody, *admin_types.BODIES],
        ref_template="#/components/schemas/{name}",
    )
    components["Batch"]["properties"]["batch"] = {
        "type": "array",
        "items": {
            "oneOf": [_ref(m.__name__) for m in MESSAGES],
            "discriminator": {"propertyName": "type"},
        },
    }
    ok = {
        "200": {
            "description": "Accepted; rejected messages are listed and quarantined",
            "content": {"application/json": {"schema": _ref("BatchResult")}},
        }
    }
    paths: dict[str, Any] = {
        "/v1/batch": {
            "post": {
                "summary": "Send a batch of messages (Segment-compatible)",
                "requestBody": {"content": {"application/json": {"schema": _ref("Batch")}}},
                "responses": {**ok, **_errors()},
            }
        },
        "/v1/consent": {
            "post": {
                "summary": "Record a grant, denial or withdrawal of consent",
                "requestBody": {"content": {"application/json": {"schema": _ref("ConsentCall")}}},
                "responses": {"200": {"description": "Recorded in the ledger"}, **_errors()},
            }
        },
        "/v1/erase": {
            "post": {
                "summary": "Erase a person (every identifier of their OneID) and propagate it",
                "description": "A bearer token whose role holds person.erase (admin):"
                " [[access.tokens]] or the variable named by [server] admin_token_env.",
                "security": [{"adminToken": []}],
                "responses": {
                    "200": {"description": "What was erased, per destination"},
                    **_errors(),
                    "403": {
                        "description": "The token's role may not erase",
                        "content": {"application/json": {"schema": _ref("ErrorBody")}},
                    },
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {"200": {"description": "text format"}},
            }
        },
        "/healthz": {
            "get": {"summary": "Liveness", "responses": {"200": {"description": "alive"}}}
        },
        "/readyz": {
            "get": {
                "summary": "Readiness (database writable)",
                "responses": {"200": {"description": "ready"}},
            }
        },
    }
    for name, struct in SINGLE.items():
        paths[f"/v1/{name}"] = {
            "post": {
                "summary": f"Send one {name} message",
                "requestBody": {"content": {"application/json": {"schema": _ref(struct.__name__)}}},
                "responses": {**ok, **_errors()},
            }
        }
    paths.update(_touchpoints(ok))
    paths.update(admin_types.paths())
    return {
        "openapi": "3.1.0",
        "info": {"title": "Consentry collector", "version": version},
        "components": {
            "schemas": components,
            "securitySchemes": {
                "writeKey": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "write key as user name, empty password",
                },
                "adminToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "a token of [[access.tokens]] (or CONSENTRY_ADMIN_TOKEN, admin)",
                },
            },
        },
        "security": [{"writeKey": []}],
        "paths": paths,
    }


def _touchpoints(ok: dict[str, Any]) -> dict[str, Any]:
    """Browser and order-system paths (collector.sources)."""
    gif = {
        "200": {
            "description": "always a 1x1 GIF, Cache-Control: no-store",
            "content": {"image/gif": {}},
        }
    }
    pixel_params = [
        {"name": "writeKey", "in": "query", "required": True, "schema": {"type": "string"}},
        {"name": "anonymousId", "in": "query", "schema": {"type": "string"}},
        {"name": "userId", "in": "query", "schema": {"type": "string"}},
    ]
    paths: dict[str, Any] = {}
    for kind in ("track", "page"):
        for path in (f"/v1/pixel/{kind}", f"/pixel/v1/{kind}"):
            paths[path] = {
                "get": {
                    "summary": f"{kind} pixel: parameters in the query (dotted names nest)",
                    "parameters": pixel_params,
                    "security": [],
                    "responses": gif,
                }
            }
    beacon = {
        "post": {
            "summary": "Batch from a browser beacon (text/plain accepted, ?writeKey=)",
            "requestBody": {"content": {"text/plain": {}, "application/json": {}}},
            "responses": {**ok, **_errors()},
        }
    }
    paths["/v1/b"] = beacon
    paths["/beacon/v1/batch"] = beacon
    paths["/v1/consentry.js"] = {
        "get": {
            "summary": "The first-party tag",
            "security": [],
            "responses": {"200": {"description": "JavaScript", "content": {"text/javascript": {}}}},
        }
    }
    paths["/v1/webhooks/{source}"] = {
        "post": {
            "summary": "An order system's signed webhook (Shopify, WooCommerce, Shoplazza,"
            " SHOPLINE); the platform's signature header authenticates it",
            "parameters": [
                {"name": "source", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "security": [],
            "requestBody": {"content": {"application/json": {}}},
            "responses": {
                "200": {"description": "stored, a duplicate delivery, or an unknown topic"},
                "401": {"description": "missing or wrong signature; nothing stored"},
                "404": {"description": "no webhook source of that name"},
                "429": {"description": "rate limited; see Retry-After"},
            },
        }
    }
    return paths
