# CPU image of the sentiment API. Multi-stage: the runtime stage gets the finished virtual
# environment and nothing used to build it (no pip, no compilers, no package caches).
#
# Online (a registry and PyPI reachable):
#   docker build -t sentitune .
#   docker run -p 8000:8000 -e API_KEY=change-me sentitune
# Offline or behind a mirror: give the base image and the package index as build arguments, e.g.
#   podman build --build-arg BASE_IMAGE=localhost/debian-python:bookworm \
#       --build-arg PIP_INDEX_URL=http://mirror/simple --build-arg TORCH_INDEX_URL= -t sentitune .
# scripts/check_container.sh builds it that way from a debootstrap base and this machine's pip config.
#
# Settings come from the environment (MODEL_PATH, API_KEY, PORT, WORKERS, ... : README "Settings");
# a model of your own is mounted and named by MODEL_PATH.
# GPU: build FROM a CUDA runtime base with python3, set TORCH_INDEX_URL to the matching CUDA index,
# run with `--gpus all -e DEVICE=cuda`.

ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
# Where packages come from. Empty values mean pip's defaults (PyPI).
ARG PIP_INDEX_URL=
ARG PIP_EXTRA_INDEX_URL=
ARG PIP_FIND_LINKS=
# a CA bundle for pip, where a proxy re-signs TLS (mounted into the build, not kept in the image)
ARG PIP_CERT=
# CPU torch from its own index (an unpinned torch from PyPI is the multi-GB CUDA build); empty = the
# indexes above, for mirrors that carry the CPU wheel.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG TORCH_VERSION=2.13.0
# (build arguments are in RUN's environment, where pip reads PIP_*)
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/sentitune
ENV PATH=/opt/sentitune/bin:$PATH
RUN if [ -n "$TORCH_INDEX_URL" ]; then pip install "torch==${TORCH_VERSION}" --index-url "$TORCH_INDEX_URL"; \
    else pip install "torch==${TORCH_VERSION}"; fi
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install ".[export]" && pip uninstall -y pip && find /opt/sentitune -name __pycache__ -prune -exec rm -rf {} +

FROM ${BASE_IMAGE} AS runtime
ENV PATH=/opt/sentitune/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false HOST=0.0.0.0 PORT=8000
COPY --from=build /opt/sentitune /opt/sentitune
COPY configs/deploy.yaml /etc/sentitune/deploy.yaml
RUN useradd --system --uid 10001 --create-home --home-dir /home/sentitune sentitune
USER 10001
WORKDIR /home/sentitune
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PORT', '8000')}/api/v1/health\")"]
# exec form: SIGTERM reaches uvicorn, which finishes requests in flight before exiting
CMD ["sentitune", "serve", "--config", "/etc/sentitune/deploy.yaml"]
