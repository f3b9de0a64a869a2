package audit

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Redaction configures what is removed from arguments and error text
// before a record is hashed and written. The zero value redacts the
// default keys and patterns, truncates strings longer than 1024 bytes, and
// hashes redacted values with a random key chosen when the Redactor is
// made (so equal values correlate within one process, not across them).
type Redaction struct {
	// Keys are more argument keys whose values are secret, in addition
	// to DefaultKeys. Keys match case-insensitively with '-' and '_'
	// treated alike, at any depth of maps and arrays.
	Keys []string
	// Patterns are more regular expressions (RE2 syntax) that match
	// secret text inside any string value and inside error text, in
	// addition to DefaultPatterns.
	Patterns []string
	// HashKey keys the short hash kept in place of each redacted value.
	// Set it (32 random bytes, kept secret) for hashes that correlate
	// across processes and files; empty means a random key.
	HashKey []byte
	// MaxString is the longest string value kept whole, in bytes; longer
	// ones are cut and end with their original length. Zero means 1024;
	// negative means no limit.
	MaxString int
}

// DefaultKeys are the argument keys whose values are always redacted,
// whatever their type. A key that ends in "_" followed by one of
// suffixKeys (github_token, db_password) is redacted when its value is a
// string, so counts such as max_tokens stay visible.
var DefaultKeys = []string{
	"password", "passwd", "pwd", "passphrase", "secret", "client_secret", "token",
	"access_token", "refresh_token", "id_token", "auth_token", "session_token",
	"bearer", "authorization", "proxy_authorization", "api_key", "apikey", "x_api_key",
	"cookie", "set_cookie", "private_key", "credentials", "credential", "otp", "pin", "ssn",
	"card_number", "cvv",
}

var suffixKeys = []string{"_password", "_passwd", "_secret", "_token", "_api_key", "_apikey", "_private_key", "_credentials"}

// DefaultPatterns match secrets inside text: bearer and basic credentials,
// OpenAI/Anthropic-style sk- keys, GitHub, Slack and AWS access keys, JWTs,
// PEM private keys, and key=value pairs whose key is a default key.
var DefaultPatterns = []string{
	`(?i)\b(?:bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}`,
	`\bsk-[A-Za-z0-9_-]{16,}`,
	`\bgh[pousr]_[A-Za-z0-9]{20,}`,
	`\bxox[abprs]-[A-Za-z0-9-]{10,}`,
	`\bAKIA[0-9A-Z]{16}\b`,
	`\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}`,
	`-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)`,
	`(?i)\b(?:password|passwd|secret|token|api[_-]?key|access[_-]?token)\s*[=:]\s*[^\s&;,]+`,
}

// Redactor removes secrets from arguments and text as its Redaction says.
// It is safe for concurrent use.
type Redactor struct {
	keys     map[string]bool
	defaults *regexp.Regexp // DefaultPatterns, tried when hint finds a clue
	extra    *regexp.Regexp // Redaction.Patterns; nil when none
	hashKey  []byte
	max      int
}

// NewRedactor compiles r. It fails on a pattern that does not compile,
// naming it.
func NewRedactor(r Redaction) (*Redactor, error) {
	red := &Redactor{keys: map[string]bool{}, max: r.MaxString}
	if red.max == 0 {
		red.max = 1024
	}
	for _, k := range DefaultKeys {
		red.keys[normKey(k)] = true
	}
	for i, k := range r.Keys {
		if k == "" {
			return nil, fmt.Errorf("audit: Redaction.Keys[%d] is empty", i)
		}
		red.keys[normKey(k)] = true
	}
	var alts []string
	for _, p := range DefaultPatterns {
		alts = append(alts, "(?:"+p+")")
	}
	red.defaults = regexp.MustCompile(strings.Join(alts, "|"))
	alts = nil
	for i, p := range r.Patterns {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("audit: Redaction.Patterns[%d] %q: %v", i, p, err)
		}
		if re.MatchString("") {
			return nil, fmt.Errorf("audit: Redaction.Patterns[%d] %q matches the empty string", i, p)
		}
		alts = append(alts, "(?:"+p+")")
	}
	if len(alts) > 0 {
		red.extra = regexp.MustCompile(strings.Join(alts, "|"))
	}
	red.hashKey = r.HashKey
	if len(red.hashKey) == 0 {
		red.hashKey = make([]byte, 32)
		if _, err := rand.Read(red.hashKey); err != nil {
			return nil, fmt.Errorf("audit: redaction key: %v", err)
		}
	}
	return red, nil
}

func normKey(k string) string {
	return strings.ReplaceAll(strings.ToLower(k), "-", "_")
}

// secretKey reports whether a value under key k is secret: always when
// whole is true, only for strings otherwise.
func (r *Redactor) secretKey(k string) (secret, whole bool) {
	n := normKey(k)
	if r.keys[n] {
		return true, true
	}
	for _, s := range suffixKeys {
		if strings.HasSuffix(n, s) {
			return true, false
		}
	}
	return false, false
}

// Mark returns the text kept in place of a redacted value:
// "[REDACTED:" followed by the first 12 hex digits of the HMAC-SHA-256 of
// the value's JSON form under the hash key, and "]".
func (r *Redactor) Mark(v any) string {
	var b []byte
	if s, ok := v.(string); ok {
		b = appendString(b, s)
	} else {
		var err error
		if b, err = appendValue(nil, v, 0); err != nil {
			b = []byte(fmt.Sprintf("%T", v))
		}
	}
	m := hmac.New(sha256.New, r.hashKey)
	m.Write(b)
	return "[REDACTED:" + hex.EncodeToString(m.Sum(nil)[:6]) + "]"
}

// Args returns args redacted, and the secret strings it removed (for
// Text). args is not modified: when something is redacted the result is a
// copy; when nothing is, it is args itself.
func (r *Redactor) Args(args map[string]any) (map[string]any, []string) {
	if args == nil {
		return nil, nil
	}
	var secrets []string
	out, _ := r.value(args, &secrets, 0)
	return out.(map[string]any), secrets
}

// RedactArgs returns args redacted, as Args does.
func (r *Redactor) RedactArgs(args map[string]any) map[string]any {
	out, _ := r.Args(args)
	return out
}

// value returns v redacted and whether that changed it; containers are
// copied only when something inside them changed.
func (r *Redactor) value(v any, secrets *[]string, depth int) (any, bool) {
	if depth > maxDepth {
		return r.Mark(v), true
	}
	if s, ok := v.(string); ok {
		// Return v itself when nothing changed: no new interface value.
		ns := r.scrub(s, func(m string) string {
			*secrets = append(*secrets, m)
			return r.Mark(m)
		})
		ns = r.truncate(ns)
		if ns == s {
			return v, false
		}
		return ns, true
	}
	switch v := v.(type) {
	case map[string]any:
		var out map[string]any
		for k, e := range v {
			nv, changed := e, false
			if secret, whole := r.secretKey(k); secret {
				if _, isString := e.(string); whole || isString {
					collect(e, secrets)
					nv, changed = r.Mark(e), true
				}
			}
			if !changed {
				nv, changed = r.value(e, secrets, depth+1)
			}
			if changed {
				if out == nil {
					out = maps.Clone(v)
				}
				out[k] = nv
			}
		}
		if out == nil {
			return v, false
		}
		return out, true
	case map[string]string:
		m := make(map[string]any, len(v))
		for k, s := range v {
			m[k] = s
		}
		out, _ := r.value(m, secrets, depth)
		return out, true
	case []any:
		var out []any
		for i, e := range v {
			if nv, changed := r.value(e, secrets, depth+1); changed {
				if out == nil {
					out = slices.Clone(v)
				}
				out[i] = nv
			}
		}
		if out == nil {
			return v, false
		}
		return out, true
	case []string:
		out := make([]any, len(v))
		for i, e := range v {
			out[i], _ = r.value(e, secrets, depth+1)
		}
		return out, true
	}
	return v, false
}

// collect adds the strings inside a secret value to secrets.
func collect(v any, secrets *[]string) {
	switch v := v.(type) {
	case string:
		*secrets = append(*secrets, v)
	case []any:
		for _, e := range v {
			collect(e, secrets)
		}
	case map[string]any:
		for _, e := range v {
			collect(e, secrets)
		}
	case float64, int, int64:
		*secrets = append(*secrets, fmt.Sprint(v))
	}
}

func (r *Redactor) truncate(s string) string {
	if r.max < 0 || len(s) <= r.max {
		return s
	}
	cut := r.max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…[truncated, " + strconv.Itoa(len(s)) + " bytes]"
}

// minSecret is the shortest secret value that Text removes from text:
// shorter ones would mangle ordinary words.
const minSecret = 4

// Text returns s with the default and configured patterns and every
// value in secrets (of at least 4 bytes) replaced by their marks, then
// truncated like a string argument.
func (r *Redactor) Text(s string, secrets []string) string {
	if s == "" {
		return s
	}
	for _, sec := range secrets {
		if len(sec) >= minSecret && strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, r.Mark(sec))
		}
	}
	s = r.scrub(s, func(m string) string {
		if strings.HasPrefix(m, "[REDACTED:") {
			return m
		}
		return r.Mark(m)
	})
	return r.truncate(s)
}

// scrub replaces what the patterns match in s by repl(match).
func (r *Redactor) scrub(s string, repl func(string) string) string {
	if hint(s) && r.defaults.MatchString(s) {
		s = r.defaults.ReplaceAllStringFunc(s, repl)
	}
	if r.extra != nil && r.extra.MatchString(s) {
		s = r.extra.ReplaceAllStringFunc(s, repl)
	}
	return s
}

// clues are lowercase substrings of which every match of DefaultPatterns
// contains one (ignoring ASCII case); a string with none of them needs no
// regular expression.
var clues = []string{"bearer", "basic", "sk-", "gh", "xox", "akia", "eyj", "-----begin", "pass", "secret", "token", "api"}

func hint(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			// Case folding in (?i) patterns also matches non-ASCII runes
			// (U+017F for s, U+212A for k): leave those to the patterns.
			return true
		}
		// One pass: only the first letters of the clues need a look.
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		for _, clue := range cluesByFirst[c] {
			if hasPrefixFold(s[i:], clue) {
				return true
			}
		}
	}
	return false
}

// cluesByFirst holds the clues by their first byte, for hint.
var cluesByFirst = func() (t [256][]string) {
	for _, c := range clues {
		t[c[0]] = append(t[c[0]], c)
	}
	return t
}()

// hasPrefixFold reports whether s begins with the lowercase ASCII
// prefix, ignoring ASCII case.
func hasPrefixFold(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for j := 0; j < len(prefix); j++ {
		c := s[j]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != prefix[j] {
			return false
		}
	}
	return true
}

// containsFold reports whether s contains the lowercase ASCII needle,
// ignoring ASCII case.
func containsFold(s, needle string) bool {
	n := len(needle)
	first := needle[0]
	for i := 0; i+n <= len(s); i++ {
		if s[i]|0x20 != first && s[i] != first {
			continue
		}
		j := 1
		for ; j < n; j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != needle[j] {
				break
			}
		}
		if j == n {
			return true
		}
	}
	return false
}
