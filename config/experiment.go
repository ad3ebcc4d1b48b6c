package config

import (
	"fmt"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// experiment "name" { variant "a" { model = "x" weight = 90 } ... }: a
// public model name whose traffic is split among existing models
// (daemon/experiment).

// Experiment is one experiment block.
type Experiment struct {
	Name string `json:"name"`
	// Mode is "split" (each request goes to one variant, by weight) or
	// "shadow" (the first variant answers; the others get a copy whose
	// answer is discarded).
	Mode string `json:"mode"`
	// Sticky is what keeps a client on one variant: "user" (the request's
	// user field), "header:NAME" (a request header), or "none" (each
	// request is assigned afresh).
	Sticky   string    `json:"sticky"`
	Variants []Variant `json:"variants"`
}

// Variant is one variant block; Model is the canonical model name.
type Variant struct {
	Name   string `json:"name"`
	Model  string `json:"model"`
	Weight int    `json:"weight"`
}

// Experiment modes and sticky keys.
const (
	ModeSplit        = "split"
	ModeShadow       = "shadow"
	StickyUser       = "user"
	StickyNone       = "none"
	StickyHeaderPref = "header:"
)

// Experiment defaults.
const (
	DefaultExperimentMode   = ModeSplit
	DefaultExperimentSticky = StickyUser
	DefaultVariantWeight    = 1
	// MaxVariantWeight bounds a weight; weights are relative.
	MaxVariantWeight = 1000000
)

// StickyHeader is the header named by a "header:NAME" sticky key, in
// canonical form, or "".
func (e *Experiment) StickyHeader() string {
	if h, ok := strings.CutPrefix(e.Sticky, StickyHeaderPref); ok {
		return textproto.CanonicalMIMEHeaderKey(h)
	}
	return ""
}

// Experiment finds an experiment by name.
func (c *Config) Experiment(name string) (*Experiment, bool) {
	for i := range c.Experiments {
		if c.Experiments[i].Name == name {
			return &c.Experiments[i], true
		}
	}
	return nil, false
}

type experimentBlock struct {
	Name      string         `hcl:"name,label"`
	NameRange hcl.Range      `hcl:"name,label_range"`
	Mode      *string        `hcl:"mode,optional"`
	Sticky    *string        `hcl:"sticky,optional"`
	Variants  []variantBlock `hcl:"variant,block"`
	Body      hcl.Body       `hcl:",body"`
	DefRange  hcl.Range      `hcl:",def_range"`
}

type variantBlock struct {
	Name      string    `hcl:"name,label"`
	NameRange hcl.Range `hcl:"name,label_range"`
	Model     string    `hcl:"model"`
	Weight    *int      `hcl:"weight,optional"`
	Body      hcl.Body  `hcl:",body"`
	DefRange  hcl.Range `hcl:",def_range"`
}

func validHeaderName(h string) bool {
	if h == "" {
		return false
	}
	for _, c := range h {
		if c > 127 || !(c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

func (d *decoder) experiments(c *Config, bs []experimentBlock) {
	seen := map[string]hcl.Range{}
	for i := range bs {
		b := &bs[i]
		if !d.checkName(b.NameRange, "experiment name", b.Name) {
			continue
		}
		if prev, ok := seen[b.Name]; ok {
			d.errf(b.NameRange, "experiment %q is defined twice; the first definition is at %s", b.Name, d.pos(prev))
			continue
		}
		seen[b.Name] = b.NameRange
		if m, ok := c.Lookup(b.Name); ok {
			what := "the name of a model"
			if m.Name != b.Name {
				what = fmt.Sprintf("an alias of model %q", m.Name)
			}
			d.errf(b.NameRange, "experiment %q is %s; requests name an experiment like a model, so the names must differ", b.Name, what)
			continue
		}
		e := Experiment{Name: b.Name, Mode: str(b.Mode, DefaultExperimentMode), Sticky: str(b.Sticky, DefaultExperimentSticky)}
		switch e.Mode {
		case ModeSplit, ModeShadow:
		default:
			d.errf(valueRange(b.Body, "mode", b.DefRange), "experiment %q: mode %q is not \"split\" or \"shadow\"", b.Name, e.Mode)
		}
		if h, isHeader := strings.CutPrefix(e.Sticky, StickyHeaderPref); isHeader {
			if !validHeaderName(h) {
				d.errf(valueRange(b.Body, "sticky", b.DefRange), "experiment %q: sticky %q must name a header, as in \"header:X-Jetai-Session\"", b.Name, e.Sticky)
			}
		} else if e.Sticky != StickyUser && e.Sticky != StickyNone {
			d.errf(valueRange(b.Body, "sticky", b.DefRange), "experiment %q: sticky %q is not \"user\", \"none\" or \"header:NAME\"", b.Name, e.Sticky)
		}
		vseen := map[string]hcl.Range{}
		for j := range b.Variants {
			v := &b.Variants[j]
			if !d.checkName(v.NameRange, "variant name", v.Name) {
				continue
			}
			if prev, ok := vseen[v.Name]; ok {
				d.errf(v.NameRange, "experiment %q: variant %q is defined twice; the first definition is at %s", b.Name, v.Name, d.pos(prev))
				continue
			}
			vseen[v.Name] = v.NameRange
			vr := Variant{Name: v.Name, Weight: num(v.Weight, DefaultVariantWeight)}
			m, ok := c.Lookup(v.Model)
			if !ok {
				d.errf(valueRange(v.Body, "model", v.DefRange), "experiment %q, variant %q: model %q is not defined; a variant names a model block (or an alias)", b.Name, v.Name, v.Model)
			} else {
				vr.Model = m.Name
			}
			if vr.Weight <= 0 || vr.Weight > MaxVariantWeight {
				d.errf(valueRange(v.Body, "weight", v.DefRange), "experiment %q, variant %q: weight is %d; it must be from 1 to %d (weights are relative)", b.Name, v.Name, vr.Weight, MaxVariantWeight)
			}
			e.Variants = append(e.Variants, vr)
		}
		if len(b.Variants) < 2 {
			d.errf(b.DefRange, "experiment %q has %d variant(s); it needs at least two to compare", b.Name, len(b.Variants))
		}
		c.Experiments = append(c.Experiments, e)
	}
}

// experimentsString renders the experiments for a reload's diff.
func experimentsString(es []Experiment) string {
	if len(es) == 0 {
		return "(none)"
	}
	var parts []string
	for _, e := range es {
		var vs []string
		for _, v := range e.Variants {
			vs = append(vs, v.Name+"="+v.Model+":"+strconv.Itoa(v.Weight))
		}
		parts = append(parts, fmt.Sprintf("%s{%s %s %s}", e.Name, e.Mode, e.Sticky, strings.Join(vs, ",")))
	}
	return strings.Join(parts, " ")
}

// Reloads: experiments apply live; a request already running finishes on
// the variant it was given.
func init() {
	globalFields = append(globalFields,
		field[*Config]{"experiments", false, func(c *Config) string { return experimentsString(c.Experiments) }},
	)
}
