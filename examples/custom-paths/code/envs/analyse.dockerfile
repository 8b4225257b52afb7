FROM docker.io/library/debian:12-slim
WORKDIR /project
COPY . .
