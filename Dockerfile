# otel-netreceiver agent image (deploy/kubernetes/base/daemonset.yaml runs it).
# The same steps as scripts/dev.sh on a fresh Debian bookworm machine: Debian's python3 and
# python3-venv, a virtualenv, `pip install` of this project; bcc, when wanted, is Debian's
# python3-bpfcc linked into the venv (PyPI's "bcc" is an unrelated package; REFERENCE.md).
# No ethtool binary: the agent reads ENA counters with the SIOCETHTOOL ioctl itself.
#
#   docker build -t otel-netreceiver:0.1.0 .
#   docker build --build-arg WITH_BCC=1 -t otel-netreceiver:0.1.0-bpf .   # for components/ebpf
ARG DEBIAN_RELEASE=bookworm

FROM debian:${DEBIAN_RELEASE}-slim AS build
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY otel_netreceiver ./otel_netreceiver
RUN python3 -m venv /opt/otel-netreceiver/venv \
    && /opt/otel-netreceiver/venv/bin/python -m pip install -q --no-cache-dir --upgrade pip \
    && /opt/otel-netreceiver/venv/bin/python -m pip install -q --no-cache-dir /src[grpc]

FROM debian:${DEBIAN_RELEASE}-slim
ARG WITH_BCC=0
# python3 from the same Debian release as the build stage: the venv's interpreter links to it.
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends python3 ca-certificates \
    && if [ "$WITH_BCC" = 1 ]; then \
         apt-get install -y -qq --no-install-recommends python3-bpfcc; \
       fi \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/otel-netreceiver/venv /opt/otel-netreceiver/venv
RUN if [ "$WITH_BCC" = 1 ]; then \
      site="$(/opt/otel-netreceiver/venv/bin/python -c 'import site; print(site.getsitepackages()[0])')" \
      && ln -sfn /usr/lib/python3/dist-packages/bcc "$site/bcc"; \
    fi \
    && /opt/otel-netreceiver/venv/bin/otel-netreceiver --version
ENV PATH=/opt/otel-netreceiver/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# uid 0 on purpose: the DaemonSet drops every capability but the named ones, and Kubernetes
# grants added capabilities only to uid 0 (no ambient capabilities); see daemonset.yaml.
USER 0:0
ENTRYPOINT ["otel-netreceiver"]
CMD ["run", "-c", "/etc/otel-netreceiver/config.yaml"]
