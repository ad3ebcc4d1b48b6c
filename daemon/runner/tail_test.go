package runner

import (
	"strings"
	"testing"
)

// TestTailKeepsCrashLine: the first line of a Go crash report survives a
// goroutine dump longer than the tail, and is found when split across
// writes.
func TestTailKeepsCrashLine(t *testing.T) {
	for _, writes := range [][]string{
		{"llama log\nSIGBUS: bus error\nPC=0x1 m=6\n"},
		{"llama log\nSIG", "BUS: bus er", "ror\nPC=0x1\n"},
		{"SIGBUS: bus error\n"},
		{"some text mentioning panic: in the middle\nfatal error: unexpected signal\n"},
	} {
		tb := &tailBuffer{max: 1 << 10}
		for _, w := range writes {
			tb.Write([]byte(w))
		}
		tb.Write([]byte(strings.Repeat("goroutine 13 [syscall]:\n\truntime.cgocall(...)\n", 200)))
		want := "SIGBUS: bus error"
		if strings.Contains(strings.Join(writes, ""), "fatal error") {
			want = "fatal error: unexpected signal"
		}
		if got := tb.fatalLine(); got != want {
			t.Errorf("%q: crash line %q, want %q", writes, got, want)
		}
	}
	tb := &tailBuffer{max: 1 << 10}
	tb.Write([]byte("load: bad special token\nllama_init_from_model: n_ctx\n"))
	if got := tb.fatalLine(); got != "" {
		t.Errorf("no crash, but crash line %q", got)
	}
}
