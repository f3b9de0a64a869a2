package audit

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/mod/sumdb/note"
)

// CheckpointOrigin is the first line of every checkpoint's text.
const CheckpointOrigin = "agentguard audit checkpoint v1"

// Checkpoint is a signed statement of a log's size and head: the log with
// ID Log had Size records (seqs 0 to Size-1) at Time, and the hash of the
// line of seq Size-1 was Head (zero when Size is 0).
type Checkpoint struct {
	Log  string
	Size uint64
	Head Hash
	Time time.Time
	// Note is the signed note (golang.org/x/mod/sumdb/note): the text
	// below, a blank line, and one signature line per signer.
	Note []byte
}

// Text returns the text that a checkpoint signs:
//
//	agentguard audit checkpoint v1
//	<log ID>
//	<size, decimal>
//	<head hash, 64 lowercase hex digits>
//	<time, as in records>
func (c *Checkpoint) Text() string {
	return CheckpointOrigin + "\n" + c.Log + "\n" + strconv.FormatUint(c.Size, 10) + "\n" +
		c.Head.String() + "\n" + c.Time.UTC().Format(timeLayout) + "\n"
}

// Errors of checkpoints.
var (
	// ErrCheckpoint is wrapped by every error of ParseCheckpoint.
	ErrCheckpoint = errors.New("audit: bad checkpoint")
	// ErrNoSigner is returned by Log.Checkpoint when the log has no
	// signer.
	ErrNoSigner = errors.New("audit: no checkpoint signer")
)

// ParseCheckpoint parses a signed checkpoint note. When v is not nil the
// note must carry a valid signature by v's key; when v is nil the
// signatures are not checked (the note must still have at least one
// well-formed signature line). Errors wrap ErrCheckpoint.
func ParseCheckpoint(msg []byte, v note.Verifier) (*Checkpoint, error) {
	var text string
	if v != nil {
		n, err := note.Open(msg, note.VerifierList(v))
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCheckpoint, err)
		}
		text = n.Text
	} else {
		i := bytes.LastIndex(msg, []byte("\n\n"))
		if i < 0 {
			return nil, fmt.Errorf("%w: not a signed note", ErrCheckpoint)
		}
		text = string(msg[:i+1])
		sigs := msg[i+2:]
		if len(sigs) == 0 || sigs[len(sigs)-1] != '\n' {
			return nil, fmt.Errorf("%w: no signature", ErrCheckpoint)
		}
		for _, line := range strings.Split(string(sigs[:len(sigs)-1]), "\n") {
			if !strings.HasPrefix(line, "— ") || strings.Count(line, " ") != 2 {
				return nil, fmt.Errorf("%w: bad signature line %q", ErrCheckpoint, line)
			}
		}
	}
	lines := strings.Split(text, "\n")
	if len(lines) != 6 || lines[5] != "" {
		return nil, fmt.Errorf("%w: want 5 lines of text, have %d", ErrCheckpoint, len(lines)-1)
	}
	if lines[0] != CheckpointOrigin {
		return nil, fmt.Errorf("%w: origin %q, want %q", ErrCheckpoint, lines[0], CheckpointOrigin)
	}
	c := &Checkpoint{Log: lines[1], Note: msg}
	var err error
	if c.Size, err = strconv.ParseUint(lines[2], 10, 64); err != nil || strconv.FormatUint(c.Size, 10) != lines[2] {
		return nil, fmt.Errorf("%w: size %q", ErrCheckpoint, lines[2])
	}
	if c.Head, err = ParseHash(lines[3]); err != nil {
		return nil, fmt.Errorf("%w: head: %v", ErrCheckpoint, err)
	}
	if c.Time, err = time.Parse(timeLayout, lines[4]); err != nil {
		return nil, fmt.Errorf("%w: time %q", ErrCheckpoint, lines[4])
	}
	if c.Text() != text {
		return nil, fmt.Errorf("%w: text not in canonical form", ErrCheckpoint)
	}
	return c, nil
}

// GenerateKey makes a new ed25519 key pair for signing checkpoints, in the
// text forms of golang.org/x/mod/sumdb/note: the signer key (secret; give
// it to Options.SignerKey) and the verifier key (public; give it to
// VerifyOptions.Key). name names the key in signatures.
func GenerateKey(name string) (skey, vkey string, err error) {
	skey, vkey, err = note.GenerateKey(rand.Reader, name)
	if err != nil {
		return "", "", fmt.Errorf("audit: generate key %q: %v", name, err)
	}
	return skey, vkey, nil
}

// Sink receives every checkpoint the log writes, to keep it somewhere the
// log's writer cannot rewrite it. A Sink may be called from several
// goroutines at once.
type Sink interface {
	// Checkpoint stores c. An error is reported by Log.Checkpoint and
	// Log.Close; it does not stop the log.
	Checkpoint(ctx context.Context, c *Checkpoint) error
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(ctx context.Context, c *Checkpoint) error

// Checkpoint calls f(ctx, c).
func (f SinkFunc) Checkpoint(ctx context.Context, c *Checkpoint) error { return f(ctx, c) }

// FileSink returns a Sink that keeps the latest checkpoint's note in the
// file at path, replaced atomically (written to a temporary file, synced
// and renamed). `agentguard audit verify --checkpoint` reads that file.
func FileSink(path string) Sink {
	return SinkFunc(func(ctx context.Context, c *Checkpoint) error {
		dir := filepath.Dir(path)
		tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
		if err != nil {
			return fmt.Errorf("audit: checkpoint file: %w", err)
		}
		defer os.Remove(tmp.Name())
		if _, err := tmp.Write(c.Note); err != nil {
			tmp.Close()
			return fmt.Errorf("audit: checkpoint file: %w", err)
		}
		if err := tmp.Sync(); err != nil {
			tmp.Close()
			return fmt.Errorf("audit: checkpoint file: %w", err)
		}
		if err := tmp.Close(); err != nil {
			return fmt.Errorf("audit: checkpoint file: %w", err)
		}
		if err := os.Rename(tmp.Name(), path); err != nil {
			return fmt.Errorf("audit: checkpoint file: %w", err)
		}
		if d, err := os.Open(dir); err == nil {
			err = d.Sync()
			d.Close()
			if err != nil {
				return fmt.Errorf("audit: checkpoint file: sync %s: %w", dir, err)
			}
		}
		return nil
	})
}

// ZapSink returns a Sink that logs each checkpoint at info level, with its
// log ID, size, head and the whole note.
func ZapSink(l *zap.Logger) Sink {
	return SinkFunc(func(ctx context.Context, c *Checkpoint) error {
		l.Info("audit checkpoint", zap.String("log", c.Log), zap.Uint64("size", c.Size),
			zap.String("head", c.Head.String()), zap.ByteString("note", c.Note))
		return nil
	})
}

// SignCheckpoint signs c's log, size, head and time with the note signer
// key skey, and returns c with its Note set. A witness that has verified a
// log (see Report) signs what it saw, to check the log against later.
func SignCheckpoint(c Checkpoint, skey string) (*Checkpoint, error) {
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("audit: signer key: %v", err)
	}
	if strings.ContainsAny(c.Log, "\n") {
		return nil, fmt.Errorf("audit: log ID %q contains a newline", c.Log)
	}
	c.Time = c.Time.UTC()
	msg, err := note.Sign(&note.Note{Text: c.Text()}, s)
	if err != nil {
		return nil, fmt.Errorf("audit: sign checkpoint: %v", err)
	}
	c.Note = msg
	return &c, nil
}
