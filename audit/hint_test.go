package audit

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// hintByScan is hint written plainly: a scan of s for each clue.
func hintByScan(s string) bool {
	if strings.ContainsAny(s, "\u017f\u212a") {
		return true
	}
	low := asciiLower(s)
	for _, c := range clues {
		if strings.Contains(s, c) {
			return true
		}
	}
	for _, c := range foldClues {
		if strings.Contains(low, c) {
			return true
		}
	}
	if !strings.ContainsAny(s, ":=") {
		return false
	}
	for _, c := range keyClues {
		if strings.Contains(low, c) {
			return true
		}
	}
	return false
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// TestHintOnePass checks the one-pass hint against a scan for each clue,
// on every clue in every case at every position and on random text.
func TestHintOnePass(t *testing.T) {
	var inputs []string
	for _, c := range slices.Concat(clues, foldClues, keyClues) {
		for _, form := range []string{c, strings.ToUpper(c), strings.ToUpper(c[:1]) + c[1:], c[:len(c)-1], c[1:]} {
			inputs = append(inputs, form, "x"+form, "hello "+form+" world", form+"!", "ab"+form[:len(form)-1])
		}
	}
	inputs = append(inputs, "", "a", "bob@example.com", "Hello Bob, your refund of 12.50 USD is on its way.", "é", "-----BEGIN RSA PRIVATE KEY-----")
	r := rand.New(rand.NewPCG(1, 2))
	const alphabet = "abegkopstxyABEGKOPSTXYIJ-_ ie0:=\u017f"
	for range 20000 {
		b := make([]byte, r.IntN(24))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		inputs = append(inputs, string(b))
	}
	red := newRedactor(t, Redaction{})
	for _, s := range inputs {
		if got, want := red.hint(s), hintByScan(s); got != want {
			t.Fatalf("hint(%q) = %v, want %v", s, got, want)
		}
	}
}
