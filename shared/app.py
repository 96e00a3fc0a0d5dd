"""The FastAPI application every service starts from: its service object built at start-up and
closed at shutdown, problem+json for every error, and a health check."""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from shared import problems


def service_app(title: str, description: str, service_factory: Callable[[], Any] | None = None) -> FastAPI:
    """`app.state.service` is `service_factory()` while the app runs (closed afterwards)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.service = service_factory() if service_factory else None
        yield
        if app.state.service is not None:
            app.state.service.close()

    app = FastAPI(title=title, version="0.1.0", description=description, lifespan=lifespan)
    problems.install(app)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
