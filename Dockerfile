# k8sbot: slim image, non-root, `k8sbot` as entrypoint (`run`: Socket Mode unless --http).
#
#   scripts/build-image          (podman; makes a Debian base itself when no registry is reachable)
#   docker build -t k8sbot .     (the official slim Python image)
#
# BASE_IMAGE: any Debian-like image with python3 (>= 3.11), python3 -m venv and useradd.
ARG BASE_IMAGE=python:3.11-slim

# The dependency list of pyproject.toml, alone: the install below is redone only when it changes.
FROM ${BASE_IMAGE} AS requirements
COPY pyproject.toml /src/
RUN python3 -c "import tomllib; print('\n'.join(tomllib.load(open('/src/pyproject.toml', 'rb'))['project']['dependencies']))" >/requirements.txt

FROM ${BASE_IMAGE} AS build
# A CA for pip behind a TLS-inspecting path: a path mounted for the build only (scripts/build-image),
# never copied into the image. Empty: pip's own trust store.
ARG PIP_CERT=
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
# The bot's user, made here and copied: the final stage runs nothing (no RUN, so no build-time mount
# can leave a trace in its layers).
RUN useradd --uid 10001 --user-group --no-create-home --home-dir /var/lib/k8sbot --shell /usr/sbin/nologin k8sbot \
 && mkdir -p /var/lib/k8sbot && chown k8sbot:k8sbot /var/lib/k8sbot
WORKDIR /src
COPY --from=requirements /requirements.txt /tmp/requirements.txt
# strip(1), for the build stage only: the wheels' shared objects carry debug sections (~30 MB).
RUN apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends binutils >/dev/null \
 && rm -rf /var/lib/apt/lists/*
# What the bot never loads goes (tests, stubs, build tools, unused fonts, codecs and Kubernetes
# asyncio client: see that script) and the debug sections of the shared objects.
COPY scripts/image-prune.py /tmp/image-prune.py
RUN if [ -z "$PIP_CERT" ]; then unset PIP_CERT; fi \
 && python3 -m venv /opt/k8sbot \
 && /opt/k8sbot/bin/pip install --quiet -r /tmp/requirements.txt \
 && /opt/k8sbot/bin/python /tmp/image-prune.py
COPY pyproject.toml README.md ./
COPY bot bot
COPY handlers handlers
COPY k8sbot k8sbot
COPY slack_emulator slack_emulator
# Then the project; pip and setuptools leave the venv (nothing installs at run time), and the
# bytecode is compiled once here: the root filesystem is read-only when the bot runs.
RUN if [ -z "$PIP_CERT" ]; then unset PIP_CERT; fi \
 && /opt/k8sbot/bin/pip install --quiet --no-deps . \
 && /opt/k8sbot/bin/pip uninstall --quiet -y pip setuptools wheel \
 && rm -f /opt/k8sbot/bin/activate* /opt/k8sbot/bin/Activate.ps1 \
 && find /opt/k8sbot -name '__pycache__' -prune -exec rm -rf {} + \
 && /opt/k8sbot/bin/python -m compileall -q -j 0 /opt/k8sbot/lib >/dev/null \
 && /opt/k8sbot/bin/python -c "import kubernetes.client, kubernetes.config, kubernetes.watch, k8sbot.cli, bot.timeline.drawing, PIL._imaging, PIL._imagingmath, PIL._imagingmorph"

FROM ${BASE_IMAGE}
ARG VERSION=0.0.0
ARG REVISION=unknown
ARG SOURCE=https://github.com/k8sbot/k8sbot
COPY --from=build /etc/passwd /etc/group /etc/shadow /etc/gshadow /etc/
COPY --from=build --chown=10001:10001 /var/lib/k8sbot /var/lib/k8sbot
COPY --from=build /opt/k8sbot /opt/k8sbot
COPY permissions.yaml /etc/k8sbot/permissions.yaml
ENV PATH=/opt/k8sbot/bin:$PATH \
    K8SBOT_PERMISSIONS=/etc/k8sbot/permissions.yaml \
    K8SBOT_DB=/var/lib/k8sbot/k8sbot.db \
    K8SBOT_HTTP_HOST=0.0.0.0 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
WORKDIR /var/lib/k8sbot
EXPOSE 3000
HEALTHCHECK CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=3)"]
LABEL org.opencontainers.image.title="k8sbot" \
      org.opencontainers.image.description="Slack ChatOps troubleshooting bot for Kubernetes" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
ENTRYPOINT ["k8sbot"]
CMD ["run"]
