// Package fleet makes the config of an L7 load balancer in front of
// several jetaid nodes. jetai keeps no cluster logic of its own: a fleet is
// a plain load balancer (or Kubernetes) over independent nodes, and this
// package only writes what such a balancer needs from what the nodes say.
//
// Discover reads each node's GET /v1/models (the models it is configured
// with, and their aliases); HAProxy writes an HAProxy config that routes
// each request by its JSON body's "model" to the nodes that serve that
// model, health-checks each node with GET /ready?model=NAME (unready while
// draining, shedding for heat or unable to load that model), retries a
// connection a node refused on another node, and answers its own errors
// as JSON in OpenAI's shape. cmd/jetai-haproxy is the command line.
//
// It must not import anything under daemon/: it speaks to nodes over
// their public REST API only.
package fleet
