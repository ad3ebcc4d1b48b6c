package engine

import "unicode/utf8"

// TextStream turns token pieces into text that never ends in the middle of
// a UTF-8 character: bytes of an incomplete character wait for the next
// piece.
type TextStream struct {
	pending []byte
}

// Push adds a piece and returns the text that is complete so far.
func (s *TextStream) Push(piece string) string {
	s.pending = append(s.pending, piece...)
	n := completeUTF8(s.pending)
	if n == 0 {
		return ""
	}
	out := string(s.pending[:n])
	s.pending = s.pending[:copy(s.pending, s.pending[n:])]
	return out
}

// Flush returns whatever is pending, with invalid bytes replaced by U+FFFD.
func (s *TextStream) Flush() string {
	if len(s.pending) == 0 {
		return ""
	}
	out := []rune(string(s.pending))
	s.pending = s.pending[:0]
	return string(out)
}

// Reset drops pending bytes.
func (s *TextStream) Reset() { s.pending = s.pending[:0] }

// completeUTF8 returns the length of the longest prefix of b that does not
// end inside a UTF-8 sequence that could still be completed. Invalid bytes
// count as complete (they are emitted as they are, and the client's JSON
// encoder replaces them).
func completeUTF8(b []byte) int {
	// Look at most 3 bytes back for the start of the last sequence.
	for i := len(b) - 1; i >= 0 && i >= len(b)-4; i-- {
		c := b[i]
		if c < 0x80 {
			return len(b)
		}
		if c >= 0xC0 { // leading byte
			need := 0
			switch {
			case c >= 0xF0:
				need = 4
			case c >= 0xE0:
				need = 3
			default:
				need = 2
			}
			if len(b)-i < need && utf8.FullRune(b[i:]) == false {
				return i
			}
			return len(b)
		}
	}
	return len(b)
}
