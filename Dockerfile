# Two images from one file:
#   docker build --target modelserver -t mobile-multimodal:latest .
#   docker build --target remediator  -t remediator:latest .
# `make images` (scripts/build_images.py) does this for you: it first bootstraps the local
# base image (no registry needed) and fills build/wheelhouse on the host, because containers
# here cannot reach the package index. With a registry: BASE_IMAGE=python:3.11-slim.
ARG BASE_IMAGE=remediator-base:bookworm

# --- dependencies, installed from the host-built wheelhouse (cached until deps change) ---
FROM ${BASE_IMAGE} AS deps-remediator
COPY build/requirements-remediator.txt /tmp/requirements.txt
COPY build/wheelhouse /tmp/wheelhouse
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /tmp/wheelhouse \
      -r /tmp/requirements.txt

FROM ${BASE_IMAGE} AS deps-modelserver
COPY build/requirements-modelserver.txt /tmp/requirements.txt
COPY build/wheelhouse /tmp/wheelhouse
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /tmp/wheelhouse \
      -r /tmp/requirements.txt

# --- common runtime shape: non-root appuser, venv on PATH -------------------------------
FROM ${BASE_IMAGE} AS runtime
RUN (getent group appuser || groupadd --gid 1000 appuser) \
 && (getent passwd appuser || useradd --uid 1000 --gid appuser --home-dir /app \
      --no-create-home --shell /usr/sbin/nologin appuser) \
 && mkdir -p /app /app/models /app/config /backup/models \
 && chown -R appuser:appuser /app /backup
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /app

# --- the serving app ---------------------------------------------------------------------
FROM runtime AS modelserver
COPY --from=deps-modelserver /opt/venv /opt/venv
COPY build/dist/ /tmp/dist/
RUN /opt/venv/bin/pip install --no-cache-dir --no-index --no-deps /tmp/dist/*.whl \
 && rm -rf /tmp/dist
COPY --chown=appuser:appuser config/model.yml /app/config/model.yml
COPY --chown=appuser:appuser models/ /app/models/
COPY --chown=appuser:appuser models/ /backup/models/
COPY --chown=appuser:appuser scripts/ /app/scripts/
# A clean, read-only model store inside the image, so the runbook's
# `python scripts/download_models.py --model int2_quantized --force` can repair /app/models
# from within the container (no registry or network needed). root-owned, mode a=rX.
COPY models/ /opt/model-store/
RUN chown -R root:root /opt/model-store && chmod -R a=rX /opt/model-store
ENV MODEL_DIR=/app/models \
    MODEL_CONFIG=/app/config/model.yml \
    MODEL_STORE=/opt/model-store \
    PORT=8080
VOLUME ["/app/models", "/backup/models"]
USER appuser
EXPOSE 8080
STOPSIGNAL SIGTERM
# The runbook's "Automated Recovery" healthcheck, verbatim in spirit.
HEALTHCHECK --interval=60s --timeout=30s --retries=3 --start-period=120s \
  CMD ["python", "-c", "from mobile_multimodal import MobileMultiModalLLM; MobileMultiModalLLM.health_check()"]
CMD ["modelserver", "serve", "--port", "8080", "--model-dir", "/app/models", "--config", "/app/config/model.yml"]

# --- Remediator (compose shape; `make up` runs it as a host process) ---------------------
FROM runtime AS remediator
COPY --from=deps-remediator /opt/venv /opt/venv
COPY build/dist/ /tmp/dist/
RUN /opt/venv/bin/pip install --no-cache-dir --no-index --no-deps /tmp/dist/*.whl \
 && rm -rf /tmp/dist
COPY --chown=appuser:appuser config/ /app/config/
COPY --chown=appuser:appuser playbooks/ /app/playbooks/
RUN mkdir -p /app/state && chown appuser:appuser /app/state
USER appuser
EXPOSE 9096
CMD ["remediator", "serve", "--host", "0.0.0.0", "--port", "9096", "--db", "/app/state/remediator.db", \
     "--config", "/app/config/remediator.yml", "--playbooks", "/app/playbooks"]
