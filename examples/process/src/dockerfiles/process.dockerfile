# The environment of the `process` pipe. Any image with make, bash and coreutils works.
FROM docker.io/library/buildpack-deps:bookworm
WORKDIR /
COPY . .
