#!/bin/sh
# ratios.sh FILE: the medians of a `go test -bench . -benchmem -count=N`
# output and the six goal ratios, computed from those medians.
# Usage: cd bench && go test -run '^$' -bench . -benchmem -count=10 | tee new.txt && ./ratios.sh new.txt
set -eu
awk '
/^Benchmark/ {
	name = $1; sub(/-[0-9]+$/, "", name); sub(/^Benchmark/, "", name)
	for (i = 3; i < NF; i++) {
		if ($(i+1) == "ns/op") ns[name] = ns[name] " " $i
		if ($(i+1) == "allocs/op") al[name] = al[name] " " $i
		if ($(i+1) == "MB/s") mb[name] = mb[name] " " $i
	}
	if (!(name in seen)) { seen[name] = 1; order[++n] = name }
}
function median(s,    a, k, i, j, t) {
	k = split(s, a, " ")
	for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
	if (k == 0) return 0
	return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
}
END {
	printf "%-26s %12s %10s %10s\n", "benchmark (median)", "ns/op", "allocs/op", "MB/s"
	for (i = 1; i <= n; i++) {
		b = order[i]
		printf "%-26s %12.1f %10s %10s\n", b, median(ns[b]), (b in al) ? median(al[b]) : "", (b in mb) ? median(mb[b]) : ""
		m[b] = median(ns[b]); a[b] = median(al[b]); t[b] = median(mb[b])
	}
	print ""
	printf "guarded/floor              %6.2f  (goal <= 1.5)\n", m["Call/guarded"] / m["Call/floor"]
	printf "guarded-cooperative/floor  %6.2f  (goal <= 1.5)\n", m["Call/guarded-cooperative"] / m["Call/floor"]
	printf "opa/guarded                %6.2f  (goal >= 5)\n", m["Call/opa"] / m["Call/guarded"]
	printf "opa/guarded-cooperative    %6.2f  (goal >= 5)\n", m["Call/opa"] / m["Call/guarded-cooperative"]
	printf "guarded-1000rules/guarded  %6.2f  (goal <= 2)\n", m["Call/guarded-1000rules"] / m["Call/guarded"]
	printf "allocs per guarded call    %6d  (goal <= 12; cooperative %d)\n", a["Call/guarded"], a["Call/guarded-cooperative"]
	printf "durable/append calls/s N=64 %5.2f  (goal >= 0.7)\n", m["Append/N=64"] / m["Durable/N=64"]
	printf "verify/sha256 throughput   %6.2f  (goal >= 0.5)\n", t["Verify"] / t["SHA256"]
}' "$1"
