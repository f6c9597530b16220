#!/usr/bin/env bash
# The Syncplane test command: ./scripts/test.sh [extra `go test` args]
#
# Runs every check CI runs, in order. Each step is a function named step_<name>
# listed in STEPS; add new steps there.
#
# Environment:
#   SYNCPLANE_TEST_DATABASE_URL  use this PostgreSQL instead of starting a
#                                private cluster in .syncplane/testpg
#   SYNCPLANE_TEST_SKIP          comma-separated steps to skip, e.g. "vet,browser"
#   SYNCPLANE_HELM               helm binary for step helm (default: helm
#                                $HELM_VERSION, built once into .syncplane/bin)
#
# Examples:
#   ./scripts/test.sh
#   ./scripts/test.sh -run TestTenant -v
#   SYNCPLANE_TEST_SKIP=gofmt,vet ./scripts/test.sh -run TestLocalPG -v
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

STEPS=(gofmt templ vet test browser helm promtool scrape)

if [[ -x /usr/local/go/bin/go && ":$PATH:" != *":/usr/local/go/bin:"* ]]; then
	PATH="/usr/local/go/bin:$PATH"
fi
if ! command -v go >/dev/null 2>&1; then
	echo "test.sh: Go is not installed (no 'go' in PATH or /usr/local/go/bin); see https://go.dev/doc/install" >&2
	exit 1
fi

header() { printf '\n==> %s\n' "$*"; }
die() {
	echo "test.sh: $*" >&2
	exit 1
}

# --- private PostgreSQL -----------------------------------------------------

TESTPG_DIR=.syncplane/testpg
TESTPG_DB=syncplane_test
testpg_bin=""
testpg_lease=""

# ensure_test_db sets SYNCPLANE_TEST_DATABASE_URL, starting (or reusing) the
# private cluster unless the caller provided one. Steps that need a database
# call it; it is a no-op the second time.
ensure_test_db() {
	if [[ -n "${SYNCPLANE_TEST_DATABASE_URL:-}" ]]; then
		return 0
	fi
	# A private binary: concurrent test runs must not overwrite each other's.
	testpg_bin=$(mktemp -d "${TMPDIR:-/tmp}/syncplane-test.XXXXXX")/syncplane
	go build -o "$testpg_bin" ./cmd/syncplane || die "cannot build ./cmd/syncplane to start the test database"
	# The lease makes `release` stop the cluster only when no other test run
	# still uses it, and never if it was already running before we came.
	testpg_lease=$$
	local url
	url=$("$testpg_bin" localpg start --dir "$TESTPG_DIR" --db "$TESTPG_DB" --lease "$testpg_lease") ||
		die "could not start the test PostgreSQL in $TESTPG_DIR (or set SYNCPLANE_TEST_DATABASE_URL to use your own)"
	export SYNCPLANE_TEST_DATABASE_URL="$url"
	echo "test database: $SYNCPLANE_TEST_DATABASE_URL"
}

release_test_db() {
	if [[ -n "$testpg_lease" ]]; then
		"$testpg_bin" localpg release --dir "$TESTPG_DIR" --lease "$testpg_lease" ||
			echo "test.sh: warning: could not stop the test PostgreSQL in $TESTPG_DIR" >&2
		testpg_lease=""
	fi
	if [[ -n "$testpg_bin" ]]; then
		rm -rf "$(dirname "$testpg_bin")"
		testpg_bin=""
	fi
}

# --- steps ------------------------------------------------------------------

step_gofmt() {
	local files
	files=$(find . \( -name .git -o -name .syncplane -o -name node_modules -o -name testdata -o -name vendor \) -prune \
		-o -type f -name '*.go' -print0 | sort -z | xargs -0 -r gofmt -l)
	if [[ -n "$files" ]]; then
		echo "these files need gofmt (run: gofmt -w <file>):" >&2
		echo "$files" >&2
		return 1
	fi
}

# step_templ regenerates the console's templ components with the pinned templ
# and fails if a committed *_templ.go differs from what its .templ produces.
TEMPL_VERSION=v0.3.1100
step_templ() {
	local bin="$PWD/.syncplane/bin"
	if [[ ! -x "$bin/templ" ]] || ! "$bin/templ" version 2>/dev/null | grep -q "${TEMPL_VERSION#v}"; then
		echo "installing templ $TEMPL_VERSION into .syncplane/bin"
		GOBIN="$bin" go install "github.com/a-h/templ/cmd/templ@$TEMPL_VERSION"
	fi
	local before after
	before=$(git status --porcelain -- '*_templ.go' 2>/dev/null || true)
	"$bin/templ" generate -log-level error # from the repository root, like the templ docs and the hooks
	after=$(git status --porcelain -- '*_templ.go' 2>/dev/null || true)
	if [[ "$before" != "$after" ]]; then
		git --no-pager diff --stat -- '*_templ.go' >&2 || true
		die "templ generate changed generated files: run 'templ generate' at the repository root and commit them"
	fi
}

step_vet() {
	go vet ./...
}

step_test() {
	ensure_test_db
	go test ./... -count=1 -timeout 15m "$@"
}

# step_browser drives the console in headless Chromium (Debian's chromium,
# installed here when missing) through chromedp; screenshots of each step go
# to .syncplane/artifacts/browser/. Extra go test arguments are not passed.
step_browser() {
	ensure_test_db
	if ! command -v chromium >/dev/null 2>&1; then
		echo "installing Debian's chromium for the browser tests"
		local sudo=""
		if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
		{ $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null; } ||
			die "cannot install chromium; install it, or skip this step with SYNCPLANE_TEST_SKIP=browser"
	fi
	mkdir -p .syncplane/artifacts
	SYNCPLANE_BROWSER_TESTS=1 SYNCPLANE_ARTIFACTS="$PWD/.syncplane/artifacts" \
		go test ./admin/ -run '^TestBrowser' -count=1 -timeout 10m -v
}

# --- operations: helm chart, alert rules, a real Prometheus scrape ----------

# The newest Helm 3 the Go module proxy serves (go list -m -versions helm.sh/helm/v3).
HELM_VERSION=v3.22.0
TOOLS_BIN="$PWD/.syncplane/bin"

# ensure_helm sets HELM, building the pinned helm into .syncplane/bin the
# first time (about a minute; cached afterwards). The ldflags are those of
# Helm's Makefile: without them helm assumes Kubernetes 1.20.
ensure_helm() {
	if [[ -n "${SYNCPLANE_HELM:-}" ]]; then
		HELM=$SYNCPLANE_HELM
		return 0
	fi
	HELM="$TOOLS_BIN/helm"
	if [[ -x "$HELM" && "$("$HELM" version --template '{{.Version}}' 2>/dev/null)" == "$HELM_VERSION" ]]; then
		return 0
	fi
	echo "building helm $HELM_VERSION into $TOOLS_BIN"
	mkdir -p "$TOOLS_BIN"
	# Helm's Makefile derives the Kubernetes version from its client-go (v0.N → 1.N).
	local pkg=helm.sh/helm/v3 tmp gomod k8s_minor
	tmp=$(mktemp -d) # outside our module, so go.mod stays untouched
	gomod=$(cd "$tmp" && go mod download -json "$pkg@$HELM_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
	rm -rf "$tmp"
	k8s_minor=$(sed -n 's/^[[:space:]]*k8s.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$gomod" 2>/dev/null | head -1)
	GOBIN="$TOOLS_BIN" go install -ldflags "-X $pkg/internal/version.version=$HELM_VERSION \
		-X $pkg/internal/version.gitTreeState=clean \
		-X $pkg/pkg/lint/rules.k8sVersionMajor=1 -X $pkg/pkg/lint/rules.k8sVersionMinor=${k8s_minor:-33} \
		-X $pkg/pkg/chartutil.k8sVersionMajor=1 -X $pkg/pkg/chartutil.k8sVersionMinor=${k8s_minor:-33}" \
		"$pkg/cmd/helm@$HELM_VERSION" ||
		die "cannot build helm $HELM_VERSION; set SYNCPLANE_HELM to a helm binary, or skip with SYNCPLANE_TEST_SKIP=helm"
}

# ensure_prometheus installs Debian's prometheus package (prometheus and
# promtool) when missing, without letting it start its own service.
ensure_prometheus() {
	if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
		return 0
	fi
	echo "installing Debian's prometheus for promtool and the scrape test"
	local sudo="" policy=/usr/sbin/policy-rc.d made_policy="" rc=0
	if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
	# invoke-rc.d and deb-systemd-invoke start no service while policy-rc.d says 101.
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null && $sudo chmod 755 "$policy" && made_policy=1
	fi
	{ $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null; } || rc=$?
	if [[ -n $made_policy ]]; then $sudo rm -f "$policy"; fi
	if command -v systemctl >/dev/null 2>&1 && systemctl is-enabled --quiet prometheus 2>/dev/null; then
		$sudo systemctl disable --now prometheus >/dev/null 2>&1 || true
	fi
	[[ $rc -eq 0 ]] || die "cannot install prometheus; install it, or skip with SYNCPLANE_TEST_SKIP=promtool,scrape"
}

# step_helm: helm lint --strict and helm template with the default values
# and every example in charts/syncplane/ci, then the Go tests that parse the
# rendered manifests. Extra go test arguments are not passed.
step_helm() {
	ensure_helm
	local chart=charts/syncplane f
	for f in "" "$chart"/ci/*.yaml; do
		echo "helm lint/template ${f:-(default values)}"
		"$HELM" lint --strict "$chart" ${f:+-f "$f"} >/dev/null || "$HELM" lint --strict "$chart" ${f:+-f "$f"}
		"$HELM" template syncplane "$chart" ${f:+-f "$f"} >/dev/null
	done
	SYNCPLANE_HELM="$HELM" go test ./cmd/syncplane -run '^(TestChart|TestValuesKey|TestDashboard)' -count=1
}

# step_promtool: the alert rules are valid and every rule's unit tests (one
# firing, one quiet case) pass; promtool lints the metrics exposition.
step_promtool() {
	ensure_prometheus
	promtool check rules charts/syncplane/files/alerts.yaml
	promtool test rules ops/prometheus/alerts_test.yaml
	go test ./web/server -run '^TestExpositionPassesPromtool$' -count=1
}

# step_scrape: a built `syncplane serve` scraped by a real Prometheus
# (cmd/syncplane/scrape_ops_test.go), about 15 seconds.
step_scrape() {
	ensure_test_db
	ensure_prometheus
	SYNCPLANE_SCRAPE_TEST=1 go test ./cmd/syncplane -run '^TestRealScrape$' -count=1 -timeout 5m -v
}

# --- main -------------------------------------------------------------------

current_step=""
on_exit() {
	local rc=$?
	release_test_db
	if [[ $rc -ne 0 && -n "$current_step" ]]; then
		printf '\nFAIL: step %s (exit %s after %ss)\n' "$current_step" "$rc" "$((SECONDS - step_start))" >&2
	fi
	exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

skip=",${SYNCPLANE_TEST_SKIP:-},"
skip=${skip// /}
for s in ${SYNCPLANE_TEST_SKIP:+${SYNCPLANE_TEST_SKIP//,/ }}; do
	if ! declare -F "step_$s" >/dev/null; then
		echo "test.sh: warning: SYNCPLANE_TEST_SKIP names unknown step '$s' (steps: ${STEPS[*]})" >&2
	fi
done

start=$SECONDS
step_start=$SECONDS
ran=()
for s in "${STEPS[@]}"; do
	if [[ "$skip" == *",$s,"* ]]; then
		header "$s (skipped: SYNCPLANE_TEST_SKIP)"
		continue
	fi
	header "$s"
	current_step=$s
	step_start=$SECONDS
	# Not inside `if`: errexit must stay active within the step functions.
	"step_$s" "$@"
	current_step=""
	ran+=("$s")
done
printf '\nOK: %s passed in %ss\n' "${ran[*]:-nothing}" "$((SECONDS - start))"
