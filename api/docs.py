"""The interactive API docs (Swagger UI at ``/docs``, ReDoc at ``/redoc``), served offline.

FastAPI's own docs pages load Swagger UI and ReDoc from a CDN, so on an intranet without the
internet they stay blank. Here the assets come from the ``fastapi-offline`` package (locked in
uv.lock, so every installation has them): ``swagger-ui-bundle.js``, ``swagger-ui.css`` and
``favicon.png`` are served by the ``/static`` mount after the product's own files
(``STATIC_PACKAGES``); ``redoc.standalone.js`` by ``redoc_bundle`` below, with the one address
elsewhere it has (the Redocly logo in its footer) taken out. The pages carry no inline script:
each UI is started by a small static script (``api/static/docs/*.js``) that reads the schema's
address from its element's ``data-`` attribute, so the docs run under the product's Content-
Security-Policy (``POLICIES``: what ReDoc needs beyond the strict one, ``api.security_headers``).
"""

from __future__ import annotations

import hashlib
from functools import cache
from html import escape
from importlib.resources import files

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from api.routing import Router
from api.security_headers import REDOC_CSP

router = Router(pages=True)

ASSETS_PACKAGE = "fastapi_offline"
# Served by the /static mount after api/static itself (StaticFiles(packages=...)).
STATIC_PACKAGES: list[str | tuple[str, str]] = [(ASSETS_PACKAGE, "static")]
OPENAPI_PATH, SWAGGER_PATH, REDOC_PATH = "/openapi.json", "/docs", "/redoc"
REDOC_BUNDLE_PATH = "/redoc/redoc.standalone.js"
POLICIES = {REDOC_PATH: REDOC_CSP}
# The API's name is its generated clients' name (openapi-python-client: ``tongban-client``, a
# package pip installs); the Chinese name leads the summary and description, which the docs show.
TITLE = "Tongban"
SUMMARY = "通办: 跨域通办办件编排平台接口"
DESCRIPTION = ("通办 (Tongban) 的接口: 事项定义、办件收件与流转、跨域移交、材料扫描、视频踏勘、证照与寄递。\n\n"
               "认证: `Authorization: Bearer <令牌>` (窗口人员的 API 令牌)。修改办件须带 `If-Match` (办件的 ETag)。"
               "所有错误均为 RFC 9457 问题详情 (`application/problem+json`, 见 Problem)。"
               "生成客户端的方法见 docs/api/clients.md。")
# The operation groups, as the docs list them.
TAGS = [
    {"name": "public", "description": "公开接口: 申请人凭查询码查询进度、撤回申请; 健康检查、就绪检查、运行指标"},
    {"name": "items", "description": "事项定义: 列表、发布新版本、流程图"},
    {"name": "cases", "description": "办件: 收件、查看、执行操作 (受理、移交、审批…)、材料、认领与转交、队列、历史"},
    {"name": "documents", "description": "材料扫描页与证据: 上传、排序、撤回、下载"},
    {"name": "dashboard", "description": "督查看板数据"},
    {"name": "video", "description": "视频踏勘: 房间、邀请链接、截图、踏勘结论"},
    {"name": "certificates", "description": "电子证照"},
    {"name": "mail", "description": "寄递: 运单、面单、物流轨迹"},
    {"name": "directory",
     "description": "联盟目录管理 (目录管理员): 行政区划、成员单位、窗口及其事项清单、工作人员; 每次修改即新版本"},
]
# ReDoc's footer shows Redocly's logo from their CDN (an <img> it always renders): an empty data:
# URL instead fails to load, and ReDoc then hides the image; the "API docs by Redocly" text stays.
REDOCLY_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
NO_IMAGE = b"data:,"

_PAGE = """<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" type="image/png" href="{root}/static/favicon.png">
{head}
</head>
<body>
<noscript>接口文档需要启用 JavaScript; 机器可读的接口定义见 <a href="{root}{openapi}">{openapi}</a>。</noscript>
{body}
</body>
</html>
"""


def _page(request: Request, title: str, head: str, body: str) -> HTMLResponse:
    root = escape(request.scope.get("root_path", "") or "")
    fill = {"root": root, "openapi": OPENAPI_PATH}
    return HTMLResponse(_PAGE.format(title=escape(title), head=head.format(**fill), body=body.format(**fill), **fill))


@router.get(SWAGGER_PATH, response_class=HTMLResponse)
def swagger_ui(request: Request) -> HTMLResponse:
    """接口文档 (Swagger UI): 可直接试调接口; 页面资源全部由本服务提供。"""
    return _page(request, "通办 Tongban 接口文档 · Swagger UI",
                 '<link rel="stylesheet" href="{root}/static/swagger-ui.css">',
                 '<div id="swagger-ui" data-openapi-url="{root}{openapi}"></div>\n'
                 '<script src="{root}/static/swagger-ui-bundle.js"></script>\n'
                 '<script src="{root}/static/docs/swagger-init.js"></script>')


@router.get(REDOC_PATH, response_class=HTMLResponse)
def redoc(request: Request) -> HTMLResponse:
    """接口参考 (ReDoc): 按操作阅读的接口说明; 页面资源全部由本服务提供。"""
    return _page(request, "通办 Tongban 接口参考 · ReDoc",
                 '<link rel="stylesheet" href="{root}/static/docs/redoc.css">',
                 '<div id="redoc" data-openapi-url="{root}{openapi}"></div>\n'
                 '<script src="{root}' + REDOC_BUNDLE_PATH + '"></script>\n'
                 '<script src="{root}/static/docs/redoc-init.js"></script>')


@cache
def _redoc_bundle() -> tuple[bytes, str]:
    raw = files(ASSETS_PACKAGE).joinpath("static", "redoc.standalone.js").read_bytes()
    body = raw.replace(REDOCLY_LOGO, NO_IMAGE)
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


@router.get(REDOC_BUNDLE_PATH)
def redoc_bundle(request: Request) -> Response:
    """ReDoc's standalone bundle, read once from the package; cached by ETag."""
    body, etag = _redoc_bundle()
    headers = {"ETag": etag, "Cache-Control": "public, max-age=86400"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="text/javascript; charset=utf-8", headers=headers)
