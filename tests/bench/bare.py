"""A bare FastAPI endpoint, the yardstick for the case service's single posts (issue 21): the
same route and server settings, the body read and parsed as JSON, nothing checked or stored."""

import json

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

app = FastAPI()


@app.post("/events", status_code=201)
async def post_events(request: Request) -> JSONResponse:
    event = json.loads(await request.body())
    return JSONResponse({"id": event["id"]}, status_code=201)
