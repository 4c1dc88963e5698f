"""/docs, /redoc and /openapi.json: the API's map is behind the admin key like the API itself."""

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from api.deps import ApiKey

router = APIRouter(dependencies=[ApiKey])


def _openapi_url(request: Request) -> str:
    return request.scope.get("root_path", "") + "/openapi.json"


@router.get("/openapi.json", include_in_schema=False)
async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs", include_in_schema=False)
async def swagger_ui(request: Request) -> HTMLResponse:
    # The page fetches /openapi.json itself: the browser has to send the key (e.g. a header extension).
    return get_swagger_ui_html(openapi_url=_openapi_url(request), title=f"{request.app.title} - Swagger UI")


@router.get("/redoc", include_in_schema=False)
async def redoc(request: Request) -> HTMLResponse:
    return get_redoc_html(openapi_url=_openapi_url(request), title=f"{request.app.title} - ReDoc")
