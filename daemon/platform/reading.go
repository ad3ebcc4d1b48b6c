package platform

import (
	"time"
)

// Reading is one poll of the machine.
type Reading struct {
	At     time.Time `json:"at"`
	Zones  []Zone    `json:"zones"`
	Memory *MemInfo  `json:"memory,omitempty"`
	PSI    *PSI      `json:"memory_pressure,omitempty"` // nil: the kernel has no PSI
	GPUs   []GPU     `json:"gpus"`
	Rails  []Rail    `json:"rails"`
	// Errors are the readers that failed as a whole, one line each; a
	// single bad zone or rail is reported in its own entry instead.
	Errors []string `json:"errors,omitempty"`
	// Took is how long the poll took.
	Took time.Duration `json:"-"`
}

// Read polls every reader under root once.
func Read(root string) Reading {
	start := time.Now()
	r := Reading{At: start}
	var err error
	if r.Zones, err = ReadZones(root); err != nil {
		r.Errors = append(r.Errors, err.Error())
	}
	if m, err := ReadMemInfo(root); err != nil {
		r.Errors = append(r.Errors, err.Error())
	} else {
		r.Memory = &m
	}
	if p, ok, err := ReadPSI(root); err != nil {
		r.Errors = append(r.Errors, err.Error())
	} else if ok {
		r.PSI = &p
	}
	if r.GPUs, err = ReadGPUs(root); err != nil {
		r.Errors = append(r.Errors, "gpu devfreq: "+err.Error())
	}
	if r.Rails, err = ReadRails(root); err != nil {
		r.Errors = append(r.Errors, "power rails: "+err.Error())
	}
	if r.Zones == nil {
		r.Zones = []Zone{}
	}
	if r.GPUs == nil {
		r.GPUs = []GPU{}
	}
	if r.Rails == nil {
		r.Rails = []Rail{}
	}
	r.Took = time.Since(start)
	return r
}
