#!/usr/bin/env bash
# Regenerates the committed Go code of the broker's schema (proto/switchyard/v1) into gen/.
#
#   ./generate.sh           rewrite gen/switchyard/v1 from the schema
#   ./generate.sh --check   generate into a temp dir and fail if it differs from gen/ (CI runs this,
#                           so a schema change that is not regenerated, or that breaks the client,
#                           fails CI)
#
# Every tool is pinned, because the generated files name the versions that wrote them:
# protoc comes from the PyPI package grpcio-tools (in .venv), protoc-gen-go and protoc-gen-go-grpc
# are built from the Go module proxy into .bin. protoc-gen-go takes the version of the protobuf
# runtime in go.mod, so the generated code and the runtime it needs never drift apart.
set -euo pipefail
cd "$(dirname "$0")"
here=$PWD

GRPCIO_TOOLS_VERSION=1.85.1
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2
PROTOC_GEN_GO_VERSION=$(go list -m -f '{{.Version}}' google.golang.org/protobuf)
MODULE=$(go list -m)
GO_PACKAGE="$MODULE/gen/switchyard/v1;switchyardv1"
PROTO_ROOT=$here/../../proto

check=false
case "${1:-}" in
  --check) check=true ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

# go_version BINARY prints the module version a Go binary was built from, or nothing.
go_version() {
  [[ -x $1 ]] || return 0
  go version -m "$1" 2>/dev/null | awk '$1 == "mod" { print $3; exit }'
}

install_go_plugin() { # NAME PACKAGE VERSION
  if [[ $(go_version ".bin/$1") != "$3" ]]; then
    echo "== installing $1 $3 into .bin" >&2
    GOBIN=$here/.bin go install "$2@$3"
  fi
}

install_go_plugin protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go "$PROTOC_GEN_GO_VERSION"
install_go_plugin protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc "$PROTOC_GEN_GO_GRPC_VERSION"

if [[ $(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("grpcio-tools"))' 2>/dev/null) != "$GRPCIO_TOOLS_VERSION" ]]; then
  echo "== installing grpcio-tools $GRPCIO_TOOLS_VERSION into .venv" >&2
  [[ -x .venv/bin/python ]] || python3 -m venv .venv
  .venv/bin/python -m pip install --quiet --no-input "grpcio-tools==$GRPCIO_TOOLS_VERSION"
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

protos=()
for file in "$PROTO_ROOT"/switchyard/v1/*.proto; do
  protos+=("switchyard/v1/$(basename "$file")")
done
# The schema names no go_package (it is shared by every language), so each file is mapped here.
mappings=()
for proto in "${protos[@]}"; do
  mappings+=("--go_opt=M$proto=$GO_PACKAGE" "--go-grpc_opt=M$proto=$GO_PACKAGE")
done

# `python -m grpc_tools.protoc` adds the well-known types (google/protobuf/timestamp.proto) itself.
(cd "$PROTO_ROOT" && PATH="$here/.bin:$PATH" "$here/.venv/bin/python" -m grpc_tools.protoc \
  -I . \
  --go_out="$out" --go_opt=paths=source_relative \
  --go-grpc_out="$out" --go-grpc_opt=paths=source_relative \
  "${mappings[@]}" \
  "${protos[@]}")

if $check; then
  if ! diff -ru gen "$out" >&2; then
    echo "generate.sh --check: gen/ is out of date with proto/; run clients/go/generate.sh and commit gen/" >&2
    exit 1
  fi
  echo "generate.sh --check: gen/ matches proto/" >&2
else
  rm -rf gen
  mkdir -p gen
  cp -R "$out"/. gen/
  echo "generated gen/switchyard/v1 from proto/switchyard/v1" >&2
fi
