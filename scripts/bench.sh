#!/usr/bin/env bash
# Runs the performance benchmarks (each in a throwaway database that the
# benchmark creates and drops) and prints one line per target: the figure,
# its baseline from the same run, the ratio, and PASS or FAIL.
# Needs Go and the PostgreSQL at DATABASE_URL, like scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
raw=${BENCH_OUT:-$(mktemp)}
count=${BENCH_COUNT:-5}

echo "== go test -bench (raw output: $raw)"
go test -run '^$' -benchmem -count "$count" \
  -bench '^(BenchmarkAtomicAddPair|BenchmarkAtomicAddPairParallel|BenchmarkProcessorStartFinish|BenchmarkProcessorStartFinishParallel|BenchmarkSDKSyncUpDownCounter)$' \
  ./otelmetrics | tee "$raw"
go test -run '^$' -benchmem -benchtime 3s -bench '^BenchmarkQueueSampling$' ./pgmqclient | tee -a "$raw"
go test -run '^$' -benchmem -bench '^(BenchmarkReplicasRound|BenchmarkThrottledReaders|BenchmarkFullCollection)$' ./otelmetrics | tee -a "$raw"
go test -run '^$' -benchmem -benchtime 40x -bench '^BenchmarkWakeupLatency$' ./pgmqclient | tee -a "$raw"
exact=FAIL
go test -count=1 -run '^TestSampleDepthsExactAtOrBelowThreshold$' ./pgmqclient >/dev/null && exact=PASS

# median NAME FIELD: the median over runs of the value preceding unit FIELD
# (ns/op, allocs/op, or a custom metric) on the lines of benchmark NAME.
median() {
  awk -v name="$1" -v unit="$2" '
    $1 ~ "^"name"(-[0-9]+)?$" { for (i = 3; i <= NF; i++) if ($i == unit) v[n++] = $(i-1) }
    END {
      if (n == 0) { print "NaN"; exit }
      for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
      print v[int((n - 1) / 2)]
    }' "$raw"
}
verdict() { awk -v c="$1" 'BEGIN { print (c ? "PASS" : "FAIL") }'; }

echo
echo "== targets"
for par in "" Parallel; do
  p=$(median "BenchmarkProcessorStartFinish$par" ns/op)
  pa=$(median "BenchmarkProcessorStartFinish$par" allocs/op)
  a=$(median "BenchmarkAtomicAddPair$par" ns/op)
  ok=$(awk -v p="$p" -v a="$a" -v pa="$pa" 'BEGIN { print (p <= 2 * a && pa == 0) }')
  printf 'bar 1 processor start+finish%-9s %8s ns/op %s allocs | baseline atomic add pair %8s ns/op | ratio %5.2fx (<= 2x, 0 allocs) | %s\n' \
    "${par:+ parallel}" "$p" "$pa" "$a" "$(awk -v p="$p" -v a="$a" 'BEGIN { print p / a }')" "$(verdict "$ok")"
done
sdk=$(median BenchmarkSDKSyncUpDownCounter ns/op)
printf '      (for reference: the SDK synchronous UpDownCounter pair costs %s ns/op, %s allocs)\n' "$sdk" "$(median BenchmarkSDKSyncUpDownCounter allocs/op)"

s=$(median 'BenchmarkQueueSampling/sample_depths' ns/op)
m=$(median 'BenchmarkQueueSampling/metrics_all' ns/op)
e=$(median 'BenchmarkQueueSampling/sample_depths' error_%)
ok=$(awk -v s="$s" -v m="$m" -v e="$e" 'BEGIN { print (m / s >= 100 && e <= 1) }')
printf 'bar 2 queue sample, 10 queues 1M msgs %8.3f ms | baseline metrics_all() %8.3f ms | ratio %5.0fx (>= 100x); estimate error %s%% (<= 1%%) | %s\n' \
  "$(awk -v s="$s" 'BEGIN { print s / 1e6 }')" "$(awk -v m="$m" 'BEGIN { print m / 1e6 }')" "$(awk -v s="$s" -v m="$m" 'BEGIN { print m / s }')" "$e" "$(verdict "$ok")"
printf 'bar 2 at or below the threshold the depth equals count(*) (TestSampleDepthsExactAtOrBelowThreshold) | %s\n' "$exact"

q=$(median 'BenchmarkReplicasRound/election' queue_queries/round)
qb=$(median 'BenchmarkReplicasRound/no_election' queue_queries/round)
printf 'bar 3 queue queries per interval, 3 replicas %5s | baseline without election %5s | ratio %5.2f (== 1 query) | %s\n' \
  "$q" "$qb" "$(awk -v q="$q" -v b="$qb" 'BEGIN { print q / b }')" "$(verdict "$(awk -v q="$q" 'BEGIN { print (q == 1) }')")"

t=$(median BenchmarkThrottledReaders db_samples/interval)
printf 'bar 4 database samples per minimum interval, 2 readers + health check %5s | baseline 3 collections per tick, 4 ticks per interval = 12 | ratio %5.3f (<= 1 sample) | %s\n' \
  "$t" "$(awk -v t="$t" 'BEGIN { print t / 12 }')" "$(verdict "$(awk -v t="$t" 'BEGIN { print (t <= 1) }')")"

for v in sampled throttled; do
  printf 'bar 5 full collection (3 pools, 100 queues, 10 kinds), %-9s %10s ns/op %8s B/op %6s allocs/op\n' \
    "$v" "$(median "BenchmarkFullCollection/$v" ns/op)" "$(median "BenchmarkFullCollection/$v" B/op)" "$(median "BenchmarkFullCollection/$v" allocs/op)"
done

wn=$(median 'BenchmarkWakeupLatency/notify' wake_ms)
wp=$(median 'BenchmarkWakeupLatency/read_with_poll' wake_ms)
printf 'wake-up after send, Waiter on insert notifications %6.2f ms (p95 %s) | baseline read_with_poll at 100 ms %6.2f ms (p95 %s) | ratio %5.2f (<= 0.25) | %s\n' \
  "$wn" "$(median 'BenchmarkWakeupLatency/notify' wake_p95_ms)" "$wp" "$(median 'BenchmarkWakeupLatency/read_with_poll' wake_p95_ms)" \
  "$(awk -v n="$wn" -v p="$wp" 'BEGIN { print n / p }')" "$(verdict "$(awk -v n="$wn" -v p="$wp" 'BEGIN { print (n <= 0.25 * p) }')")"
