package toolcall

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"strings"
)

// Delta is one piece of parsed output: content text, or a piece of a call.
// A call's first delta has Start set with its ID and Name (Arguments
// empty); the following ones carry pieces of its arguments' JSON text, in
// order. Index counts the answer's calls from 0.
type Delta struct {
	Content   string
	Call      bool
	Index     int
	Start     bool
	ID, Name  string
	Arguments string
}

// Call is a whole parsed call.
type Call struct {
	ID, Name, Arguments string
}

// Parser splits a model's streamed output into content and calls in its
// family's format. Feed it the text as it comes; Finish at the end.
type Parser struct {
	f     Format
	state int
	held  string // text not yet decided (a possible opening, a call's header)
	calls []Call
	// the call being read
	obj       strings.Builder // the call object's text so far
	header    bool            // id and name sent; arguments streaming
	args      jsonScan        // the arguments value
	argsDone  bool
	objDepth  jsonScan // the whole object, for calls whose keys come in another order
	anyCalled bool
}

const (
	stText     = iota // content; an opening starts a call
	stStart           // anchored formats: nothing but whitespace seen yet
	stOpened          // after an opening, before the object (or the array's "[")
	stObject          // inside a call object
	stAfterObj        // after an object: a closing tag, a "," or "]", or another object
	stDone            // anchored formats after their call, or a closed array: the rest is content
)

// NewParser returns a parser for f.
func NewParser(f Format) *Parser {
	p := &Parser{f: f}
	if f.Anchored() {
		p.state = stStart
	}
	return p
}

// Calls returns the calls parsed so far.
func (p *Parser) Calls() []Call { return p.calls }

// maxHeader bounds the text searched for a call's header; an object whose
// keys come in another order is parsed whole when it closes.
const maxHeader = 1024

var headerRE = regexp.MustCompile(`^\s*\{\s*"name"\s*:\s*"((?:[^"\\]|\\.)*)"\s*,\s*"(?:arguments|parameters)"\s*:\s*`)

// Feed parses s and returns the deltas it completes.
func (p *Parser) Feed(s string) []Delta {
	var out []Delta
	p.held += s
	for p.held != "" {
		progressed := p.step(&out)
		if !progressed {
			break
		}
	}
	return mergeContent(out)
}

// Finish ends the output: undecided text is content, and a call left
// unfinished (the output was cut) is returned as content too, when its
// start was not sent yet.
func (p *Parser) Finish() []Delta {
	var out []Delta
	if p.state == stObject && !p.header {
		out = append(out, Delta{Content: p.obj.String()})
	}
	if len(p.calls) > 0 && strings.TrimLeft(p.held, " \t\r\n") == "" {
		p.held = ""
	}
	if p.held != "" && p.state != stObject {
		out = append(out, Delta{Content: p.held})
	}
	p.held = ""
	return mergeContent(out)
}

func (p *Parser) step(out *[]Delta) bool {
	switch p.state {
	case stText, stDone:
		if p.state == stDone || p.f.Anchored() {
			*out = append(*out, Delta{Content: p.held})
			p.held = ""
			return false
		}
		between := len(p.calls) > 0 // whitespace between calls is no content
		if between && strings.TrimLeft(p.held, " \t\r\n") == "" {
			return false
		}
		i := strings.Index(p.held, p.f.Open)
		if i >= 0 {
			if !between || strings.TrimLeft(p.held[:i], " \t\r\n") != "" {
				*out = append(*out, Delta{Content: p.held[:i]})
			}
			p.held = p.held[i+len(p.f.Open):]
			p.state = stOpened
			return true
		}
		keep := partialSuffix(p.held, p.f.Open)
		if between && keep > 0 && strings.TrimLeft(p.held[:len(p.held)-keep], " \t\r\n") == "" {
			return false
		}
		*out = append(*out, Delta{Content: p.held[:len(p.held)-keep]})
		p.held = p.held[len(p.held)-keep:]
		return false
	case stStart:
		t := strings.TrimLeft(p.held, " \t\r\n")
		if t == "" {
			return false
		}
		if p.f.Alt != "" {
			if strings.HasPrefix(t, p.f.Alt) {
				p.held = t[len(p.f.Alt):]
				p.state = stOpened
				return true
			}
			if strings.HasPrefix(p.f.Alt, t) {
				return false
			}
		}
		if t[0] == '{' {
			p.held = t
			p.state = stOpened
			return true
		}
		p.state = stDone
		return true
	case stOpened:
		t := strings.TrimLeft(p.held, " \t\r\n")
		if t == "" {
			p.held = ""
			return false
		}
		if p.f.Array && !p.inArray() {
			if t[0] != '[' {
				return p.giveUp(out, t)
			}
			p.held = t[1:]
			p.anyCalled = true // the array is open
			return true
		}
		if t[0] != '{' {
			return p.giveUp(out, t)
		}
		p.held = t
		p.state = stObject
		p.obj.Reset()
		p.header, p.argsDone = false, false
		p.args = jsonScan{}
		p.objDepth = jsonScan{}
		return true
	case stObject:
		return p.object(out)
	case stAfterObj:
		t := strings.TrimLeft(p.held, " \t\r\n")
		if t == "" {
			p.held = ""
			return false
		}
		switch {
		case p.f.Array && t[0] == ',':
			p.held = t[1:]
			p.state = stOpened
		case p.f.Array && t[0] == ']':
			p.held = t[1:]
			p.state = stDone
		case p.f.Close != "" && strings.HasPrefix(t, p.f.Close):
			p.held = t[len(p.f.Close):]
			p.state = stText
		case p.f.Close != "" && strings.HasPrefix(p.f.Close, t):
			p.held = t
			return false
		default:
			p.held = t
			p.state = stText
			if p.f.Anchored() {
				p.state = stDone
			}
		}
		return true
	}
	return false
}

func (p *Parser) inArray() bool { return p.anyCalled }

// giveUp treats text after an opening that is no call as content.
func (p *Parser) giveUp(out *[]Delta, t string) bool {
	if p.f.Open != "" && !p.f.Array {
		*out = append(*out, Delta{Content: p.f.Open})
	}
	p.held = t
	p.state = stDone
	return true
}

// object reads a call object: the header ({"name": "...", "arguments": )
// sends the call's start, then the arguments stream as they come.
func (p *Parser) object(out *[]Delta) bool {
	in := p.held
	p.held = ""
	var piece strings.Builder
	for i := 0; i < len(in); i++ {
		c := in[i]
		p.obj.WriteByte(c)
		closed := p.objDepth.feed(c)
		if p.header && !p.argsDone {
			wasStarted := p.args.started
			end := p.args.feed(c)
			if p.args.started || wasStarted {
				piece.WriteByte(c)
			}
			if end {
				p.argsDone = true
				p.appendArgs(out, piece.String())
				piece.Reset()
			}
			continue
		}
		if !p.header && p.obj.Len() < maxHeader {
			if m := headerRE.FindStringSubmatch(p.obj.String()); m != nil {
				var name string
				json.Unmarshal([]byte(`"`+m[1]+`"`), &name)
				p.header = true
				p.sendStart(out, name)
				continue
			}
		}
		if closed {
			p.finishObject(out, in[i+1:])
			return true
		}
	}
	p.appendArgs(out, piece.String())
	return false
}

func (p *Parser) appendArgs(out *[]Delta, s string) {
	if s == "" {
		return
	}
	p.calls[len(p.calls)-1].Arguments += s
	*out = append(*out, Delta{Call: true, Index: len(p.calls) - 1, Arguments: s})
}

func (p *Parser) sendStart(out *[]Delta, name string) {
	id := newCallID()
	p.calls = append(p.calls, Call{ID: id, Name: name})
	*out = append(*out, Delta{Call: true, Start: true, Index: len(p.calls) - 1, ID: id, Name: name})
}

// finishObject ends a call object; one whose keys did not come in the
// header's order is parsed whole now.
func (p *Parser) finishObject(out *[]Delta, rest string) {
	if !p.header {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal([]byte(p.obj.String()), &obj); err != nil || obj["name"] == nil {
			// Not a call: what was read is content.
			*out = append(*out, Delta{Content: p.obj.String()})
			p.held = rest
			p.state = stDone
			return
		}
		var name string
		json.Unmarshal(obj["name"], &name)
		args := obj[p.f.ArgsKey]
		if args == nil {
			args = obj["arguments"]
		}
		if args == nil {
			args = obj["parameters"]
		}
		if args == nil {
			args = json.RawMessage("{}")
		}
		p.sendStart(out, name)
		var buf bytes.Buffer
		json.Compact(&buf, args)
		p.appendArgs(out, buf.String())
	}
	p.held = rest
	p.state = stAfterObj
}

// partialSuffix is the length of the longest suffix of s that is a proper
// prefix of tag: text that may become the tag with the next piece.
func partialSuffix(s, tag string) int {
	for k := min(len(tag)-1, len(s)); k > 0; k-- {
		if strings.HasSuffix(s, tag[:k]) {
			return k
		}
	}
	return 0
}

func mergeContent(ds []Delta) []Delta {
	out := ds[:0]
	for _, d := range ds {
		if !d.Call && d.Content == "" {
			continue
		}
		if !d.Call && len(out) > 0 && !out[len(out)-1].Call {
			out[len(out)-1].Content += d.Content
			continue
		}
		out = append(out, d)
	}
	return out
}

func newCallID() string {
	var b [12]byte
	rand.Read(b[:])
	return "call_" + hex.EncodeToString(b[:])
}

// jsonScan follows one JSON value byte by byte and reports when it ends.
// Scalars end at the first byte after them, so it is only used for
// objects and arrays here (arguments are objects).
type jsonScan struct {
	started  bool
	depth    int
	inString bool
	escaped  bool
}

// feed reports whether c closes the value.
func (j *jsonScan) feed(c byte) bool {
	if !j.started {
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			return false
		}
		j.started = true
	}
	if j.inString {
		switch {
		case j.escaped:
			j.escaped = false
		case c == '\\':
			j.escaped = true
		case c == '"':
			j.inString = false
		}
		return false
	}
	switch c {
	case '"':
		j.inString = true
	case '{', '[':
		j.depth++
	case '}', ']':
		j.depth--
		return j.depth == 0
	}
	return false
}
