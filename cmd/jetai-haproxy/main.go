// Command jetai-haproxy writes an HAProxy config for a fleet of jetaid
// nodes from what they serve (package fleet):
//
//	jetai-haproxy [--bind :8080] [--api-key KEY] [--check-interval 2s] NODE... > haproxy.cfg
//
// NODE is host:port of a jetaid's REST API. Each request is routed by its
// JSON body's "model" to the nodes that have that model, checked with
// GET /ready?model=NAME. Run it again (and reload HAProxy) when the nodes'
// models change.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/jetai/jetai/fleet"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	fs := flag.NewFlagSet("jetai-haproxy", flag.ContinueOnError)
	var opts fleet.Options
	fs.StringVar(&opts.Bind, "bind", ":8080", "HAProxy's frontend `ADDRESS`")
	apiKey := fs.String("api-key", os.Getenv("JETAI_API_KEY"), "API `KEY` for the nodes' GET /v1/models (server.api_keys); default $JETAI_API_KEY")
	fs.DurationVar(&opts.CheckInterval, "check-interval", 2*time.Second, "how often HAProxy asks each node's GET /ready?model=NAME")
	fs.IntVar(&opts.Fall, "fall", 2, "failed checks that take a node out of a model's backend")
	fs.IntVar(&opts.Rise, "rise", 2, "good checks that put it back")
	fs.DurationVar(&opts.ServerTimeout, "timeout", 5*time.Minute, "longest request at a node (match server.request_timeout)")
	fs.IntVar(&opts.BufferSize, "bufsize", 256<<10, "HAProxy's tune.bufsize in `BYTES`: a body must fit to be routed by its model")
	fs.StringVar(&opts.StatsSocket, "stats-socket", "", "`PATH` of HAProxy's admin socket (none by default)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: jetai-haproxy [flags] NODE... > haproxy.cfg\n\n")
		fmt.Fprintf(fs.Output(), `Reads each jetaid NODE's (host:port) GET /v1/models and writes an HAProxy
(2.4 or later) config on stdout: one backend per model with the nodes that
serve it, chosen by the request body's "model" (or an alias); a node is in
a backend while GET /ready?model=NAME answers 200 (not draining, not
shedding for heat, the model loadable). A connection a node refuses is
retried on another; HAProxy's own errors are JSON in OpenAI's shape, with
the answering node in the X-Jetai-Node header. Regenerate and reload HAProxy
(systemctl reload haproxy) when the nodes' models change.

`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nodes, err := fleet.Discover(ctx, &http.Client{Timeout: 10 * time.Second}, fs.Args(), *apiKey)
	if err != nil {
		fmt.Fprintln(os.Stderr, "jetai-haproxy:", err)
		return 1
	}
	cfg, err := fleet.HAProxy(nodes, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "jetai-haproxy:", err)
		return 1
	}
	os.Stdout.Write(cfg)
	return 0
}
