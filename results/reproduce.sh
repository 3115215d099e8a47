#!/usr/bin/env bash
# Regenerates every published benchmark result under results/: the full
# profile with 2-vCPU guests, its 4-vCPU variant
# (host-runner/matrices/full-4vcpu.toml), the quick profile and the gate
# baseline made from it. Each results directory gets its report.md, plots,
# cells, HDR logs and run.json (machine, QEMU, accelerator, image, git
# revision), and a wall.txt with the command and its wall time.
#
#   results/reproduce.sh [full-2] [full-4] [quick] [soak] [noise] [modes] [spin] [migration]
#   (no argument: full-2 full-4 quick)
#
# Under TCG on 2 cores: full-2 48 min (two shards, 39 + 9 min), full-4 54 min
# (all five modes; 68 min before the guest-kernel fixes), quick 3 min, soak (480
# overcommitted cells, every lock mode, guests of 2 and 4 vCPUs, half of them
# migrated, into results/soak/after-fix) about 2 h, noise (pvbench calibrate: the noise floor, into
# results/noise/calibration, with each 1x workload also run natively) about 23 min, modes (all five lock modes at 1x and
# 3x, into results/locks/modes-3x-tcg) 8 min, spin (pv and pvqspin at 3x with
# longer spin thresholds, into results/locks/spin-3x) 6 min, migration (every
# lock mode's cost of a migration, results/migration/cost-1x-tcg, and the
# 4-vCPU lock-stress migration soak, results/migration/soak-tcg) about 45 min.
# full-2 runs as two shards (`pvbench run --shard K/2`) one after the other and
# merges them (`pvbench merge`), the path a cluster run takes, on real data.
# Run it on an otherwise idle machine: other load shows up as
# noise in every figure.
set -euo pipefail
# The whole script is read before it runs (main at the bottom): editing it
# during a run of hours cannot change what the running copy does.
main() {
cd "$(dirname "$0")/.."
accel=${ACCEL:-tcg}
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(full-2 full-4 quick)

cargo build -q --release -p pvbench
pvbench=target/release/pvbench

run() { # run COMMAND DIR ARGS...: `pvbench COMMAND` into results/DIR, timed
  local command=$1 dir=results/$2 t0 status=0
  shift 2
  rm -rf "$dir"
  t0=$(date +%s)
  # A soak with failures exits 1: it still wrote its results, which are the point.
  "$pvbench" "$command" --accel "$accel" --out "$dir" --quiet "$@" >/dev/null || status=$?
  [ "$status" -eq 0 ] || [ "$command" = soak ] || exit "$status"
  {
    echo "command: pvbench $command --accel $accel --out $dir --quiet $*"
    echo "finished: $(date -u +%FT%TZ)"
    echo "wall_s: $(($(date +%s) - t0))"
  } >"$dir/wall.txt"
  echo "$dir: $(tail -1 "$dir/wall.txt")" >&2
}

for step in "${steps[@]}"; do
  case $step in
    quick)
      run run "quick-$accel-2vcpu" --profile quick --vcpus 2
      "$pvbench" baseline save "results/quick-$accel-2vcpu" --out results/baseline.json
      ;;
    full-2)
      local shards=() k dir=results/full-$accel-2vcpu
      for k in 1 2; do
        run run "shards/full-$accel-2vcpu-$k" --profile full --vcpus 2 --shard "$k/2"
        shards+=("results/shards/full-$accel-2vcpu-$k")
      done
      rm -rf "$dir"
      "$pvbench" merge --out "$dir" "${shards[@]}" >/dev/null
      "$pvbench" report "$dir" --markdown "$dir/report.md" >/dev/null
      for k in 1 2; do
        sed "s/^/shard $k\/2 /" "results/shards/full-$accel-2vcpu-$k/wall.txt"
      done >"$dir/wall.txt"
      echo "merged: pvbench merge --out $dir ${shards[*]}" >>"$dir/wall.txt"
      rm -rf results/shards
      ;;
    full-4) run run "full-$accel-4vcpu" --matrix host-runner/matrices/full-4vcpu.toml ;;
    # Half the soak's cells migrated every 2 s (paused under TCG, see
    # results/migration): 30 conditions (5 lock modes x kernbench-like and
    # pgbench-like at 4 and 16 clients x 2x, 3x) x 4 reps x 2 (left alone,
    # migrated) = 240 overcommitted cells per vCPU count, 480 in all.
    soak) run soak soak/after-fix --vcpus 2,4 --reps 4 --migrate-every 2 ;;
    noise) run calibrate noise/calibration --vcpus 2 --aa-runs 3 ;;
    modes) run run "locks/modes-3x-$accel" --matrix host-runner/matrices/modes-3x.toml --vcpus 2 ;;
    migration)
      run run "migration/cost-1x-$accel" --matrix host-runner/matrices/migration.toml --vcpus 2
      rm -rf results/migration/soak-tcg
      results/migration/soak.sh results/migration/soak-tcg 6 3
      ;;
    spin)
      for n in 2048 16384; do
        run run "locks/spin-3x/spin-$n-$accel" --matrix "results/locks/spin-3x/spin-$n.toml" --vcpus 2
      done
      ;;
    *)
      echo "results/reproduce.sh: unknown step '$step' (quick, full-2, full-4, soak, noise, modes, spin, migration)" >&2
      exit 2
      ;;
  esac
done
}
main "$@"
exit
