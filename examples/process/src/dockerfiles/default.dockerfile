# The environment of every pipe without a recipe of its own.
FROM docker.io/library/buildpack-deps:bookworm
WORKDIR /
COPY . .
