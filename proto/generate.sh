#!/bin/sh
# Regenerates the Go code for proto/certd/v1. The output is committed, so a
# build needs none of these tools. Needs protoc (Debian protobuf-compiler),
# protoc-gen-go v1.36.12 and protoc-gen-go-grpc v1.6.2 on PATH.
set -e
cd "$(dirname "$0")"
protoc -I . \
  --go_out=. --go_opt=paths=source_relative \
  --go-grpc_out=. --go-grpc_opt=paths=source_relative \
  certd/v1/job.proto certd/v1/control.proto
