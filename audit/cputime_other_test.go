//go:build !unix

package audit

func cpuNanos() int64 { return 0 }
