#!/usr/bin/env bash
# Migration soak: 4-vCPU lock stresses (8 threads contending on one lock,
# every allocation and thread spawn in the kernel's locks too) migrated to a
# fresh QEMU every 0.5 s, in every lock mode, paused (pvbench's default under
# TCG) and live. Each run must finish with its own checks passed (data
# intact, counters consistent, no vCPU left waiting: exit status 0).
#
#   results/migration/soak.sh OUT_DIR [RUNS_PAUSED] [RUNS_LIVE]
#
# Writes OUT_DIR/runs.tsv (one line per guest), OUT_DIR/summary.txt and
# OUT_DIR/provenance.txt. About 25 s per run under TCG on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:?usage: soak.sh OUT_DIR [RUNS_PAUSED] [RUNS_LIVE]}
paused=${2:-4}
live=${3:-2}
modes=(base pv qspin pvqspin tas)
# Rounds per mode. Since the kernel's allocator fix a 2,000-round stress ends
# in ~3 s in the modes that do not spin on a preempted vCPU's lock (6
# migrations a run: 36 per mode in six runs), while base and qspin, spinning
# 4 vCPUs on 2 cores, take 10-80 s; those get 8x the rounds, so that every
# mode's runs live through dozens of migrations each.
rounds_of() { case $1 in base | qspin) echo 2000 ;; *) echo 16000 ;; esac; }
cargo build -q --release -p pvbench
pvbench=target/release/pvbench
mkdir -p "$out"
{
  # As pvbench's own provenance: results a run writes change no measurement,
  # only sources and the scripts and matrices under results/ do.
  # (Two calls: an exclude applies to every pathspec of its call.)
  changed=$(git status --porcelain --untracked-files=no -- . ':(exclude)results'
    git status --porcelain --untracked-files=no -- \
      ':(glob)results/**/*.sh' ':(glob)results/**/*.toml' ':(glob)results/**/*.py')
  echo "git: $(git rev-parse HEAD)${changed:+ (modified)}"
  echo "host: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) CPUs"
  echo "qemu: $(qemu-system-x86_64 --version | head -1)"
  echo "image: $("$pvbench" build --quiet)"
  echo "guest: --vcpus 4 --accel tcg --migrate-every 0.5 -- pvlock=MODE pvlock.spin=16 mode=lockstress threads=8 rounds=R"
  echo "rounds: $(for m in "${modes[@]}"; do printf '%s=%s ' "$m" "$(rounds_of "$m")"; done)"
  echo "started: $(date -u +%FT%TZ)"
} >"$out/provenance.txt"
printf 'kind\tmode\trun\texit\tmigrations\tdowntime_ms\twall_s\tended\n' >"$out/runs.tsv"
one() { # one KIND MODE RUN
  local t0 err status=0
  t0=$(date +%s%N)
  err=$("$pvbench" boot --quiet --vcpus 4 --accel tcg --timeout 150 --migrate-every 0.5 --migration "$1" \
    -- "pvlock=$2" pvlock.spin=16 mode=lockstress threads=8 "rounds=$(rounds_of "$2")" 2>&1 >/dev/null) || status=$?
  local line migrations downtimes ended
  line=$(grep -E '^pvbench: [0-9]+ (live|paused) migrations' <<<"$err" || true)
  migrations=$(sed -E 's/^pvbench: ([0-9]+) .*/\1/' <<<"$line")
  downtimes=$(sed -E 's/.*downtime ms: \[([^]]*)\].*/\1/; s/ //g' <<<"$line")
  ended=$(grep -m1 -E '^pvbench: (guest|[a-z]+ migration [0-9]+ failed)' <<<"$err" | sed 's/^pvbench: //; s/\t/ /g' || true)
  # A failed run keeps everything pvbench said.
  [ "$status" -eq 0 ] || printf '%s\n' "$err" >"$out/failed-$1-$2-$3.txt"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$status" "${migrations:-0}" "$downtimes" \
    "$((($(date +%s%N) - t0) / 1000000000))" "$ended" >>"$out/runs.tsv"
}
for run in $(seq 1 "$paused"); do for mode in "${modes[@]}"; do one paused "$mode" "$run"; done; done
for run in $(seq 1 "$live"); do for mode in "${modes[@]}"; do one live "$mode" "$run"; done; done
echo "finished: $(date -u +%FT%TZ)" >>"$out/provenance.txt"
# Per kind and mode: runs, runs that finished (exit 0), migrations survived
# (in finished runs), median downtime over all migrations.
{
  printf '%-7s %-8s %4s %8s %6s %20s %10s\n' kind mode runs finished failed "migrations survived" "median ms"
  for kind in paused live; do
    for mode in "${modes[@]}"; do
      rows=$(awk -F'\t' -v k="$kind" -v m="$mode" 'NR > 1 && $1 == k && $2 == m' "$out/runs.tsv")
      [ -n "$rows" ] || continue
      median=$(cut -f6 <<<"$rows" | tr ',' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print NR ? v[int((NR + 1) / 2)] : "-" }')
      awk -F'\t' -v k="$kind" -v m="$mode" -v med="$median" '
        { runs++; if ($4 == 0) { ok++; mig += $5 } else bad++ }
        END { printf "%-7s %-8s %4d %8d %6d %20d %10s\n", k, m, runs, ok, bad, mig, med }' <<<"$rows"
    done
  done
} >"$out/summary.txt"
cat "$out/summary.txt"
