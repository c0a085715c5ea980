"""The browser playground: a page to talk to and chat with the assistant (spec `playground: true`).

    GET /playground                 the page (playground_static/index.html)
    GET /playground/{asset}         its script, audio worklet and style sheet (a fixed list)
    GET /playground/info            what the page shows of the assistant (JSON, no secret)

The page is static and the same for every assistant: it holds nothing about this one, and learns
the rest from /playground/info and the API it drives (`/v1/chat/completions`,
`WS /v1/calls/protobuf?events=playground`), with the same credentials as any client. Every asset is
package data served from here: no CDN, nothing fetched from elsewhere. Not mounted when the
assistant does not enable it, so `/playground` is then a plain 404.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import Response

if TYPE_CHECKING:
    from aiassistant_contract.runner_config import RunnerConfig

ASSETS: dict[str, str] = {
    "index.html": "text/html; charset=utf-8",
    "playground.js": "text/javascript; charset=utf-8",
    "mic-worklet.js": "text/javascript; charset=utf-8",
    "playground.css": "text/css; charset=utf-8",
}
# The page and its static assets: the same for every assistant and holding nothing of this one, so
# they need no credentials (the page asks for the token); /playground/info and the API do.
PUBLIC_PATHS = frozenset({"/playground", *(f"/playground/{name}" for name in ASSETS if name != "index.html")})
# The page runs only its own scripts and talks only to this runner.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; media-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'"
)


def asset(name: str) -> bytes:
    """The bytes of one packaged asset (KeyError for a name not in ASSETS)."""
    if name not in ASSETS:
        raise KeyError(name)
    return resources.files(__package__).joinpath("playground_static", name).read_bytes()


def info(config: RunnerConfig) -> dict[str, Any]:
    """The assistant as the page shows it: names, model, and whether it takes calls."""
    realtime = config.voice.model if config.realtime and config.voice else None
    return {
        "name": config.name,
        "namespace": config.namespace,
        "engineModel": config.engine_model,
        "voice": config.voice_ready() and "protobuf" in config.transport.serializers,
        "realtime": realtime,  # the xAI speech-to-speech model, when calls are realtime
        "stt": config.stt.type if config.stt else None,
        "tts": config.tts.type if config.tts else None,
        "greeting": config.greeting is not None,
    }


def mount_playground(app: FastAPI, config: RunnerConfig) -> None:
    """Add the playground's routes to `app`."""
    headers = {
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-cache",
    }

    @app.get("/playground", include_in_schema=False)
    async def page() -> Response:
        return Response(asset("index.html"), media_type=ASSETS["index.html"], headers=headers)

    @app.get("/playground/info", include_in_schema=False)
    async def playground_info() -> dict[str, Any]:
        return info(config)

    @app.get("/playground/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        if name not in ASSETS or name == "index.html":
            raise HTTPException(404, "not found")
        return Response(asset(name), media_type=ASSETS[name], headers=headers)
