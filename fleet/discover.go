package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
)

// Node is one jetaid as the balancer sees it.
type Node struct {
	// Addr is host:port of its REST API.
	Addr string
	// Models are the canonical names of the models it is configured with,
	// sorted; Aliases maps each to its aliases.
	Models  []string
	Aliases map[string][]string
}

// modelList is the part of GET /v1/models that matters here.
type modelList struct {
	Data []struct {
		ID      string   `json:"id"`
		State   string   `json:"state"`
		Aliases []string `json:"aliases"`
	} `json:"data"`
}

// Discover asks every node (host:port, or http://host:port) for its
// models, all at once. apiKey, when set, is sent as a Bearer token
// (server.api_keys). A node that does not answer fails the whole call:
// a config written without it would route nothing there, silently.
func Discover(ctx context.Context, client *http.Client, addrs []string, apiKey string) ([]Node, error) {
	if client == nil {
		client = http.DefaultClient
	}
	nodes := make([]Node, len(addrs))
	errs := make([]error, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nodes[i], errs[i] = discoverOne(ctx, client, a, apiKey)
		}()
	}
	wg.Wait()
	var bad []string
	for _, err := range errs {
		if err != nil {
			bad = append(bad, err.Error())
		}
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("discover: %s", strings.Join(bad, "; "))
	}
	return nodes, nil
}

func discoverOne(ctx context.Context, client *http.Client, addr, apiKey string) (Node, error) {
	hostport := strings.TrimSuffix(strings.TrimPrefix(addr, "http://"), "/")
	if _, _, err := net.SplitHostPort(hostport); err != nil {
		return Node{}, fmt.Errorf("node %q: want host:port: %w", addr, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+hostport+"/v1/models", nil)
	if err != nil {
		return Node{}, fmt.Errorf("node %s: %w", hostport, err)
	}
	if apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+apiKey)
	}
	resp, err := client.Do(req)
	if err != nil {
		return Node{}, fmt.Errorf("node %s: %w", hostport, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return Node{}, fmt.Errorf("node %s: read /v1/models: %w", hostport, err)
	}
	if resp.StatusCode != http.StatusOK {
		return Node{}, fmt.Errorf("node %s: GET /v1/models: %s: %s", hostport, resp.Status, strings.TrimSpace(string(body)))
	}
	var ml modelList
	if err := json.Unmarshal(body, &ml); err != nil {
		return Node{}, fmt.Errorf("node %s: /v1/models is not a model list: %w", hostport, err)
	}
	n := Node{Addr: hostport, Aliases: map[string][]string{}}
	for _, m := range ml.Data {
		if m.State == "router" { // "auto": any node's router picks
			continue
		}
		n.Models = append(n.Models, m.ID)
		if len(m.Aliases) > 0 {
			n.Aliases[m.ID] = m.Aliases
		}
	}
	sort.Strings(n.Models)
	return n, nil
}
