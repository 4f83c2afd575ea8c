# rollgit's container image: `docker build -t rollgit:0.1.0 .` (see README, "Run in a cluster").
# Build stage: the release binary.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin rollgit \
 && cp target/release/rollgit /rollgit

# Runtime: Debian slim with the git binary (rollgit pushes revert and bump commits with
# `git push`) and CA certificates; non-root, as deploy/deployment.yaml runs it.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates openssh-client \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /rollgit /usr/local/bin/rollgit
USER 65532:65532
ENV HOME=/var/lib/rollgit
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/rollgit"]
