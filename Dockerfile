# syntax=docker/dockerfile:1
# rtk-router: build the wheel and its dependencies in one stage, run as a non-root user in the
# next. The image runs `router serve` with the configuration at /etc/rtk-router/config.yaml;
# never with --dev.

FROM python:3.11-slim AS build
WORKDIR /src
RUN python -m venv /opt/rtk-router
# The pinned dependencies first (a layer that changes only with the lock file), then the
# project without resolving anything again, so two builds of one commit install the same.
COPY requirements.lock ./
RUN /opt/rtk-router/bin/pip install --no-cache-dir -r requirements.lock
COPY pyproject.toml README.md ./
COPY router ./router
COPY handlers ./handlers
RUN /opt/rtk-router/bin/pip install --no-cache-dir --no-deps . \
 && /opt/rtk-router/bin/pip check

FROM python:3.11-slim AS run
RUN groupadd --system --gid 10001 router \
 && useradd --system --uid 10001 --gid router --home-dir /srv/rtk-router --create-home router
COPY --from=build /opt/rtk-router /opt/rtk-router
COPY config.yaml /etc/rtk-router/config.yaml
ENV PATH=/opt/rtk-router/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    ROUTER_CONFIG=/etc/rtk-router/config.yaml
USER 10001:10001
WORKDIR /srv/rtk-router
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz').status == 200 else 1)"]
STOPSIGNAL SIGTERM
CMD ["router", "serve"]
