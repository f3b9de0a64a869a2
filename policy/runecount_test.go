package policy

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestRuneCount: runeCount counts code points as utf8.RuneCountInString
// does, for ASCII, multi-byte and invalid text at every alignment.
func TestRuneCount(t *testing.T) {
	for _, s := range []string{"", "a", "Hello Bob, your refund of 12.50 USD is on its way.",
		"héllo wörld, ça va?", "abcdefgh\xffijklmnop", "日本語のテキスト", strings.Repeat("x", 17) + "é" + strings.Repeat("y", 9),
		"\xf0\x9f\x98", strings.Repeat("ab", 40)} {
		for i := range len(s) + 1 {
			if got, want := runeCount(s[i:]), utf8.RuneCountInString(s[i:]); got != want {
				t.Errorf("runeCount(%q) = %d, want %d", s[i:], got, want)
			}
		}
	}
}

func FuzzRuneCount(f *testing.F) {
	f.Add("Hello Bob")
	f.Add("héllo\xff")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := runeCount(s), utf8.RuneCountInString(s); got != want {
			t.Errorf("runeCount(%q) = %d, want %d", s, got, want)
		}
	})
}

func BenchmarkRuneCount(b *testing.B) {
	s := "Hello Bob, your refund of 12.50 USD is on its way."
	for r := range 2 {
		_ = r
		b.Run("utf8", func(b *testing.B) {
			for b.Loop() {
				utf8.RuneCountInString(s)
			}
		})
		b.Run("runeCount", func(b *testing.B) {
			for b.Loop() {
				runeCount(s)
			}
		})
	}
}
