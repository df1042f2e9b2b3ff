# k8sbot: slim image, non-root, `k8sbot run` (Socket Mode unless --http).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot bot
COPY handlers handlers
COPY k8sbot k8sbot
COPY slack_emulator slack_emulator
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --uid 10001 --user-group --no-create-home --home-dir /var/lib/k8sbot k8sbot \
 && mkdir -p /var/lib/k8sbot /etc/k8sbot && chown k8sbot:k8sbot /var/lib/k8sbot
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY permissions.yaml /etc/k8sbot/permissions.yaml
ENV K8SBOT_PERMISSIONS=/etc/k8sbot/permissions.yaml \
    K8SBOT_DB=/var/lib/k8sbot/k8sbot.db \
    K8SBOT_HTTP_HOST=0.0.0.0 \
    PYTHONUNBUFFERED=1
USER 10001:10001
EXPOSE 3000
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=3)"
ENTRYPOINT ["k8sbot", "run"]
