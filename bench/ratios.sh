#!/bin/sh
# ratios.sh FILE: the medians of a `go test -bench . -benchmem -count=N`
# output and every goal of issue 16, computed from those medians, each
# with whether it is met; the time goals also on CPU time per call
# (cpu-ns/op), which moves less than wall time on a loaded machine.
# Usage: cd bench && go test -run '^$' -bench . -benchmem -count=10 | tee new.txt && ./ratios.sh new.txt
set -eu
awk '
/^Benchmark/ {
	name = $1; if (match(name, /-[0-9]+$/)) procs = substr(name, RSTART + 1) + 0
	sub(/-[0-9]+$/, "", name); sub(/^Benchmark/, "", name)
	for (i = 3; i < NF; i++) {
		if ($(i+1) == "ns/op") ns[name] = ns[name] " " $i
		if ($(i+1) == "allocs/op") al[name] = al[name] " " $i
		if ($(i+1) == "MB/s") mb[name] = mb[name] " " $i
		if ($(i+1) == "cpu-ns/op") cn[name] = cn[name] " " $i
	}
	if (!(name in seen)) { seen[name] = 1; order[++n] = name }
}
function verdict(ok) { return ok ? "yes" : "NO" }
function le(name, v, x, y, goal,    r) {
	if (!(x in v) || !(y in v) || v[y] == 0) { printf "%-44s %8s  <= %-5s %s\n", name, "-", goal, "missing"; return }
	r = v[x] / v[y]; printf "%-44s %8.2f  <= %-5s %s\n", name, r, goal, verdict(r <= goal)
}
function ge(name, v, x, y, goal,    r) {
	if (!(x in v) || !(y in v) || v[y] == 0) { printf "%-44s %8s  >= %-5s %s\n", name, "-", goal, "missing"; return }
	r = v[x] / v[y]; printf "%-44s %8.2f  >= %-5s %s\n", name, r, goal, verdict(r >= goal)
}
function cnt(name, b, goal) {
	if (!(b in a)) { printf "%-44s %8s  <= %-5s %s\n", name, "-", goal, "missing"; return }
	printf "%-44s %8d  <= %-5s %s\n", name, a[b], goal, verdict(a[b] <= goal)
}
function ceiling(name, b, p) {
	if (!(b in c) || c[b] == 0 || !(p in m) || m[p] == 0) { printf "%-44s %8s\n", name, "-"; return }
	printf "%-44s %8.2f  (measured %.2f)\n", name, procs * m[b] / c[b], m[b] / m[p]
}
function median(s,    a, k, i, j, t) {
	k = split(s, a, " ")
	for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
	if (k == 0) return 0
	return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
}
END {
	printf "%-34s %12s %12s %10s %10s\n", "benchmark (median)", "ns/op", "cpu-ns/op", "allocs/op", "MB/s"
	for (i = 1; i <= n; i++) {
		b = order[i]
		printf "%-34s %12.1f %12s %10s %10s\n", b, median(ns[b]), (b in cn) ? sprintf("%.1f", median(cn[b])) : "", (b in al) ? median(al[b]) : "", (b in mb) ? median(mb[b]) : ""
		m[b] = median(ns[b]); if (b in al) a[b] = median(al[b]); if (b in mb) t[b] = median(mb[b]); if (b in cn) c[b] = median(cn[b])
	}
	print ""
	printf "%-44s %8s  %-8s %s\n", "goal (issue 16)", "ratio", "target", "met?"
	le("guarded / peer-reference", m, "Call/guarded", "Call/peer-reference", 1.0)
	le("guarded-cooperative / peer-reference", m, "Call/guarded-cooperative", "Call/peer-reference", 0.8)
	le("guarded / floor", m, "Call/guarded", "Call/floor", 1.3)
	ge("opa / guarded", m, "Call/opa", "Call/guarded", 10)
	le("guarded-1000rules / guarded", m, "Call/guarded-1000rules", "Call/guarded", 1.2)
	# calls/s of Durable over the group-commit floor: the inverse ratio of ns/op.
	ge("Durable/N=64 / GroupCommit/N=64 calls/s", m, "GroupCommit/N=64", "Durable/N=64", 0.8)
	# throughput of RunParallel over the sequential = the inverse ratio of ns/op.
	ge("guarded-parallel / guarded throughput", m, "Call/guarded", "Call/guarded-parallel", 1.7)
	ge("verify / sha256 throughput", t, "Verify", "SHA256", 0.5)
	print ""
	print "the time goals on CPU time per call (cpu-ns/op; moves less with the machine'"'"'s load):"
	le("guarded / peer-reference (cpu)", c, "Call/guarded", "Call/peer-reference", 1.0)
	le("guarded-cooperative / peer-reference (cpu)", c, "Call/guarded-cooperative", "Call/peer-reference", 0.8)
	le("guarded / floor (cpu)", c, "Call/guarded", "Call/floor", 1.3)
	ge("opa / guarded (cpu)", c, "Call/opa", "Call/guarded", 10)
	le("guarded-1000rules / guarded (cpu)", c, "Call/guarded-1000rules", "Call/guarded", 1.2)
	print ""
	cnt("allocs per guarded call", "Call/guarded", 4)
	cnt("allocs per guarded-cooperative call", "Call/guarded-cooperative", 4)
	cnt("allocs per denied call", "Call/denied", 4)
	print ""
	# With no contention at all, GOMAXPROCS cores run calls at most
	# procs / cpu-ns/op per ns: the sequential run already spends CPU
	# beyond its own goroutine (the log preparing its file, the collector).
	printf "the most a parallel form could gain on %d cores, from its sequential CPU (%d x ns/op / cpu-ns/op):\n", procs, procs
	ceiling("guarded-parallel / guarded ceiling", "Call/guarded", "Call/guarded-parallel")
	ceiling("floor-parallel / floor ceiling", "Call/floor", "Call/floor-parallel")
}' "$1"
