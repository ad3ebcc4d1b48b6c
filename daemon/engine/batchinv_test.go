package engine

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"github.com/jetai/jetai/internal/testmodel"
	"github.com/jetai/jetai/modelgen"
)

// With batch invariance on, a token's logits are bit for bit the same
// decoded alone or at the head of a batch of k+1 tokens of its sequence
// (a speculative step), on F32 weights (stories260K), F16, Q4_K_M and Q8_0
// weights (generated), with and without flash attention. Where jetai's
// kernels cover every product of a model (F32 and F16 columns, and Q4_K
// and Q6_K on AVX-512 VNNI), that holds without SetBatchInvariant too.
func TestBatchInvariance(t *testing.T) {
	t.Cleanup(func() { SetBatchInvariant(false) })
	quantized := func(typ string) string {
		out := filepath.Join(t.TempDir(), typ+".gguf")
		if err := Quantize(testmodel.Gen(t, modelgen.Tiny()), out, typ); err != nil {
			t.Fatal(err)
		}
		return out
	}
	models := []struct {
		name, path string
		covered    bool // by jetai's kernels, without SetBatchInvariant
	}{
		{"stories260K F32", testmodel.Path(t), columnKernels()},
		{"generated F16", testmodel.Gen(t, modelgen.Tiny()), columnKernels()},
		{"generated Q4_K_M", quantized("q4_k_m"), columnKernels() && KQuantKernels()},
		{"generated Q8_0", quantized("q8_0"), false},
	}
	for _, mc := range models {
		for _, c := range []struct{ flash, invariant bool }{{false, true}, {true, true}, {false, false}, {true, false}} {
			if !c.invariant && !mc.covered {
				continue
			}
			flash := c.flash
			t.Run(fmt.Sprintf("%s flash %v SetBatchInvariant %v", mc.name, c.flash, c.invariant), func(t *testing.T) {
				SetBatchInvariant(c.invariant)
				m, err := Load(context.Background(), mc.path, LoadOptions{})
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				c, err := m.NewContext(ContextOptions{SlotContext: 256, Slots: 1, Threads: 2, FlashAttention: flash})
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				b, err := NewBatch(64)
				if err != nil {
					t.Fatal(err)
				}
				defer b.Free()
				prompt, err := m.Tokenize(testmodel.GoldenPrompt, true)
				if err != nil {
					t.Fatal(err)
				}
				decode := func(first int, toks []int) {
					t.Helper()
					b.Clear()
					for i, tk := range toks {
						b.Add(tk, first+i, 0, true)
					}
					if err := c.Decode(b); err != nil {
						t.Fatal(err)
					}
				}
				// One token at a time: the reference logits at each
				// position after the prompt.
				decode(0, prompt)
				toks := []int{argmaxLogit(c.Logits(len(prompt) - 1))}
				var want [][]float32
				const n = 9
				for i := range n {
					decode(len(prompt)+i, toks[i:i+1])
					want = append(want, append([]float32(nil), c.Logits(0)...))
					toks = append(toks, argmaxLogit(want[i]))
				}
				for _, k := range []int{1, 2, 4, 8} {
					c.RemoveFrom(0, len(prompt))
					decode(len(prompt), toks[:k+1])
					for j := 0; j <= k; j++ {
						got := c.Logits(j)
						for v := range got {
							if math.Float32bits(got[v]) != math.Float32bits(want[j][v]) {
								t.Fatalf("batch of %d, position %d: logit %d = %g, decoded alone %g", k+1, j, v, got[v], want[j][v])
							}
						}
					}
				}
			})
		}
	}
}

// The greedy sampler takes the highest logit itself; the chain it skips
// picks the same tokens.
func TestGreedyWithoutChain(t *testing.T) {
	for _, path := range []string{testmodel.Path(t), testmodel.Gen(t, modelgen.Tiny())} {
		m, err := Load(context.Background(), path, LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c, err := m.NewContext(ContextOptions{SlotContext: 256, Slots: 1, Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		b, err := NewBatch(256)
		if err != nil {
			t.Fatal(err)
		}
		fast, err := m.NewSampler(SamplingParams{Temperature: 0, TopK: 40, TopP: 0.9, MinP: 0.05, RepeatPenalty: 1})
		if err != nil {
			t.Fatal(err)
		}
		chain, err := m.NewSampler(SamplingParams{Temperature: 0, TopK: 40, TopP: 0.9, MinP: 0.05, RepeatPenalty: 1})
		if err != nil {
			t.Fatal(err)
		}
		if !fast.greedy {
			t.Fatal("greedy settings not taken as greedy")
		}
		chain.greedy = false
		prompt, _ := m.Tokenize(testmodel.GoldenPrompt, true)
		for i, tk := range prompt {
			b.Add(tk, i, 0, i == len(prompt)-1)
		}
		if err := c.Decode(b); err != nil {
			t.Fatal(err)
		}
		idx := len(prompt) - 1
		for pos := len(prompt); pos < len(prompt)+60; pos++ {
			a, err := fast.Sample(c, idx)
			if err != nil {
				t.Fatal(err)
			}
			want, err := chain.Sample(c, idx)
			if err != nil {
				t.Fatal(err)
			}
			if a != want {
				t.Fatalf("%s position %d: %d without the chain, %d with it", path, pos, a, want)
			}
			b.Clear()
			b.Add(a, pos, 0, true)
			if err := c.Decode(b); err != nil {
				t.Fatal(err)
			}
			idx = 0
		}
		fast.Close()
		chain.Close()
		b.Free()
		c.Close()
		m.Close()
	}
}
