package pull

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strings"
)

// treeEntry is one item of the Hub's GET /api/models/REPO/tree/main.
type treeEntry struct {
	Type string `json:"type"`
	Path string `json:"path"`
	Size int64  `json:"size"`
	LFS  *struct {
		OID  string `json:"oid"` // sha256
		Size int64  `json:"size"`
	} `json:"lfs"`
}

// DefaultQuant is the quant picked when a source names none.
const DefaultQuant = "Q4_K_M"

// quantPreference is the order of fallbacks when the repo has no
// DefaultQuant: the nearest in size and quality first.
var quantPreference = []string{"Q4_K_M", "Q4_K_S", "IQ4_XS", "IQ4_NL", "Q4_0", "Q4_1", "Q5_K_M", "Q5_K_S", "Q5_0",
	"Q3_K_L", "Q3_K_M", "Q6_K", "Q3_K_S", "IQ3_M", "IQ3_XS", "Q8_0", "Q2_K", "IQ2_M", "BF16", "F16", "F32"}

// splitRe matches the split suffix of llama.cpp's gguf-split.
var splitRe = regexp.MustCompile(`(?i)-(\d{5})-of-(\d{5})\.gguf$`)

// quantInName finds a quant name in a file name.
var quantInName = regexp.MustCompile(`(?i)(?:^|[-._])((?:UD-)?(?:IQ[1-4]_(?:XXS|XS|S|M|NL)|Q[2-8]_K(?:_XL|_[SML])?|Q[4-8]_[01]|TQ[12]_0|BF16|F16|F32|MXFP4))(?:[-.]|$)`)

// group is one model in a repo: one file, or every part of a split one.
type group struct {
	key   string      // the name without the split suffix
	parts []treeEntry // in order
	quant string      // as found in the name, upper case; "" if none
}

func (m *Manager) hfGet(ctx context.Context, o Options, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return err
	}
	m.authorize(req, o)
	resp, err := m.client.Do(req)
	if err != nil {
		return errorf(http.StatusBadGateway, CodeUpstream, "hub %s: %v", o.HFEndpoint, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return hubStatus(resp, o)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(out); err != nil {
		return errorf(http.StatusBadGateway, CodeUpstream, "hub %s: bad answer to %s: %v", o.HFEndpoint, u, err)
	}
	return nil
}

func (m *Manager) authorize(req *http.Request, o Options) {
	if o.HFToken != "" && strings.HasPrefix(req.URL.String(), o.HFEndpoint+"/") {
		req.Header.Set("Authorization", "Bearer "+o.HFToken)
	}
}

// hubStatus turns a Hub error answer into an error. The Hub says what it
// means in X-Error-Code: RepoNotFound (also for a private repo to a
// client without access), GatedRepo, EntryNotFound.
func hubStatus(resp *http.Response, o Options) error {
	code := resp.Header.Get("X-Error-Code")
	msg := resp.Header.Get("X-Error-Message")
	if msg == "" {
		var body struct {
			Error string `json:"error"`
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if json.Unmarshal(b, &body) == nil {
			msg = body.Error
		}
	}
	switch {
	case code == "RepoNotFound":
		return &notFound{msg: "repo not found"}
	case code == "EntryNotFound" || resp.StatusCode == http.StatusNotFound:
		return &notFound{msg: "not found", entry: true}
	case code == "GatedRepo" || resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return gatedError(resp.Request.URL, o, msg)
	case resp.StatusCode == http.StatusTooManyRequests:
		return errorf(http.StatusServiceUnavailable, CodeUpstream, "hub %s: too many requests (429); try again later", o.HFEndpoint)
	}
	return errorf(http.StatusBadGateway, CodeUpstream, "hub %s answered %s to %s %s", o.HFEndpoint, resp.Status, resp.Request.Method, resp.Request.URL.Redacted())
}

func gatedError(u *url.URL, o Options, hubMsg string) error {
	repo := u.Path
	if i := strings.Index(repo, "/api/models/"); i >= 0 {
		repo = repo[i+len("/api/models/"):]
	}
	parts := strings.SplitN(strings.TrimPrefix(repo, "/"), "/", 3)
	if len(parts) >= 2 {
		repo = parts[0] + "/" + parts[1]
	}
	how := "it is gated or private: accept its terms on " + o.HFEndpoint + "/" + repo + ", then give jetaid a token: HF_TOKEN in jetai-ctl's or jetaid's environment, or pull { hf_token_file = \"/etc/jetai/hf-token\" } in the config"
	if o.HFToken != "" {
		how = "the token (" + o.TokenFrom + ") was refused: it lacks access; accept the repo's terms on " + o.HFEndpoint + "/" + repo + " with the token's account, or use a token that has access (HF_TOKEN or pull { hf_token_file })"
	}
	if hubMsg != "" {
		how += " (hub: " + hubMsg + ")"
	}
	return errorf(http.StatusForbidden, CodeGated, "repo %s: %s", repo, how)
}

// notFound is a hub 404 before suggestions are added.
type notFound struct {
	msg   string
	entry bool
}

func (e *notFound) Error() string { return e.msg }

// resolveHF lists the repo and picks its files.
func (m *Manager) resolveHF(ctx context.Context, o Options, src Source) (Plan, error) {
	var entries []treeEntry
	u := o.HFEndpoint + "/api/models/" + src.Owner + "/" + src.Repo + "/tree/main?recursive=true"
	if err := m.hfTree(ctx, o, u, &entries); err != nil {
		if _, ok := err.(*notFound); ok {
			return Plan{}, m.repoNotFound(ctx, o, src)
		}
		return Plan{}, err
	}
	var ggufs, projs []treeEntry
	for _, e := range entries {
		if e.Type != "file" || !strings.HasSuffix(strings.ToLower(e.Path), ".gguf") {
			continue
		}
		if strings.Contains(strings.ToLower(path.Base(e.Path)), "mmproj") {
			projs = append(projs, e)
		} else {
			ggufs = append(ggufs, e)
		}
	}
	plan := Plan{Source: src}
	groups := groupFiles(ggufs)
	var pick *group
	switch {
	case src.File != "":
		for _, g := range append(groups, groupFiles(projs)...) {
			for _, p := range g.parts {
				if strings.EqualFold(p.Path, src.File) {
					pick = g
				}
			}
		}
		if pick == nil {
			var names []string
			for _, e := range append(ggufs, projs...) {
				names = append(names, e.Path)
			}
			return Plan{}, errorf(http.StatusNotFound, CodeNotFound, "%s has no file %s; %s", src.RepoID(), src.File, suggest(src.File, names, "files"))
		}
	case len(groups) == 0:
		return Plan{}, errorf(http.StatusNotFound, CodeNotFound, "%s has no .gguf model files (is it a GGUF repo? many repos named OWNER/NAME-GGUF hold them)", src.RepoID())
	default:
		var err error
		pick, plan.Note, err = pickQuant(src, groups)
		if err != nil {
			return Plan{}, err
		}
	}
	for i, p := range pick.parts {
		f, err := m.hfFile(o, src, p, "model")
		if err != nil {
			return Plan{}, err
		}
		if i > 0 {
			f.Role = "split"
		}
		plan.Files = append(plan.Files, f)
	}
	if src.File == "" && len(projs) > 0 {
		p := pickProjector(projs, pick.quant)
		f, err := m.hfFile(o, src, p, "mmproj")
		if err != nil {
			return Plan{}, err
		}
		plan.Files = append(plan.Files, f)
	}
	return plan, nil
}

func (m *Manager) hfTree(ctx context.Context, o Options, u string, out *[]treeEntry) error {
	// The Hub pages long listings (Link: <…>; rel="next").
	for page := 0; u != "" && page < 100; page++ {
		req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
		if err != nil {
			return err
		}
		m.authorize(req, o)
		resp, err := m.client.Do(req)
		if err != nil {
			return errorf(http.StatusBadGateway, CodeUpstream, "hub %s: %v", o.HFEndpoint, err)
		}
		if resp.StatusCode != http.StatusOK {
			err := hubStatus(resp, o)
			resp.Body.Close()
			return err
		}
		var es []treeEntry
		err = json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&es)
		resp.Body.Close()
		if err != nil {
			return errorf(http.StatusBadGateway, CodeUpstream, "hub %s: bad tree listing: %v", o.HFEndpoint, err)
		}
		*out = append(*out, es...)
		u = nextLink(resp.Header.Get("Link"))
	}
	return nil
}

func nextLink(h string) string {
	for _, l := range strings.Split(h, ",") {
		if strings.Contains(l, `rel="next"`) {
			if i, j := strings.Index(l, "<"), strings.Index(l, ">"); i >= 0 && j > i {
				return l[i+1 : j]
			}
		}
	}
	return ""
}

func (m *Manager) hfFile(o Options, src Source, e treeEntry, role string) (File, error) {
	if e.LFS == nil || len(e.LFS.OID) != 64 {
		return File{}, errorf(http.StatusBadGateway, CodeUpstream, "%s/%s has no LFS sha256 in the hub's listing: nothing to verify it against", src.RepoID(), e.Path)
	}
	segs := strings.Split(e.Path, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return File{
		Name:   cacheName(src.Owner + "--" + src.Repo + "--" + path.Base(e.Path)),
		Path:   e.Path,
		URL:    o.HFEndpoint + "/" + src.Owner + "/" + src.Repo + "/resolve/main/" + strings.Join(segs, "/"),
		Size:   e.LFS.Size,
		SHA256: strings.ToLower(e.LFS.OID),
		Role:   role,
		Origin: "hf.co/" + src.RepoID() + "/" + e.Path,
		auth:   true,
	}, nil
}

func groupFiles(es []treeEntry) []*group {
	by := map[string]*group{}
	var out []*group
	for _, e := range es {
		key := e.Path
		if m := splitRe.FindStringSubmatchIndex(e.Path); m != nil {
			key = e.Path[:m[0]] + ".gguf"
		}
		g := by[key]
		if g == nil {
			g = &group{key: key}
			if q := quantInName.FindStringSubmatch(path.Base(key)); q != nil {
				g.quant = strings.ToUpper(q[1])
			}
			by[key] = g
			out = append(out, g)
		}
		g.parts = append(g.parts, e)
	}
	for _, g := range out {
		sort.Slice(g.parts, func(i, j int) bool { return g.parts[i].Path < g.parts[j].Path })
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}

// matchQuant reports whether the file name holds quant, case-insensitively,
// as a whole name ("Q4_K" is not in "Q4_K_M").
func matchQuant(name, quant string) bool {
	n, q := strings.ToUpper(path.Base(name)), strings.ToUpper(quant)
	for i := 0; ; {
		j := strings.Index(n[i:], q)
		if j < 0 {
			return false
		}
		j += i
		before := j == 0 || strings.ContainsRune("-._", rune(n[j-1]))
		end := j + len(q)
		after := end == len(n) || strings.ContainsRune("-.", rune(n[end]))
		if before && after {
			return true
		}
		i = j + 1
	}
}

// pickQuant picks the group of the source's quant, or of the default with
// fallbacks; note says what was picked when it was not asked for.
func pickQuant(src Source, groups []*group) (*group, string, error) {
	find := func(q string) *group {
		for _, g := range groups {
			if matchQuant(g.key, q) {
				return g
			}
		}
		return nil
	}
	var avail []string
	for _, g := range groups {
		q := g.quant
		if q == "" {
			q = path.Base(g.key)
		}
		avail = append(avail, q)
	}
	if src.Quant != "" {
		if g := find(src.Quant); g != nil {
			return g, "", nil
		}
		return nil, "", errorf(http.StatusNotFound, CodeNotFound, "%s has no %s file; %s", src.RepoID(), src.Quant, suggest(src.Quant, avail, "quants"))
	}
	for _, q := range quantPreference {
		if g := find(q); g != nil {
			if q == DefaultQuant {
				return g, "", nil
			}
			return g, fmt.Sprintf("%s has no %s; picked %s, the closest (available: %s)", src.RepoID(), DefaultQuant, q, strings.Join(avail, ", ")), nil
		}
	}
	if len(groups) == 1 {
		return groups[0], fmt.Sprintf("%s has no %s; picked its only model, %s", src.RepoID(), DefaultQuant, path.Base(groups[0].key)), nil
	}
	return nil, "", errorf(http.StatusNotFound, CodeNotFound, "%s has no %s and no close quant; name one: %s", src.RepoID(), DefaultQuant, strings.Join(avail, ", "))
}

// pickProjector picks the mmproj file: of the model's quant, else F16,
// else the first.
func pickProjector(ps []treeEntry, quant string) treeEntry {
	sort.Slice(ps, func(i, j int) bool { return ps[i].Path < ps[j].Path })
	for _, q := range []string{quant, "F16", "BF16"} {
		for _, p := range ps {
			if q != "" && matchQuant(p.Path, q) {
				return p
			}
		}
	}
	return ps[0]
}

// repoNotFound builds the error for an unknown repo, with the Hub's
// search results for its name as suggestions.
func (m *Manager) repoNotFound(ctx context.Context, o Options, src Source) error {
	var hits []struct {
		ID string `json:"id"`
	}
	q := url.Values{"search": {src.Repo}, "limit": {"20"}}
	var names []string
	if err := m.hfGet(ctx, o, o.HFEndpoint+"/api/models?"+q.Encode(), &hits); err == nil {
		for _, h := range hits {
			names = append(names, h.ID)
		}
	}
	return errorf(http.StatusNotFound, CodeNotFound, "no repo %s on %s (or it is private: then set HF_TOKEN); %s", src.RepoID(), o.HFEndpoint, suggest(src.RepoID(), names, "repos"))
}

// suggest names the candidates closest to want.
func suggest(want string, have []string, what string) string {
	if len(have) == 0 {
		return "no " + what + " to suggest"
	}
	type c struct {
		s string
		d int
	}
	var cs []c
	w := strings.ToLower(want)
	for _, h := range have {
		d := editDistance(w, strings.ToLower(h))
		if strings.Contains(strings.ToLower(h), w) || strings.Contains(w, strings.ToLower(h)) {
			d /= 2
		}
		cs = append(cs, c{h, d})
	}
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].d < cs[j].d })
	var out []string
	for i := 0; i < len(cs) && i < 5; i++ {
		out = append(out, cs[i].s)
	}
	return "closest " + what + ": " + strings.Join(out, ", ")
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// cacheName is a cache file name for a downloaded file.
func cacheName(s string) string {
	s = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_' {
			return r
		}
		return '_'
	}, s)
	if !strings.HasSuffix(strings.ToLower(s), ".gguf") {
		s += ".gguf"
	}
	return s
}
