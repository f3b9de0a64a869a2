package mcpproxy

import "syscall"

// sysProcAttr puts the child in a process group of its own and kills it
// when the proxy dies, even by SIGKILL.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
