package runner

import (
	"reflect"
	"testing"
	"time"
)

// TestArgsRoundTrip: what the daemon writes is what the runner reads, for
// every flag, and left-out values take the runner's defaults.
func TestArgsRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   Options
		want Options
	}{
		{"defaults", Options{Model: "/m.gguf"},
			Options{Model: "/m.gguf", SlotContext: DefaultSlotContext, Slots: DefaultSlots, BatchSize: DefaultBatchSize, KVType: DefaultKVType}},
		{"every flag", Options{
			Model: "/m.gguf", SlotContext: 256, Slots: 2, BatchSize: 64, Threads: 3, GPULayers: 99,
			FlashAttention: true, KVType: "q8_0", NoMmap: true, Queue: 7, Verbose: true,
			Adapters:    []Adapter{{Path: "/a.gguf", Scale: 0.5}, {Path: "/b:c.gguf", Scale: 1}},
			BackendsDir: "/usr/lib/jetai/backends",
			Checked:     FileVersion{Size: 515407968, ModTime: time.Unix(0, 1764739200123456789)},
		}, Options{}},
		{"gpu layers auto", Options{Model: "/m.gguf", GPULayers: GPULayersAuto, Queue: 1},
			Options{Model: "/m.gguf", SlotContext: DefaultSlotContext, Slots: DefaultSlots, BatchSize: DefaultBatchSize, KVType: DefaultKVType, GPULayers: GPULayersAuto, Queue: 1}},
		// Daemon-side fields do not travel.
		{"launch fields", Options{Model: "/m.gguf", Name: "x", Command: []string{"/bin/x"}, Dir: "/tmp", Queue: 16},
			Options{Model: "/m.gguf", SlotContext: DefaultSlotContext, Slots: DefaultSlots, BatchSize: DefaultBatchSize, KVType: DefaultKVType, Queue: 16}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.want
			if want.Model == "" {
				want = tc.in
			}
			got, err := ParseArgs(tc.in.Args(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("args %q\nparsed %+v\nwant   %+v", tc.in.Args(), got, want)
			}
		})
	}
}

func TestParseArgsErrors(t *testing.T) {
	for _, args := range [][]string{
		{},                                   // no model
		{"-model", "/m", "-ctx", "x"},        // not a number
		{"-model", "/m", "-lora", "/a"},      // no scale
		{"-model", "/m", "stray"},            // stray argument
		{"-model", "/m", "-checked", "12"},   // no modification time
		{"-model", "/m", "-checked", "-1:5"}, // negative size
		{"-nope"},
	} {
		if _, err := ParseArgs(args, nil); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}
