package audit

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

const crashEnv = "AGENTGUARD_AUDIT_CRASH_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(crashEnv); path != "" {
		crashChild(path)
		return
	}
	goleak.VerifyTestMain(m)
}

// crashChild appends to the log at path until it is killed, printing the
// seq of each record once Append has returned: the parent may assume
// exactly those records are durable.
//
// With crashWritersEnv set to n, n goroutines append at once, so that
// records wait for a sync together and go out in one write (see
// SyncEach).
func crashChild(path string) {
	l, err := Open(path, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	writers, _ := strconv.Atoi(os.Getenv(crashWritersEnv))
	var mu sync.Mutex // one line of stdout at a time
	for g := range max(writers, 1) {
		go func() {
			for i := g * 1_000_000; ; i++ {
				r := sampleRecord(i)
				if err := l.Append(context.Background(), r); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(4)
				}
				mu.Lock()
				os.Stdout.WriteString(strconv.FormatUint(r.Seq, 10) + "\n")
				mu.Unlock()
			}
		}()
	}
	select {} // until killed
}

// crashWritersEnv is the number of goroutines a crash child appends from.
const crashWritersEnv = "AGENTGUARD_AUDIT_CRASH_WRITERS"

// startChild runs this test binary as a child that appends to the log at
// path (env names the helper's variable) and prints each acknowledged
// seq; it returns the child and a scanner over what it prints.
func startChild(t *testing.T, env, path string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, bufio.NewScanner(out)
}

// TestCrash kills a child process that appends in a loop with SIGKILL at
// random moments. After each kill the log reopens, holds every record the
// child acknowledged, and verifies.
func TestCrash(t *testing.T) {
	kills := 50
	if testing.Short() {
		kills = 10
	}
	crashKills(t, kills)
}

// TestCrashConcurrent is TestCrash with eight goroutines appending in the
// child: the records acknowledged went out in batches, several records
// to one write(2), and every one of them is in the log after the kill.
func TestCrashConcurrent(t *testing.T) {
	t.Setenv(crashWritersEnv, "8")
	kills := 30
	if testing.Short() {
		kills = 10
	}
	crashKills(t, kills)
}

// crashKills kills a crash child kills times, at random moments, and
// checks after each kill that the log holds every record acknowledged.
func crashKills(t *testing.T, kills int) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	rng := rand.New(rand.NewPCG(5, 6))
	maxAck := int64(-1)
	for k := range kills {
		cmd, sc := startChild(t, crashEnv, path)
		wait := rng.IntN(40) // acknowledgements to see before the kill
		for seen := 0; seen < wait && sc.Scan(); seen++ {
			n, err := strconv.ParseInt(sc.Text(), 10, 64)
			if err != nil {
				t.Fatalf("child printed %q", sc.Text())
			}
			maxAck = max(maxAck, n)
		}
		cmd.Process.Kill()
		for sc.Scan() { // acknowledged before the kill landed
			if n, err := strconv.ParseInt(sc.Text(), 10, 64); err == nil {
				maxAck = max(maxAck, n)
			}
		}
		cmd.Wait()

		l, err := Open(path, Options{})
		if err != nil {
			t.Fatalf("kill %d: reopen = %v", k, err)
		}
		size, _ := l.Head()
		if int64(size) <= maxAck {
			t.Fatalf("kill %d: the log has %d records; seq %d was acknowledged", k, size, maxAck)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		rep, err := Verify(VerifyOptions{}, path)
		if err != nil {
			t.Fatalf("kill %d: %v", k, err)
		}
		if int64(rep.Records) <= maxAck {
			t.Fatalf("kill %d: %d records verify; seq %d was acknowledged", k, rep.Records, maxAck)
		}
	}
	t.Logf("%d kills, %d records acknowledged", kills, maxAck+1)
}
