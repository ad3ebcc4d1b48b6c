// Package helm holds the tests of jetai's Helm chart (deploy/helm/jetai):
// the chart rendered with Helm's own engine for several values sets, linted
// with Helm's linter, every object decoded strictly into Kubernetes' API
// types, and the probes, security context and mounts checked. It is its
// own Go module so that Helm's and Kubernetes' modules stay out of jetai's
// main module; `make test-helm` runs it.
package helm
