package audit

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// hintByScan is hint as it was first written: a scan of s for each clue.
func hintByScan(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return true
		}
	}
	for _, c := range clues {
		if strings.Contains(strings.ToLower(s), c) {
			return true
		}
	}
	return false
}

// TestHintOnePass checks the one-pass hint against a scan for each clue,
// on every clue in every case at every position and on random text.
func TestHintOnePass(t *testing.T) {
	var inputs []string
	for _, c := range clues {
		for _, form := range []string{c, strings.ToUpper(c), strings.ToUpper(c[:1]) + c[1:], c[:len(c)-1], c[1:]} {
			inputs = append(inputs, form, "x"+form, "hello "+form+" world", form+"!", "ab"+form[:len(form)-1])
		}
	}
	inputs = append(inputs, "", "a", "bob@example.com", "Hello Bob, your refund of 12.50 USD is on its way.", "é", "-----BEGIN RSA PRIVATE KEY-----")
	r := rand.New(rand.NewPCG(1, 2))
	const alphabet = "abegkopstxyABEGKOPSTXY-_ ie0"
	for range 20000 {
		b := make([]byte, r.IntN(24))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		inputs = append(inputs, string(b))
	}
	for _, s := range inputs {
		if got, want := hint(s), hintByScan(s); got != want {
			t.Fatalf("hint(%q) = %v, want %v", s, got, want)
		}
	}
}
