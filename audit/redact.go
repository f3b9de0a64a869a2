package audit

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Redaction configures what is removed from arguments and error text
// before a record is hashed and written. The zero value redacts secret
// keys and credential shapes as described in the package docs, truncates
// strings longer than 1024 bytes, and hashes redacted values with a random
// key chosen when the Redactor is made (so equal values correlate within
// one process, not across them).
type Redaction struct {
	// Keys are more argument keys whose values are secret, in addition
	// to the default secret words. A key is split into words as argument
	// keys are (see SecretKey), and matches an argument key whose words
	// contain its words in order: "internal id" matches "X-Internal-Id"
	// and "customerInternalID". In free text (error text, strings holding
	// "key=value" pairs) a pair's name is read as ASCII letters, digits
	// and "_.-": a key with a letter outside ASCII ("ключ", "pässword")
	// is matched in argument keys only; add a Pattern for it in text.
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

// DefaultPatterns match well-known credential shapes inside any text:
// bearer, basic and token authorization values, OpenAI/Anthropic-style
// sk- keys, Stripe secret and restricted keys, GitHub tokens (classic and
// fine-grained), Slack tokens, AWS access key IDs, Google API keys, JWTs
// and PEM private key blocks.
var DefaultPatterns = []string{
	`(?i)\b(?:bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}`,
	`\bsk-[A-Za-z0-9_-]{16,}`,
	`\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}`,
	`\bgh[pousr]_[A-Za-z0-9]{20,}`,
	`\bgithub_pat_[A-Za-z0-9_]{20,}`,
	`\bxox[abprs]-[A-Za-z0-9-]{10,}`,
	`\b(?:A3T[A-Z0-9]|AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)[A-Z0-9]{16}\b`,
	`\bAIza[0-9A-Za-z_-]{35}`,
	`\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}`,
	`-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)`,
}

// pairName finds the name of a name=value or name: value pair in text
// (query strings, headers, JSON and YAML fragments, log lines): group 1.
// Names are matched alone, not with their values, so that a value never
// hides the pair after it; pairValue then reads the value of a pair whose
// name is a secret key.
const (
	pairName  = `\b([A-Za-z_][A-Za-z0-9_.\-]*)["']?\s*[:=]\s*`
	pairValue = `^(?:"(?:[^"\\]|\\.)*"|'[^'\n]*'|(?i:bearer|basic|token|digest)\s+[^\s&;,"'{}\[\]]+|[^\s&;,"'{}\[\]]+)`
)

// userinfoPattern finds the password of a URL's userinfo
// (scheme://user:password@host): group 1.
const userinfoPattern = `\b[A-Za-z][A-Za-z0-9+.\-]*://[^/?#\s@:]*:([^/?#\s]+)@`

// Redactor removes secrets from arguments and text as its Redaction says.
// It is safe for concurrent use.
type Redactor struct {
	extraKeys [][]string     // Redaction.Keys, as lowercase words
	defaults  *regexp.Regexp // DefaultPatterns, tried when hint finds a clue
	pairName  *regexp.Regexp
	pairValue *regexp.Regexp
	userinfo  *regexp.Regexp // userinfoPattern
	extra     *regexp.Regexp // Redaction.Patterns; nil when none
	keyClues  [256][]string  // keyCluesByFirst, with the extra keys' words
	pairs     pairTables     // which two bytes begin a clue
	hashKey   []byte
	max       int
}

// NewRedactor compiles r. It fails on a pattern that does not compile,
// naming it.
func NewRedactor(r Redaction) (*Redactor, error) {
	red := &Redactor{max: r.MaxString}
	if red.max == 0 {
		red.max = 1024
	}
	red.keyClues = keyCluesByFirst
	for i, k := range r.Keys {
		var ws []string
		for _, w := range keyWords(k, nil) {
			ws = append(ws, strings.ToLower(k[w.i:w.j]))
		}
		if len(ws) == 0 {
			return nil, fmt.Errorf("audit: Redaction.Keys[%d] %q has no letters or digits", i, k)
		}
		red.extraKeys = append(red.extraKeys, ws)
		// A pair named by the key in text needs a clue: its longest word.
		longest := slices.MaxFunc(ws, func(a, b string) int { return len(a) - len(b) })
		if !utf8.ValidString(longest) || longest[0] >= utf8.RuneSelf {
			// No clue: text pairs have ASCII names (pairName), so such a
			// key is never found in text, only in argument keys.
			continue
		}
		red.keyClues[longest[0]] = append(slices.Clip(red.keyClues[longest[0]]), longest)
	}
	red.pairs = *pairsOf(&red.keyClues)
	var alts []string
	for _, p := range DefaultPatterns {
		alts = append(alts, "(?:"+p+")")
	}
	red.defaults = regexp.MustCompile(strings.Join(alts, "|"))
	red.pairName = regexp.MustCompile(pairName)
	red.pairValue = regexp.MustCompile(pairValue)
	red.userinfo = regexp.MustCompile(userinfoPattern)
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

// span is a word of a key: k[i:j].
type span struct{ i, j int }

// maxKeyWords bounds the words of a key that are looked at.
const maxKeyWords = 16

// keyWords appends the words of k to ws: k is cut at every byte that is
// not a letter or digit, between a lowercase letter or digit and an
// uppercase letter (accessToken), before the last of a run of uppercase
// letters that a lowercase one follows (APIKey: API, Key), and between
// letters and digits (oauth2token: oauth, 2, token).
func keyWords(k string, ws []span) []span {
	const (
		other = iota
		lower
		upper
		digit
	)
	class := func(r rune) int {
		switch {
		case 'a' <= r && r <= 'z':
			return lower
		case 'A' <= r && r <= 'Z':
			return upper
		case '0' <= r && r <= '9':
			return digit
		case r >= utf8.RuneSelf && unicode.IsLower(r):
			return lower
		case r >= utf8.RuneSelf && unicode.IsUpper(r):
			return upper
		case r >= utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r)):
			return lower
		}
		return other
	}
	start, prev, prevAt := -1, other, 0
	for i, r := range k {
		c := class(r)
		if start >= 0 {
			cut := c == other ||
				c == upper && (prev == lower || prev == digit) ||
				c == digit && prev != digit || c != digit && prev == digit
			if !cut && c == lower && prev == upper && prevAt > start {
				// The run of capitals before this letter is a word of
				// its own (APIKey): cut before the last capital.
				ws = append(ws, span{start, prevAt})
				start = prevAt
			}
			if cut {
				ws = append(ws, span{start, i})
				start = -1
			}
		}
		if c != other && start < 0 {
			start = i
		}
		prev, prevAt = c, i
		if len(ws) >= maxKeyWords {
			return ws
		}
	}
	if start >= 0 {
		ws = append(ws, span{start, len(k)})
	}
	return ws
}

// Secret words. A key is secret when one of its words is a secret noun, a
// word ends in a compound one (dbpassword, accesstoken), or two words in a
// row name a secret (api key, session id), unless it only counts or
// describes one (max_tokens, token_count, password_policy, secret_name).
var (
	// secretNouns are words that name a secret on their own.
	secretNouns = []string{
		"password", "passwords", "passwd", "pwd", "pw", "pass", "passphrase", "passcode",
		"secret", "secrets", "credential", "credentials", "creds",
		"token", "auth", "authorization", "bearer", "cookie", "cookies",
		"apikey", "apikeys", "privatekey", "privkey", "accesskey", "secretkey", "sessionid",
		"otp", "totp", "pin", "ssn", "cvv", "cvc", "jwt",
	}
	// secretEndings are endings of one-word compounds (dbpassword,
	// accesstoken, xapikey, clientsecret, setcookie).
	secretEndings = []string{
		"password", "passwd", "passphrase", "secret", "token", "apikey", "privatekey",
		"accesskey", "secretkey", "credential", "credentials", "authorization", "cookie", "sessionid",
	}
	// keyQualifiers are words that make a following "key" or "keys" a
	// secret (api key, private key, access key).
	keyQualifiers = []string{
		"api", "app", "access", "secret", "private", "priv", "signing", "encryption",
		"master", "license", "ssh", "account", "consumer", "shared", "hmac", "webhook", "client", "subscription",
	}
	// sessionSecrets are words that make a preceding "session" a secret
	// (session id, session key).
	sessionSecrets = []string{"id", "key", "token", "secret", "cookie"}
	// countWords mark a key that counts tokens rather than holding one
	// (max_tokens is plural anyway; token_count, token_limit).
	countWords = []string{
		"count", "counts", "cnt", "num", "number", "limit", "limits", "max", "min", "total",
		"usage", "used", "len", "length", "size", "budget", "cost", "remaining", "left", "per", "rate",
	}
	// describers, as a key's last word, describe a secret rather than
	// hold it (password_policy, secret_name, auth_type, token_expires_at).
	describers = []string{
		"count", "counts", "cnt", "num", "limit", "limits", "max", "min", "total", "len", "length",
		"size", "used", "usage", "remaining", "type", "types", "kind", "name", "names", "url", "uri",
		"endpoint", "path", "file", "filename", "field", "policy", "enabled", "required", "expiry",
		"expires", "expiration", "ttl", "at", "method", "scheme", "provider", "format", "version",
		"rotation", "strength", "set", "present",
	}
)

func inFold(w string, list []string) bool {
	for _, s := range list {
		if len(s) == len(w) && strings.EqualFold(w, s) {
			return true
		}
	}
	return false
}

func hasSuffixFold(w, suffix string) bool {
	return len(w) >= len(suffix) && strings.EqualFold(w[len(w)-len(suffix):], suffix)
}

// SecretKey reports whether the value under the argument key k is secret.
// k is split into words at '-', '_', '.', spaces and other punctuation and
// at camelCase and PascalCase boundaries, and compared without regard to
// case: accessToken, db_password, Client-Secret, AWS_SECRET_ACCESS_KEY,
// X-Api-Key, privateKey and sessionId are secret; max_tokens,
// token_count, secret_name and password_policy are not. Keys configured in
// Redaction.Keys are secret too.
//
// A caller that knows a tool's argument keys in advance (a struct's
// fields) can call SecretKey once per key and keep the answers.
func (r *Redactor) SecretKey(k string) bool {
	if len(r.extraKeys) == 0 && !hasKeyClue(k) {
		return false // the common case: no word of a secret at all
	}
	var buf [maxKeyWords]span
	ws := keyWords(k, buf[:0])
	if len(ws) == 0 {
		return false
	}
	if len(ws) >= maxKeyWords {
		// A key of many words: whether its tail names a secret is not
		// worked out; any secret word in it counts.
		return hasKeyClue(k)
	}
	word := func(i int) string { return k[ws[i].i:ws[i].j] }
	for _, extra := range r.extraKeys {
		if containsWords(k, ws, extra) {
			return true
		}
	}
	secret, isToken := false, false
	for i := range ws {
		w := word(i)
		switch {
		case inFold(w, secretNouns):
			secret = true
			isToken = isToken || strings.EqualFold(w, "token")
		case (strings.EqualFold(w, "key") || strings.EqualFold(w, "keys")) && i > 0 && inFold(word(i-1), keyQualifiers),
			strings.EqualFold(w, "session") && i+1 < len(ws) && inFold(word(i+1), sessionSecrets),
			strings.EqualFold(w, "card") && i+1 < len(ws) && strings.EqualFold(word(i+1), "number"):
			secret = true
		default:
			for _, e := range secretEndings {
				if hasSuffixFold(w, e) {
					secret = true
					break
				}
			}
		}
	}
	if !secret {
		return false
	}
	last := word(len(ws) - 1)
	if len(ws) > 1 && inFold(last, describers) {
		return false
	}
	if isToken {
		for i := range ws {
			if inFold(word(i), countWords) {
				return false
			}
		}
	}
	return true
}

// containsWords reports whether the words ws of k contain the lowercase
// words want, in a row.
func containsWords(k string, ws []span, want []string) bool {
	for i := 0; i+len(want) <= len(ws); i++ {
		j := 0
		for ; j < len(want); j++ {
			if !strings.EqualFold(k[ws[i+j].i:ws[i+j].j], want[j]) {
				break
			}
		}
		if j == len(want) {
			return true
		}
	}
	return false
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
	return markPrefix + hex.EncodeToString(m.Sum(nil)[:6]) + "]"
}

const markPrefix = "[REDACTED:"

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

// Labels returns labels redacted as a record's arguments are (the
// values under secret keys, credentials found in the values, the tail of
// long values). labels is not modified: when something is redacted the
// result is a copy; when nothing is, it is labels itself.
func (r *Redactor) Labels(labels map[string]string) map[string]string {
	clean := true
	for k, v := range labels {
		if r.SecretKey(k) && !isMark(v) || !r.CleanString(v) {
			clean = false
			break
		}
	}
	if clean {
		return labels
	}
	out := make(map[string]string, len(labels))
	var secrets []string
	for k, v := range labels {
		switch {
		case !r.SecretKey(k):
			out[k] = r.str(v, &secrets, 0)
		case isMark(v):
			out[k] = v
		default:
			out[k] = r.Mark(v) // even "": as Args, a string under a secret key
		}
	}
	return out
}

// RedactArgs returns args redacted, as Args does.
func (r *Redactor) RedactArgs(args map[string]any) map[string]any {
	out, _ := r.Args(args)
	return out
}

// Value returns v (a JSON-like value: nil, bool, numbers, string,
// []any, []string, map[string]any, map[string]string) redacted as a
// record's arguments are: the values under secret keys, credentials found
// in strings (also inside strings that hold JSON and inside URLs), and the
// tail of long strings. v is not modified; when nothing is redacted the
// result is v itself.
func (r *Redactor) Value(v any) any {
	var secrets []string
	out, _ := r.value(v, &secrets, 0)
	return out
}

// Clean reports whether Value would return v unchanged: nothing in it is
// secret or too long. A true answer is certain; a false one means only
// that Value must look. It allocates nothing.
func (r *Redactor) Clean(v any) bool {
	switch v := v.(type) {
	case string:
		return r.CleanString(v)
	case map[string]any:
		for k, e := range v {
			if r.SecretKey(k) && !harmless(e) && !isMark(e) || !r.Clean(e) {
				return false
			}
		}
		return true
	case []any:
		for _, e := range v {
			if !r.Clean(e) {
				return false
			}
		}
		return true
	case map[string]string, []string:
		return false // Value converts them
	}
	return true
}

// CleanString reports whether Value would return s unchanged: it is not
// too long and holds no clue of a secret (the cheap test that decides
// whether the patterns run at all). A true answer is certain; a false one
// means only that Value must look.
func (r *Redactor) CleanString(s string) bool {
	return (r.max < 0 || len(s) <= r.max) && !r.hint(s)
}

// isMark reports whether v is a mark already, left as it is so that
// redacting twice changes nothing.
func isMark(v any) bool {
	s, ok := v.(string)
	return ok && strings.HasPrefix(s, markPrefix) && strings.HasSuffix(s, "]") && len(s) == len(markPrefix)+13
}

// harmless reports whether v, under a secret key, is kept: null and
// booleans say nothing about a secret.
func harmless(v any) bool {
	switch v.(type) {
	case nil, bool:
		return true
	}
	return false
}

// value returns v redacted and whether that changed it; containers are
// copied only when something inside them changed.
func (r *Redactor) value(v any, secrets *[]string, depth int) (any, bool) {
	if depth > maxDepth {
		return r.Mark(v), true
	}
	if s, ok := v.(string); ok {
		// Return v itself when nothing changed: no new interface value.
		ns := r.str(s, secrets, depth)
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
			if r.SecretKey(k) && !harmless(e) && !isMark(e) {
				collect(e, secrets)
				nv, changed = r.Mark(e), true
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

// str returns the string s redacted: a string that holds a JSON object
// or array is decoded, redacted as a value and encoded again (compact,
// keys sorted); any other string has the patterns scrubbed from it. Then
// it is truncated.
func (r *Redactor) str(s string, secrets *[]string, depth int) string {
	if !r.hint(s) {
		return r.truncate(s)
	}
	add := func(m string) string {
		*secrets = append(*secrets, m)
		return r.Mark(m)
	}
	if t := strings.TrimSpace(s); len(t) > 1 && (t[0] == '{' || t[0] == '[') {
		if v, ok := decodeJSON(t); ok {
			if nv, changed := r.value(v, secrets, depth+1); changed {
				if b, err := appendValue(nil, nv, depth+1); err == nil {
					return r.truncate(string(b))
				}
				return r.truncate(add(s))
			}
			// Nothing secret in the decoded value: its text is kept, but
			// still scrubbed (escapes may hide a pattern from the text
			// and not from the value, never the other way round).
		}
	}
	return r.truncate(r.scrub(s, add))
}

// decodeJSON decodes s, one JSON value and nothing after it, keeping
// numbers exact.
func decodeJSON(s string) (any, bool) {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, false
	}
	if _, err := d.Token(); err == nil || d.More() {
		return nil, false
	}
	return v, true
}

// collect adds the text of the scalars inside a secret value to secrets.
func collect(v any, secrets *[]string) {
	switch v := v.(type) {
	case string:
		*secrets = append(*secrets, v)
	case []any:
		for _, e := range v {
			collect(e, secrets)
		}
	case []string:
		*secrets = append(*secrets, v...)
	case map[string]any:
		for _, e := range v {
			collect(e, secrets)
		}
	case map[string]string:
		for _, e := range v {
			*secrets = append(*secrets, e)
		}
	case nil, bool:
	default:
		if b, err := appendValue(nil, v, 0); err == nil {
			*secrets = append(*secrets, string(b))
		}
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

// Text returns s with the default and configured patterns, the values of
// secret name=value pairs, URL passwords and every value in secrets (of at
// least 4 bytes) replaced by their marks, then truncated like a string
// argument. The secrets are replaced longest first (then in byte order),
// so that one inside another does not break the longer one's mark, and
// the result does not depend on their order.
func (r *Redactor) Text(s string, secrets []string) string {
	if s == "" {
		return s
	}
	if len(secrets) > 1 {
		secrets = slices.Clone(secrets)
		slices.SortFunc(secrets, func(a, b string) int {
			if len(a) != len(b) {
				return len(b) - len(a)
			}
			return strings.Compare(a, b)
		})
	}
	for _, sec := range secrets {
		if len(sec) >= minSecret && strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, r.Mark(sec))
		}
	}
	if r.hint(s) {
		s = r.scrub(s, func(m string) string { return r.Mark(m) })
	}
	return r.truncate(s)
}

// scrub replaces the secrets in s by repl(secret): what the patterns
// match, the values of pairs with a secret name, and URL passwords. A
// mark already in s is left alone.
func (r *Redactor) scrub(s string, repl func(string) string) string {
	keep := func(m string) string {
		if strings.HasPrefix(m, markPrefix) {
			return m
		}
		return repl(m)
	}
	if r.defaults.MatchString(s) {
		s = r.defaults.ReplaceAllStringFunc(s, keep)
	}
	s = replaceLastGroup(s, r.userinfo.FindAllStringSubmatchIndex(s, -1), keep)
	var pairs [][]int
	for _, m := range r.pairName.FindAllStringSubmatchIndex(s, -1) {
		if !r.SecretKey(s[m[2]:m[3]]) {
			continue
		}
		if v := r.pairValue.FindStringIndex(s[m[1]:]); v != nil {
			pairs = append(pairs, []int{m[1] + v[0], m[1] + v[1]})
		}
	}
	s = replaceLastGroup(s, pairs, func(v string) string {
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			return v[:1] + keep(v[1:len(v)-1]) + v[:1]
		}
		return keep(v)
	})
	if r.extra != nil && r.extra.MatchString(s) {
		s = r.extra.ReplaceAllStringFunc(s, keep)
	}
	return s
}

// replaceLastGroup replaces, for each match m in ms (in order, as
// FindAllStringSubmatchIndex gives them), the last group of m in s by repl
// of it.
func replaceLastGroup(s string, ms [][]int, repl func(string) string) string {
	var b strings.Builder
	last := 0
	for _, m := range ms {
		i, j := m[len(m)-2], m[len(m)-1]
		if i < last {
			continue
		}
		b.WriteString(s[last:i])
		b.WriteString(repl(s[i:j]))
		last = j
	}
	if b.Len() == 0 && last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// clues are substrings of which every match of DefaultPatterns and of
// the URL password pattern holds one, in this case: the patterns are
// case-sensitive but for foldClues.
var (
	clues = []string{
		"sk-", "sk_", "rk_", "gh", "github_pat_", "xox", "A3T", "AKIA", "ASIA", "AGPA", "AIDA",
		"AROA", "AIPA", "ANPA", "ANVA", "ABIA", "ACCA", "AIza", "eyJ", "-----BEGIN", "://",
	}
	foldClues = []string{"bearer", "basic"}
)

// keyClues are lowercase substrings of which every secret key holds one,
// ignoring ASCII case.
var keyClues = []string{
	"pass", "pw", "secret", "cred", "token", "auth", "bearer", "cookie", "key", "session",
	"otp", "pin", "ssn", "cvv", "cvc", "jwt", "card",
}

// foldRunes are the two non-ASCII runes that case folding matches with
// an ASCII letter (see foldsToASCII): text that holds one may hold a
// clue in disguise.
var foldRunes = []string{"\u017f", "\u212a"}

// cluesByFirst holds clues, foldClues and foldRunes by their first byte
// (foldClues under both cases, marked by a leading 0 byte);
// keyCluesByFirst holds keyClues by their first byte.
var cluesByFirst, keyCluesByFirst = func() (t, k [256][]string) {
	for _, c := range clues {
		t[c[0]] = append(t[c[0]], c)
	}
	for _, c := range foldClues {
		t[c[0]] = append(t[c[0]], "\x00"+c)
		t[c[0]-('a'-'A')] = append(t[c[0]-('a'-'A')], "\x00"+c)
	}
	for _, c := range foldRunes {
		t[c[0]] = append(t[c[0]], c)
	}
	for _, c := range keyClues {
		k[c[0]] = append(k[c[0]], c)
	}
	return t, k
}()

// hasKeyClue reports whether k holds one of keyClues, ignoring case:
// every secret key does (U+017F and U+212A fold to s and k).
func hasKeyClue(k string) bool {
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c >= utf8.RuneSelf {
			if foldsToASCII(k[i:]) {
				return true
			}
			continue
		}
		if keyClueAt(&keyCluesByFirst, k[i:]) {
			return true
		}
	}
	return false
}

// keyClueAt reports whether s begins with one of the key clues in t (by
// lowercase first byte), ignoring ASCII case.
func keyClueAt(t *[256][]string, s string) bool {
	c := s[0]
	if 'A' <= c && c <= 'Z' {
		c += 'a' - 'A'
	}
	for _, clue := range t[c] {
		if hasPrefixFold(s, clue) {
			return true
		}
	}
	return false
}

// foldsToASCII reports whether s holds one of the two non-ASCII runes
// that case folding (in (?i) patterns and in EqualFold) matches with an
// ASCII letter: U+017F (ſ, for s) and U+212A (K, for k).
func foldsToASCII(s string) bool {
	return strings.Contains(s, "\u017f") || strings.Contains(s, "\u212a")
}

// hint reports whether s may hold a secret that scrub would find: a clue
// of a pattern or one of foldRunes, or, when s holds a ':' or '=' (a
// pair), a key clue. It is
// the cheap test that keeps the regular expressions off ordinary text:
// one lookup of the two bytes at each position in a bit set of the pairs
// that begin a clue, and a closer look only where one may begin.
func (r *Redactor) hint(s string) bool {
	if r.extra != nil {
		return true
	}
	sep := strings.IndexByte(s, ':') >= 0 || strings.IndexByte(s, '=') >= 0
	set := &r.pairs.clues
	if sep {
		set = &r.pairs.both
	}
	n := len(s)
	if n == 0 {
		return false
	}
	row := set[s[0]&63]
	for i := 1; i < n; i++ {
		c := s[i]
		if row>>(c&63)&1 != 0 && r.clueAt(s[i-1:], sep) {
			return true
		}
		row = set[c&63]
	}
	// Only a one-letter key word begins at the last byte: every other
	// clue has two bytes at least.
	return sep && keyClueAt(&r.keyClues, s[n-1:])
}

// clueAt reports whether s begins with a clue or a fold rune, or (with
// keys) a key clue.
func (r *Redactor) clueAt(s string, keys bool) bool {
	for _, clue := range cluesByFirst[s[0]] {
		if clue[0] == 0 && hasPrefixFold(s, clue[1:]) || strings.HasPrefix(s, clue) {
			return true
		}
	}
	return keys && keyClueAt(&r.keyClues, s)
}

// pairTables are sets of the two-byte sequences that begin a clue: clues
// holds those of the clues and foldClues (in their case), both also those
// of the key clues (in any ASCII case; a one-letter key word begins a
// pair with any second byte). hint looks in both when key clues count.
type pairTables struct {
	clues, both pairSet
}

// pairSet is a set of two-byte sequences, kept by the low six bits of
// each byte: 512 bytes that stay in the cache, holding a few sequences
// that are not in the set as well (a byte and another 64 or 128 or 192
// apart share their bits), which the closer look after it rules out.
type pairSet [64]uint64

func (t *pairSet) set(a, b byte) { t[a&63] |= 1 << (b & 63) }

// cases returns c and, for an ASCII letter, its other case.
func cases(c byte) []byte {
	switch {
	case 'a' <= c && c <= 'z':
		return []byte{c, c - ('a' - 'A')}
	case 'A' <= c && c <= 'Z':
		return []byte{c, c + ('a' - 'A')}
	}
	return []byte{c}
}

// pairsOf returns the pair tables for the clues and the key clues kc (by
// lowercase first byte).
func pairsOf(kc *[256][]string) *pairTables {
	t := new(pairTables)
	for _, c := range slices.Concat(clues, foldRunes) {
		t.clues.set(c[0], c[1])
	}
	for _, c := range foldClues {
		for _, a := range cases(c[0]) {
			for _, b := range cases(c[1]) {
				t.clues.set(a, b)
			}
		}
	}
	t.both = t.clues
	for _, list := range kc {
		for _, c := range list {
			for _, a := range cases(c[0]) {
				if len(c) == 1 {
					for b := range 256 {
						t.both.set(a, byte(b))
					}
					continue
				}
				for _, b := range cases(c[1]) {
					t.both.set(a, b)
				}
			}
		}
	}
	return t
}

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
