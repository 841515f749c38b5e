#!/usr/bin/env bash
# The main job on the embedded defaults: check, import and resolve the
# local example in a throw-away OCCOPUS_HOME. No Docker, no cloud, no config.
set -euo pipefail
cd "$(dirname "$0")/.."
export OCCOPUS_HOME=${OCCOPUS_HOME:-$(mktemp -d /tmp/occopus-demo.XXXXXX)}
bin=bin/occopus
ex=examples/local-ping
say() { printf '\n$ %s\n' "$*"; }

say occopus validate $ex/infra.yaml $ex/nodes.yaml
$bin validate $ex/infra.yaml $ex/nodes.yaml
say occopus import $ex/nodes.yaml
$bin import $ex/nodes.yaml
say occopus render $ex/infra.yaml
$bin render $ex/infra.yaml
echo
echo "demo: state kept in $OCCOPUS_HOME"
