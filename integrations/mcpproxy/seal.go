package mcpproxy

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Sealer seals the requestState of an input-required round trip (MCP
// 2026-07-28) to one call and one use: the state names the call's hash
// and a deadline, under an HMAC-SHA256 of a key only the server holds.
// It is safe for concurrent use.
type Sealer struct {
	key   []byte
	clock func() time.Time
	mu    sync.Mutex
	used  map[string]time.Time // nonces answered, until they expire
}

// NewSealer returns a Sealer with key (nil or empty: a random key for this
// process, so a question asked before a restart cannot be answered after
// it) and clock (nil: time.Now).
func NewSealer(key []byte, clock func() time.Time) *Sealer {
	if len(key) == 0 {
		key = make([]byte, 32)
		_, _ = rand.Read(key)
	}
	if clock == nil {
		clock = time.Now
	}
	return &Sealer{key: key, clock: clock, used: map[string]time.Time{}}
}

// Seal returns the requestState for the call of hash, valid until
// deadline: hash|nonce|deadline and its HMAC.
func (s *Sealer) Seal(hash string, deadline time.Time) (string, error) {
	n := make([]byte, 16)
	if _, err := rand.Read(n); err != nil {
		return "", err
	}
	payload := hash + "|" + hex.EncodeToString(n) + "|" + strconv.FormatInt(deadline.UnixNano(), 10)
	return base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + base64.RawURLEncoding.EncodeToString(s.mac(payload)), nil
}

func (s *Sealer) mac(payload string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// Open checks a requestState: sealed by s, for the call of hash, before
// its deadline, and not used before. It marks it used.
func (s *Sealer) Open(state, hash string) error {
	p64, m64, ok := strings.Cut(state, ".")
	if !ok {
		return fmt.Errorf("malformed requestState")
	}
	payload, err := base64.RawURLEncoding.DecodeString(p64)
	if err != nil {
		return fmt.Errorf("malformed requestState")
	}
	mac, err := base64.RawURLEncoding.DecodeString(m64)
	if err != nil || !hmac.Equal(mac, s.mac(string(payload))) {
		return fmt.Errorf("requestState not sealed by this server")
	}
	parts := strings.Split(string(payload), "|")
	if len(parts) != 3 {
		return fmt.Errorf("malformed requestState")
	}
	if parts[0] != hash {
		return fmt.Errorf("the call is not the one asked about (other arguments, tool or principal)")
	}
	ns, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return fmt.Errorf("malformed requestState")
	}
	now := s.clock()
	deadline := time.Unix(0, ns)
	if !now.Before(deadline) {
		return fmt.Errorf("the question expired")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for n, exp := range s.used {
		if !now.Before(exp) {
			delete(s.used, n)
		}
	}
	if _, dup := s.used[parts[1]]; dup {
		return fmt.Errorf("the answer was already used")
	}
	s.used[parts[1]] = deadline
	return nil
}
