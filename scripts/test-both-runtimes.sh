#!/bin/sh
# Runs a package's vitest suite twice, with M_DOCKER_JS_RUNTIME=node and
# with =bun, so that every process the tests start (the CLI, the init and
# the fixtures) runs once under each runtime. Each run writes its own JSON
# report for the summary line of `pnpm test`. Extra arguments go to vitest.
#
# Bun creates a bun-node-* folder in TMPDIR for the processes it starts, so
# each run gets a TMPDIR of its own, removed afterwards.
status=0
for runtime in node bun; do
  echo "== vitest with M_DOCKER_JS_RUNTIME=$runtime"
  tmp=$(mktemp -d)
  TMPDIR=$tmp M_DOCKER_JS_RUNTIME=$runtime vitest run "$@" || status=1
  rm -rf "$tmp"
done
exit $status
