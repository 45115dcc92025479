# CPU image of the sentiment API.
#   docker build -t sentitune .
#   docker run -p 8000:8000 -e API_KEY=change-me sentitune
# GPU: build FROM a CUDA runtime image (e.g. nvidia/cuda:12.4.1-runtime-ubuntu22.04 with python3.11),
# install torch from the matching CUDA index instead of the CPU one, run with `--gpus all -e DEVICE=cuda`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
WORKDIR /app

# CPU torch first: an unpinned torch would pull the multi-GB CUDA build.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install ".[export]" && useradd --create-home sentitune
COPY configs/deploy.yaml /app/deploy.yaml

USER sentitune
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/api/v1/health')"
# exec form: SIGTERM reaches uvicorn, which finishes requests in flight before exiting
CMD ["sentitune", "serve", "--config", "/app/deploy.yaml"]
