package mcpproxy

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Child is an MCP server running as a child process, spoken to over its
// stdin and stdout. It runs in a process group of its own, so that Stop
// reaches what it started too (npx starts node, which starts the server).
// A Child is safe for concurrent use.
type Child struct {
	cmd    *exec.Cmd
	stdin  *os.File // the server's stdin, our end
	stdout *os.File // the server's stdout, our end
	done   chan struct{}
	err    error // set before done closes
	once   sync.Once
}

// StartChild starts the command name with args, its stderr going to
// stderr (nil discards it).
func StartChild(name string, args []string, stderr io.Writer) (*Child, error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	cmd := exec.Command(name, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, stderr
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		for _, f := range []*os.File{inR, inW, outR, outW} {
			f.Close()
		}
		return nil, fmt.Errorf("mcpproxy: starting %s: %w", name, err)
	}
	inR.Close() // the child has its copies
	outW.Close()
	c := &Child{cmd: cmd, stdin: inW, stdout: outR, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait() // reaps the child as soon as it exits
		close(c.done)
	}()
	return c, nil
}

// Stdin is what the server reads.
func (c *Child) Stdin() io.Writer { return c.stdin }

// Stdout is what the server writes.
func (c *Child) Stdout() io.Reader { return c.stdout }

// Done is closed when the child has exited and was reaped.
func (c *Child) Done() <-chan struct{} { return c.done }

// Pid returns the child's process ID.
func (c *Child) Pid() int { return c.cmd.Process.Pid }

// Stop ends the child: it closes its stdin (a server exits when its
// input ends), and after grace sends SIGTERM to its process group, and
// after another grace SIGKILL. It returns once the child was reaped, and
// closes the pipes. It is safe to call more than once.
func (c *Child) Stop(grace time.Duration) error {
	c.once.Do(func() {
		c.stdin.Close()
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-c.done:
		case <-t.C:
			c.signal(syscall.SIGTERM)
			t.Reset(grace)
			select {
			case <-c.done:
			case <-t.C:
				c.signal(syscall.SIGKILL)
				<-c.done
			}
		}
		// What the server started may outlive it in its group: end it.
		c.signal(syscall.SIGKILL)
		c.stdout.Close()
	})
	<-c.done
	var ee *exec.ExitError
	if errors.As(c.err, &ee) {
		return nil // a server stopped by a signal or with a status is still stopped
	}
	return c.err
}

// signal sends sig to the child's process group.
func (c *Child) signal(sig syscall.Signal) {
	_ = syscall.Kill(-c.cmd.Process.Pid, sig)
}
