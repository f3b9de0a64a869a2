package approval

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Visible returns s with every character a person cannot see, or that
// changes how the rest is seen, written as an escape, so that a card shows
// what the call holds: control characters (a newline, a terminal's ESC),
// Unicode format characters (the bidi controls U+202A–U+202E and
// U+2066–U+2069 that reorder text, zero-width spaces and joiners, the
// byte order mark), spaces other than U+0020, line and paragraph
// separators, other default-ignorable characters (U+3164 HANGUL FILLER),
// variation selectors, private-use, surrogate and unassigned code points
// become \uXXXX (a UTF-16 surrogate pair \uXXXX\uXXXX beyond U+FFFF, as
// JSON writes it), and bytes that are not UTF-8 become \xNN. Everything else is kept as it is. Within JSON text
// the escapes of characters are JSON escapes of the same characters, so
// escaped JSON still decodes to the same value.
//
// The console, the inbox page and the agentguard CLI show cards through
// it.
func Visible(s string) string {
	i := 0
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if invisible(r, n) {
			break
		}
		i += n
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:i])
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case !invisible(r, n):
			b.WriteString(s[i : i+n])
		case r > 0xffff:
			r1, r2 := utf16.EncodeRune(r)
			fmt.Fprintf(&b, `\u%04x\u%04x`, r1, r2)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
		i += n
	}
	return b.String()
}

// invisible reports whether the rune r, encoded in n bytes, is one that
// Visible escapes.
func invisible(r rune, n int) bool {
	if r == utf8.RuneError {
		return n == 1 // a byte that is not UTF-8; U+FFFD itself is visible
	}
	if r < utf8.RuneSelf {
		return r < 0x20 || r == 0x7f
	}
	return !unicode.IsPrint(r) ||
		unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r) ||
		unicode.Is(unicode.Variation_Selector, r) ||
		r == 0x034f || r == 0x115f || r == 0x1160 || r == 0x17b4 || r == 0x17b5 ||
		r == 0x3164 || r == 0xffa0 || r == 0x2800 // ignorable or blank-looking letters
}
