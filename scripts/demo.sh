#!/usr/bin/env bash
# The main job on the embedded defaults: build the local-ping example (two
# processes on this host, each with its own loopback address), report it,
# scale it, and destroy it, in a throw-away OCCOPUS_HOME. No Docker, no
# cloud, no configuration file.
set -euo pipefail
cd "$(dirname "$0")/.."
export OCCOPUS_HOME=${OCCOPUS_HOME:-$(mktemp -d /tmp/occopus-demo.XXXXXX)}
bin=bin/occopus
ex=examples/local-ping
say() { printf '\n$ %s\n' "$*" >&2; }

say occopus validate $ex/infra.yaml $ex/nodes.yaml
$bin validate $ex/infra.yaml $ex/nodes.yaml
say occopus import $ex/nodes.yaml
$bin import $ex/nodes.yaml
say occopus build $ex/infra.yaml
# Not `tee /dev/stderr`: with `make demo > log 2>&1` tee would open the log
# afresh and write over what came before.
out=$($bin build $ex/infra.yaml)
printf '%s\n' "$out" >&2
id=$(printf '%s\n' "$out" | tail -n 1)
trap '$bin destroy -i "$id" >/dev/null 2>&1 || true' EXIT
say "cat \$OCCOPUS_HOME/local/$id/*.log   # what the sender received from the receiver"
cat "$OCCOPUS_HOME"/local/"$id"/*.log
say occopus scale -i "$id" -n sender -c 2
$bin scale -i "$id" -n sender -c 2
say occopus maintain -i "$id" -r
$bin maintain -i "$id" -r
say occopus maintain -i "$id" -r --format json
$bin maintain -i "$id" -r --format json
say occopus destroy -i "$id"
$bin destroy -i "$id"
trap - EXIT
