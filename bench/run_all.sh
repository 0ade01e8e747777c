#!/usr/bin/env bash
# Every benchmark in one run (issue 8), each with its peer where it has one, on 127.0.0.1 only; each script
# bounds itself and stops what it starts. The output of each goes to var/bench-all/<date>/<name>.log and a
# summary (machine, date, command, the lines that carry the figures) is appended to bench/BENCHMARKS.md.
#   createdb -h 127.0.0.1 -U postgres mhospital_bench; apt-get install -y orthanc orthanc-dicomweb nginx
#   bash bench/run_all.sh                # BENCHES="stow qido" to run some; QUICK=1 for smaller sizes
set -uo pipefail
cd "$(dirname "$0")/.."
stamp="$(date -u +%Y-%m-%dT%H:%M)"
out="var/bench-all/$stamp"
mkdir -p "$out"
if [ -n "${QUICK:-}" ]; then
  export INSTANCES=400 MESSAGES=400 SECONDS_=20 CALLS=100 OBSERVATIONS=2000
fi
# name | command | the lines of its output that carry the figures (grep -E)
benches=(
  "audit|.venv/bin/python bench/audit_chain.py|^\\|"
  "worklist|bash bench/worklist_bench.sh|Aggregated|server errors"
  "stow|bash bench/stow_bench.sh|ratio|\"rate\"|cpu|previewed_s|median|instances,"
  "request|bash bench/request_cost.sh|ms of server CPU|a body of"
  "qido|bash bench/qido_bench.sh|studies +p50"
  "hl7|bash bench/hl7_bench.sh|obs|msg|p50|p95|server errors"
  "signalling|bash bench/signalling_bench.sh|p99|lost|KB|msg/s|errors"
  "fhir|env DATABASE_URL=postgres://postgres@127.0.0.1:5432/mhospital_bench .venv/bin/python bench/fhir_bench.py|^\\|"
  "ai|.venv/bin/python bench/ai_bench.py|^\\|"
  "mixed|bash bench/mixed_load.sh|^\\| all|error rate|CPU|slowest|^ +[0-9.]+ ms"
  "scaleout|bash bench/scaleout.sh|Aggregated|127.0.0.1:|statuses|workers answering"
)
summary="$out/summary.md"
{
  echo
  echo "## Run of every benchmark, $stamp UTC (\`bash bench/run_all.sh\`)"
  echo
  echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)), $(free -g | awk '/Mem:/ {print $2}') GiB," \
       "load average at the start $(cut -d' ' -f1-3 /proc/loadavg); full output in \`$out/\`."
} > "$summary"
for entry in "${benches[@]}"; do
  IFS='|' read -r name command _ <<< "$entry"
  pattern="${entry#*|*|}"  # the rest: alternatives for grep -E
  if [ -n "${BENCHES:-}" ] && [[ " $BENCHES " != *" $name "* ]]; then continue; fi
  script="${command##* }"
  if [ ! -f "$script" ]; then echo "skipping $name: $script is not here"; continue; fi
  echo "== $name: $command"
  started=$(date +%s)
  timeout "${BENCH_TIMEOUT:-1800}" $command > "$out/$name.log" 2>&1
  status=$?
  {
    echo
    echo "### $name (\`$command\`, $(( $(date +%s) - started )) s, exit $status)"
    echo
    echo '```'
    grep -E "$pattern" "$out/$name.log" | grep -v '^\s*$' | tail -25
    echo '```'
  } >> "$summary"
done
cat "$summary" >> bench/BENCHMARKS.md
cat "$summary"
