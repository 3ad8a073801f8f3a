#!/usr/bin/env bash
# Regenerates api/gen from api/proto with protoc and ts-proto (for @grpc/grpc-js).
# Usage: scripts/proto.sh [OUT_DIR]   (default api/gen; the drift test passes a temp dir)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-"$root/api/gen"}
if ! command -v protoc >/dev/null 2>&1; then
  echo "protoc not found: install Debian's protobuf-compiler (apt-get install -y protobuf-compiler)" >&2
  exit 3
fi
rm -rf "$out"
mkdir -p "$out"
mapfile -t files < <(cd "$root/api/proto" && find . -name '*.proto' | sort)
(
  cd "$root/api/proto"
  protoc \
    --plugin=protoc-gen-ts_proto="$root/node_modules/.bin/protoc-gen-ts_proto" \
    --ts_proto_out="$out" \
    --ts_proto_opt=outputServices=grpc-js,esModuleInterop=true,importSuffix=.js,env=node,forceLong=number,snakeToCamel=false,useOptionals=none,oneof=unions-value,outputJsonMethods=false,outputPartialMethods=false,useExactTypes=false \
    "${files[@]}"
)
