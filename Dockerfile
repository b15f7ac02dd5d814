# pulse-agent as a container: slim, non-root, HEALTHCHECK without curl, SIGTERM-clean as PID 1.
#   docker build -t pulse-agent .            (or: buildah bud --isolation chroot -t pulse-agent .)
#   docker run -e PULSE_API_TOKEN=$(openssl rand -hex 24) -v pulse-data:/var/lib/pulse -p 9108:9108 pulse-agent
# It listens on 0.0.0.0, so it refuses to start without an API token (api_token: ${PULSE_API_TOKEN}
# in your config; the bundled one reads it too) unless agent.insecure_api is true.
ARG PYTHON_IMAGE=python:3.12-slim

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
# python3, not a fixed path: the official image has /usr/local/bin, Debian's has /usr/bin.
RUN python3 -m venv /opt/pulse
COPY constraints.txt pyproject.toml README.md ./
COPY schemas ./schemas
COPY pulse_agent ./pulse_agent
RUN /opt/pulse/bin/pip install --no-cache-dir --disable-pip-version-check -c constraints.txt . \
 && /opt/pulse/bin/pip uninstall -y --disable-pip-version-check pip \
 && find /opt/pulse -name __pycache__ -prune -exec rm -rf {} +

FROM ${PYTHON_IMAGE}
RUN groupadd --gid 10001 pulse \
 && useradd --uid 10001 --gid pulse --home-dir /var/lib/pulse --no-create-home --shell /usr/sbin/nologin pulse \
 && mkdir -p /etc/pulse /var/lib/pulse \
 && chown pulse:pulse /var/lib/pulse
COPY --from=build /opt/pulse /opt/pulse
COPY pulse.yaml /etc/pulse/pulse.yaml
ENV PATH=/opt/pulse/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PULSE_CONFIG=/etc/pulse/pulse.yaml \
    PULSE_DATABASE=/var/lib/pulse/pulse.duckdb \
    PULSE_LISTEN=0.0.0.0:9108
USER 10001:10001
WORKDIR /var/lib/pulse
VOLUME ["/var/lib/pulse"]
EXPOSE 9108
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 CMD ["pulse-agent", "healthcheck"]
# Exec form: pulse-agent is PID 1 and gets SIGTERM itself (it finishes runs, flushes, exits 0).
ENTRYPOINT ["pulse-agent"]
CMD ["run"]
