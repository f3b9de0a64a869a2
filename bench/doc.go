// Package bench measures agentguard's hot path: a guarded tool call next
// to the floor (the same stages' unavoidable work done by hand) and next
// to the guard a Go user would build with Open Policy Agent, plus the
// audit log's durable group commit and its verification.
//
// It is a module of its own so that OPA never enters the library's
// dependencies. Everything is in the tests; see README.md for the command
// and the figures.
//
// # Benchmarks
//
//   - BenchmarkCall: bare, guarded, guarded-cooperative, guarded-parallel,
//     floor, floor-parallel, opa, opa-parallel, guarded-1000rules.
//   - BenchmarkStages: the guarded call built up one stage at a time.
//   - BenchmarkDurable and BenchmarkAppend: durable guarded calls next to
//     appending the same records with group commit alone, at N writers.
//   - BenchmarkVerify and BenchmarkSHA256: verification next to hashing
//     the same bytes.
//
// # Agreement
//
// TestAgree checks that the Guard's policy, the floor's rules and the OPA
// query decide a table of calls alike, so that the comparison is one of
// equals; TestPipelines runs each benchmarked pipeline once.
package bench
