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

// TestTailKeepsAbortCause: the line in which ggml or llama.cpp says why
// it aborts is kept as the cause, whatever the log around it; ordinary
// llama.cpp log lines are not causes.
func TestTailKeepsAbortCause(t *testing.T) {
	for _, tc := range []struct {
		writes []string
		want   string
	}{
		{[]string{"load: special_eos_id is not in special_eog_ids\nrunner.test: ggml-cpu.c:9120: ggml_compute_forward_soft_max_f32: Assertion `!isnan(wp[i])' failed.\n"},
			"ggml-cpu.c:9120: ggml_compute_forward_soft_max_f32: Assertion `!isnan(wp[i])' failed."},
		{[]string{"CPU.0.AVX2=1\n/src/ggml/ggml-cpu/ops.cpp:3456: GGML_ASSERT(!isnan(x)) fai", "led\nSIGABRT: abort\nPC=0x1\n"},
			"/src/ggml/ggml-cpu/ops.cpp:3456: GGML_ASSERT(!isnan(x)) failed"},
		{[]string{"llama.cpp:77: fatal error\n"}, "llama.cpp:77: fatal error"},
		{[]string{"llama_model_loader: - kv   0: general.architecture str = llama\nload_tensors: CPU model buffer size = 1.1 MiB\nllama_init_from_model: n_ctx_per_seq (256) < n_ctx_train (2048)\n"}, ""},
		{[]string{"no newline at the end: ggml.c:1: GGML_ASSERT(x) failed"}, ""},
	} {
		tb := &tailBuffer{max: 1 << 10}
		for _, w := range tc.writes {
			tb.Write([]byte(w))
		}
		tb.Write([]byte(strings.Repeat("goroutine 13 [syscall]:\n\truntime.cgocall(...)\n", 200)))
		if got := tb.causeLine(); got != tc.want {
			t.Errorf("%q: cause %q, want %q", tc.writes, got, tc.want)
		}
	}
}
