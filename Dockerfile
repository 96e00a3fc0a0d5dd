# One image for every Frisag process; the compose file picks the command.
FROM python:3.11.10-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml ./
COPY shared ./shared
COPY services ./services
# var/auth: the development signing key and tokens (compose shares it between the services)
RUN pip install . && useradd --system --uid 10001 frisag && mkdir -p var/auth && chown -R frisag var
USER frisag
EXPOSE 8000 8001 8002 8003
CMD ["uvicorn", "services.case.api:app", "--host", "0.0.0.0", "--port", "8001"]
