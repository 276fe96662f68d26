#!/bin/sh
# Runs a package's vitest suite twice, with M_DOCKER_JS_RUNTIME=node and
# with =bun, so that every process the tests start (the CLI, the init and
# the fixtures) runs once under each runtime. Each run writes its own JSON
# report for the summary line of `pnpm test`. Extra arguments go to vitest.
status=0
for runtime in node bun; do
  echo "== vitest with M_DOCKER_JS_RUNTIME=$runtime"
  M_DOCKER_JS_RUNTIME=$runtime vitest run --outputFile.json="test-results-$runtime.json" "$@" || status=1
done
exit $status
