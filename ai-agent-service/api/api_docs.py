"""The OpenAPI description and its Swagger / ReDoc pages, behind the admin key like every other endpoint:
the map of an API over personal data is not for anyone who asks."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from api.deps import ApiKey

REDOC_JS = "https://cdn.jsdelivr.net/npm/redoc@2/bundles/redoc.standalone.js"
router = APIRouter(dependencies=[ApiKey], include_in_schema=False)


@router.get("/openapi.json")
async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs")
async def swagger(request: Request) -> HTMLResponse:
    # The description is inlined: the page's own fetch of /openapi.json would not carry the key.
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title=f"{request.app.title} API",
        swagger_ui_parameters={"spec": request.app.openapi(), "persistAuthorization": True},
    )


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    spec = json.dumps(request.app.openapi(), ensure_ascii=False).replace("</", "<\\/")
    return HTMLResponse(
        f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>{request.app.title} API</title></head>
<body><div id="redoc"></div><script src="{REDOC_JS}"></script>
<script>Redoc.init({spec}, {{}}, document.getElementById("redoc"))</script></body></html>"""
    )
