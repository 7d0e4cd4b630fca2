# Task Affinity Lab: the Streamlit app on port 8501.
# CPU by default (torch's CPU wheel); training uses a GPU when the container is given one and
# the image is built with a CUDA torch (e.g. --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128).
FROM python:3.11-slim

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    MTL_LAB_STORE=/data/store.sqlite

# chromium: PNG figure export through kaleido
RUN apt-get update && apt-get install -y --no-install-recommends chromium \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /lab
COPY requirements.txt .
RUN pip install --no-cache-dir --extra-index-url "$TORCH_INDEX" -r requirements.txt

COPY . .
# The package itself (editable: one copy of mtl_core, in /lab; adds the task-affinity-lab command).
RUN pip install --no-cache-dir --no-deps -e .
VOLUME ["/data"]
EXPOSE 8501
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://localhost:8501/_stcore/health')"
# `python -m` puts /lab (the project root) on the import path for the app
CMD ["python", "-m", "streamlit", "run", "app/streamlit_app.py", "--server.port=8501", "--server.address=0.0.0.0"]
